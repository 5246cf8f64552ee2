// Launch geometry, activation-type conversion and vector access shared by the kernels in
// this folder. Nothing here holds state; every launch helper is a pure function of the sizes
// (so a shape always gets the same launch, which keeps fixed-order reductions bit-reproducible).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace rn::cuda::detail {

constexpr int kThreads = 256;
// Element-wise grids stop growing here and stride instead: ~16 resident blocks of 256
// threads on each of ~132-148 SMs is plenty to saturate HBM.
constexpr int64_t kMaxGridBlocks = 2048;

__host__ __device__ inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

inline unsigned grid_for(int64_t work_items, int threads = kThreads) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(ceil_div(work_items, threads), kMaxGridBlocks)));
}

// Activations are float, __half or __nv_bfloat16 in memory; every kernel computes in
// float. Widening is exact; narrowing rounds to nearest even (fp16 overflow gives ±inf,
// which the loss scaler's all_finite check relies on).
__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_float(float v) {
  if constexpr (std::is_same_v<T, __half>) {
    return __float2half_rn(v);
  } else if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    return __float2bfloat16_rn(v);
  } else {
    static_assert(std::is_same_v<T, float>, "activations are float, __half or __nv_bfloat16");
    return v;
  }
}

// Whether p may take the 4-wide vector path: float4 for float, one 8-byte access for the
// 2-byte types, so the alignment a vector needs is 4·sizeof(T) bytes.
template <typename T>
bool vector_aligned(const T* p) {
  return (reinterpret_cast<uintptr_t>(p) % (4 * sizeof(T))) == 0;
}

template <typename... P>
bool all_vector_aligned(const P*... ptrs) {
  return (vector_aligned(ptrs) && ...);
}

// V consecutive elements of a T buffer, widened to float: one aligned vector load / store
// where V == 4, V scalar accesses otherwise.
template <int V>
struct Floats {
  float v[V];
};

template <int V, typename T>
__device__ __forceinline__ Floats<V> load(const T* p) {
  Floats<V> r;
  if constexpr (V == 4 && std::is_same_v<T, float>) {
    const float4 q = *reinterpret_cast<const float4*>(p);
    r.v[0] = q.x, r.v[1] = q.y, r.v[2] = q.z, r.v[3] = q.w;
  } else if constexpr (V == 4) {
    static_assert(sizeof(T) == 2, "the 8-byte vector path is for 2-byte types");
    const uint2 q = *reinterpret_cast<const uint2*>(p);
    T e[4];
    memcpy(e, &q, sizeof q);
#pragma unroll
    for (int k = 0; k < 4; ++k) r.v[k] = to_float(e[k]);
  } else {
#pragma unroll
    for (int k = 0; k < V; ++k) r.v[k] = to_float(p[k]);
  }
  return r;
}

template <int V, typename T>
__device__ __forceinline__ void store(T* p, const Floats<V>& r) {
  if constexpr (V == 4 && std::is_same_v<T, float>) {
    *reinterpret_cast<float4*>(p) = make_float4(r.v[0], r.v[1], r.v[2], r.v[3]);
  } else if constexpr (V == 4) {
    static_assert(sizeof(T) == 2, "the 8-byte vector path is for 2-byte types");
    T e[4];
#pragma unroll
    for (int k = 0; k < 4; ++k) e[k] = from_float<T>(r.v[k]);
    uint2 q;
    memcpy(&q, e, sizeof q);
    *reinterpret_cast<uint2*>(p) = q;
  } else {
#pragma unroll
    for (int k = 0; k < V; ++k) p[k] = from_float<T>(r.v[k]);
  }
}

__device__ __forceinline__ int64_t global_thread() { return int64_t(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ __forceinline__ int64_t global_stride() { return int64_t(gridDim.x) * blockDim.x; }

}  // namespace rn::cuda::detail
