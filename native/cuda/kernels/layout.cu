// Filter layout changes between HWIO [kh, kw, ci, co] (the package's) and OHWI
// [co, kh, kw, ci] (cuDNN's NHWC filters): both are a transpose of a [rows, cols]
// matrix, done through a padded shared-memory tile so reads and writes are coalesced. The
// copy also converts between the fp32 master weights and the convolution's type.
#include "../kernels.hpp"
#include "kernel_support.cuh"

namespace rn::cuda {
namespace {

constexpr int kTile = 32, kTileRows = 8;

// dst[c, r] = src[r, c] for src [rows, cols], converted (rounded to nearest) on the way in.
template <typename From, typename To>
__global__ void transpose_kernel(int64_t rows, int64_t cols, const From* src, To* dst) {
  __shared__ To tile[kTile][kTile + 1];
  const int64_t r0 = int64_t(blockIdx.y) * kTile, c0 = int64_t(blockIdx.x) * kTile;
  for (int i = threadIdx.y; i < kTile; i += kTileRows) {
    const int64_t r = r0 + i, c = c0 + threadIdx.x;
    if (r < rows && c < cols) tile[i][threadIdx.x] = detail::from_float<To>(detail::to_float(src[r * cols + c]));
  }
  __syncthreads();
  for (int i = threadIdx.y; i < kTile; i += kTileRows) {
    const int64_t c = c0 + i, r = r0 + threadIdx.x;
    if (r < rows && c < cols) dst[c * rows + r] = tile[threadIdx.x][i];
  }
}

template <typename From, typename To>
void transpose(cudaStream_t s, int64_t rows, int64_t cols, const From* src, To* dst) {
  if (rows <= 0 || cols <= 0) return;
  const dim3 grid(static_cast<unsigned>(detail::ceil_div(cols, kTile)),
                  static_cast<unsigned>(detail::ceil_div(rows, kTile)));
  transpose_kernel<<<grid, dim3(kTile, kTileRows), 0, s>>>(rows, cols, src, dst);
}

}  // namespace

template <typename To>
void hwio_to_ohwi(cudaStream_t s, int64_t kh, int64_t kw, int64_t ci, int64_t co, const float* src, To* dst) {
  transpose(s, kh * kw * ci, co, src, dst);
}

template <typename From>
void ohwi_to_hwio(cudaStream_t s, int64_t kh, int64_t kw, int64_t ci, int64_t co, const From* src, float* dst) {
  transpose(s, co, kh * kw * ci, src, dst);
}

#define INSTANTIATE(T)                                                                               \
  template void hwio_to_ohwi<T>(cudaStream_t, int64_t, int64_t, int64_t, int64_t, const float*, T*); \
  template void ohwi_to_hwio<T>(cudaStream_t, int64_t, int64_t, int64_t, int64_t, const T*, float*);
RN_CUDA_FOR_EACH_ACTIVATION_TYPE(INSTANTIATE)
#undef INSTANTIATE

}  // namespace rn::cuda
