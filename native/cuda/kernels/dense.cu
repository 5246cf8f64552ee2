// The dense layer [n, k] · [k, m] (+ bias) and its gradients through one shared-memory
// tiled SGEMM whose operands are read through strides, so the transposed products of the
// backward pass (dx = dy · wᵀ, dw = xᵀ · dy) need no transposed copies. The dense layer is
// a sliver of a ResNet's work; this favours clarity over the last factor of speed. Each
// output sums its k terms in order in one thread: deterministic. Operands and results are
// activations (T) or parameters (float); the tiles and the sums are float either way.
#include "../kernels.hpp"
#include "kernel_support.cuh"

namespace rn::cuda {
namespace {

constexpr int kTileM = 64, kTileN = 64, kTileK = 16;
constexpr int kThreadsM = 16, kThreadsN = 16;  // 256 threads, each a 4 × 4 patch of C
constexpr int kPerM = kTileM / kThreadsM, kPerN = kTileN / kThreadsN;

// A(i, p) = a[i·a_row + p·a_col]; likewise B. C [rows, cols] is row-major.
template <typename T>
struct Operand {
  const T* data;
  int64_t row_stride, col_stride;
};

template <typename A, typename B, typename C>
__global__ void __launch_bounds__(kThreadsM* kThreadsN)
    gemm_kernel(int64_t rows, int64_t cols, int64_t depth, Operand<A> a, Operand<B> b, const float* bias, C* c) {
  __shared__ float as[kTileK][kTileM + 1];
  __shared__ float bs[kTileK][kTileN + 1];
  const int tid = threadIdx.y * kThreadsN + threadIdx.x;
  const int64_t row0 = int64_t(blockIdx.y) * kTileM, col0 = int64_t(blockIdx.x) * kTileN;

  float acc[kPerM][kPerN];
#pragma unroll
  for (int i = 0; i < kPerM; ++i) {
#pragma unroll
    for (int j = 0; j < kPerN; ++j) {
      const int64_t col = col0 + threadIdx.x + j * kThreadsN;
      acc[i][j] = (bias != nullptr && col < cols) ? bias[col] : 0.0f;
    }
  }
  for (int64_t p0 = 0; p0 < depth; p0 += kTileK) {
    // Each thread stages 4 elements of each tile; consecutive threads walk the operand's
    // contiguous axis where the strides allow it.
    for (int e = tid; e < kTileM * kTileK; e += kThreadsM * kThreadsN) {
      const int i = a.col_stride == 1 ? e / kTileK : e % kTileM;
      const int p = a.col_stride == 1 ? e % kTileK : e / kTileM;
      const int64_t gi = row0 + i, gp = p0 + p;
      as[p][i] = (gi < rows && gp < depth) ? detail::to_float(a.data[gi * a.row_stride + gp * a.col_stride]) : 0.0f;
    }
    for (int e = tid; e < kTileK * kTileN; e += kThreadsM * kThreadsN) {
      const int j = b.col_stride == 1 ? e % kTileN : e / kTileK;
      const int p = b.col_stride == 1 ? e / kTileN : e % kTileK;
      const int64_t gp = p0 + p, gj = col0 + j;
      bs[p][j] = (gp < depth && gj < cols) ? detail::to_float(b.data[gp * b.row_stride + gj * b.col_stride]) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int p = 0; p < kTileK; ++p) {
      float av[kPerM], bv[kPerN];
#pragma unroll
      for (int i = 0; i < kPerM; ++i) av[i] = as[p][threadIdx.y + i * kThreadsM];
#pragma unroll
      for (int j = 0; j < kPerN; ++j) bv[j] = bs[p][threadIdx.x + j * kThreadsN];
#pragma unroll
      for (int i = 0; i < kPerM; ++i) {
#pragma unroll
        for (int j = 0; j < kPerN; ++j) acc[i][j] += av[i] * bv[j];
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < kPerM; ++i) {
#pragma unroll
    for (int j = 0; j < kPerN; ++j) {
      const int64_t row = row0 + threadIdx.y + i * kThreadsM, col = col0 + threadIdx.x + j * kThreadsN;
      if (row < rows && col < cols) c[row * cols + col] = detail::from_float<C>(acc[i][j]);
    }
  }
}

template <typename A, typename B, typename C>
void gemm(cudaStream_t s, int64_t rows, int64_t cols, int64_t depth, Operand<A> a, Operand<B> b, const float* bias,
          C* c) {
  if (rows <= 0 || cols <= 0) return;
  const dim3 grid(static_cast<unsigned>(detail::ceil_div(cols, kTileN)),
                  static_cast<unsigned>(detail::ceil_div(rows, kTileM)));
  gemm_kernel<<<grid, dim3(kThreadsN, kThreadsM), 0, s>>>(rows, cols, depth, a, b, bias, c);
}

// db[j] = Σ_i dy[i, j], rows in order (as the CPU).
template <typename T>
__global__ void column_sums_kernel(int64_t n, int64_t m, const T* dy, float* db) {
  for (int64_t j = detail::global_thread(); j < m; j += detail::global_stride()) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; ++i) s += detail::to_float(dy[i * m + j]);
    db[j] = s;
  }
}

}  // namespace

template <typename T>
void dense_forward(cudaStream_t s, int64_t n, int64_t k, int64_t m, const T* x, const float* w, const float* b, T* y) {
  gemm(s, n, m, k, Operand<T>{x, k, 1}, Operand<float>{w, m, 1}, b, y);
}

template <typename T>
void dense_backward(cudaStream_t s, int64_t n, int64_t k, int64_t m, const T* x, const float* w, const T* dy, T* dx,
                    float* dw, float* db) {
  if (dx != nullptr) gemm(s, n, k, m, Operand<T>{dy, m, 1}, Operand<float>{w, 1, m}, nullptr, dx);  // dy · wᵀ
  gemm(s, k, m, n, Operand<T>{x, 1, k}, Operand<T>{dy, m, 1}, nullptr, dw);                         // xᵀ · dy
  if (db != nullptr && m > 0) {
    column_sums_kernel<T><<<detail::grid_for(m), detail::kThreads, 0, s>>>(n, m, dy, db);
  }
}

#define INSTANTIATE(T)                                                                                               \
  template void dense_forward<T>(cudaStream_t, int64_t, int64_t, int64_t, const T*, const float*, const float*, T*); \
  template void dense_backward<T>(cudaStream_t, int64_t, int64_t, int64_t, const T*, const float*, const T*, T*,     \
                                  float*, float*);
RN_CUDA_FOR_EACH_ACTIVATION_TYPE(INSTANTIATE)
#undef INSTANTIATE

}  // namespace rn::cuda
