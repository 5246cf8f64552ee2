// The Backend interface over the reference kernels (native/cpu/reference): what
// RESNET_KERNELS=reference runs, so whole models can be checked against the oracle with the
// same plan. Plain loops; fusions are spelled out as their unfused steps. The entries with
// no reference kernel (zero padding, squeeze-excite, softmax, optimizers) are plain loops
// already and come with the pools from HostBackend (host_backend.hpp). Needs no scratch.
#include <algorithm>

#include "kernel_selection.hpp"
#include "host_backend.hpp"
#include "loss_kernels.hpp"
#include "reference/batch_norm.hpp"
#include "reference/conv2d.hpp"
#include "reference/dense.hpp"
#include "reference/elementwise.hpp"
#include "reference/softmax_cross_entropy.hpp"

namespace rn {
namespace {

void relu_in_place(int64_t count, float* y) {
  for (int64_t i = 0; i < count; ++i) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
}

class ReferenceBackend final : public HostBackend {
 public:
  const char* name() const override { return "cpu-reference"; }

  int64_t conv2d_scratch_floats(const Conv2dGeometry&) const override { return 0; }
  void conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias, float* y, float* mean,
                      float* var, float*) override {
    reference::conv2d_forward(g, x, w, bias, y);
    if (mean != nullptr) reference::batch_norm_statistics(g.n * g.out_h * g.out_w, g.c_out, y, mean, var);
  }
  void conv2d_backward_input(const Conv2dGeometry& g, const float* dy, const float* w, float* dx, float*) override {
    reference::conv2d_backward_input(g, dy, w, dx);
  }
  void conv2d_backward_weight(const Conv2dGeometry& g, const float* x, const float* dy, float* dw, float* db,
                              float*) override {
    reference::conv2d_backward_weight(g, x, dy, dw);
    if (db != nullptr) reference::conv2d_backward_bias(g, dy, db);
  }

  int64_t channel_scratch_floats(int64_t) const override { return 0; }
  void batch_norm_statistics(int64_t rows, int64_t channels, const float* x, float* mean, float* var, float*) override {
    reference::batch_norm_statistics(rows, channels, x, mean, var);
  }
  void batch_norm_forward(const BatchNormArgs& a, const float* x, const float* skip, bool relu, float* y,
                          float*) override {
    if (skip != nullptr && relu) {
      reference::batch_norm_add_relu_apply(a.rows, a.channels, x, skip, a.mean, a.var, a.gamma, a.beta, a.epsilon, y);
      return;
    }
    reference::batch_norm_apply(a.rows, a.channels, x, a.mean, a.var, a.gamma, a.beta, a.epsilon, y);
    if (skip != nullptr) reference::add_forward(a.rows * a.channels, y, skip, y);
    if (relu) relu_in_place(a.rows * a.channels, y);
  }
  void batch_norm_backward(const BatchNormArgs& a, bool training, const float* x, const float* y, bool relu,
                           const float* dy, float* dx, float* dskip, float* dgamma, float* dbeta, float*) override {
    // The gradient past the ReLU goes to dskip when there is one, else into dx, which the
    // reference backward may overwrite in place (it reads dy[i] before writing dx[i]).
    const int64_t count = a.rows * a.channels;
    float* past_relu = dskip != nullptr ? dskip : dx;
    if (relu) {
      reference::relu_backward(count, y, dy, past_relu);  // y > 0 exactly where the pre-ReLU value was
    } else {
      std::copy(dy, dy + count, past_relu);
    }
    reference::batch_norm_backward(training, a.rows, a.channels, x, past_relu, a.mean, a.var, a.gamma, a.epsilon, dx,
                                   dgamma, dbeta);
  }

  void relu_forward(int64_t count, const float* x, float* y) override { reference::relu_forward(count, x, y); }
  void relu_backward_from_output(int64_t count, const float* y, const float* dy, float* dx) override {
    reference::relu_backward(count, y, dy, dx);
  }
  void add_forward(int64_t count, const float* a, const float* b, bool relu, float* y) override {
    reference::add_forward(count, a, b, y);
    if (relu) relu_in_place(count, y);
  }
  void accumulate(int64_t count, const float* x, float* y) override {
    for (int64_t i = 0; i < count; ++i) y[i] += x[i];
  }
  void copy(int64_t count, const float* x, float* y) override { std::copy(x, x + count, y); }

  void dense_forward(int64_t n, int64_t k, int64_t m, const float* x, const float* w, const float* b,
                     float* y) override {
    reference::dense_forward(n, k, m, x, w, b, y);
  }
  void dense_backward(int64_t n, int64_t k, int64_t m, const float* x, const float* w, const float* dy, float* dx,
                      float* dw, float* db) override {
    reference::dense_backward(n, k, m, x, w, dy, dx, dw, db);
  }

  // The loss value from the reference; the hit counts from the engine's (they are counts,
  // not numerics, and the reference has none).
  double softmax_cross_entropy(int64_t n, int64_t classes, const float* logits, const int32_t* labels, float smoothing,
                               int64_t* correct, int64_t* correct5) override {
    cpu::softmax_cross_entropy(n, classes, logits, labels, smoothing, correct, correct5);
    return reference::softmax_cross_entropy_forward(n, classes, logits, labels, smoothing);
  }
  void softmax_cross_entropy_backward(int64_t n, int64_t classes, const float* logits, const int32_t* labels,
                                      float smoothing, float dloss, float* dlogits) override {
    reference::softmax_cross_entropy_backward(n, classes, logits, labels, smoothing, dloss, dlogits);
  }

  double sum_of_squares(int64_t count, const float* x) override {
    double s = 0.0;
    for (int64_t i = 0; i < count; ++i) s += double(x[i]) * x[i];
    return s;
  }
  void scale(int64_t count, float factor, float* x) override {
    for (int64_t i = 0; i < count; ++i) x[i] *= factor;
  }
};

}  // namespace

Backend& reference_backend() {
  static ReferenceBackend instance;
  return instance;
}

}  // namespace rn
