// What a compute backend (native/cpu, native/cuda) provides to the plan: the fused
// kernels of one training step over raw buffers the plan owns. No kernel allocates:
// anything it needs beyond its outputs comes from `scratch`, sized at plan time by the
// matching *_scratch_floats query. Gradients are written, never accumulated; the plan
// does accumulation where a value feeds several layers.
#pragma once

#include <cmath>
#include <cstdint>

#include "geometry.hpp"

namespace rn {

struct BatchNormArgs {
  int64_t rows = 0, channels = 0;
  float epsilon = 1e-5f;
  const float* gamma = nullptr;
  const float* beta = nullptr;
  const float* mean = nullptr;  // batch statistics in training, running ones in inference
  const float* var = nullptr;
};

struct SqueezeExciteArgs {
  int64_t n = 0, hw = 0, c = 0, hidden = 0;
  const float *w1 = nullptr, *b1 = nullptr, *w2 = nullptr, *b2 = nullptr;
  // Saved by forward for backward: pooled [n, c], hidden activations [n, hidden], gate [n, c].
  float *pooled = nullptr, *hidden_act = nullptr, *gate = nullptr;
};

struct SgdArgs {
  float lr = 0.0f, momentum = 0.0f, weight_decay = 0.0f;
  bool nesterov = false, decoupled = false, first_step = false;
};

struct AdamArgs {
  float lr = 0.0f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.0f;
  int64_t step = 1;  // 1-based, for bias correction
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // Convolution. With `mean`/`var` set, the forward also computes the per-channel batch
  // statistics of its output (the conv → batch-norm fusion).
  virtual int64_t conv2d_scratch_floats(const Conv2dGeometry& g) const = 0;
  virtual void conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias, float* y,
                              float* mean, float* var, float* scratch) = 0;
  virtual void conv2d_backward_input(const Conv2dGeometry& g, const float* dy, const float* w, float* dx,
                                     float* scratch) = 0;
  // dw always; db when non-null.
  virtual void conv2d_backward_weight(const Conv2dGeometry& g, const float* x, const float* dy, float* dw, float* db,
                                      float* scratch) = 0;

  // Batch-norm: y = [relu]((x - mean) / sqrt(var + eps) · gamma + beta [+ skip]).
  virtual int64_t channel_scratch_floats(int64_t channels) const = 0;
  virtual void batch_norm_statistics(int64_t rows, int64_t channels, const float* x, float* mean, float* var,
                                     float* scratch) = 0;
  virtual void batch_norm_update_running(int64_t rows, int64_t channels, const float* mean, const float* var,
                                         float momentum, float* running_mean, float* running_var) = 0;
  virtual void batch_norm_forward(const BatchNormArgs& a, const float* x, const float* skip, bool relu, float* y,
                                  float* scratch) = 0;
  // The ReLU backward (mask from the saved output y) fused with the batch-norm backward.
  // dskip (non-null when the forward had a skip) receives the gradient past the ReLU.
  virtual void batch_norm_backward(const BatchNormArgs& a, bool training, const float* x, const float* y, bool relu,
                                   const float* dy, float* dx, float* dskip, float* dgamma, float* dbeta,
                                   float* scratch) = 0;

  // Element-wise.
  virtual void relu_forward(int64_t count, const float* x, float* y) = 0;
  virtual void relu_backward_from_output(int64_t count, const float* y, const float* dy, float* dx) = 0;
  virtual void add_forward(int64_t count, const float* a, const float* b, bool relu, float* y) = 0;
  virtual void accumulate(int64_t count, const float* x, float* y) = 0;  // y += x
  virtual void copy(int64_t count, const float* x, float* y) = 0;

  // Pools.
  virtual void max_pool_forward(const Pool2dGeometry& g, const float* x, float* y) = 0;
  virtual void max_pool_backward(const Pool2dGeometry& g, const float* x, const float* dy, float* dx) = 0;
  virtual void avg_pool_forward(const Pool2dGeometry& g, const float* x, float* y) = 0;
  virtual void avg_pool_backward(const Pool2dGeometry& g, const float* dy, float* dx) = 0;
  virtual void global_avg_pool_forward(int64_t n, int64_t hw, int64_t c, const float* x, float* y) = 0;
  virtual void global_avg_pool_backward(int64_t n, int64_t hw, int64_t c, const float* dy, float* dx) = 0;

  // Dense [n, k] · [k, m] (+ bias). dx may be null (no input gradient wanted).
  virtual void dense_forward(int64_t n, int64_t k, int64_t m, const float* x, const float* w, const float* b,
                             float* y) = 0;
  virtual void dense_backward(int64_t n, int64_t k, int64_t m, const float* x, const float* w, const float* dy,
                              float* dx, float* dw, float* db) = 0;

  // Spatial zero padding [top, bottom, left, right] and the CIFAR option-A shortcut.
  virtual void zero_pad_forward(const Shape& x_shape, const int64_t* pads, const float* x, float* y) = 0;
  virtual void zero_pad_backward(const Shape& x_shape, const int64_t* pads, const float* dy, float* dx) = 0;
  virtual void zero_pad_shortcut_forward(const Shape& x_shape, const Shape& y_shape, int64_t sh, int64_t sw,
                                         const float* x, float* y) = 0;
  virtual void zero_pad_shortcut_backward(const Shape& x_shape, const Shape& y_shape, int64_t sh, int64_t sw,
                                          const float* dy, float* dx) = 0;

  // Squeeze-and-excitation; scratch holds 3·n·c + n·hidden floats.
  virtual void squeeze_excite_forward(const SqueezeExciteArgs& a, const float* x, float* y) = 0;
  virtual void squeeze_excite_backward(const SqueezeExciteArgs& a, const float* x, const float* dy, float* dx,
                                       float* dw1, float* db1, float* dw2, float* db2, float* scratch) = 0;

  // Mean softmax cross-entropy over the batch; `correct` counts argmax hits and `correct5`
  // labels ranked in the top five (ties counted in the label's favour). Backward writes
  // d(loss)/d(logits) scaled by dloss.
  virtual double softmax_cross_entropy(int64_t n, int64_t classes, const float* logits, const int32_t* labels,
                                       float smoothing, int64_t* correct, int64_t* correct5) = 0;
  virtual void softmax_cross_entropy_backward(int64_t n, int64_t classes, const float* logits, const int32_t* labels,
                                              float smoothing, float dloss, float* dlogits) = 0;
  virtual void softmax(int64_t n, int64_t classes, const float* logits, float* probs) = 0;

  // Optimizers, in place over one parameter tensor and its state.
  // Whether every value is finite. Used only on the failure path (naming the first layer whose
  // output went non-finite), so a host loop is enough; a device backend overrides it.
  virtual bool all_finite(int64_t count, const float* x) {
    for (int64_t i = 0; i < count; ++i) {
      if (!std::isfinite(x[i])) return false;
    }
    return true;
  }
  virtual double sum_of_squares(int64_t count, const float* x) = 0;
  virtual void scale(int64_t count, float factor, float* x) = 0;
  virtual void sgd_update(int64_t count, const SgdArgs& a, float* param, const float* grad, float* momentum_buf) = 0;
  virtual void adamw_update(int64_t count, const AdamArgs& a, float* param, const float* grad, float* m,
                            float* v) = 0;
};

// The CPU backend (native/cpu), always available.
Backend& cpu_backend();

}  // namespace rn
