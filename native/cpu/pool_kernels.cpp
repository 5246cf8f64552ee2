#include "pool_kernels.hpp"

#include <algorithm>

#include "../core/thread_pool.hpp"
#include "simd_dispatch.hpp"

namespace rn::cpu {
namespace {

// Output rows [r0, r1) of the flattened [n · out_h] rows. `best < v ? v : best` is the
// reference's std::max, NaN handling included (a NaN after the first element is skipped).
RN_SIMD_CLONES void max_pool_rows(const Pool2dGeometry& g, const float* x, float* y, int64_t r0, int64_t r1) {
  const int64_t c = g.c;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t b = r / g.out_h, oh = r % g.out_h;
    const int64_t h_start = oh * g.stride_h - g.pad_top;
    const int64_t h0 = std::max<int64_t>(h_start, 0), h1 = std::min(h_start + g.kh, g.h);
    const float* image = x + b * g.h * g.w * c;
    float* out_row = y + r * g.out_w * c;
    for (int64_t ow = 0; ow < g.out_w; ++ow) {
      const int64_t w_start = ow * g.stride_w - g.pad_left;
      const int64_t w0 = std::max<int64_t>(w_start, 0), w1 = std::min(w_start + g.kw, g.w);
      float* __restrict out = out_row + ow * c;
      const float* __restrict first = image + (h0 * g.w + w0) * c;
      for (int64_t k = 0; k < c; ++k) out[k] = first[k];
      for (int64_t ih = h0; ih < h1; ++ih) {
        for (int64_t iw = w0; iw < w1; ++iw) {
          if (ih == h0 && iw == w0) continue;
          const float* __restrict in = image + (ih * g.w + iw) * c;
          for (int64_t k = 0; k < c; ++k) out[k] = out[k] < in[k] ? in[k] : out[k];
        }
      }
    }
  }
}

constexpr int64_t kAvgBlock = 64;  // channels per task: their double sums fit in registers / L1

// Channels [c0, c1) of image b: each channel's double sum over the pixels in pixel order, as
// the reference adds them, but a block of channels at a time (contiguous loads).
RN_SIMD_CLONES void global_avg_block(int64_t hw, int64_t c, const float* x, float* y, int64_t c0, int64_t c1) {
  double sum[kAvgBlock];
  const int64_t width = c1 - c0;
  for (int64_t k = 0; k < width; ++k) sum[k] = 0.0;
  for (int64_t p = 0; p < hw; ++p) {
    const float* __restrict row = x + p * c + c0;
    for (int64_t k = 0; k < width; ++k) sum[k] += double(row[k]);
  }
  for (int64_t k = 0; k < width; ++k) y[c0 + k] = static_cast<float>(sum[k] / double(hw));
}

}  // namespace

void max_pool_forward(const Pool2dGeometry& g, const float* x, float* y) {
  const int64_t rows = g.n * g.out_h;
  // Rows of at least ~16K outputs per chunk: below that, a hand-off costs more than it saves.
  const int64_t per_row = std::max<int64_t>(1, g.out_w * g.c);
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 14) / per_row);
  const int64_t chunks = (rows + grain - 1) / grain;
  parallel_for(chunks,
               [&](int64_t begin, int64_t end) { max_pool_rows(g, x, y, begin * grain, std::min(rows, end * grain)); });
}

}  // namespace rn::cpu

namespace rn::cpu {

void global_avg_pool_forward(int64_t n, int64_t hw, int64_t c, const float* x, float* y) {
  const int64_t blocks = (c + kAvgBlock - 1) / kAvgBlock;
  parallel_for(n * blocks, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / blocks, c0 = t % blocks * kAvgBlock;
      global_avg_block(hw, c, x + b * hw * c, y + b * c, c0, std::min(c, c0 + kAvgBlock));
    }
  });
}

}  // namespace rn::cpu
