// Batch-norm over NHWC [rows, channels]: statistics (mean, biased variance), the running
// averages, the fused apply (+ residual add, + ReLU) and the fused ReLU-backward +
// batch-norm backward. Formulas follow native/cpu/batch_norm_kernels.cpp term by term.
#include <cmath>

#include "../kernels.hpp"
#include "channel_reduction.cuh"

namespace rn::cuda {
namespace {

using detail::Floats;
using detail::load;
using detail::store;

// Partial sums first (doubles, 8-byte aligned), then four float rows of per-channel
// backward coefficients.
double* partial_area(float* scratch) {
  const uintptr_t p = (reinterpret_cast<uintptr_t>(scratch) + 7) & ~uintptr_t{7};
  return reinterpret_cast<double*>(p);
}
float* coefficient_area(float* scratch, int64_t channels) {
  return reinterpret_cast<float*>(partial_area(scratch) + detail::partial_doubles(channels, 2));
}

__device__ __forceinline__ float inverse_std(float var, float eps) {
  return static_cast<float>(1.0 / sqrt(double(var) + eps));
}

// ---- statistics ------------------------------------------------------------------------

template <typename T>
struct StatsArgs {
  const T* x;
  int64_t channels;
};

template <int V, typename T>
struct StatsTerms {
  static constexpr int kRowUnroll = 4;  // one load per row: unroll for loads in flight
  const T* x;
  int64_t channels;
  explicit StatsTerms(const StatsArgs<T>& a) : x(a.x), channels(a.channels) {}
  __device__ void prepare(int64_t) {}
  __device__ void add(int64_t r, int64_t ch0, float (&run)[2][V]) const {
    const Floats<V> v = load<V>(x + r * channels + ch0);
#pragma unroll
    for (int k = 0; k < V; ++k) {
      run[0][k] += v.v[k];
      run[1][k] += v.v[k] * v.v[k];
    }
  }
};

struct StatsFinish {
  double count;
  float *mean, *var;
  __device__ void operator()(int64_t ch, const double (&t)[2]) const {
    const double mu = t[0] / count;
    mean[ch] = static_cast<float>(mu);
    var[ch] = static_cast<float>(fmax(0.0, t[1] / count - mu * mu));
  }
};

__global__ void update_running_kernel(int64_t channels, double bessel, float momentum, const float* mean,
                                      const float* var, float* running_mean, float* running_var, const int* enabled) {
  const int64_t ch = detail::global_thread();
  if (ch >= channels || (enabled != nullptr && *enabled == 0)) return;
  running_mean[ch] = static_cast<float>((1.0 - momentum) * running_mean[ch] + momentum * double(mean[ch]));
  running_var[ch] = static_cast<float>((1.0 - momentum) * running_var[ch] + momentum * double(var[ch]) * bessel);
}

// ---- forward ---------------------------------------------------------------------------

template <int V, typename T>
__global__ void __launch_bounds__(detail::kThreads)
    forward_kernel(BatchNormArgs a, const T* x, const T* skip, bool relu, T* y) {
  const int64_t ch0 = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * V;
  if (ch0 >= a.channels) return;
  float scale[V], shift[V];
#pragma unroll
  for (int k = 0; k < V; ++k) {
    const double s = double(a.gamma[ch0 + k]) / sqrt(double(a.var[ch0 + k]) + a.epsilon);
    scale[k] = static_cast<float>(s);
    shift[k] = static_cast<float>(double(a.beta[ch0 + k]) - double(a.mean[ch0 + k]) * s);
  }
  for (int64_t r = int64_t(blockIdx.y) * blockDim.y + threadIdx.y; r < a.rows; r += int64_t(gridDim.y) * blockDim.y) {
    const int64_t at = r * a.channels + ch0;
    Floats<V> v = load<V>(x + at);
    if (skip) {
      const Floats<V> sk = load<V>(skip + at);
#pragma unroll
      for (int k = 0; k < V; ++k) v.v[k] = v.v[k] * scale[k] + shift[k] + sk.v[k];
    } else {
#pragma unroll
      for (int k = 0; k < V; ++k) v.v[k] = v.v[k] * scale[k] + shift[k];
    }
    if (relu) {
#pragma unroll
      for (int k = 0; k < V; ++k) v.v[k] = fmaxf(v.v[k], 0.0f);
    }
    store<V>(y + at, v);
  }
}

// ---- backward --------------------------------------------------------------------------

template <typename T>
struct BackwardArgs {
  const T *x, *y, *dy;
  const float *mean, *var;
  float epsilon;
  bool relu;
  int64_t channels;
};

// dz = dy past the ReLU mask (y > 0); xhat = (x − mean) · invstd.
template <int V, typename T>
struct BackwardTerms {
  static constexpr int kRowUnroll =
      1;  // 2-3 loads per row already; unrolled, registers cut occupancy (measured slower)
  BackwardArgs<T> a;
  float mean[V], invstd[V];
  explicit BackwardTerms(const BackwardArgs<T>& args) : a(args) {}
  __device__ void prepare(int64_t ch0) {
#pragma unroll
    for (int k = 0; k < V; ++k) {
      mean[k] = a.mean[ch0 + k];
      invstd[k] = inverse_std(a.var[ch0 + k], a.epsilon);
    }
  }
  __device__ void add(int64_t r, int64_t ch0, float (&run)[2][V]) const {
    const int64_t at = r * a.channels + ch0;
    const Floats<V> xv = load<V>(a.x + at), dyv = load<V>(a.dy + at);
    Floats<V> yv;
    if (a.relu) yv = load<V>(a.y + at);
#pragma unroll
    for (int k = 0; k < V; ++k) {
      const float dz = (!a.relu || yv.v[k] > 0.0f) ? dyv.v[k] : 0.0f;
      const float xhat = (xv.v[k] - mean[k]) * invstd[k];
      run[0][k] += dz;
      run[1][k] += dz * xhat;
    }
  }
};

// dx = scale · dz − k1 − xhat · k2 (k1 = k2 = 0 in inference mode).
struct BackwardFinish {
  const float *gamma, *var;
  float epsilon;
  double rows;
  bool training;
  float *dgamma, *dbeta, *invstd, *scale, *k1, *k2;
  __device__ void operator()(int64_t ch, const double (&t)[2]) const {
    const float is = inverse_std(var[ch], epsilon);
    const double sc = double(gamma[ch]) * is;
    dgamma[ch] = static_cast<float>(t[1]);
    dbeta[ch] = static_cast<float>(t[0]);
    invstd[ch] = is;
    scale[ch] = static_cast<float>(sc);
    k1[ch] = training ? static_cast<float>(sc * t[0] / rows) : 0.0f;
    k2[ch] = training ? static_cast<float>(sc * t[1] / rows) : 0.0f;
  }
};

// dx may alias dy: each element is read before it is written, by the same thread.
template <int V, typename T>
__global__ void __launch_bounds__(detail::kThreads)
    input_gradient_kernel(int64_t rows, int64_t channels, const T* x, const T* y, bool relu, const T* dy,
                          const float* mean, const float* coefficients, T* dx, T* dskip) {
  const int64_t ch0 = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) * V;
  if (ch0 >= channels) return;
  const float* invstd = coefficients;
  const float* scale = invstd + channels;
  const float* k1 = scale + channels;
  const float* k2 = k1 + channels;
  float m[V], is[V], sc[V], c1[V], c2[V];
#pragma unroll
  for (int k = 0; k < V; ++k) {
    m[k] = mean[ch0 + k], is[k] = invstd[ch0 + k], sc[k] = scale[ch0 + k], c1[k] = k1[ch0 + k], c2[k] = k2[ch0 + k];
  }
  for (int64_t r = int64_t(blockIdx.y) * blockDim.y + threadIdx.y; r < rows; r += int64_t(gridDim.y) * blockDim.y) {
    const int64_t at = r * channels + ch0;
    const Floats<V> xv = load<V>(x + at);
    Floats<V> dz = load<V>(dy + at);
    if (relu) {
      const Floats<V> yv = load<V>(y + at);
#pragma unroll
      for (int k = 0; k < V; ++k) dz.v[k] = yv.v[k] > 0.0f ? dz.v[k] : 0.0f;
    }
    if (dskip) store<V>(dskip + at, dz);
    Floats<V> out;
#pragma unroll
    for (int k = 0; k < V; ++k) {
      const float xhat = (xv.v[k] - m[k]) * is[k];
      out.v[k] = sc[k] * dz.v[k] - c1[k] - xhat * c2[k];
    }
    store<V>(dx + at, out);
  }
}

}  // namespace

int64_t channel_scratch_floats(int64_t channels) {
  // Partial sums (doubles) + 2 floats of alignment slack + four coefficient rows.
  return 2 * detail::partial_doubles(channels, 2) + 2 + 4 * channels;
}

template <typename T>
void batch_norm_statistics(cudaStream_t s, int64_t rows, int64_t channels, const T* x, float* mean, float* var,
                           float* scratch) {
  detail::reduce_columns<StatsTerms, T, 2>(s, rows, channels, detail::vector_aligned(x), StatsArgs<T>{x, channels},
                                           partial_area(scratch), StatsFinish{double(rows), mean, var});
}

void batch_norm_update_running(cudaStream_t s, int64_t rows, int64_t channels, const float* mean, const float* var,
                               float momentum, float* running_mean, float* running_var, const int* enabled) {
  if (channels <= 0) return;
  const double bessel = rows > 1 ? double(rows) / double(rows - 1) : 1.0;
  update_running_kernel<<<static_cast<unsigned>(detail::ceil_div(channels, detail::kThreads)), detail::kThreads, 0,
                          s>>>(channels, bessel, momentum, mean, var, running_mean, running_var, enabled);
}

template <typename T>
void batch_norm_forward(cudaStream_t s, const BatchNormArgs& a, const T* x, const T* skip, bool relu, T* y) {
  if (a.rows <= 0 || a.channels <= 0) return;
  const bool vectorise = detail::all_vector_aligned(x, y) && (skip == nullptr || detail::vector_aligned(skip));
  const detail::ColumnLayout l = detail::column_layout(a.channels, vectorise);
  const dim3 grid = detail::rows_grid(l, a.rows), block(l.tx, l.ty);
  if (l.vec == 4) {
    forward_kernel<4, T><<<grid, block, 0, s>>>(a, x, skip, relu, y);
  } else {
    forward_kernel<1, T><<<grid, block, 0, s>>>(a, x, skip, relu, y);
  }
}

template <typename T>
void batch_norm_backward(cudaStream_t s, const BatchNormArgs& a, bool training, const T* x, const T* y, bool relu,
                         const T* dy, T* dx, T* dskip, float* dgamma, float* dbeta, float* scratch) {
  if (a.rows <= 0 || a.channels <= 0) return;
  const int64_t c = a.channels;
  float* coefficients = coefficient_area(scratch, c);
  const bool vectorise = detail::all_vector_aligned(x, dy, dx) && (!relu || detail::vector_aligned(y)) &&
                         (dskip == nullptr || detail::vector_aligned(dskip));
  const BackwardArgs<T> args{x, y, dy, a.mean, a.var, a.epsilon, relu, c};
  const BackwardFinish finish{a.gamma,
                              a.var,
                              a.epsilon,
                              double(a.rows),
                              training,
                              dgamma,
                              dbeta,
                              coefficients,
                              coefficients + c,
                              coefficients + 2 * c,
                              coefficients + 3 * c};
  detail::reduce_columns<BackwardTerms, T, 2>(s, a.rows, c, vectorise, args, partial_area(scratch), finish);

  const detail::ColumnLayout l = detail::column_layout(c, vectorise);
  const dim3 grid = detail::rows_grid(l, a.rows), block(l.tx, l.ty);
  if (l.vec == 4) {
    input_gradient_kernel<4, T><<<grid, block, 0, s>>>(a.rows, c, x, y, relu, dy, a.mean, coefficients, dx, dskip);
  } else {
    input_gradient_kernel<1, T><<<grid, block, 0, s>>>(a.rows, c, x, y, relu, dy, a.mean, coefficients, dx, dskip);
  }
}

#define INSTANTIATE(T)                                                                                               \
  template void batch_norm_statistics<T>(cudaStream_t, int64_t, int64_t, const T*, float*, float*, float*);          \
  template void batch_norm_forward<T>(cudaStream_t, const BatchNormArgs&, const T*, const T*, bool, T*);             \
  template void batch_norm_backward<T>(cudaStream_t, const BatchNormArgs&, bool, const T*, const T*, bool, const T*, \
                                       T*, T*, float*, float*, float*);
RN_CUDA_FOR_EACH_ACTIVATION_TYPE(INSTANTIATE)
#undef INSTANTIATE

}  // namespace rn::cuda
