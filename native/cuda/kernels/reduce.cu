// Whole-buffer reductions into one device value: Σ x² (for gradient-norm clipping) and
// the all-finite flag (for dynamic loss scaling). One launch each: blocks write fixed
// partials, and the last block to arrive folds them in block order, so the result is
// deterministic however the blocks are scheduled.
//
// The partials live in this file's static device memory (the interface gives these calls
// no scratch): calls on one device must not overlap, i.e. issue them on one stream, as the
// plan does with its compute stream. The arrival counter is reset by the last block, so
// calls can follow each other (and be captured in a CUDA graph) freely.
#include <cmath>

#include "../kernels.hpp"
#include "kernel_support.cuh"

namespace rn::cuda {
namespace {

constexpr int kMaxBlocks = 512;
constexpr int64_t kPerThread = 8;  // elements a thread takes before the grid grows

__device__ double g_square_partials[kMaxBlocks];
__device__ unsigned g_square_arrivals = 0;
__device__ int g_finite_partials[kMaxBlocks];
__device__ unsigned g_finite_arrivals = 0;

unsigned blocks_for(int64_t count) {
  return static_cast<unsigned>(
      std::max<int64_t>(1, std::min<int64_t>(kMaxBlocks, detail::ceil_div(count, detail::kThreads * kPerThread))));
}

// Fixed-order tree over the block's threads; thread 0 gets the total.
template <typename T>
__device__ T block_sum(T v, T* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) shared[threadIdx.x] += shared[threadIdx.x + half];
    __syncthreads();
  }
  return shared[0];
}

// True in every thread of the block that arrives last (after all partials are visible).
__device__ bool arrived_last(unsigned* arrivals) {
  __shared__ bool last;
  __threadfence();
  if (threadIdx.x == 0) last = atomicAdd(arrivals, 1u) == gridDim.x - 1;
  __syncthreads();
  if (last) __threadfence();
  return last;
}

__global__ void __launch_bounds__(detail::kThreads) sum_of_squares_kernel(int64_t count, const float* x, double* out) {
  __shared__ double lanes[detail::kThreads];
  double s = 0.0;
  for (int64_t i = detail::global_thread(); i < count; i += detail::global_stride()) s += double(x[i]) * x[i];
  s = block_sum(s, lanes);
  if (threadIdx.x == 0) g_square_partials[blockIdx.x] = s;
  if (!arrived_last(&g_square_arrivals)) return;
  double t = 0.0;
  for (unsigned b = threadIdx.x; b < gridDim.x; b += blockDim.x) t += *(volatile double*)&g_square_partials[b];
  __syncthreads();  // lanes is reused
  t = block_sum(t, lanes);
  if (threadIdx.x == 0) {
    *out = t;
    g_square_arrivals = 0;
  }
}

// Widening is exact, so a T value is finite exactly when its float is.
template <typename T>
__global__ void __launch_bounds__(detail::kThreads) all_finite_kernel(int64_t count, const T* x, int* out) {
  __shared__ int lanes[detail::kThreads];
  int bad = 0;
  for (int64_t i = detail::global_thread(); i < count; i += detail::global_stride()) {
    bad |= isfinite(detail::to_float(x[i])) ? 0 : 1;
  }
  bad = block_sum(bad, lanes);
  if (threadIdx.x == 0) g_finite_partials[blockIdx.x] = bad;
  if (!arrived_last(&g_finite_arrivals)) return;
  int t = 0;
  for (unsigned b = threadIdx.x; b < gridDim.x; b += blockDim.x) t += *(volatile int*)&g_finite_partials[b];
  __syncthreads();
  t = block_sum(t, lanes);
  if (threadIdx.x == 0) {
    *out = t == 0 ? 1 : 0;
    g_finite_arrivals = 0;
  }
}

}  // namespace

void sum_of_squares(cudaStream_t s, int64_t count, const float* x, double* out) {
  sum_of_squares_kernel<<<blocks_for(count), detail::kThreads, 0, s>>>(count, x, out);
}

template <typename T>
void all_finite(cudaStream_t s, int64_t count, const T* x, int* out) {
  all_finite_kernel<T><<<blocks_for(count), detail::kThreads, 0, s>>>(count, x, out);
}

#define INSTANTIATE(T) template void all_finite<T>(cudaStream_t, int64_t, const T*, int*);
RN_CUDA_FOR_EACH_ACTIVATION_TYPE(INSTANTIATE)
#undef INSTANTIATE

}  // namespace rn::cuda
