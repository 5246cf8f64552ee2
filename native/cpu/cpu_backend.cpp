// The optimized CPU implementation of the Backend interface: a thin table over the engine
// kernels in this folder. What it shares with the reference backend (host memory, pools but the
// max-pool and global-average-pool forwards, padding, squeeze-excite, optimizer updates) is
// HostBackend's (host_backend.hpp).
// kernel_selection.cpp decides whether this or the reference backend runs.
#include "kernel_selection.hpp"
#include "../core/inference_kernels.hpp"
#include "batch_norm_kernels.hpp"
#include "conv2d_kernels.hpp"
#include "elementwise_kernels.hpp"
#include "host_backend.hpp"
#include "loss_kernels.hpp"
#include "optimizer_kernels.hpp"
#include "pool_kernels.hpp"

namespace rn {
namespace {

class OptimizedCpuBackend final : public HostBackend, public InferenceKernels {
 public:
  const char* name() const override { return "cpu"; }

  int64_t conv2d_scratch_floats(const Conv2dGeometry& g) const override { return cpu::conv2d_scratch_floats(g); }
  void conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias, float* y, float* mean,
                      float* var, float* scratch) override {
    cpu::conv2d_forward(g, x, w, bias, y, mean, var, scratch);
  }
  void conv2d_forward_epilogue(const Conv2dGeometry& g, const float* x, const float* w, const float* prepared,
                               const float* bias, const float* skip, bool relu, float* y, float* scratch) override {
    cpu::conv2d_forward(g, x, w, bias, y, nullptr, nullptr, scratch, cpu::ConvEpilogue{skip, relu}, prepared);
  }
  int64_t conv2d_prepared_floats(const Conv2dGeometry& g) const override { return cpu::conv2d_prepared_floats(g); }
  void conv2d_prepare_weights(const Conv2dGeometry& g, const float* w, float* prepared, float* scratch) override {
    cpu::conv2d_prepare_weights(g, w, prepared, scratch);
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
  void batch_norm_forward(const BatchNormArgs& a, const float* x, const float* skip, bool relu, float* y,
                          float* scratch) override {
    cpu::batch_norm_forward(a, x, skip, relu, y, scratch);
  }
  void batch_norm_backward(const BatchNormArgs& a, bool training, const float* x, const float* y, bool relu,
                           const float* dy, float* dx, float* dskip, float* dgamma, float* dbeta,
                           float* scratch) override {
    cpu::batch_norm_backward(a, training, x, y, relu, dy, dx, dskip, dgamma, dbeta, scratch);
  }

  void max_pool_forward(const Pool2dGeometry& g, const float* x, float* y) override { cpu::max_pool_forward(g, x, y); }
  void global_avg_pool_forward(int64_t n, int64_t hw, int64_t c, const float* x, float* y) override {
    cpu::global_avg_pool_forward(n, hw, c, x, y);
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

  void dense_forward(int64_t n, int64_t k, int64_t m, const float* x, const float* w, const float* b,
                     float* y) override {
    cpu::dense_forward(n, k, m, x, w, b, y);
  }
  void dense_backward(int64_t n, int64_t k, int64_t m, const float* x, const float* w, const float* dy, float* dx,
                      float* dw, float* db) override {
    cpu::dense_backward(n, k, m, x, w, dy, dx, dw, db);
  }

  double softmax_cross_entropy(int64_t n, int64_t classes, const float* logits, const int32_t* labels, float smoothing,
                               int64_t* correct, int64_t* correct5) override {
    return cpu::softmax_cross_entropy(n, classes, logits, labels, smoothing, correct, correct5);
  }
  void softmax_cross_entropy_backward(int64_t n, int64_t classes, const float* logits, const int32_t* labels,
                                      float smoothing, float dloss, float* dlogits) override {
    cpu::softmax_cross_entropy_backward(n, classes, logits, labels, smoothing, dloss, dlogits);
  }

  double sum_of_squares(int64_t count, const float* x) override { return cpu::sum_of_squares(count, x); }
  void scale(int64_t count, float factor, float* x) override { cpu::scale(count, factor, x); }
};

}  // namespace

Backend& optimized_backend() {
  static OptimizedCpuBackend instance;
  return instance;
}

}  // namespace rn
