// Element-wise kernels over flat buffers: ReLU and its backward from the saved output,
// add (+ ReLU), accumulate and scale. float4 bodies where every buffer is 16-byte
// aligned; the last count % 4 elements go to the first few threads.
#include "../kernels.hpp"
#include "kernel_support.cuh"

namespace rn::cuda {
namespace {

using detail::Floats;
using detail::load;
using detail::store;

template <int V, typename Op>
__global__ void __launch_bounds__(detail::kThreads) elementwise_kernel(int64_t groups, int64_t tail, Op op) {
  const int64_t first = detail::global_thread(), stride = detail::global_stride();
  for (int64_t g = first; g < groups; g += stride) op.template apply<V>(g * V);
  if (first < tail) op.template apply<1>(groups * V + first);
}

template <typename Op>
void launch(cudaStream_t s, int64_t count, bool aligned, const Op& op) {
  if (count <= 0) return;
  if (aligned && count >= 4) {
    const int64_t groups = count / 4;
    elementwise_kernel<4><<<detail::grid_for(groups), detail::kThreads, 0, s>>>(groups, count - 4 * groups, op);
  } else {
    elementwise_kernel<1><<<detail::grid_for(count), detail::kThreads, 0, s>>>(count, 0, op);
  }
}

struct Relu {
  const float* x;
  float* y;
  template <int V>
  __device__ void apply(int64_t i) const {
    Floats<V> v = load<V>(x + i);
#pragma unroll
    for (int k = 0; k < V; ++k) v.v[k] = fmaxf(v.v[k], 0.0f);
    store<V>(y + i, v);
  }
};

struct ReluBackward {
  const float *y, *dy;
  float* dx;
  template <int V>
  __device__ void apply(int64_t i) const {
    const Floats<V> out = load<V>(y + i);
    Floats<V> g = load<V>(dy + i);
#pragma unroll
    for (int k = 0; k < V; ++k) g.v[k] = out.v[k] > 0.0f ? g.v[k] : 0.0f;
    store<V>(dx + i, g);
  }
};

struct Add {
  const float *a, *b;
  bool relu;
  float* y;
  template <int V>
  __device__ void apply(int64_t i) const {
    Floats<V> u = load<V>(a + i);
    const Floats<V> w = load<V>(b + i);
#pragma unroll
    for (int k = 0; k < V; ++k) u.v[k] = relu ? fmaxf(u.v[k] + w.v[k], 0.0f) : u.v[k] + w.v[k];
    store<V>(y + i, u);
  }
};

struct Accumulate {
  const float* x;
  float* y;
  template <int V>
  __device__ void apply(int64_t i) const {
    Floats<V> acc = load<V>(y + i);
    const Floats<V> v = load<V>(x + i);
#pragma unroll
    for (int k = 0; k < V; ++k) acc.v[k] += v.v[k];
    store<V>(y + i, acc);
  }
};

struct Scale {
  float factor;
  float* x;
  template <int V>
  __device__ void apply(int64_t i) const {
    Floats<V> v = load<V>(x + i);
#pragma unroll
    for (int k = 0; k < V; ++k) v.v[k] *= factor;
    store<V>(x + i, v);
  }
};

}  // namespace

void relu_forward(cudaStream_t s, int64_t count, const float* x, float* y) {
  launch(s, count, detail::all_aligned16(x, y), Relu{x, y});
}

void relu_backward_from_output(cudaStream_t s, int64_t count, const float* y, const float* dy, float* dx) {
  launch(s, count, detail::all_aligned16(y, dy, dx), ReluBackward{y, dy, dx});
}

void add_forward(cudaStream_t s, int64_t count, const float* a, const float* b, bool relu, float* y) {
  launch(s, count, detail::all_aligned16(a, b, y), Add{a, b, relu, y});
}

void accumulate(cudaStream_t s, int64_t count, const float* x, float* y) {
  launch(s, count, detail::all_aligned16(x, y), Accumulate{x, y});
}

void scale(cudaStream_t s, int64_t count, float factor, float* x) {
  launch(s, count, detail::aligned16(x), Scale{factor, x});
}

}  // namespace rn::cuda
