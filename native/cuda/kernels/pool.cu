// Max / average pooling and global average pooling over NHWC, as native/cpu/reference/
// pool.cpp: windows clipped to the image, average over the real (unpadded) pixel count,
// max-pool gradient to the first maximum of each window. Backward passes gather (one
// thread per input element, windows visited in the CPU's order) instead of scattering
// with atomics, so they are deterministic and bit-identical to the CPU sums.
#include "../kernels.hpp"
#include "kernel_support.cuh"

namespace rn::cuda {
namespace {

struct Window {
  int64_t h0, h1, w0, w1;  // [h0, h1) × [w0, w1), clipped to the image
};

__device__ __forceinline__ Window window(const Pool2dGeometry& g, int64_t oh, int64_t ow) {
  const int64_t h0 = oh * g.stride_h - g.pad_top, w0 = ow * g.stride_w - g.pad_left;
  return {h0 > 0 ? h0 : 0, h0 + g.kh < g.h ? h0 + g.kh : g.h, w0 > 0 ? w0 : 0, w0 + g.kw < g.w ? w0 + g.kw : g.w};
}

// Output rows/columns whose window covers input index i: o·stride − pad ≤ i < o·stride − pad + k.
__device__ __forceinline__ void covering(int64_t i, int64_t k, int64_t stride, int64_t pad, int64_t out,
                                         int64_t* first, int64_t* last) {
  const int64_t lo = i + pad - k + 1;  // o·stride ≥ lo
  *first = lo <= 0 ? 0 : (lo + stride - 1) / stride;
  const int64_t hi = (i + pad) / stride;  // i + pad ≥ 0 for inputs inside the image
  *last = hi < out - 1 ? hi : out - 1;
}

struct OutputIndex {
  int64_t b, oh, ow, c;
};
__device__ __forceinline__ OutputIndex split(int64_t idx, int64_t h, int64_t w, int64_t c) {
  OutputIndex o;
  o.c = idx % c;
  idx /= c;
  o.ow = idx % w;
  idx /= w;
  o.oh = idx % h;
  o.b = idx / h;
  return o;
}

__device__ __forceinline__ int64_t first_max_at(const Pool2dGeometry& g, const float* x, int64_t b, const Window& wb,
                                                int64_t c) {
  int64_t best_at = ((b * g.h + wb.h0) * g.w + wb.w0) * g.c + c;
  for (int64_t ih = wb.h0; ih < wb.h1; ++ih) {
    for (int64_t iw = wb.w0; iw < wb.w1; ++iw) {
      const int64_t at = ((b * g.h + ih) * g.w + iw) * g.c + c;
      if (x[at] > x[best_at]) best_at = at;
    }
  }
  return best_at;
}

__global__ void max_forward_kernel(Pool2dGeometry g, const float* x, float* y) {
  const int64_t total = g.n * g.out_h * g.out_w * g.c;
  for (int64_t i = detail::global_thread(); i < total; i += detail::global_stride()) {
    const OutputIndex o = split(i, g.out_h, g.out_w, g.c);
    const Window wb = window(g, o.oh, o.ow);
    float best = x[((o.b * g.h + wb.h0) * g.w + wb.w0) * g.c + o.c];
    for (int64_t ih = wb.h0; ih < wb.h1; ++ih) {
      for (int64_t iw = wb.w0; iw < wb.w1; ++iw) {
        const float v = x[((o.b * g.h + ih) * g.w + iw) * g.c + o.c];
        best = best < v ? v : best;  // std::max(best, v)
      }
    }
    y[i] = best;
  }
}

__global__ void max_backward_kernel(Pool2dGeometry g, const float* x, const float* dy, float* dx) {
  const int64_t total = g.n * g.h * g.w * g.c;
  for (int64_t i = detail::global_thread(); i < total; i += detail::global_stride()) {
    const OutputIndex in = split(i, g.h, g.w, g.c);  // (b, ih, iw, c)
    int64_t oh0, oh1, ow0, ow1;
    covering(in.oh, g.kh, g.stride_h, g.pad_top, g.out_h, &oh0, &oh1);
    covering(in.ow, g.kw, g.stride_w, g.pad_left, g.out_w, &ow0, &ow1);
    float grad = 0.0f;
    for (int64_t oh = oh0; oh <= oh1; ++oh) {
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        if (first_max_at(g, x, in.b, window(g, oh, ow), in.c) == i) {
          grad += dy[((in.b * g.out_h + oh) * g.out_w + ow) * g.c + in.c];
        }
      }
    }
    dx[i] = grad;
  }
}

__global__ void avg_forward_kernel(Pool2dGeometry g, const float* x, float* y) {
  const int64_t total = g.n * g.out_h * g.out_w * g.c;
  for (int64_t i = detail::global_thread(); i < total; i += detail::global_stride()) {
    const OutputIndex o = split(i, g.out_h, g.out_w, g.c);
    const Window wb = window(g, o.oh, o.ow);
    const double count = double((wb.h1 - wb.h0) * (wb.w1 - wb.w0));
    double s = 0.0;
    for (int64_t ih = wb.h0; ih < wb.h1; ++ih) {
      for (int64_t iw = wb.w0; iw < wb.w1; ++iw) s += x[((o.b * g.h + ih) * g.w + iw) * g.c + o.c];
    }
    y[i] = static_cast<float>(s / count);
  }
}

__global__ void avg_backward_kernel(Pool2dGeometry g, const float* dy, float* dx) {
  const int64_t total = g.n * g.h * g.w * g.c;
  for (int64_t i = detail::global_thread(); i < total; i += detail::global_stride()) {
    const OutputIndex in = split(i, g.h, g.w, g.c);
    int64_t oh0, oh1, ow0, ow1;
    covering(in.oh, g.kh, g.stride_h, g.pad_top, g.out_h, &oh0, &oh1);
    covering(in.ow, g.kw, g.stride_w, g.pad_left, g.out_w, &ow0, &ow1);
    float grad = 0.0f;
    for (int64_t oh = oh0; oh <= oh1; ++oh) {
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        const Window wb = window(g, oh, ow);
        const float scale = 1.0f / static_cast<float>((wb.h1 - wb.h0) * (wb.w1 - wb.w0));
        grad += dy[((in.b * g.out_h + oh) * g.out_w + ow) * g.c + in.c] * scale;
      }
    }
    dx[i] = grad;
  }
}

// One thread per (image, channel); consecutive threads read consecutive channels.
__global__ void global_avg_forward_kernel(int64_t n, int64_t hw, int64_t c, const float* x, float* y) {
  for (int64_t i = detail::global_thread(); i < n * c; i += detail::global_stride()) {
    const int64_t b = i / c, ch = i % c;
    const float* px = x + b * hw * c + ch;
    double s = 0.0;
    for (int64_t p = 0; p < hw; ++p) s += px[p * c];
    y[i] = static_cast<float>(s / double(hw));
  }
}

__global__ void global_avg_backward_kernel(int64_t n, int64_t hw, int64_t c, const float* dy, float* dx) {
  const float scale = 1.0f / static_cast<float>(hw);
  for (int64_t i = detail::global_thread(); i < n * hw * c; i += detail::global_stride()) {
    dx[i] = dy[(i / (hw * c)) * c + i % c] * scale;
  }
}

int64_t outputs(const Pool2dGeometry& g) { return g.n * g.out_h * g.out_w * g.c; }
int64_t inputs(const Pool2dGeometry& g) { return g.n * g.h * g.w * g.c; }

}  // namespace

void max_pool_forward(cudaStream_t s, const Pool2dGeometry& g, const float* x, float* y) {
  if (outputs(g) <= 0) return;
  max_forward_kernel<<<detail::grid_for(outputs(g)), detail::kThreads, 0, s>>>(g, x, y);
}

void max_pool_backward(cudaStream_t s, const Pool2dGeometry& g, const float* x, const float* dy, float* dx) {
  if (inputs(g) <= 0) return;
  max_backward_kernel<<<detail::grid_for(inputs(g)), detail::kThreads, 0, s>>>(g, x, dy, dx);
}

void avg_pool_forward(cudaStream_t s, const Pool2dGeometry& g, const float* x, float* y) {
  if (outputs(g) <= 0) return;
  avg_forward_kernel<<<detail::grid_for(outputs(g)), detail::kThreads, 0, s>>>(g, x, y);
}

void avg_pool_backward(cudaStream_t s, const Pool2dGeometry& g, const float* dy, float* dx) {
  if (inputs(g) <= 0) return;
  avg_backward_kernel<<<detail::grid_for(inputs(g)), detail::kThreads, 0, s>>>(g, dy, dx);
}

void global_avg_pool_forward(cudaStream_t s, int64_t n, int64_t hw, int64_t c, const float* x, float* y) {
  if (n * c <= 0 || hw <= 0) return;
  global_avg_forward_kernel<<<detail::grid_for(n * c), detail::kThreads, 0, s>>>(n, hw, c, x, y);
}

void global_avg_pool_backward(cudaStream_t s, int64_t n, int64_t hw, int64_t c, const float* dy, float* dx) {
  if (n * hw * c <= 0) return;
  global_avg_backward_kernel<<<detail::grid_for(n * hw * c), detail::kThreads, 0, s>>>(n, hw, c, dy, dx);
}

}  // namespace rn::cuda
