// Max / average pooling and global average pooling over NHWC, as native/cpu/reference/
// pool.cpp: windows clipped to the image, average over the real (unpadded) pixel count,
// max-pool gradient to the first maximum of each window. Backward passes gather (each
// input element visits the windows covering it in the CPU's order) instead of scattering
// with atomics, so they are deterministic and add in the CPU's order. Values are compared
// and summed as floats (widened exactly from T) and rounded to T once, on store.
#include <type_traits>

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
__device__ __forceinline__ void covering(int64_t i, int64_t k, int64_t stride, int64_t pad, int64_t out, int64_t* first,
                                         int64_t* last) {
  const int64_t lo = i + pad - k + 1;  // o·stride ≥ lo
  *first = lo <= 0 ? 0 : (lo + stride - 1) / stride;
  const int64_t hi = (i + pad) / stride;  // i + pad ≥ 0 for inputs inside the image
  *last = hi < out - 1 ? hi : out - 1;
}

// Threads are laid out as kChannelLanes across channels (coalesced NHWC reads) by
// kPixelLanes across pixels; a thread decomposes its pixel index once (the 64-bit
// divisions are the costly part of the index math) and then walks its channels.
constexpr int kChannelLanes = 32, kPixelLanes = 8;

struct Pixel {
  int64_t b, i, j;
};
__device__ __forceinline__ Pixel split(int64_t p, int64_t h, int64_t w) { return {p / (h * w), (p / w) % h, p % w}; }

unsigned pixel_grid(int64_t pixels) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(detail::ceil_div(pixels, kPixelLanes), int64_t{65535})));
}

#define FOR_EACH_PIXEL(p, pixels) \
  for (int64_t p = int64_t(blockIdx.x) * kPixelLanes + threadIdx.y; p < (pixels); p += int64_t(gridDim.x) * kPixelLanes)
#define FOR_EACH_CHANNEL(ch, c) for (int64_t ch = threadIdx.x; ch < (c); ch += kChannelLanes)

// Whether input (ih, iw) holds the first maximum of window wb in the CPU's scan order:
// greater than every element before it, not less than any after it. `image` points at
// the input's image and channel; v is its value.
template <typename T>
__device__ __forceinline__ bool is_first_max(const Pool2dGeometry& g, const T* image, const Window& wb, int64_t ih,
                                             int64_t iw, float v) {
  for (int64_t eh = wb.h0; eh < wb.h1; ++eh) {
    for (int64_t ew = wb.w0; ew < wb.w1; ++ew) {
      const float e = detail::to_float(image[(eh * g.w + ew) * g.c]);
      const bool before = eh < ih || (eh == ih && ew < iw);
      if (before ? !(e < v) : e > v) return false;
    }
  }
  return true;
}

// A window's first maximum in the CPU's scan (its first element, replaced only by a
// strictly greater one; NaNs behave as there too): value and flat input pixel ih·w + iw.
// K > 0 unrolls a K × K window so all its loads are in flight together (pooling is
// latency-bound otherwise); K == 0 takes any window size.
template <int K, typename T>
__device__ __forceinline__ void first_max(const Pool2dGeometry& g, const T* image_ch, int64_t oh, int64_t ow,
                                          float* value, int64_t* pixel) {
  float best = 0.0f;
  int64_t at = -1;
  if constexpr (K > 0) {
    const int64_t h0 = oh * g.stride_h - g.pad_top, w0 = ow * g.stride_w - g.pad_left;
    float v[K][K];
    bool inside[K][K];
#pragma unroll
    for (int dh = 0; dh < K; ++dh) {
#pragma unroll
      for (int dw = 0; dw < K; ++dw) {
        const int64_t ih = h0 + dh, iw = w0 + dw;
        inside[dh][dw] = ih >= 0 && ih < g.h && iw >= 0 && iw < g.w;
        v[dh][dw] = inside[dh][dw] ? detail::to_float(image_ch[(ih * g.w + iw) * g.c]) : 0.0f;
      }
    }
#pragma unroll
    for (int dh = 0; dh < K; ++dh) {
#pragma unroll
      for (int dw = 0; dw < K; ++dw) {
        if (inside[dh][dw] && (at < 0 || v[dh][dw] > best)) best = v[dh][dw], at = (h0 + dh) * g.w + w0 + dw;
      }
    }
  } else {
    const Window wb = window(g, oh, ow);
    for (int64_t ih = wb.h0; ih < wb.h1; ++ih) {
      for (int64_t iw = wb.w0; iw < wb.w1; ++iw) {
        const float v = detail::to_float(image_ch[(ih * g.w + iw) * g.c]);
        if (at < 0 || v > best) best = v, at = ih * g.w + iw;
      }
    }
  }
  *value = best;
  *pixel = at;
}

// Square windows the kernels unroll; others take the generic loop.
template <typename Launch>
void dispatch_window(const Pool2dGeometry& g, const Launch& launch) {
  if (g.kh == 3 && g.kw == 3) {
    launch(std::integral_constant<int, 3>{});
  } else if (g.kh == 2 && g.kw == 2) {
    launch(std::integral_constant<int, 2>{});
  } else {
    launch(std::integral_constant<int, 0>{});
  }
}

template <int K, typename T>
__global__ void max_forward_kernel(Pool2dGeometry g, const T* x, T* y) {
  FOR_EACH_PIXEL(p, g.n * g.out_h * g.out_w) {
    const Pixel o = split(p, g.out_h, g.out_w);
    const T* image = x + o.b * g.h * g.w * g.c;
    FOR_EACH_CHANNEL(ch, g.c) {
      float best;
      int64_t unused;
      first_max<K>(g, image + ch, o.i, o.j, &best, &unused);
      y[p * g.c + ch] = detail::from_float<T>(best);
    }
  }
}

// Gather: each input sums dy over the windows (in the CPU's order) whose first maximum it is.
template <typename T>
__global__ void max_backward_kernel(Pool2dGeometry g, const T* x, const T* dy, T* dx) {
  FOR_EACH_PIXEL(p, g.n * g.h * g.w) {
    const Pixel in = split(p, g.h, g.w);
    int64_t oh0, oh1, ow0, ow1;
    covering(in.i, g.kh, g.stride_h, g.pad_top, g.out_h, &oh0, &oh1);
    covering(in.j, g.kw, g.stride_w, g.pad_left, g.out_w, &ow0, &ow1);
    const T* image = x + in.b * g.h * g.w * g.c;
    const T* dy_image = dy + in.b * g.out_h * g.out_w * g.c;
    FOR_EACH_CHANNEL(ch, g.c) {
      const float v = detail::to_float(x[p * g.c + ch]);
      float grad = 0.0f;
      for (int64_t oh = oh0; oh <= oh1; ++oh) {
        for (int64_t ow = ow0; ow <= ow1; ++ow) {
          if (is_first_max(g, image + ch, window(g, oh, ow), in.i, in.j, v)) {
            grad += detail::to_float(dy_image[(oh * g.out_w + ow) * g.c + ch]);
          }
        }
      }
      dx[p * g.c + ch] = detail::from_float<T>(grad);
    }
  }
}

// The tiled max-pool backward: a block owns a tile x tile square of input pixels of one
// image and 32 channels. Phase 1 finds, once, the first maximum of every window that
// covers the tile (the CPU's scan, result as the flat input pixel ih·w + iw) and keeps it
// with that window's dy in shared memory; phase 2 lets each owned input gather the dy of
// the windows (in the CPU's order) whose first maximum it is. Each window is scanned
// about once instead of once per input it covers, and there are no atomics.
struct CoverTable {
  int64_t oh0, ow0;  // first covering output row / column of the tile
  int rows, cols;    // covering outputs per side
};

__device__ __forceinline__ CoverTable tile_cover(const Pool2dGeometry& g, int64_t ih0, int64_t ih1, int64_t iw0,
                                                 int64_t iw1) {
  int64_t a, b, c, d, unused;
  covering(ih0, g.kh, g.stride_h, g.pad_top, g.out_h, &a, &unused);
  covering(ih1 - 1, g.kh, g.stride_h, g.pad_top, g.out_h, &unused, &b);
  covering(iw0, g.kw, g.stride_w, g.pad_left, g.out_w, &c, &unused);
  covering(iw1 - 1, g.kw, g.stride_w, g.pad_left, g.out_w, &unused, &d);
  return {a, c, static_cast<int>(b >= a ? b - a + 1 : 0), static_cast<int>(d >= c ? d - c + 1 : 0)};
}

// Covering outputs per side a tile of `tile` inputs can need, at most.
int64_t max_cover(int64_t tile, int64_t k, int64_t stride) { return (tile - 2 + k) / stride + 1; }

template <int K, typename T>
__global__ void __launch_bounds__(kChannelLanes* kPixelLanes)
    max_backward_tiled_kernel(Pool2dGeometry g, int tile, const T* x, const T* dy, T* dx) {
  extern __shared__ unsigned char table_bytes[];
  const int64_t tiles_w = detail::ceil_div(g.w, tile);
  const int64_t b = blockIdx.z;
  const int64_t ih0 = int64_t(blockIdx.y / tiles_w) * tile, iw0 = int64_t(blockIdx.y % tiles_w) * tile;
  const int64_t ih1 = ih0 + tile < g.h ? ih0 + tile : g.h, iw1 = iw0 + tile < g.w ? iw0 + tile : g.w;
  const int64_t ch = int64_t(blockIdx.x) * kChannelLanes + threadIdx.x;
  const CoverTable cover = tile_cover(g, ih0, ih1, iw0, iw1);
  const int entries = cover.rows * cover.cols;
  auto* max_pixel = reinterpret_cast<int64_t*>(table_bytes);                        // [entries][kChannelLanes]
  auto* window_dy = reinterpret_cast<float*>(max_pixel + entries * kChannelLanes);  // same shape
  const T* image = x + b * g.h * g.w * g.c;
  const T* dy_image = dy + b * g.out_h * g.out_w * g.c;

  for (int e = threadIdx.y; e < entries; e += kPixelLanes) {
    const int64_t oh = cover.oh0 + e / cover.cols, ow = cover.ow0 + e % cover.cols;
    int64_t best_pixel = -1;
    float d = 0.0f;
    if (ch < g.c) {
      float unused;
      first_max<K>(g, image + ch, oh, ow, &unused, &best_pixel);
      d = detail::to_float(dy_image[(oh * g.out_w + ow) * g.c + ch]);
    }
    max_pixel[e * kChannelLanes + threadIdx.x] = best_pixel;
    window_dy[e * kChannelLanes + threadIdx.x] = d;
  }
  __syncthreads();
  if (ch >= g.c) return;
  const int64_t tile_w = iw1 - iw0;
  for (int64_t q = threadIdx.y; q < (ih1 - ih0) * tile_w; q += kPixelLanes) {
    const int64_t ih = ih0 + q / tile_w, iw = iw0 + q % tile_w, pixel = ih * g.w + iw;
    int64_t oh0, oh1, ow0, ow1;
    covering(ih, g.kh, g.stride_h, g.pad_top, g.out_h, &oh0, &oh1);
    covering(iw, g.kw, g.stride_w, g.pad_left, g.out_w, &ow0, &ow1);
    float grad = 0.0f;
    for (int64_t oh = oh0; oh <= oh1; ++oh) {
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        const int64_t e = (oh - cover.oh0) * cover.cols + (ow - cover.ow0);
        if (max_pixel[e * kChannelLanes + threadIdx.x] == pixel) grad += window_dy[e * kChannelLanes + threadIdx.x];
      }
    }
    dx[(b * g.h * g.w + pixel) * g.c + ch] = detail::from_float<T>(grad);
  }
}

template <typename T>
__global__ void avg_forward_kernel(Pool2dGeometry g, const T* x, T* y) {
  FOR_EACH_PIXEL(p, g.n * g.out_h * g.out_w) {
    const Pixel o = split(p, g.out_h, g.out_w);
    const Window wb = window(g, o.i, o.j);
    const double count = double((wb.h1 - wb.h0) * (wb.w1 - wb.w0));
    const T* image = x + o.b * g.h * g.w * g.c;
    FOR_EACH_CHANNEL(ch, g.c) {
      double s = 0.0;
      for (int64_t ih = wb.h0; ih < wb.h1; ++ih) {
        for (int64_t iw = wb.w0; iw < wb.w1; ++iw) s += detail::to_float(image[(ih * g.w + iw) * g.c + ch]);
      }
      y[p * g.c + ch] = detail::from_float<T>(static_cast<float>(s / count));
    }
  }
}

template <typename T>
__global__ void avg_backward_kernel(Pool2dGeometry g, const T* dy, T* dx) {
  FOR_EACH_PIXEL(p, g.n * g.h * g.w) {
    const Pixel in = split(p, g.h, g.w);
    int64_t oh0, oh1, ow0, ow1;
    covering(in.i, g.kh, g.stride_h, g.pad_top, g.out_h, &oh0, &oh1);
    covering(in.j, g.kw, g.stride_w, g.pad_left, g.out_w, &ow0, &ow1);
    const T* dy_image = dy + in.b * g.out_h * g.out_w * g.c;
    FOR_EACH_CHANNEL(ch, g.c) {
      float grad = 0.0f;
      for (int64_t oh = oh0; oh <= oh1; ++oh) {
        for (int64_t ow = ow0; ow <= ow1; ++ow) {
          const Window wb = window(g, oh, ow);
          const float scale = 1.0f / static_cast<float>((wb.h1 - wb.h0) * (wb.w1 - wb.w0));
          grad += detail::to_float(dy_image[(oh * g.out_w + ow) * g.c + ch]) * scale;
        }
      }
      dx[p * g.c + ch] = detail::from_float<T>(grad);
    }
  }
}

// One thread per (image, channel); consecutive threads read consecutive channels.
template <typename T>
__global__ void global_avg_forward_kernel(int64_t n, int64_t hw, int64_t c, const T* x, T* y) {
  for (int64_t i = detail::global_thread(); i < n * c; i += detail::global_stride()) {
    const int64_t b = i / c, ch = i % c;
    const T* px = x + b * hw * c + ch;
    double s = 0.0;
    for (int64_t p = 0; p < hw; ++p) s += detail::to_float(px[p * c]);
    y[i] = detail::from_float<T>(static_cast<float>(s / double(hw)));
  }
}

template <typename T>
__global__ void global_avg_backward_kernel(int64_t n, int64_t hw, int64_t c, const T* dy, T* dx) {
  const float scale = 1.0f / static_cast<float>(hw);
  for (int64_t i = detail::global_thread(); i < n * hw * c; i += detail::global_stride()) {
    dx[i] = detail::from_float<T>(detail::to_float(dy[(i / (hw * c)) * c + i % c]) * scale);
  }
}

const dim3 kBlock(kChannelLanes, kPixelLanes);

int64_t outputs(const Pool2dGeometry& g) { return g.n * g.out_h * g.out_w * g.c; }
int64_t inputs(const Pool2dGeometry& g) { return g.n * g.h * g.w * g.c; }

}  // namespace

template <typename T>
void max_pool_forward(cudaStream_t s, const Pool2dGeometry& g, const T* x, T* y) {
  if (outputs(g) <= 0) return;
  dispatch_window(g, [&](auto k) {
    max_forward_kernel<k.value, T><<<pixel_grid(g.n * g.out_h * g.out_w), kBlock, 0, s>>>(g, x, y);
  });
}

template <typename T>
void max_pool_backward(cudaStream_t s, const Pool2dGeometry& g, const T* x, const T* dy, T* dx) {
  if (inputs(g) <= 0) return;
  // The largest tile whose window table fits the default 48 KiB of shared memory; the
  // per-input gather for geometries where none does (very large windows).
  constexpr size_t kTableLimit = 48 * 1024, kBytesPerEntry = kChannelLanes * (sizeof(int64_t) + sizeof(float));
  for (int tile : {16, 8}) {
    const size_t bytes = size_t(max_cover(tile, g.kh, g.stride_h) * max_cover(tile, g.kw, g.stride_w)) * kBytesPerEntry;
    const int64_t tiles = detail::ceil_div(g.h, tile) * detail::ceil_div(g.w, tile);
    if (bytes <= kTableLimit && tiles <= 65535 && g.n <= 65535) {
      const dim3 grid(static_cast<unsigned>(detail::ceil_div(g.c, kChannelLanes)), static_cast<unsigned>(tiles),
                      static_cast<unsigned>(g.n));
      dispatch_window(
          g, [&](auto k) { max_backward_tiled_kernel<k.value, T><<<grid, kBlock, bytes, s>>>(g, tile, x, dy, dx); });
      return;
    }
  }
  max_backward_kernel<T><<<pixel_grid(g.n * g.h * g.w), kBlock, 0, s>>>(g, x, dy, dx);
}

template <typename T>
void avg_pool_forward(cudaStream_t s, const Pool2dGeometry& g, const T* x, T* y) {
  if (outputs(g) <= 0) return;
  avg_forward_kernel<T><<<pixel_grid(g.n * g.out_h * g.out_w), kBlock, 0, s>>>(g, x, y);
}

template <typename T>
void avg_pool_backward(cudaStream_t s, const Pool2dGeometry& g, const T* dy, T* dx) {
  if (inputs(g) <= 0) return;
  avg_backward_kernel<T><<<pixel_grid(g.n * g.h * g.w), kBlock, 0, s>>>(g, dy, dx);
}

template <typename T>
void global_avg_pool_forward(cudaStream_t s, int64_t n, int64_t hw, int64_t c, const T* x, T* y) {
  if (n * c <= 0 || hw <= 0) return;
  global_avg_forward_kernel<T><<<detail::grid_for(n * c), detail::kThreads, 0, s>>>(n, hw, c, x, y);
}

template <typename T>
void global_avg_pool_backward(cudaStream_t s, int64_t n, int64_t hw, int64_t c, const T* dy, T* dx) {
  if (n * hw * c <= 0) return;
  global_avg_backward_kernel<T><<<detail::grid_for(n * hw * c), detail::kThreads, 0, s>>>(n, hw, c, dy, dx);
}

#define INSTANTIATE(T)                                                                             \
  template void max_pool_forward<T>(cudaStream_t, const Pool2dGeometry&, const T*, T*);            \
  template void max_pool_backward<T>(cudaStream_t, const Pool2dGeometry&, const T*, const T*, T*); \
  template void avg_pool_forward<T>(cudaStream_t, const Pool2dGeometry&, const T*, T*);            \
  template void avg_pool_backward<T>(cudaStream_t, const Pool2dGeometry&, const T*, T*);           \
  template void global_avg_pool_forward<T>(cudaStream_t, int64_t, int64_t, int64_t, const T*, T*); \
  template void global_avg_pool_backward<T>(cudaStream_t, int64_t, int64_t, int64_t, const T*, T*);
RN_CUDA_FOR_EACH_ACTIVATION_TYPE(INSTANTIATE)
#undef INSTANTIATE

}  // namespace rn::cuda
