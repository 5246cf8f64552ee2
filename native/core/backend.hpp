// What a compute backend (native/cpu, native/cuda) provides to the plan: the fused
// kernels of one training step over raw buffers the plan owns. No kernel allocates:
// anything it needs beyond its outputs comes from `scratch`, sized at plan time by the
// matching *_scratch_floats query. Gradients are written, never accumulated; the plan
// does accumulation where a value feeds several layers.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "function_ref.hpp"
#include "geometry.hpp"
#include "memory.hpp"

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

// One trainable tensor inside the packed parameter buffer, with its own learning rate
// and weight decay (parameter groups already applied).
struct ParamSlice {
  int64_t offset = 0, numel = 0;
  float lr = 0.0f, weight_decay = 0.0f;
};

// What OptimizerKernels::sgd_update_all / adamw_update_all return when they applied the update (else
// the index of the slice whose update would not have been finite).
constexpr int64_t kUpdateApplied = -1;

// A captured training step (CUDA graphs): what the host sets before each replay, and what
// comes back after it in one read.
struct StepInputs {
  float loss_scale = 1.0f;
  float inv_loss_scale = 1.0f;          // the gradients are unscaled by this...
  float clip_norm = 0.0f;               // ...and clipped to this global norm (0: no clipping)
  double adam_c1 = 1.0, adam_c2 = 1.0;  // AdamW's bias corrections 1 − β^step for this step
  // Whether an overflow of the gradients skips the step (dynamic loss scaling) rather than
  // failing it: a skipped step still folds its batch statistics into the running ones.
  bool overflow_skips = false;
};
struct StepOutcome {
  double loss = 0.0, correct = 0.0, correct5 = 0.0;
  double grad_sum_of_squares = 0.0;  // of the scaled gradients
  // kUpdateApplied, or the slice whose update would not have been finite (the device then
  // updated neither the weights nor the running statistics).
  int64_t nonfinite_update = kUpdateApplied;
};

// The work of one captured step (StepCapture::run_captured).
using StepRecording = FunctionRef<void()>;

// A backend is a handful of small interfaces, one per role (in the spirit of ggml's
// backend interfaces): device memory, the kernels by family, and an optional step capture.
// The CPU backends share native/cpu/host_backend.hpp, which supplies host memory and the
// kernels the two kernel sets have in common.

// Memory, transfers and precision. The CPU works in host memory; a device backend keeps
// parameters, gradients, plan arenas and optimizer state in its own memory, and the core
// moves data across only through upload / download.
class DeviceMemory {
 public:
  virtual ~DeviceMemory() = default;
  virtual bool is_device() const = 0;
  // 'cpu', or 'cuda:N' for a GPU backend (names a tensor's or model's device in messages).
  virtual std::string device_name() const = 0;
  virtual float* allocate(int64_t count, const std::string& what) = 0;
  virtual void release(float* p) = 0;
  virtual void upload(void* dst, const void* host_src, int64_t bytes) = 0;
  // An input's upload (Tensor.to('cuda')) that needs no BackendCall: it is safe while another
  // thread runs a call on this backend, and a device backend may run it asynchronously on a
  // copy stream, overlapping that call. Every network call that begins afterwards, on any
  // backend of the same device, sees the data. `host_src` may be reused once it returns.
  virtual void upload_input(void* dst, const void* host_src, int64_t bytes) = 0;
  virtual void download(void* host_dst, const void* src, int64_t bytes) = 0;
  virtual void fill_zero(float* p, int64_t count) = 0;
  // Device to device, in bytes (a resident input into a plan's own input slot).
  virtual void copy_device(void* dst, const void* src, int64_t bytes) = 0;

  // Activations and their gradients are stored in this many bytes per element: 4 (fp32), or
  // 2 for a device backend in mixed precision (fp16 / bf16). Everything else — parameters,
  // their gradients, batch statistics, optimizer state, the host's images — stays fp32, and
  // every kernel computes in fp32. Activation buffers are passed as float* all the same
  // (the plan only sizes them); the backend reads them in its activation type.
  virtual int activation_bytes() const = 0;
  // 'fp32', 'fp16' or 'bf16': the activation type's name.
  virtual const char* precision() const = 0;
  // Floats of arena an activation of `count` elements takes.
  int64_t activation_floats(int64_t count) const { return (count * activation_bytes() + 3) / 4; }
  // fp32 values (the images) into the activation type, and activations back to fp32 (logits,
  // diagnosis). In fp32 both are copies.
  virtual void to_activation(int64_t count, const float* src, float* dst) = 0;
  virtual void activation_to_float(int64_t count, const float* src, float* dst) = 0;
};

// Convolution. With `mean`/`var` set, the forward also computes the per-channel batch
// statistics of its output (the conv → batch-norm fusion).
class ConvKernels {
 public:
  virtual ~ConvKernels() = default;
  virtual int64_t conv2d_scratch_floats(const Conv2dGeometry& g) const = 0;
  virtual void conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias, float* y,
                              float* mean, float* var, float* scratch) = 0;
  virtual void conv2d_backward_input(const Conv2dGeometry& g, const float* dy, const float* w, float* dx,
                                     float* scratch) = 0;
  // dw always; db when non-null.
  virtual void conv2d_backward_weight(const Conv2dGeometry& g, const float* x, const float* dy, float* dw, float* db,
                                      float* scratch) = 0;
};

// Batch-norm: y = [relu]((x - mean) / sqrt(var + eps) · gamma + beta [+ skip]).
class BatchNormKernels {
 public:
  virtual ~BatchNormKernels() = default;
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
};

// Pools, spatial zero padding [top, bottom, left, right], the CIFAR option-A shortcut, and
// squeeze-and-excitation: the layers that move or gate values without a GEMM of their own.
class SpatialKernels {
 public:
  virtual ~SpatialKernels() = default;
  virtual void max_pool_forward(const Pool2dGeometry& g, const float* x, float* y) = 0;
  virtual void max_pool_backward(const Pool2dGeometry& g, const float* x, const float* dy, float* dx) = 0;
  virtual void avg_pool_forward(const Pool2dGeometry& g, const float* x, float* y) = 0;
  virtual void avg_pool_backward(const Pool2dGeometry& g, const float* dy, float* dx) = 0;
  virtual void global_avg_pool_forward(int64_t n, int64_t hw, int64_t c, const float* x, float* y) = 0;
  virtual void global_avg_pool_backward(int64_t n, int64_t hw, int64_t c, const float* dy, float* dx) = 0;

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
};

// Element-wise over `count` values.
class ElementwiseKernels {
 public:
  virtual ~ElementwiseKernels() = default;
  virtual void relu_forward(int64_t count, const float* x, float* y) = 0;
  virtual void relu_backward_from_output(int64_t count, const float* y, const float* dy, float* dx) = 0;
  virtual void add_forward(int64_t count, const float* a, const float* b, bool relu, float* y) = 0;
  virtual void accumulate(int64_t count, const float* x, float* y) = 0;  // y += x
  virtual void copy(int64_t count, const float* x, float* y) = 0;
  virtual void scale(int64_t count, float factor, float* x) = 0;
  virtual double sum_of_squares(int64_t count, const float* x) = 0;
  // Whether every value is finite. Used only on the failure path (naming the first layer whose
  // output went non-finite), so the host's loop is enough there.
  virtual bool all_finite(int64_t count, const float* x) = 0;
  // The same over activations (stored in the activation type).
  virtual bool activations_finite(int64_t count, const float* x) = 0;
};

// Dense [n, k] · [k, m] (+ bias), and the classifier's loss.
class DenseLossKernels {
 public:
  virtual ~DenseLossKernels() = default;
  // dx may be null (no input gradient wanted).
  virtual void dense_forward(int64_t n, int64_t k, int64_t m, const float* x, const float* w, const float* b,
                             float* y) = 0;
  virtual void dense_backward(int64_t n, int64_t k, int64_t m, const float* x, const float* w, const float* dy,
                              float* dx, float* dw, float* db) = 0;

  // Mean softmax cross-entropy over the batch; `correct` counts argmax hits and `correct5`
  // labels ranked in the top five (ties counted in the label's favour). Backward writes
  // d(loss)/d(logits) scaled by dloss.
  virtual double softmax_cross_entropy(int64_t n, int64_t classes, const float* logits, const int32_t* labels,
                                       float smoothing, int64_t* correct, int64_t* correct5) = 0;
  virtual void softmax_cross_entropy_backward(int64_t n, int64_t classes, const float* logits, const int32_t* labels,
                                              float smoothing, float dloss, float* dlogits) = 0;
  virtual void softmax(int64_t n, int64_t classes, const float* logits, float* probs) = 0;
};

// Optimizers, in place over one parameter tensor and its state. *_update_finite: whether
// that update would leave every new parameter and state value finite (reads only, the same
// arithmetic as the update).
class OptimizerKernels {
 public:
  virtual ~OptimizerKernels() = default;
  virtual void sgd_update(int64_t count, const SgdArgs& a, float* param, const float* grad, float* momentum_buf) = 0;
  virtual void adamw_update(int64_t count, const AdamArgs& a, float* param, const float* grad, float* m, float* v) = 0;
  virtual bool sgd_update_finite(int64_t count, const SgdArgs& a, const float* param, const float* grad,
                                 const float* momentum_buf) = 0;
  virtual bool adamw_update_finite(int64_t count, const AdamArgs& a, const float* param, const float* grad,
                                   const float* m, const float* v) = 0;
  // The update over every trainable tensor (a.lr / a.weight_decay come from each slice), all
  // or nothing: finite gradients can still overflow an update (a huge learning rate), or make
  // it 0/0 (AdamW's eps = 0 over a zero second moment), and one non-finite weight poisons every
  // later step. Returns kUpdateApplied, or — having written nothing — the index of the first
  // slice whose update would not be finite. A device backend does this in two launches (check,
  // then update); the host checks every slice, then writes them. In a captured step the
  // check vetoes the update on the device, and StepCapture::step_outcome reports the slice.
  virtual int64_t sgd_update_all(const std::vector<ParamSlice>& slices, SgdArgs a, float* params, const float* grads,
                                 float* momentum) = 0;
  virtual int64_t adamw_update_all(const std::vector<ParamSlice>& slices, AdamArgs a, float* params, const float* grads,
                                   float* m, float* v) = 0;
};

// Every kernel family the plan runs.
class Kernels : public ConvKernels,
                public BatchNormKernels,
                public SpatialKernels,
                public ElementwiseKernels,
                public DenseLossKernels,
                public OptimizerKernels {};

// Optional: captured training steps (CUDA graphs; see Network::train_step_captured). A
// backend that captures runs a step as: host stages the inputs → set_step_inputs →
// run_captured(key, version, record) → step_outcome. The first run of a key (or of a new
// version: something the capture baked in changed) captures what `record` queues and replays
// it; later runs only replay. While recording, softmax_cross_entropy and sum_of_squares leave
// their results on the device (returning NaN), finish_gradients unscales and clips there, and
// the optimizer and running-statistics updates apply only when the loss and gradients are
// finite — all without a host round trip; step_outcome reads the results back once.
class StepCapture {
 public:
  virtual ~StepCapture() = default;
  virtual void set_step_inputs(const StepInputs& inputs) = 0;
  virtual void run_captured(const void* key, uint64_t version, const StepRecording& record) = 0;
  virtual void finish_gradients(int64_t count, float* grads) = 0;
  // The optimizer's parameter table for the next replay (the learning rates change per step).
  virtual void stage_param_table(const std::vector<ParamSlice>& slices) = 0;
  virtual StepOutcome step_outcome() = 0;
  // Forget the captures of `key` (a plan about to be destroyed).
  virtual void drop_captures(const void* key) = 0;
};

class Backend : public DeviceMemory, public Kernels {
 public:
  ~Backend() override = default;
  virtual const char* name() const = 0;

  // Called at the start of every network call, on the thread that runs it (the CUDA
  // backend makes its device current there), and at its end (waits for queued work).
  virtual void begin_call() = 0;
  virtual void end_call() = 0;

  // Optional: the step capture, or null (the CPU) when steps run as plain calls.
  virtual StepCapture* step_capture() { return nullptr; }
};

// Brackets one call that uses a backend (begin_call / end_call): the CUDA backend makes its
// device current on this thread, serialises callers, and waits for the queued work at the
// end. The end may report a device error; while another error is already propagating,
// that first error wins and the end's is dropped.
class BackendCall {
 public:
  explicit BackendCall(Backend& b) : backend_(b), exceptions_(std::uncaught_exceptions()) { backend_.begin_call(); }
  ~BackendCall() noexcept(false) {
    if (std::uncaught_exceptions() > exceptions_) {
      try {
        backend_.end_call();
      } catch (...) {
      }
    } else {
      backend_.end_call();
    }
  }
  BackendCall(const BackendCall&) = delete;
  BackendCall& operator=(const BackendCall&) = delete;

 private:
  Backend& backend_;
  int exceptions_;
};

// A buffer in a backend's memory (move-only), freed through that backend.
class BackendBuffer {
 public:
  BackendBuffer() = default;
  BackendBuffer(Backend& backend, int64_t count, const std::string& what)
      : backend_(&backend), data_(backend.allocate(count, what)), size_(count) {}
  BackendBuffer(BackendBuffer&& o) noexcept : backend_(o.backend_), data_(o.data_), size_(o.size_) {
    o.data_ = nullptr, o.size_ = 0;
  }
  BackendBuffer& operator=(BackendBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      backend_ = o.backend_, data_ = o.data_, size_ = o.size_;
      o.data_ = nullptr, o.size_ = 0;
    }
    return *this;
  }
  BackendBuffer(const BackendBuffer&) = delete;
  BackendBuffer& operator=(const BackendBuffer&) = delete;
  ~BackendBuffer() { reset(); }

  float* data() { return data_; }
  const float* data() const { return data_; }
  int64_t size() const { return size_; }

 private:
  void reset() {
    if (data_ != nullptr) backend_->release(data_);
    data_ = nullptr, size_ = 0;
  }
  Backend* backend_ = nullptr;
  float* data_ = nullptr;
  int64_t size_ = 0;
};

// The CPU backend (native/cpu), always available.
Backend& cpu_backend();

}  // namespace rn
