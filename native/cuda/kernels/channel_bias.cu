// The conv bias over NHWC rows: y[r, c] += bias[c], and its gradient db[c] = Σ_r dy[r, c]
// through the same deterministic two-level reduction as batch-norm.
#include "../kernels.hpp"
#include "channel_reduction.cuh"

namespace rn::cuda {
namespace {

using detail::Floats;
using detail::load;
using detail::store;

template <int V, typename T>
__global__ void __launch_bounds__(detail::kThreads)
    add_bias_kernel(int64_t rows, int64_t channels, const float* bias, T* y) {
  const int64_t ch0 = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * V;
  if (ch0 >= channels) return;
  float b[V];
#pragma unroll
  for (int k = 0; k < V; ++k) b[k] = bias[ch0 + k];
  for (int64_t r = int64_t(blockIdx.y) * blockDim.y + threadIdx.y; r < rows; r += int64_t(gridDim.y) * blockDim.y) {
    Floats<V> v = load<V>(y + r * channels + ch0);
#pragma unroll
    for (int k = 0; k < V; ++k) v.v[k] += b[k];
    store<V>(y + r * channels + ch0, v);
  }
}

template <typename T>
struct SumArgs {
  const T* x;
  int64_t channels;
};

template <int V, typename T>
struct SumTerms {
  static constexpr int kRowUnroll = 4;  // one load per row: unroll for loads in flight
  const T* x;
  int64_t channels;
  explicit SumTerms(const SumArgs<T>& a) : x(a.x), channels(a.channels) {}
  __device__ void prepare(int64_t) {}
  __device__ void add(int64_t r, int64_t ch0, float (&run)[1][V]) const {
    const Floats<V> v = load<V>(x + r * channels + ch0);
#pragma unroll
    for (int k = 0; k < V; ++k) run[0][k] += v.v[k];
  }
};

struct SumFinish {
  float* out;
  __device__ void operator()(int64_t ch, const double (&t)[1]) const { out[ch] = static_cast<float>(t[0]); }
};

}  // namespace

template <typename T>
void add_channel_bias(cudaStream_t s, int64_t rows, int64_t channels, const float* bias, T* y) {
  if (rows <= 0 || channels <= 0) return;
  const detail::ColumnLayout l = detail::column_layout(channels, detail::vector_aligned(y));
  const dim3 grid = detail::rows_grid(l, rows), block(l.tx, l.ty);
  if (l.vec == 4) {
    add_bias_kernel<4, T><<<grid, block, 0, s>>>(rows, channels, bias, y);
  } else {
    add_bias_kernel<1, T><<<grid, block, 0, s>>>(rows, channels, bias, y);
  }
}

template <typename T>
void channel_sums(cudaStream_t s, int64_t rows, int64_t channels, const T* dy, float* db, float* scratch) {
  // scratch holds channel_scratch_floats(channels) floats, more than the one-sum partials need.
  auto* partial = reinterpret_cast<double*>((reinterpret_cast<uintptr_t>(scratch) + 7) & ~uintptr_t{7});
  detail::reduce_columns<SumTerms, T, 1>(s, rows, channels, detail::vector_aligned(dy), SumArgs<T>{dy, channels},
                                         partial, SumFinish{db});
}

#define INSTANTIATE(T)                                                                 \
  template void add_channel_bias<T>(cudaStream_t, int64_t, int64_t, const float*, T*); \
  template void channel_sums<T>(cudaStream_t, int64_t, int64_t, const T*, float*, float*);
RN_CUDA_FOR_EACH_ACTIVATION_TYPE(INSTANTIATE)
#undef INSTANTIATE

}  // namespace rn::cuda
