// Launch geometry and vector access shared by the kernels in this folder. Nothing here
// holds state; every helper is a pure function of the sizes (so a shape always gets the
// same launch, which keeps fixed-order reductions bit-reproducible).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

namespace rn::cuda::detail {

constexpr int kThreads = 256;
// Element-wise grids stop growing here and stride instead: ~16 resident blocks of 256
// threads on each of ~132-148 SMs is plenty to saturate HBM.
constexpr int64_t kMaxGridBlocks = 2048;

__host__ __device__ inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

inline unsigned grid_for(int64_t work_items, int threads = kThreads) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(ceil_div(work_items, threads), kMaxGridBlocks)));
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

template <typename... P>
bool all_aligned16(const P*... ptrs) {
  return (aligned16(ptrs) && ...);
}

// V consecutive floats as one aligned load / store where V == 4, plain floats otherwise.
template <int V>
struct Floats {
  float v[V];
};

template <int V>
__device__ __forceinline__ Floats<V> load(const float* p) {
  Floats<V> r;
  if constexpr (V == 4) {
    const float4 q = *reinterpret_cast<const float4*>(p);
    r.v[0] = q.x, r.v[1] = q.y, r.v[2] = q.z, r.v[3] = q.w;
  } else {
#pragma unroll
    for (int k = 0; k < V; ++k) r.v[k] = p[k];
  }
  return r;
}

template <int V>
__device__ __forceinline__ void store(float* p, const Floats<V>& r) {
  if constexpr (V == 4) {
    *reinterpret_cast<float4*>(p) = make_float4(r.v[0], r.v[1], r.v[2], r.v[3]);
  } else {
#pragma unroll
    for (int k = 0; k < V; ++k) p[k] = r.v[k];
  }
}

__device__ __forceinline__ int64_t global_thread() {
  return int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t global_stride() { return int64_t(gridDim.x) * blockDim.x; }

}  // namespace rn::cuda::detail
