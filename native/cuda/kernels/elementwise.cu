// Element-wise kernels over flat buffers: ReLU and its backward from the saved output,
// add (+ ReLU), accumulate, scale and type conversion. 4-wide bodies where every buffer is
// aligned for its vectors; the last count % 4 elements go to the first few threads.
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

template <typename T>
struct Relu {
  const T* x;
  T* y;
  template <int V>
  __device__ void apply(int64_t i) const {
    Floats<V> v = load<V>(x + i);
#pragma unroll
    for (int k = 0; k < V; ++k) v.v[k] = fmaxf(v.v[k], 0.0f);
    store<V>(y + i, v);
  }
};

template <typename T>
struct ReluBackward {
  const T *y, *dy;
  T* dx;
  template <int V>
  __device__ void apply(int64_t i) const {
    const Floats<V> out = load<V>(y + i);
    Floats<V> g = load<V>(dy + i);
#pragma unroll
    for (int k = 0; k < V; ++k) g.v[k] = out.v[k] > 0.0f ? g.v[k] : 0.0f;
    store<V>(dx + i, g);
  }
};

template <typename T>
struct Add {
  const T *a, *b;
  bool relu;
  T* y;
  template <int V>
  __device__ void apply(int64_t i) const {
    Floats<V> u = load<V>(a + i);
    const Floats<V> w = load<V>(b + i);
#pragma unroll
    for (int k = 0; k < V; ++k) u.v[k] = relu ? fmaxf(u.v[k] + w.v[k], 0.0f) : u.v[k] + w.v[k];
    store<V>(y + i, u);
  }
};

template <typename T>
struct Accumulate {
  const T* x;
  T* y;
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

// Through float, which every activation type widens to exactly: one rounding at most.
template <typename From, typename To>
struct Convert {
  const From* x;
  To* y;
  template <int V>
  __device__ void apply(int64_t i) const {
    store<V>(y + i, load<V>(x + i));
  }
};

}  // namespace

template <typename T>
void relu_forward(cudaStream_t s, int64_t count, const T* x, T* y) {
  launch(s, count, detail::all_vector_aligned(x, y), Relu<T>{x, y});
}

template <typename T>
void relu_backward_from_output(cudaStream_t s, int64_t count, const T* y, const T* dy, T* dx) {
  launch(s, count, detail::all_vector_aligned(y, dy, dx), ReluBackward<T>{y, dy, dx});
}

template <typename T>
void add_forward(cudaStream_t s, int64_t count, const T* a, const T* b, bool relu, T* y) {
  launch(s, count, detail::all_vector_aligned(a, b, y), Add<T>{a, b, relu, y});
}

template <typename T>
void accumulate(cudaStream_t s, int64_t count, const T* x, T* y) {
  launch(s, count, detail::all_vector_aligned(x, y), Accumulate<T>{x, y});
}

void scale(cudaStream_t s, int64_t count, float factor, float* x) {
  launch(s, count, detail::vector_aligned(x), Scale{factor, x});
}

template <typename From, typename To>
void convert(cudaStream_t s, int64_t count, const From* x, To* y) {
  launch(s, count, detail::all_vector_aligned(x, y), Convert<From, To>{x, y});
}

#define INSTANTIATE(T)                                                                       \
  template void relu_forward<T>(cudaStream_t, int64_t, const T*, T*);                        \
  template void relu_backward_from_output<T>(cudaStream_t, int64_t, const T*, const T*, T*); \
  template void add_forward<T>(cudaStream_t, int64_t, const T*, const T*, bool, T*);         \
  template void accumulate<T>(cudaStream_t, int64_t, const T*, T*);                          \
  template void convert<float, T>(cudaStream_t, int64_t, const float*, T*);
RN_CUDA_FOR_EACH_ACTIVATION_TYPE(INSTANTIATE)
#undef INSTANTIATE
template void convert<__half, float>(cudaStream_t, int64_t, const __half*, float*);
template void convert<__nv_bfloat16, float>(cudaStream_t, int64_t, const __nv_bfloat16*, float*);

}  // namespace rn::cuda
