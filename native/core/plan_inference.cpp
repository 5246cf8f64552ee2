// Inference plans' batch-norm folding (plan.hpp): the folded weights and biases, recomputed
// from the parameters and running statistics whenever they may have changed.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "error.hpp"
#include "plan.hpp"

namespace rn {

bool inference_fusion_enabled() {
  const char* v = std::getenv("RESNET_INFERENCE_FUSION");
  return v == nullptr || std::strcmp(v, "0") != 0;
}

void Plan::fold_batch_norms(ParamBuffers& p) const {
  if (p.folded == nullptr) fail(ErrorCode::Internal, "an inference plan that folds batch-norms needs their buffer");
  std::vector<float> scale;
  for (const Step& s : steps_) {
    if (s.type != LayerType::Conv2d || s.fold_beta < 0) continue;
    const int64_t cout = s.conv.c_out;
    const int64_t wsize = s.conv.kh * s.conv.kw * s.conv.in_per_group() * cout;
    const float* gamma = p.params + s.fold_gamma;
    const float* beta = p.params + s.fold_beta;
    const float* mean = p.running + s.fold_mean;
    const float* var = p.running + s.fold_var;
    const float* conv_bias = s.b >= 0 ? p.params + s.b : nullptr;
    float* bias = p.folded + s.fold_beta;
    scale.resize(static_cast<size_t>(cout));
    for (int64_t c = 0; c < cout; ++c) {
      const double k = double(gamma[c]) / std::sqrt(double(var[c]) + double(s.epsilon));
      scale[static_cast<size_t>(c)] = static_cast<float>(k);
      const double b = conv_bias != nullptr ? double(conv_bias[c]) : 0.0;
      bias[c] = static_cast<float>(double(beta[c]) + (b - double(mean[c])) * k);
    }
    // HWIO: output channels are the innermost axis (grouped ones too).
    const float* w = p.params + s.w;
    float* fw = p.folded + s.w;
    for (int64_t i = 0; i < wsize; i += cout) {
      for (int64_t c = 0; c < cout; ++c) fw[i + c] = w[i + c] * scale[static_cast<size_t>(c)];
    }
  }
}

void Plan::plan_prepared_weights() {
  int64_t total = 0;
  for (Step& s : steps_) {
    if (s.type != LayerType::Conv2d || !s.epilogue) continue;
    const int64_t floats = inference_->conv2d_prepared_floats(s.conv);
    if (floats <= 0) continue;
    s.prepared = total;
    total += (floats + 15) / 16 * 16;  // 64-byte aligned, as the arena's buffers
  }
  if (total > 0) prepared_ = BackendBuffer(backend_, total, "prepared convolution weights");
}

void Plan::refresh_inference_weights(ParamBuffers& p) {
  if (folds_) fold_batch_norms(p);
  float* scratch = arena_.data() + scratch_;
  for (const Step& s : steps_) {
    if (s.type != LayerType::Conv2d || s.prepared < 0) continue;
    const float* w = (s.fold_beta >= 0 ? p.folded : p.params) + s.w;
    inference_->conv2d_prepare_weights(s.conv, w, prepared_.data() + s.prepared, scratch);
  }
}

}  // namespace rn
