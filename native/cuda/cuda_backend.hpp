// The CUDA implementation of rn::Backend: one GPU, one stream, one cuDNN handle. All of
// a network's buffers live in device memory from the caching allocator; every kernel is
// queued on the stream, and the host waits only where a value must come back (the loss,
// the gradient norm, a download) and at the end of each network call.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cudnn.h>
#include <cuda_runtime.h>

#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "../core/backend.hpp"
#include "../core/cuda_plugin_abi.hpp"
#include "cudnn_conv.hpp"
#include "device_allocator.hpp"
#include "input_copier.hpp"
#include "profiler.hpp"
#include "step_control.hpp"

namespace rn::cuda {

class CudaBackend final : public Backend, public StepCapture {
 public:
  CudaBackend(int ordinal, bool allow_tf32, cuda_abi::Precision precision);
  ~CudaBackend() override;

  const char* name() const override { return "cuda"; }
  int ordinal() const { return ordinal_; }

  bool is_device() const override { return true; }
  std::string device_name() const override { return "cuda:" + std::to_string(ordinal_); }
  float* allocate(int64_t count, const std::string& what) override;
  void release(float* p) override;
  void upload(void* dst, const void* host_src, int64_t bytes) override;
  void upload_input(void* dst, const void* host_src, int64_t bytes) override;
  void download(void* host_dst, const void* src, int64_t bytes) override;
  void fill_zero(float* p, int64_t count) override;
  int activation_bytes() const override { return precision_ == cuda_abi::Precision::Fp32 ? 4 : 2; }
  const char* precision() const override;
  void to_activation(int64_t count, const float* src, float* dst) override;
  void activation_to_float(int64_t count, const float* src, float* dst) override;
  bool activations_finite(int64_t count, const float* x) override;
  void begin_call() override;
  void end_call() override;
  void copy_device(void* dst, const void* src, int64_t bytes) override;

  // Captured training steps (StepCapture): always the one-sync device path; a CUDA graph
  // unless RESNET_CUDA_GRAPHS=0 or the profiler is on (its timing events would be captured too).
  StepCapture* step_capture() override { return this; }
  void set_step_inputs(const StepInputs& inputs) override;
  void run_captured(const void* key, uint64_t version, const StepRecording& record) override;
  void finish_gradients(int64_t count, float* grads) override;
  StepOutcome step_outcome() override;
  void drop_captures(const void* key) override;
  void stage_param_table(const std::vector<ParamSlice>& slices) override;

  int64_t conv2d_scratch_floats(const Conv2dGeometry& g) const override;
  void conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias, float* y, float* mean,
                      float* var, float* scratch) override;
  void conv2d_backward_input(const Conv2dGeometry& g, const float* dy, const float* w, float* dx,
                             float* scratch) override;
  void conv2d_backward_weight(const Conv2dGeometry& g, const float* x, const float* dy, float* dw, float* db,
                              float* scratch) override;

  int64_t channel_scratch_floats(int64_t channels) const override;
  void batch_norm_statistics(int64_t rows, int64_t channels, const float* x, float* mean, float* var,
                             float* scratch) override;
  void batch_norm_update_running(int64_t rows, int64_t channels, const float* mean, const float* var, float momentum,
                                 float* running_mean, float* running_var) override;
  void batch_norm_forward(const BatchNormArgs& a, const float* x, const float* skip, bool relu, float* y,
                          float* scratch) override;
  void batch_norm_backward(const BatchNormArgs& a, bool training, const float* x, const float* y, bool relu,
                           const float* dy, float* dx, float* dskip, float* dgamma, float* dbeta,
                           float* scratch) override;

  void relu_forward(int64_t count, const float* x, float* y) override;
  void relu_backward_from_output(int64_t count, const float* y, const float* dy, float* dx) override;
  void add_forward(int64_t count, const float* a, const float* b, bool relu, float* y) override;
  void accumulate(int64_t count, const float* x, float* y) override;
  void copy(int64_t count, const float* x, float* y) override;

  void max_pool_forward(const Pool2dGeometry& g, const float* x, float* y) override;
  void max_pool_backward(const Pool2dGeometry& g, const float* x, const float* dy, float* dx) override;
  void avg_pool_forward(const Pool2dGeometry& g, const float* x, float* y) override;
  void avg_pool_backward(const Pool2dGeometry& g, const float* dy, float* dx) override;
  void global_avg_pool_forward(int64_t n, int64_t hw, int64_t c, const float* x, float* y) override;
  void global_avg_pool_backward(int64_t n, int64_t hw, int64_t c, const float* dy, float* dx) override;

  void dense_forward(int64_t n, int64_t k, int64_t m, const float* x, const float* w, const float* b,
                     float* y) override;
  void dense_backward(int64_t n, int64_t k, int64_t m, const float* x, const float* w, const float* dy, float* dx,
                      float* dw, float* db) override;

  void zero_pad_forward(const Shape& x_shape, const int64_t* pads, const float* x, float* y) override;
  void zero_pad_backward(const Shape& x_shape, const int64_t* pads, const float* dy, float* dx) override;
  void zero_pad_shortcut_forward(const Shape& x_shape, const Shape& y_shape, int64_t sh, int64_t sw, const float* x,
                                 float* y) override;
  void zero_pad_shortcut_backward(const Shape& x_shape, const Shape& y_shape, int64_t sh, int64_t sw, const float* dy,
                                  float* dx) override;

  void squeeze_excite_forward(const SqueezeExciteArgs& a, const float* x, float* y) override;
  void squeeze_excite_backward(const SqueezeExciteArgs& a, const float* x, const float* dy, float* dx, float* dw1,
                               float* db1, float* dw2, float* db2, float* scratch) override;

  double softmax_cross_entropy(int64_t n, int64_t classes, const float* logits, const int32_t* labels, float smoothing,
                               int64_t* correct, int64_t* correct5) override;
  void softmax_cross_entropy_backward(int64_t n, int64_t classes, const float* logits, const int32_t* labels,
                                      float smoothing, float dloss, float* dlogits) override;
  void softmax(int64_t n, int64_t classes, const float* logits, float* probs) override;

  double sum_of_squares(int64_t count, const float* x) override;
  bool all_finite(int64_t count, const float* x) override;
  void scale(int64_t count, float factor, float* x) override;
  void sgd_update(int64_t count, const SgdArgs& a, float* param, const float* grad, float* momentum_buf) override;
  void adamw_update(int64_t count, const AdamArgs& a, float* param, const float* grad, float* m, float* v) override;
  bool sgd_update_finite(int64_t count, const SgdArgs& a, const float* param, const float* grad,
                         const float* momentum_buf) override;
  bool adamw_update_finite(int64_t count, const AdamArgs& a, const float* param, const float* grad, const float* m,
                           const float* v) override;
  int64_t sgd_update_all(const std::vector<ParamSlice>& slices, SgdArgs a, float* params, const float* grads,
                         float* momentum) override;
  int64_t adamw_update_all(const std::vector<ParamSlice>& slices, AdamArgs a, float* params, const float* grads,
                           float* m, float* v) override;

 private:
  // Where a convolution's scratch goes: [cuDNN workspace | OHWI weights | padded input | channel scratch].
  struct ConvScratch {
    Conv2dGeometry sym;  // the symmetric-padding geometry cuDNN sees
    bool prepad = false;
    std::array<int64_t, 4> extra{0, 0, 0, 0};                     // padding applied by hand (top, bottom, left, right)
    int64_t workspace = 0, weights = 0, padded = 0, channel = 0;  // offsets in floats
    int64_t total = 0;
  };
  ConvScratch conv_scratch(const Conv2dGeometry& g) const;
  const ParamSlice* upload_slices(const std::vector<ParamSlice>& slices);
  template <typename T>
  bool finite(int64_t count, const T* x);  // all_finite over `count` values of type T
  // Outside a capture: runs `check` (an *_update_check_all launch) into a device flag and
  // returns kUpdateApplied, or the first tensor whose update would not be finite.
  template <typename Check>
  int64_t refused_tensor(Check&& check);
  // An optimizer update, all or nothing: the check, then the update. Captured, the device
  // decides (veto_nonfinite_update) and step_outcome reports it.
  template <typename Check, typename Update>
  int64_t checked_update(Check&& check, Update&& update);
  // Runs f(T{}) with T the activation type: float, __half or __nv_bfloat16. Activation
  // buffers arrive as float* (backend.hpp) and are read as T.
  template <typename F>
  void with_activation_type(F&& f) const {
    switch (precision_) {
      case cuda_abi::Precision::Fp16:
        f(__half{});
        break;
      case cuda_abi::Precision::Bf16:
        f(__nv_bfloat16{});
        break;
      default:
        f(float{});
        break;
    }
  }

  int ordinal_;
  cuda_abi::Precision precision_;
  std::recursive_mutex call_mutex_;
  cudaStream_t stream_ = nullptr;
  cudnnHandle_t cudnn_ = nullptr;
  std::unique_ptr<DeviceAllocator> allocator_;
  std::unique_ptr<ConvEngine> conv_;
  std::unique_ptr<Profiler> profiler_;
  double* results_ = nullptr;     // device: loss / counts / sums coming back to the host
  ParamSlice* slices_ = nullptr;  // device copy of the optimizer's table
  std::vector<ParamSlice> slices_host_;
  size_t slices_capacity_ = 0;
  uint64_t slices_generation_ = 0;  // bumped when the table moves (a capture baked its address)

  // Captured steps.
  struct Captured {
    uint64_t version = 0, slices_generation = 0;
    cudaGraphExec_t exec = nullptr;
  };
  void record_step(const StepRecording& record);
  bool graphs_enabled_ = true;
  bool recording_ = false;          // between run_captured's start and end: results stay on the device
  StepControl* control_ = nullptr;  // device
  std::unordered_map<const void*, Captured> captured_;
  InputCopier& copier_ = InputCopier::for_device(ordinal_);  // shared with this GPU's other backends
};

}  // namespace rn::cuda
