// Spatial zero padding [top, bottom, left, right] over NHWC and the CIFAR option-A
// shortcut (strided subsample, channels zero-padded evenly on both sides). Every kernel
// writes each output element exactly once (a gather), so no output needs clearing first.
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

__global__ void pad_forward_kernel(int64_t n, int64_t h, int64_t w, int64_t c, Pads p, const float* x, float* y) {
  const int64_t oh = h + p.top + p.bottom, ow = w + p.left + p.right;
  const int64_t total = n * oh * ow * c;
  for (int64_t idx = detail::global_thread(); idx < total; idx += detail::global_stride()) {
    const Pixel o = split(idx, oh, ow, c);
    const int64_t i = o.i - p.top, j = o.j - p.left;
    y[idx] = (i >= 0 && i < h && j >= 0 && j < w) ? x[((o.b * h + i) * w + j) * c + o.ch] : 0.0f;
  }
}

__global__ void pad_backward_kernel(int64_t n, int64_t h, int64_t w, int64_t c, Pads p, const float* dy, float* dx) {
  const int64_t oh = h + p.top + p.bottom, ow = w + p.left + p.right;
  const int64_t total = n * h * w * c;
  for (int64_t idx = detail::global_thread(); idx < total; idx += detail::global_stride()) {
    const Pixel in = split(idx, h, w, c);
    dx[idx] = dy[((in.b * oh + in.i + p.top) * ow + in.j + p.left) * c + in.ch];
  }
}

struct ShortcutShapes {
  int64_t h, w, c;      // input
  int64_t n, oh, ow, oc;  // output
  int64_t sh, sw, before;
};

__global__ void shortcut_forward_kernel(ShortcutShapes s, const float* x, float* y) {
  const int64_t total = s.n * s.oh * s.ow * s.oc;
  for (int64_t idx = detail::global_thread(); idx < total; idx += detail::global_stride()) {
    const Pixel o = split(idx, s.oh, s.ow, s.oc);
    const int64_t ch = o.ch - s.before;
    y[idx] = (ch >= 0 && ch < s.c) ? x[((o.b * s.h + o.i * s.sh) * s.w + o.j * s.sw) * s.c + ch] : 0.0f;
  }
}

__global__ void shortcut_backward_kernel(ShortcutShapes s, const float* dy, float* dx) {
  const int64_t total = s.n * s.h * s.w * s.c;
  for (int64_t idx = detail::global_thread(); idx < total; idx += detail::global_stride()) {
    const Pixel in = split(idx, s.h, s.w, s.c);
    const bool sampled = in.i % s.sh == 0 && in.j % s.sw == 0 && in.i / s.sh < s.oh && in.j / s.sw < s.ow;
    dx[idx] = sampled ? dy[((in.b * s.oh + in.i / s.sh) * s.ow + in.j / s.sw) * s.oc + in.ch + s.before] : 0.0f;
  }
}

ShortcutShapes shortcut_shapes(const Shape& xs, const Shape& ys, int64_t sh, int64_t sw) {
  return {xs[1], xs[2], xs[3], ys[0], ys[1], ys[2], ys[3], sh, sw, (ys[3] - xs[3]) / 2};
}

}  // namespace

void zero_pad_forward(cudaStream_t s, const Shape& xs, const int64_t* pads, const float* x, float* y) {
  const Pads p{pads[0], pads[1], pads[2], pads[3]};
  const int64_t total = xs[0] * (xs[1] + p.top + p.bottom) * (xs[2] + p.left + p.right) * xs[3];
  if (total <= 0) return;
  pad_forward_kernel<<<detail::grid_for(total), detail::kThreads, 0, s>>>(xs[0], xs[1], xs[2], xs[3], p, x, y);
}

void zero_pad_backward(cudaStream_t s, const Shape& xs, const int64_t* pads, const float* dy, float* dx) {
  const Pads p{pads[0], pads[1], pads[2], pads[3]};
  const int64_t total = xs[0] * xs[1] * xs[2] * xs[3];
  if (total <= 0) return;
  pad_backward_kernel<<<detail::grid_for(total), detail::kThreads, 0, s>>>(xs[0], xs[1], xs[2], xs[3], p, dy, dx);
}

void zero_pad_shortcut_forward(cudaStream_t s, const Shape& xs, const Shape& ys, int64_t sh, int64_t sw,
                               const float* x, float* y) {
  const int64_t total = ys[0] * ys[1] * ys[2] * ys[3];
  if (total <= 0) return;
  shortcut_forward_kernel<<<detail::grid_for(total), detail::kThreads, 0, s>>>(shortcut_shapes(xs, ys, sh, sw), x, y);
}

void zero_pad_shortcut_backward(cudaStream_t s, const Shape& xs, const Shape& ys, int64_t sh, int64_t sw,
                                const float* dy, float* dx) {
  const int64_t total = xs[0] * xs[1] * xs[2] * xs[3];
  if (total <= 0) return;
  shortcut_backward_kernel<<<detail::grid_for(total), detail::kThreads, 0, s>>>(shortcut_shapes(xs, ys, sh, sw), dy,
                                                                                 dx);
}

}  // namespace rn::cuda
