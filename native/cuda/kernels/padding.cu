// Spatial zero padding [top, bottom, left, right] over NHWC and the CIFAR option-A
// shortcut (strided subsample, channels zero-padded evenly on both sides). Every kernel
// writes each output element exactly once (a gather), so no output needs clearing first.
// Values are copied as T, unchanged; only the zeros are made.
#include "../kernels.hpp"
#include "kernel_support.cuh"

namespace rn::cuda {
namespace {

struct Pixel {
  int64_t b, i, j, ch;
};
__device__ __forceinline__ Pixel split(int64_t idx, int64_t h, int64_t w, int64_t c) {
  Pixel p;
  p.ch = idx % c;
  idx /= c;
  p.j = idx % w;
  idx /= w;
  p.i = idx % h;
  p.b = idx / h;
  return p;
}

struct Pads {
  int64_t top, bottom, left, right;
};

template <typename T>
__global__ void pad_forward_kernel(int64_t n, int64_t h, int64_t w, int64_t c, Pads p, const T* x, T* y) {
  const int64_t oh = h + p.top + p.bottom, ow = w + p.left + p.right;
  const int64_t total = n * oh * ow * c;
  for (int64_t idx = detail::global_thread(); idx < total; idx += detail::global_stride()) {
    const Pixel o = split(idx, oh, ow, c);
    const int64_t i = o.i - p.top, j = o.j - p.left;
    y[idx] = (i >= 0 && i < h && j >= 0 && j < w) ? x[((o.b * h + i) * w + j) * c + o.ch] : detail::from_float<T>(0.0f);
  }
}

template <typename T>
__global__ void pad_backward_kernel(int64_t n, int64_t h, int64_t w, int64_t c, Pads p, const T* dy, T* dx) {
  const int64_t oh = h + p.top + p.bottom, ow = w + p.left + p.right;
  const int64_t total = n * h * w * c;
  for (int64_t idx = detail::global_thread(); idx < total; idx += detail::global_stride()) {
    const Pixel in = split(idx, h, w, c);
    dx[idx] = dy[((in.b * oh + in.i + p.top) * ow + in.j + p.left) * c + in.ch];
  }
}

struct ShortcutShapes {
  int64_t h, w, c;        // input
  int64_t n, oh, ow, oc;  // output
  int64_t sh, sw, before;
};

template <typename T>
__global__ void shortcut_forward_kernel(ShortcutShapes s, const T* x, T* y) {
  const int64_t total = s.n * s.oh * s.ow * s.oc;
  for (int64_t idx = detail::global_thread(); idx < total; idx += detail::global_stride()) {
    const Pixel o = split(idx, s.oh, s.ow, s.oc);
    const int64_t ch = o.ch - s.before;
    y[idx] = (ch >= 0 && ch < s.c) ? x[((o.b * s.h + o.i * s.sh) * s.w + o.j * s.sw) * s.c + ch]
                                   : detail::from_float<T>(0.0f);
  }
}

template <typename T>
__global__ void shortcut_backward_kernel(ShortcutShapes s, const T* dy, T* dx) {
  const int64_t total = s.n * s.h * s.w * s.c;
  for (int64_t idx = detail::global_thread(); idx < total; idx += detail::global_stride()) {
    const Pixel in = split(idx, s.h, s.w, s.c);
    const bool sampled = in.i % s.sh == 0 && in.j % s.sw == 0 && in.i / s.sh < s.oh && in.j / s.sw < s.ow;
    dx[idx] = sampled ? dy[((in.b * s.oh + in.i / s.sh) * s.ow + in.j / s.sw) * s.oc + in.ch + s.before]
                      : detail::from_float<T>(0.0f);
  }
}

ShortcutShapes shortcut_shapes(const Shape& xs, const Shape& ys, int64_t sh, int64_t sw) {
  return {xs[1], xs[2], xs[3], ys[0], ys[1], ys[2], ys[3], sh, sw, (ys[3] - xs[3]) / 2};
}

}  // namespace

template <typename T>
void zero_pad_forward(cudaStream_t s, const Shape& xs, const int64_t* pads, const T* x, T* y) {
  const Pads p{pads[0], pads[1], pads[2], pads[3]};
  const int64_t total = xs[0] * (xs[1] + p.top + p.bottom) * (xs[2] + p.left + p.right) * xs[3];
  if (total <= 0) return;
  pad_forward_kernel<T><<<detail::grid_for(total), detail::kThreads, 0, s>>>(xs[0], xs[1], xs[2], xs[3], p, x, y);
}

template <typename T>
void zero_pad_backward(cudaStream_t s, const Shape& xs, const int64_t* pads, const T* dy, T* dx) {
  const Pads p{pads[0], pads[1], pads[2], pads[3]};
  const int64_t total = xs[0] * xs[1] * xs[2] * xs[3];
  if (total <= 0) return;
  pad_backward_kernel<T><<<detail::grid_for(total), detail::kThreads, 0, s>>>(xs[0], xs[1], xs[2], xs[3], p, dy, dx);
}

template <typename T>
void zero_pad_shortcut_forward(cudaStream_t s, const Shape& xs, const Shape& ys, int64_t sh, int64_t sw, const T* x,
                               T* y) {
  const int64_t total = ys[0] * ys[1] * ys[2] * ys[3];
  if (total <= 0) return;
  shortcut_forward_kernel<T>
      <<<detail::grid_for(total), detail::kThreads, 0, s>>>(shortcut_shapes(xs, ys, sh, sw), x, y);
}

template <typename T>
void zero_pad_shortcut_backward(cudaStream_t s, const Shape& xs, const Shape& ys, int64_t sh, int64_t sw, const T* dy,
                                T* dx) {
  const int64_t total = xs[0] * xs[1] * xs[2] * xs[3];
  if (total <= 0) return;
  shortcut_backward_kernel<T>
      <<<detail::grid_for(total), detail::kThreads, 0, s>>>(shortcut_shapes(xs, ys, sh, sw), dy, dx);
}

#define INSTANTIATE(T)                                                                                             \
  template void zero_pad_forward<T>(cudaStream_t, const Shape&, const int64_t*, const T*, T*);                     \
  template void zero_pad_backward<T>(cudaStream_t, const Shape&, const int64_t*, const T*, T*);                    \
  template void zero_pad_shortcut_forward<T>(cudaStream_t, const Shape&, const Shape&, int64_t, int64_t, const T*, \
                                             T*);                                                                  \
  template void zero_pad_shortcut_backward<T>(cudaStream_t, const Shape&, const Shape&, int64_t, int64_t, const T*, T*);
RN_CUDA_FOR_EACH_ACTIVATION_TYPE(INSTANTIATE)
#undef INSTANTIATE

}  // namespace rn::cuda
