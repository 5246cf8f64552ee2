// Softmax cross-entropy with label smoothing (mean over the batch, top-1 and top-5 hits),
// its gradient, and softmax, as native/cpu/loss_kernels.cpp. A warp owns a row; lane
// partials combine by a fixed shuffle tree, so results are deterministic. The forward's
// batch totals come from one block (warps over rows in a fixed order, then the warps in
// order): `out` is three doubles and there is no scratch for partials across blocks.
// Logits (and their gradient) are activations T, widened on load; the gradient is computed
// in double as for float and rounded once on store (with dloss the fp16 loss scale).
#include <cmath>

#include "../kernels.hpp"
#include "kernel_support.cuh"

namespace rn::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kLossWarps = 32;  // the single forward block: 1024 threads

__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
  for (int o = kWarp / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = kWarp / 2; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ int warp_sum_int(int v) {
#pragma unroll
  for (int o = kWarp / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// log Σ exp(row) with the max subtracted, every lane gets the result.
template <typename T>
__device__ double log_sum_exp(int64_t classes, const T* row, int lane) {
  float m = -INFINITY;
  for (int64_t j = lane; j < classes; j += kWarp) m = fmaxf(m, detail::to_float(row[j]));
  m = warp_max(m);
  double s = 0.0;
  for (int64_t j = lane; j < classes; j += kWarp) s += exp(double(detail::to_float(row[j])) - m);
  return double(m) + log(warp_sum(s));
}

struct RowResult {
  double loss;
  int hit, hit5;
};

template <typename T>
__device__ RowResult row_loss(int64_t classes, const T* row, int32_t label, float smoothing, int lane) {
  const double lse = log_sum_exp(classes, row, lane);
  const bool valid = label >= 0 && label < classes;
  // An out-of-range label has no logit: the loss turns NaN (caught by the E_NAN checks).
  const float label_logit = valid ? detail::to_float(row[label]) : NAN;
  double logit_sum = 0.0;
  int above = 0;           // classes scored strictly higher than the label
  float best = -INFINITY;  // first argmax: the larger value, then the smaller index
  int64_t best_at = classes;
  for (int64_t j = lane; j < classes; j += kWarp) {
    const float v = detail::to_float(row[j]);
    logit_sum += v;
    above += v > label_logit ? 1 : 0;
    if (v > best || best_at == classes) best = v, best_at = j;
  }
#pragma unroll
  for (int o = kWarp / 2; o > 0; o /= 2) {
    const float ov = __shfl_xor_sync(0xffffffffu, best, o);
    const int64_t oi = __shfl_xor_sync(0xffffffffu, best_at, o);
    if (oi != classes && (best_at == classes || ov > best || (ov == best && oi < best_at))) best = ov, best_at = oi;
  }
  logit_sum = warp_sum(logit_sum);
  above = warp_sum_int(above);
  const double mean_logit = logit_sum / double(classes);
  RowResult r;
  r.loss = lse - (1.0 - smoothing) * double(label_logit) - smoothing * mean_logit;
  r.hit = valid && best_at == label ? 1 : 0;
  r.hit5 = valid && above < 5 ? 1 : 0;
  return r;
}

template <typename T>
__global__ void __launch_bounds__(kLossWarps* kWarp)
    loss_kernel(int64_t n, int64_t classes, const T* logits, const int32_t* labels, float smoothing, double* out) {
  __shared__ double warp_loss[kLossWarps];
  __shared__ long long warp_hits[kLossWarps], warp_hits5[kLossWarps];
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  double loss = 0.0;
  long long hits = 0, hits5 = 0;
  for (int64_t i = warp; i < n; i += kLossWarps) {
    const RowResult r = row_loss(classes, logits + i * classes, labels[i], smoothing, lane);
    loss += r.loss, hits += r.hit, hits5 += r.hit5;
  }
  if (lane == 0) warp_loss[warp] = loss, warp_hits[warp] = hits, warp_hits5[warp] = hits5;
  __syncthreads();
  if (threadIdx.x == 0) {
    double total = 0.0;
    long long h = 0, h5 = 0;
    for (int w = 0; w < kLossWarps; ++w) total += warp_loss[w], h += warp_hits[w], h5 += warp_hits5[w];
    out[0] = total / double(n);
    out[1] = double(h);
    out[2] = double(h5);
  }
}

// One warp per row, rows strided over the grid.
__device__ __forceinline__ int64_t first_row() { return detail::global_thread() / kWarp; }
__device__ __forceinline__ int64_t row_stride() { return detail::global_stride() / kWarp; }

template <typename T>
__global__ void loss_backward_kernel(int64_t n, int64_t classes, const T* logits, const int32_t* labels,
                                     float smoothing, double scale, T* dlogits) {
  const int lane = threadIdx.x % kWarp;
  for (int64_t i = first_row(); i < n; i += row_stride()) {
    const T* row = logits + i * classes;
    const double lse = log_sum_exp(classes, row, lane);
    for (int64_t j = lane; j < classes; j += kWarp) {
      const double target = smoothing / double(classes) + (j == labels[i] ? 1.0 - smoothing : 0.0);
      const double p = exp(double(detail::to_float(row[j])) - lse);
      dlogits[i * classes + j] = detail::from_float<T>(static_cast<float>((p - target) * scale));
    }
  }
}

template <typename T>
__global__ void softmax_kernel(int64_t n, int64_t classes, const T* logits, float* probs) {
  const int lane = threadIdx.x % kWarp;
  for (int64_t i = first_row(); i < n; i += row_stride()) {
    const T* row = logits + i * classes;
    const double lse = log_sum_exp(classes, row, lane);
    for (int64_t j = lane; j < classes; j += kWarp) {
      probs[i * classes + j] = static_cast<float>(exp(double(detail::to_float(row[j])) - lse));
    }
  }
}

}  // namespace

template <typename T>
void softmax_cross_entropy(cudaStream_t s, int64_t n, int64_t classes, const T* logits, const int32_t* labels,
                           float smoothing, double* out) {
  if (n <= 0 || classes <= 0) return;
  loss_kernel<T><<<1, kLossWarps * kWarp, 0, s>>>(n, classes, logits, labels, smoothing, out);
}

template <typename T>
void softmax_cross_entropy_backward(cudaStream_t s, int64_t n, int64_t classes, const T* logits, const int32_t* labels,
                                    float smoothing, float dloss, T* dlogits) {
  if (n <= 0 || classes <= 0) return;
  loss_backward_kernel<T><<<detail::grid_for(n * kWarp), detail::kThreads, 0, s>>>(
      n, classes, logits, labels, smoothing, double(dloss) / double(n), dlogits);
}

template <typename T>
void softmax(cudaStream_t s, int64_t n, int64_t classes, const T* logits, float* probs) {
  if (n <= 0 || classes <= 0) return;
  softmax_kernel<T><<<detail::grid_for(n * kWarp), detail::kThreads, 0, s>>>(n, classes, logits, probs);
}

#define INSTANTIATE(T)                                                                                              \
  template void softmax_cross_entropy<T>(cudaStream_t, int64_t, int64_t, const T*, const int32_t*, float, double*); \
  template void softmax_cross_entropy_backward<T>(cudaStream_t, int64_t, int64_t, const T*, const int32_t*, float,  \
                                                  float, T*);                                                       \
  template void softmax<T>(cudaStream_t, int64_t, int64_t, const T*, float*);
RN_CUDA_FOR_EACH_ACTIVATION_TYPE(INSTANTIATE)
#undef INSTANTIATE

}  // namespace rn::cuda
