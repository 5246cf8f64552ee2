// CUDA kernels of the CUDA backend, everything but the convolutions (cuDNN does those,
// native/cuda/cudnn_conv.cpp). Each function launches asynchronously on `stream`; all
// pointers are device pointers; nothing allocates. Semantics mirror the CPU backend
// (native/cpu/cpu_backend.cpp) exactly, layouts included: NHWC activations, batch-norm
// over the last axis ("rows" = n·h·w), dense weights [k, m] (in, out).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "../core/backend.hpp"

namespace rn::cuda {

// Batch-norm. Statistics: mean and biased variance per channel (as the CPU backend);
// scratch holds channel_scratch_floats(channels) floats (cuda_channel_scratch_floats).
int64_t channel_scratch_floats(int64_t channels);
void batch_norm_statistics(cudaStream_t s, int64_t rows, int64_t channels, const float* x, float* mean, float* var,
                           float* scratch);
void batch_norm_update_running(cudaStream_t s, int64_t rows, int64_t channels, const float* mean, const float* var,
                               float momentum, float* running_mean, float* running_var);
void batch_norm_forward(cudaStream_t s, const BatchNormArgs& a, const float* x, const float* skip, bool relu, float* y);
void batch_norm_backward(cudaStream_t s, const BatchNormArgs& a, bool training, const float* x, const float* y,
                         bool relu, const float* dy, float* dx, float* dskip, float* dgamma, float* dbeta,
                         float* scratch);

// Element-wise.
void relu_forward(cudaStream_t s, int64_t count, const float* x, float* y);
void relu_backward_from_output(cudaStream_t s, int64_t count, const float* y, const float* dy, float* dx);
void add_forward(cudaStream_t s, int64_t count, const float* a, const float* b, bool relu, float* y);
void accumulate(cudaStream_t s, int64_t count, const float* x, float* y);  // y += x
void scale(cudaStream_t s, int64_t count, float factor, float* x);
// y[n, c] += bias[c] over rows (conv bias), and db[c] = sum over rows of dy (its gradient).
void add_channel_bias(cudaStream_t s, int64_t rows, int64_t channels, const float* bias, float* y);
void channel_sums(cudaStream_t s, int64_t rows, int64_t channels, const float* dy, float* db, float* scratch);
// HWIO [kh, kw, ci, co] <-> OHWI [co, kh, kw, ci] (cuDNN's NHWC filter layout).
void hwio_to_ohwi(cudaStream_t s, int64_t kh, int64_t kw, int64_t ci, int64_t co, const float* src, float* dst);
void ohwi_to_hwio(cudaStream_t s, int64_t kh, int64_t kw, int64_t ci, int64_t co, const float* src, float* dst);

// Pools.
void max_pool_forward(cudaStream_t s, const Pool2dGeometry& g, const float* x, float* y);
void max_pool_backward(cudaStream_t s, const Pool2dGeometry& g, const float* x, const float* dy, float* dx);
void avg_pool_forward(cudaStream_t s, const Pool2dGeometry& g, const float* x, float* y);
void avg_pool_backward(cudaStream_t s, const Pool2dGeometry& g, const float* dy, float* dx);
void global_avg_pool_forward(cudaStream_t s, int64_t n, int64_t hw, int64_t c, const float* x, float* y);
void global_avg_pool_backward(cudaStream_t s, int64_t n, int64_t hw, int64_t c, const float* dy, float* dx);

// Dense [n, k] · [k, m] (+ bias); dx may be null; db may be null.
void dense_forward(cudaStream_t s, int64_t n, int64_t k, int64_t m, const float* x, const float* w, const float* b,
                   float* y);
void dense_backward(cudaStream_t s, int64_t n, int64_t k, int64_t m, const float* x, const float* w, const float* dy,
                    float* dx, float* dw, float* db);

// Padding and the CIFAR option-A shortcut.
void zero_pad_forward(cudaStream_t s, const Shape& x_shape, const int64_t* pads, const float* x, float* y);
void zero_pad_backward(cudaStream_t s, const Shape& x_shape, const int64_t* pads, const float* dy, float* dx);
void zero_pad_shortcut_forward(cudaStream_t s, const Shape& x_shape, const Shape& y_shape, int64_t sh, int64_t sw,
                               const float* x, float* y);
void zero_pad_shortcut_backward(cudaStream_t s, const Shape& x_shape, const Shape& y_shape, int64_t sh, int64_t sw,
                                const float* dy, float* dx);

// Squeeze-and-excitation (same saved buffers and scratch as the CPU backend).
void squeeze_excite_forward(cudaStream_t s, const SqueezeExciteArgs& a, const float* x, float* y);
void squeeze_excite_backward(cudaStream_t s, const SqueezeExciteArgs& a, const float* x, const float* dy, float* dx,
                             float* dw1, float* db1, float* dw2, float* db2, float* scratch);

// Softmax cross-entropy. `out` (device, 3 doubles) receives {mean loss, correct, correct5}
// (counts as doubles), ties in the top five counted in the label's favour as on the CPU.
void softmax_cross_entropy(cudaStream_t s, int64_t n, int64_t classes, const float* logits, const int32_t* labels,
                           float smoothing, double* out);
void softmax_cross_entropy_backward(cudaStream_t s, int64_t n, int64_t classes, const float* logits,
                                    const int32_t* labels, float smoothing, float dloss, float* dlogits);
void softmax(cudaStream_t s, int64_t n, int64_t classes, const float* logits, float* probs);

// Reductions into a device double (*out = sum of x², or 1/0 for all-finite), written, not added.
void sum_of_squares(cudaStream_t s, int64_t count, const float* x, double* out);
void all_finite(cudaStream_t s, int64_t count, const float* x, int* out);

// Optimizers: one launch over every parameter tensor. `table` (device) lists the tensors
// with their own learning rate and decay (the lr / weight_decay in SgdArgs / AdamArgs are
// ignored here); `total_floats` spans the packed buffers (padding between tensors is
// skipped, not updated).
struct ParamSlice {
  int64_t offset, numel;
  float lr, weight_decay;
};
void sgd_update_all(cudaStream_t s, const ParamSlice* table, int tensors, int64_t total_floats, const SgdArgs& a,
                    float* params, const float* grads, float* momentum);
void adamw_update_all(cudaStream_t s, const ParamSlice* table, int tensors, int64_t total_floats, const AdamArgs& a,
                      float* params, const float* grads, float* m, float* v);

}  // namespace rn::cuda
