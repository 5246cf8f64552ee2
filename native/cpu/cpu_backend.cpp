// The optimized CPU implementation of the Backend interface: a thin table over the engine
// kernels in this folder (and the reference pools, which already allocate nothing).
// kernel_selection.cpp decides whether this or the reference backend runs.
#include "kernel_selection.hpp"
#include "batch_norm_kernels.hpp"
#include "conv2d_kernels.hpp"
#include "elementwise_kernels.hpp"
#include "loss_kernels.hpp"
#include "optimizer_kernels.hpp"
#include "padding_kernels.hpp"
#include "reference/batch_norm.hpp"
#include "reference/pool.hpp"
#include "squeeze_excite_kernels.hpp"

namespace rn {
namespace {

class OptimizedCpuBackend final : public Backend {
 public:
  const char* name() const override { return "cpu"; }

  int64_t conv2d_scratch_floats(const Conv2dGeometry& g) const override { return cpu::conv2d_scratch_floats(g); }
  void conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias, float* y,
                      float* mean, float* var, float* scratch) override {
    cpu::conv2d_forward(g, x, w, bias, y, mean, var, scratch);
  }
  void conv2d_backward_input(const Conv2dGeometry& g, const float* dy, const float* w, float* dx,
                             float* scratch) override {
    cpu::conv2d_backward_input(g, dy, w, dx, scratch);
  }
  void conv2d_backward_weight(const Conv2dGeometry& g, const float* x, const float* dy, float* dw, float* db,
                              float* scratch) override {
    cpu::conv2d_backward_weight(g, x, dy, dw, db, scratch);
  }

  int64_t channel_scratch_floats(int64_t channels) const override { return cpu::channel_scratch_floats(channels); }
  void batch_norm_statistics(int64_t rows, int64_t channels, const float* x, float* mean, float* var,
                             float* scratch) override {
    cpu::batch_norm_statistics(rows, channels, x, mean, var, scratch);
  }
  void batch_norm_update_running(int64_t rows, int64_t channels, const float* mean, const float* var, float momentum,
                                 float* running_mean, float* running_var) override {
    reference::batch_norm_update_running(rows, channels, mean, var, momentum, running_mean, running_var);
  }
  void batch_norm_forward(const BatchNormArgs& a, const float* x, const float* skip, bool relu, float* y,
                          float* scratch) override {
    cpu::batch_norm_forward(a, x, skip, relu, y, scratch);
  }
  void batch_norm_backward(const BatchNormArgs& a, bool training, const float* x, const float* y, bool relu,
                           const float* dy, float* dx, float* dskip, float* dgamma, float* dbeta,
                           float* scratch) override {
    cpu::batch_norm_backward(a, training, x, y, relu, dy, dx, dskip, dgamma, dbeta, scratch);
  }

  void relu_forward(int64_t count, const float* x, float* y) override { cpu::relu_forward(count, x, y); }
  void relu_backward_from_output(int64_t count, const float* y, const float* dy, float* dx) override {
    cpu::relu_backward_from_output(count, y, dy, dx);
  }
  void add_forward(int64_t count, const float* a, const float* b, bool relu, float* y) override {
    cpu::add_forward(count, a, b, relu, y);
  }
  void accumulate(int64_t count, const float* x, float* y) override { cpu::accumulate(count, x, y); }
  void copy(int64_t count, const float* x, float* y) override { cpu::copy(count, x, y); }

  void max_pool_forward(const Pool2dGeometry& g, const float* x, float* y) override {
    reference::max_pool_forward(g, x, y);
  }
  void max_pool_backward(const Pool2dGeometry& g, const float* x, const float* dy, float* dx) override {
    reference::max_pool_backward(g, x, dy, dx);
  }
  void avg_pool_forward(const Pool2dGeometry& g, const float* x, float* y) override {
    reference::avg_pool_forward(g, x, y);
  }
  void avg_pool_backward(const Pool2dGeometry& g, const float* dy, float* dx) override {
    reference::avg_pool_backward(g, dy, dx);
  }
  void global_avg_pool_forward(int64_t n, int64_t hw, int64_t c, const float* x, float* y) override {
    reference::global_avg_pool_forward(n, hw, c, x, y);
  }
  void global_avg_pool_backward(int64_t n, int64_t hw, int64_t c, const float* dy, float* dx) override {
    reference::global_avg_pool_backward(n, hw, c, dy, dx);
  }

  void dense_forward(int64_t n, int64_t k, int64_t m, const float* x, const float* w, const float* b,
                     float* y) override {
    cpu::dense_forward(n, k, m, x, w, b, y);
  }
  void dense_backward(int64_t n, int64_t k, int64_t m, const float* x, const float* w, const float* dy, float* dx,
                      float* dw, float* db) override {
    cpu::dense_backward(n, k, m, x, w, dy, dx, dw, db);
  }

  void zero_pad_forward(const Shape& xs, const int64_t* pads, const float* x, float* y) override {
    cpu::zero_pad_forward(xs, pads, x, y);
  }
  void zero_pad_backward(const Shape& xs, const int64_t* pads, const float* dy, float* dx) override {
    cpu::zero_pad_backward(xs, pads, dy, dx);
  }
  void zero_pad_shortcut_forward(const Shape& xs, const Shape& ys, int64_t sh, int64_t sw, const float* x,
                                 float* y) override {
    cpu::zero_pad_shortcut_forward(xs, ys, sh, sw, x, y);
  }
  void zero_pad_shortcut_backward(const Shape& xs, const Shape& ys, int64_t sh, int64_t sw, const float* dy,
                                  float* dx) override {
    cpu::zero_pad_shortcut_backward(xs, ys, sh, sw, dy, dx);
  }

  void squeeze_excite_forward(const SqueezeExciteArgs& a, const float* x, float* y) override {
    cpu::squeeze_excite_forward(a, x, y);
  }
  void squeeze_excite_backward(const SqueezeExciteArgs& a, const float* x, const float* dy, float* dx, float* dw1,
                               float* db1, float* dw2, float* db2, float* scratch) override {
    cpu::squeeze_excite_backward(a, x, dy, dx, dw1, db1, dw2, db2, scratch);
  }

  double softmax_cross_entropy(int64_t n, int64_t classes, const float* logits, const int32_t* labels,
                               float smoothing, int64_t* correct, int64_t* correct5) override {
    return cpu::softmax_cross_entropy(n, classes, logits, labels, smoothing, correct, correct5);
  }
  void softmax_cross_entropy_backward(int64_t n, int64_t classes, const float* logits, const int32_t* labels,
                                      float smoothing, float dloss, float* dlogits) override {
    cpu::softmax_cross_entropy_backward(n, classes, logits, labels, smoothing, dloss, dlogits);
  }
  void softmax(int64_t n, int64_t classes, const float* logits, float* probs) override {
    cpu::softmax(n, classes, logits, probs);
  }

  double sum_of_squares(int64_t count, const float* x) override { return cpu::sum_of_squares(count, x); }
  void scale(int64_t count, float factor, float* x) override { cpu::scale(count, factor, x); }
  void sgd_update(int64_t count, const SgdArgs& a, float* param, const float* grad, float* momentum_buf) override {
    cpu::sgd_update(count, a, param, grad, momentum_buf);
  }
  void adamw_update(int64_t count, const AdamArgs& a, float* param, const float* grad, float* m, float* v) override {
    cpu::adamw_update(count, a, param, grad, m, v);
  }
  bool sgd_update_finite(int64_t count, const SgdArgs& a, const float* param, const float* grad,
                         const float* momentum_buf) override {
    return cpu::sgd_update_finite(count, a, param, grad, momentum_buf);
  }
  bool adamw_update_finite(int64_t count, const AdamArgs& a, const float* param, const float* grad, const float* m,
                           const float* v) override {
    return cpu::adamw_update_finite(count, a, param, grad, m, v);
  }
};

}  // namespace

Backend& optimized_backend() {
  static OptimizedCpuBackend instance;
  return instance;
}

}  // namespace rn
