#include "optimizer.hpp"

#include <cmath>
#include <cstring>

#include "error.hpp"

namespace rn {

Optimizer::Optimizer(OptimizerConfig config, const std::vector<ParamInfo>& params, int64_t trainable_floats)
    : config_(std::move(config)) {
  for (const ParamInfo& p : params) {
    if (p.trainable) trainable_.push_back(&p);
  }
  if (config_.decay_scale.size() != trainable_.size() || config_.lr_scale.size() != trainable_.size()) {
    fail(ErrorCode::InvalidArgument, "optimizer: parameter groups must give one entry per trainable parameter (" +
                                         std::to_string(trainable_.size()) + ")");
  }
  const bool needs_first = config_.type == OptimizerType::AdamW || config_.momentum != 0.0f;
  if (needs_first) {
    state1_ = FloatBuffer(trainable_floats, "optimizer state");
    std::memset(state1_.data(), 0, static_cast<size_t>(trainable_floats) * sizeof(float));
  }
  if (config_.type == OptimizerType::AdamW) {
    state2_ = FloatBuffer(trainable_floats, "optimizer state");
    std::memset(state2_.data(), 0, static_cast<size_t>(trainable_floats) * sizeof(float));
  }
}

float* Optimizer::slot(int index, const ParamInfo& p) {
  if (!p.trainable) fail(ErrorCode::InvalidArgument, "parameter '" + p.name + "' has no optimizer state");
  FloatBuffer* buf = index == 0 ? &state1_ : index == 1 ? &state2_ : nullptr;
  if (buf == nullptr || buf->data() == nullptr) {
    fail(ErrorCode::InvalidArgument, "optimizer state slot " + std::to_string(index) + " does not exist for this optimizer");
  }
  return buf->data() + p.offset;
}

double Optimizer::step(Backend& backend, float* params, float* grads) {
  double sq = 0.0;
  for (const ParamInfo* p : trainable_) sq += backend.sum_of_squares(p->numel, grads + p->offset);
  const double norm = std::sqrt(sq);
  if (!std::isfinite(norm)) {
    fail(ErrorCode::NaN, "training step: the gradients are not finite (norm " + std::to_string(norm) +
                             "); the weights were left unchanged. Lower the learning rate or clip gradients.");
  }
  if (config_.clip_norm > 0.0f && norm > config_.clip_norm) {
    const float factor = static_cast<float>(config_.clip_norm / (norm + 1e-6));
    for (const ParamInfo* p : trainable_) backend.scale(p->numel, factor, grads + p->offset);
  }
  ++steps_;
  for (size_t i = 0; i < trainable_.size(); ++i) {
    const ParamInfo& p = *trainable_[i];
    const float lr = config_.lr * config_.lr_scale[i];
    const float wd = config_.weight_decay * config_.decay_scale[i];
    float* w = params + p.offset;
    const float* g = grads + p.offset;
    if (config_.type == OptimizerType::Sgd) {
      SgdArgs a;
      a.lr = lr;
      a.momentum = config_.momentum;
      a.weight_decay = wd;
      a.nesterov = config_.nesterov;
      a.decoupled = config_.decoupled;
      a.first_step = steps_ == 1;
      backend.sgd_update(p.numel, a, w, g, state1_.data() ? state1_.data() + p.offset : nullptr);
    } else {
      AdamArgs a;
      a.lr = lr;
      a.beta1 = config_.beta1;
      a.beta2 = config_.beta2;
      a.eps = config_.eps;
      a.weight_decay = wd;
      a.step = steps_;
      backend.adamw_update(p.numel, a, w, g, state1_.data() + p.offset, state2_.data() + p.offset);
    }
  }
  return norm;
}

}  // namespace rn
