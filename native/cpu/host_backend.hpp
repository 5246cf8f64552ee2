// What the two CPU backends (cpu_backend.cpp, reference_backend.cpp) share: host memory,
// fp32 activations, no call bracketing, no step capture, and the kernels both take from the
// same place — the reference pools and running-statistics update, the engine's padding,
// squeeze-excite, softmax and optimizer updates, and the all-or-nothing update over every
// slice. Each backend states only its name and the kernels where the two sets differ
// (convolution, batch-norm, element-wise, dense, the loss).
#pragma once

#include "../core/backend.hpp"

namespace rn {

class HostBackend : public Backend {
 public:
  // Memory: the host's.
  bool is_device() const override { return false; }
  std::string device_name() const override { return "cpu"; }
  float* allocate(int64_t count, const std::string& what) override { return allocate_floats(count, what); }
  void release(float* p) override { free_floats(p); }
  void upload(void* dst, const void* host_src, int64_t bytes) override { copy_bytes(dst, host_src, bytes); }
  void upload_input(void* dst, const void* host_src, int64_t bytes) override { copy_bytes(dst, host_src, bytes); }
  void download(void* host_dst, const void* src, int64_t bytes) override { copy_bytes(host_dst, src, bytes); }
  void copy_device(void* dst, const void* src, int64_t bytes) override { copy_bytes(dst, src, bytes); }
  void fill_zero(float* p, int64_t count) override {
    if (count > 0) std::memset(p, 0, static_cast<size_t>(count) * sizeof(float));
  }
  int activation_bytes() const override { return 4; }
  const char* precision() const override { return "fp32"; }
  void to_activation(int64_t count, const float* src, float* dst) override { copy(count, src, dst); }
  void activation_to_float(int64_t count, const float* src, float* dst) override { copy(count, src, dst); }

  void begin_call() override {}
  void end_call() override {}

  bool all_finite(int64_t count, const float* x) override;
  bool activations_finite(int64_t count, const float* x) override { return all_finite(count, x); }

  void batch_norm_update_running(int64_t rows, int64_t channels, const float* mean, const float* var, float momentum,
                                 float* running_mean, float* running_var) override;

  void max_pool_forward(const Pool2dGeometry& g, const float* x, float* y) override;
  void max_pool_backward(const Pool2dGeometry& g, const float* x, const float* dy, float* dx) override;
  void avg_pool_forward(const Pool2dGeometry& g, const float* x, float* y) override;
  void avg_pool_backward(const Pool2dGeometry& g, const float* dy, float* dx) override;
  void global_avg_pool_forward(int64_t n, int64_t hw, int64_t c, const float* x, float* y) override;
  void global_avg_pool_backward(int64_t n, int64_t hw, int64_t c, const float* dy, float* dx) override;
  void zero_pad_forward(const Shape& xs, const int64_t* pads, const float* x, float* y) override;
  void zero_pad_backward(const Shape& xs, const int64_t* pads, const float* dy, float* dx) override;
  void zero_pad_shortcut_forward(const Shape& xs, const Shape& ys, int64_t sh, int64_t sw, const float* x,
                                 float* y) override;
  void zero_pad_shortcut_backward(const Shape& xs, const Shape& ys, int64_t sh, int64_t sw, const float* dy,
                                  float* dx) override;
  void squeeze_excite_forward(const SqueezeExciteArgs& a, const float* x, float* y) override;
  void squeeze_excite_backward(const SqueezeExciteArgs& a, const float* x, const float* dy, float* dx, float* dw1,
                               float* db1, float* dw2, float* db2, float* scratch) override;

  void softmax(int64_t n, int64_t classes, const float* logits, float* probs) override;

  void sgd_update(int64_t count, const SgdArgs& a, float* param, const float* grad, float* momentum_buf) override;
  void adamw_update(int64_t count, const AdamArgs& a, float* param, const float* grad, float* m, float* v) override;
  bool sgd_update_finite(int64_t count, const SgdArgs& a, const float* param, const float* grad,
                         const float* momentum_buf) override;
  bool adamw_update_finite(int64_t count, const AdamArgs& a, const float* param, const float* grad, const float* m,
                           const float* v) override;
  // Checks every slice, then writes them.
  int64_t sgd_update_all(const std::vector<ParamSlice>& slices, SgdArgs a, float* params, const float* grads,
                         float* momentum) override;
  int64_t adamw_update_all(const std::vector<ParamSlice>& slices, AdamArgs a, float* params, const float* grads,
                           float* m, float* v) override;

 private:
  static void copy_bytes(void* dst, const void* src, int64_t bytes) {
    if (bytes > 0 && dst != src) std::memcpy(dst, src, static_cast<size_t>(bytes));
  }
};

}  // namespace rn
