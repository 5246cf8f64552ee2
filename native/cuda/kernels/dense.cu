// The dense layer [n, k] · [k, m] (+ bias) and its gradients through one shared-memory
// tiled SGEMM whose operands are read through strides, so the transposed products of the
// backward pass (dx = dy · wᵀ, dw = xᵀ · dy) need no transposed copies. The dense layer is
// a sliver of a ResNet's work; this favours clarity over the last factor of speed. Each
// output sums its k terms in order in one thread: deterministic.
#include "../kernels.hpp"
#include "kernel_support.cuh"

namespace rn::cuda {
namespace {

constexpr int kTileM = 64, kTileN = 64, kTileK = 16;
constexpr int kThreadsM = 16, kThreadsN = 16;  // 256 threads, each a 4 × 4 patch of C
constexpr int kPerM = kTileM / kThreadsM, kPerN = kTileN / kThreadsN;

// A(i, p) = a[i·a_row + p·a_col]; likewise B. C [rows, cols] is row-major.
struct Operand {
  const float* data;
  int64_t row_stride, col_stride;
};

__global__ void __launch_bounds__(kThreadsM* kThreadsN)
    gemm_kernel(int64_t rows, int64_t cols, int64_t depth, Operand a, Operand b, const float* bias, float* c) {
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
      as[p][i] = (gi < rows && gp < depth) ? a.data[gi * a.row_stride + gp * a.col_stride] : 0.0f;
    }
    for (int e = tid; e < kTileK * kTileN; e += kThreadsM * kThreadsN) {
      const int j = b.col_stride == 1 ? e % kTileN : e / kTileK;
      const int p = b.col_stride == 1 ? e / kTileN : e % kTileK;
      const int64_t gp = p0 + p, gj = col0 + j;
      bs[p][j] = (gp < depth && gj < cols) ? b.data[gp * b.row_stride + gj * b.col_stride] : 0.0f;
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
      if (row < rows && col < cols) c[row * cols + col] = acc[i][j];
    }
  }
}

void gemm(cudaStream_t s, int64_t rows, int64_t cols, int64_t depth, Operand a, Operand b, const float* bias,
          float* c) {
  if (rows <= 0 || cols <= 0) return;
  const dim3 grid(static_cast<unsigned>(detail::ceil_div(cols, kTileN)),
                  static_cast<unsigned>(detail::ceil_div(rows, kTileM)));
  gemm_kernel<<<grid, dim3(kThreadsN, kThreadsM), 0, s>>>(rows, cols, depth, a, b, bias, c);
}

// db[j] = Σ_i dy[i, j], rows in order (as the CPU).
__global__ void column_sums_kernel(int64_t n, int64_t m, const float* dy, float* db) {
  for (int64_t j = detail::global_thread(); j < m; j += detail::global_stride()) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; ++i) s += dy[i * m + j];
    db[j] = s;
  }
}

}  // namespace

void dense_forward(cudaStream_t s, int64_t n, int64_t k, int64_t m, const float* x, const float* w, const float* b,
                   float* y) {
  gemm(s, n, m, k, Operand{x, k, 1}, Operand{w, m, 1}, b, y);
}

void dense_backward(cudaStream_t s, int64_t n, int64_t k, int64_t m, const float* x, const float* w, const float* dy,
                    float* dx, float* dw, float* db) {
  if (dx != nullptr) gemm(s, n, k, m, Operand{dy, m, 1}, Operand{w, 1, m}, nullptr, dx);  // dy · wᵀ
  gemm(s, k, m, n, Operand{x, 1, k}, Operand{dy, m, 1}, nullptr, dw);                      // xᵀ · dy
  if (db != nullptr && m > 0) {
    column_sums_kernel<<<detail::grid_for(m), detail::kThreads, 0, s>>>(n, m, dy, db);
  }
}

}  // namespace rn::cuda
