// Squeeze-and-excitation over NHWC [n, hw, c]: pool → dense → ReLU → dense → sigmoid →
// scale, and its backward, with the CPU backend's saved buffers (pooled, hidden_act, gate)
// and scratch layout (dgate [n, c], dpooled [n, c], dhidden [n, hidden]). Only x, y, dy
// and dx are activations (T); the saved buffers, the small dense layers between them and
// the scratch are float.
#include <cmath>

#include "../kernels.hpp"
#include "kernel_support.cuh"

namespace rn::cuda {
namespace {

// pooled[b, c] = Σ_p x[b, p, c] / hw, summed in float in pixel order as the CPU does.
template <typename T>
__global__ void pool_kernel(int64_t n, int64_t hw, int64_t c, const T* x, float* pooled) {
  for (int64_t i = detail::global_thread(); i < n * c; i += detail::global_stride()) {
    const T* px = x + (i / c) * hw * c + i % c;
    float s = 0.0f;
    for (int64_t p = 0; p < hw; ++p) s += detail::to_float(px[p * c]);
    pooled[i] = s / static_cast<float>(hw);
  }
}

__global__ void sigmoid_kernel(int64_t count, float* g) {
  for (int64_t i = detail::global_thread(); i < count; i += detail::global_stride()) g[i] = 1.0f / (1.0f + expf(-g[i]));
}

template <typename T>
__global__ void gate_kernel(int64_t n, int64_t hw, int64_t c, const T* x, const float* gate, T* y) {
  for (int64_t i = detail::global_thread(); i < n * hw * c; i += detail::global_stride()) {
    y[i] = detail::from_float<T>(detail::to_float(x[i]) * gate[(i / (hw * c)) * c + i % c]);
  }
}

// dgate[b, c] = Σ_p dy · x, through the sigmoid: · g (1 − g).
template <typename T>
__global__ void gate_gradient_kernel(int64_t n, int64_t hw, int64_t c, const T* x, const T* dy, const float* gate,
                                     float* dgate) {
  for (int64_t i = detail::global_thread(); i < n * c; i += detail::global_stride()) {
    const int64_t base = (i / c) * hw * c + i % c;
    float s = 0.0f;
    for (int64_t p = 0; p < hw; ++p) s += detail::to_float(dy[base + p * c]) * detail::to_float(x[base + p * c]);
    const float g = gate[i];
    dgate[i] = s * (g * (1.0f - g));
  }
}

__global__ void relu_mask_kernel(int64_t count, const float* act, float* grad) {
  for (int64_t i = detail::global_thread(); i < count; i += detail::global_stride()) {
    if (act[i] <= 0.0f) grad[i] = 0.0f;
  }
}

// dx = dy · gate + dpooled / hw: the pooled path spread evenly over the image.
template <typename T>
__global__ void input_gradient_kernel(int64_t n, int64_t hw, int64_t c, const T* dy, const float* gate,
                                      const float* dpooled, T* dx) {
  for (int64_t i = detail::global_thread(); i < n * hw * c; i += detail::global_stride()) {
    const int64_t bc = (i / (hw * c)) * c + i % c;
    dx[i] = detail::from_float<T>(detail::to_float(dy[i]) * gate[bc] + dpooled[bc] / static_cast<float>(hw));
  }
}

}  // namespace

template <typename T>
void squeeze_excite_forward(cudaStream_t s, const SqueezeExciteArgs& a, const T* x, T* y) {
  const int64_t n = a.n, hw = a.hw, c = a.c;
  if (n * hw * c <= 0 || a.hidden <= 0) return;
  pool_kernel<T><<<detail::grid_for(n * c), detail::kThreads, 0, s>>>(n, hw, c, x, a.pooled);
  dense_forward<float>(s, n, c, a.hidden, a.pooled, a.w1, a.b1, a.hidden_act);
  relu_forward<float>(s, n * a.hidden, a.hidden_act, a.hidden_act);
  dense_forward<float>(s, n, a.hidden, c, a.hidden_act, a.w2, a.b2, a.gate);
  sigmoid_kernel<<<detail::grid_for(n * c), detail::kThreads, 0, s>>>(n * c, a.gate);
  gate_kernel<T><<<detail::grid_for(n * hw * c), detail::kThreads, 0, s>>>(n, hw, c, x, a.gate, y);
}

template <typename T>
void squeeze_excite_backward(cudaStream_t s, const SqueezeExciteArgs& a, const T* x, const T* dy, T* dx, float* dw1,
                             float* db1, float* dw2, float* db2, float* scratch) {
  const int64_t n = a.n, hw = a.hw, c = a.c, hidden = a.hidden;
  if (n * hw * c <= 0 || hidden <= 0) return;
  float* dgate = scratch;
  float* dpooled = dgate + n * c;
  float* dhidden = dpooled + n * c;
  gate_gradient_kernel<T><<<detail::grid_for(n * c), detail::kThreads, 0, s>>>(n, hw, c, x, dy, a.gate, dgate);
  dense_backward<float>(s, n, hidden, c, a.hidden_act, a.w2, dgate, dhidden, dw2, db2);
  relu_mask_kernel<<<detail::grid_for(n * hidden), detail::kThreads, 0, s>>>(n * hidden, a.hidden_act, dhidden);
  dense_backward<float>(s, n, c, hidden, a.pooled, a.w1, dhidden, dpooled, dw1, db1);
  input_gradient_kernel<T><<<detail::grid_for(n * hw * c), detail::kThreads, 0, s>>>(n, hw, c, dy, a.gate, dpooled, dx);
}

#define INSTANTIATE(T)                                                                                             \
  template void squeeze_excite_forward<T>(cudaStream_t, const SqueezeExciteArgs&, const T*, T*);                   \
  template void squeeze_excite_backward<T>(cudaStream_t, const SqueezeExciteArgs&, const T*, const T*, T*, float*, \
                                           float*, float*, float*, float*);
RN_CUDA_FOR_EACH_ACTIVATION_TYPE(INSTANTIATE)
#undef INSTANTIATE

}  // namespace rn::cuda
