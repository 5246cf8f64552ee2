// CUDA kernels of the CUDA backend, everything but the convolutions (cuDNN does those,
// native/cuda/cudnn_conv.cpp). Each function launches asynchronously on `stream`; all
// pointers are device pointers; nothing allocates. Semantics mirror the CPU backend
// (native/cpu/cpu_backend.cpp) exactly, layouts included: NHWC activations, batch-norm
// over the last axis ("rows" = n·h·w), dense weights [k, m] (in, out).
//
// Mixed precision: T is the activation type, float, __half or __nv_bfloat16 (every
// template below is instantiated for those three; callers name T explicitly). Activations
// and their gradients are T; parameters, parameter gradients, statistics, saved
// squeeze-excite buffers, scratch and optimizer state are float. All arithmetic is float
// (reductions float runs carried in double) as in the float kernels; T values are widened
// on load and rounded to nearest even on store.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "../core/backend.hpp"

// X(T) for each activation type (the kernels' explicit instantiations).
#define RN_CUDA_FOR_EACH_ACTIVATION_TYPE(X) X(float) X(__half) X(__nv_bfloat16)

namespace rn::cuda {

// Batch-norm. Statistics: mean and biased variance per channel (as the CPU backend);
// scratch holds channel_scratch_floats(channels) floats (cuda_channel_scratch_floats).
// dx may alias dy.
int64_t channel_scratch_floats(int64_t channels);
template <typename T>
void batch_norm_statistics(cudaStream_t s, int64_t rows, int64_t channels, const T* x, float* mean, float* var,
                           float* scratch);
// `enabled` (device, may be null): in a captured step, update only where *enabled != 0.
void batch_norm_update_running(cudaStream_t s, int64_t rows, int64_t channels, const float* mean, const float* var,
                               float momentum, float* running_mean, float* running_var, const int* enabled = nullptr);
template <typename T>
void batch_norm_forward(cudaStream_t s, const BatchNormArgs& a, const T* x, const T* skip, bool relu, T* y);
template <typename T>
void batch_norm_backward(cudaStream_t s, const BatchNormArgs& a, bool training, const T* x, const T* y, bool relu,
                         const T* dy, T* dx, T* dskip, float* dgamma, float* dbeta, float* scratch);

// Element-wise.
template <typename T>
void relu_forward(cudaStream_t s, int64_t count, const T* x, T* y);
template <typename T>
void relu_backward_from_output(cudaStream_t s, int64_t count, const T* y, const T* dy, T* dx);
template <typename T>
void add_forward(cudaStream_t s, int64_t count, const T* a, const T* b, bool relu, T* y);
template <typename T>
void accumulate(cudaStream_t s, int64_t count, const T* x, T* y);   // y += x
void scale(cudaStream_t s, int64_t count, float factor, float* x);  // parameter gradients: float only
// y = x in another type (rounded to nearest even; fp16 overflow gives ±inf). Instantiated
// float → {float, __half, __nv_bfloat16} and {__half, __nv_bfloat16} → float.
template <typename From, typename To>
void convert(cudaStream_t s, int64_t count, const From* x, To* y);
// y[n, c] += bias[c] over rows (conv bias), and db[c] = sum over rows of dy (its gradient).
template <typename T>
void add_channel_bias(cudaStream_t s, int64_t rows, int64_t channels, const float* bias, T* y);
template <typename T>
void channel_sums(cudaStream_t s, int64_t rows, int64_t channels, const T* dy, float* db, float* scratch);
// HWIO [kh, kw, ci, co] <-> OHWI [co, kh, kw, ci] (cuDNN's NHWC filter layout): the fp32
// master weights to the convolution's type, and its weight gradient back to fp32.
template <typename To>
void hwio_to_ohwi(cudaStream_t s, int64_t kh, int64_t kw, int64_t ci, int64_t co, const float* src, To* dst);
template <typename From>
void ohwi_to_hwio(cudaStream_t s, int64_t kh, int64_t kw, int64_t ci, int64_t co, const From* src, float* dst);

// Pools.
template <typename T>
void max_pool_forward(cudaStream_t s, const Pool2dGeometry& g, const T* x, T* y);
template <typename T>
void max_pool_backward(cudaStream_t s, const Pool2dGeometry& g, const T* x, const T* dy, T* dx);
template <typename T>
void avg_pool_forward(cudaStream_t s, const Pool2dGeometry& g, const T* x, T* y);
template <typename T>
void avg_pool_backward(cudaStream_t s, const Pool2dGeometry& g, const T* dy, T* dx);
template <typename T>
void global_avg_pool_forward(cudaStream_t s, int64_t n, int64_t hw, int64_t c, const T* x, T* y);
template <typename T>
void global_avg_pool_backward(cudaStream_t s, int64_t n, int64_t hw, int64_t c, const T* dy, T* dx);

// Dense [n, k] · [k, m] (+ bias); dx may be null; db may be null.
template <typename T>
void dense_forward(cudaStream_t s, int64_t n, int64_t k, int64_t m, const T* x, const float* w, const float* b, T* y);
template <typename T>
void dense_backward(cudaStream_t s, int64_t n, int64_t k, int64_t m, const T* x, const float* w, const T* dy, T* dx,
                    float* dw, float* db);

// Padding and the CIFAR option-A shortcut.
template <typename T>
void zero_pad_forward(cudaStream_t s, const Shape& x_shape, const int64_t* pads, const T* x, T* y);
template <typename T>
void zero_pad_backward(cudaStream_t s, const Shape& x_shape, const int64_t* pads, const T* dy, T* dx);
template <typename T>
void zero_pad_shortcut_forward(cudaStream_t s, const Shape& x_shape, const Shape& y_shape, int64_t sh, int64_t sw,
                               const T* x, T* y);
template <typename T>
void zero_pad_shortcut_backward(cudaStream_t s, const Shape& x_shape, const Shape& y_shape, int64_t sh, int64_t sw,
                                const T* dy, T* dx);

// Squeeze-and-excitation (same saved buffers and scratch as the CPU backend, all float).
template <typename T>
void squeeze_excite_forward(cudaStream_t s, const SqueezeExciteArgs& a, const T* x, T* y);
template <typename T>
void squeeze_excite_backward(cudaStream_t s, const SqueezeExciteArgs& a, const T* x, const T* dy, T* dx, float* dw1,
                             float* db1, float* dw2, float* db2, float* scratch);

// Softmax cross-entropy. `out` (device, 3 doubles) receives {mean loss, correct, correct5}
// (counts as doubles), ties in the top five counted in the label's favour as on the CPU.
// The gradient is (softmax − target) · dloss / n (dloss is the loss scale under fp16).
template <typename T>
void softmax_cross_entropy(cudaStream_t s, int64_t n, int64_t classes, const T* logits, const int32_t* labels,
                           float smoothing, double* out);
template <typename T>
void softmax_cross_entropy_backward(cudaStream_t s, int64_t n, int64_t classes, const T* logits, const int32_t* labels,
                                    float smoothing, float dloss, T* dlogits);
template <typename T>
void softmax(cudaStream_t s, int64_t n, int64_t classes, const T* logits, float* probs);

// Reductions into a device value (*out = sum of x², or 1/0 for all-finite), written, not added.
void sum_of_squares(cudaStream_t s, int64_t count, const float* x, double* out);
template <typename T>
void all_finite(cudaStream_t s, int64_t count, const T* x, int* out);

// Optimizers: one launch over every parameter tensor. `table` (device) lists the tensors
// with their own learning rate and decay (the lr / weight_decay in SgdArgs / AdamArgs are
// ignored here); `total_floats` spans the packed buffers (padding between tensors is
// skipped, not updated).
struct ParamSlice {
  int64_t offset, numel;
  float lr, weight_decay;
};
// `control` (device, may be null): in a captured step the update applies only when
// control->apply, and AdamW takes this step's bias corrections from control->in.
struct StepControl;
void sgd_update_all(cudaStream_t s, const ParamSlice* table, int tensors, int64_t total_floats, const SgdArgs& a,
                    float* params, const float* grads, float* momentum, const StepControl* control = nullptr);
void adamw_update_all(cudaStream_t s, const ParamSlice* table, int tensors, int64_t total_floats, const AdamArgs& a,
                      float* params, const float* grads, float* m, float* v, const StepControl* control = nullptr);
// The same updates' all-or-nothing check (Backend::sgd_update_all), reading only: lowers
// *first_bad (device; kNoBadTensor, all bytes 0xFF, before it) to the index of the first tensor
// whose new parameters or state would not all be finite. With `control` (a captured step) it
// checks only a step that applies, with this step's bias corrections; veto_nonfinite_update
// (step_control.hpp) then acts on what it found.
constexpr unsigned kNoBadTensor = 0xFFFFFFFFu;
void sgd_update_check_all(cudaStream_t s, const ParamSlice* table, int tensors, int64_t total_floats, const SgdArgs& a,
                          const float* params, const float* grads, const float* momentum, unsigned* first_bad,
                          const StepControl* control = nullptr);
void adamw_update_check_all(cudaStream_t s, const ParamSlice* table, int tensors, int64_t total_floats,
                            const AdamArgs& a, const float* params, const float* grads, const float* m, const float* v,
                            unsigned* first_bad, const StepControl* control = nullptr);

}  // namespace rn::cuda
