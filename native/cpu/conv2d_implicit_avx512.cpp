#include "conv2d_implicit_avx512.hpp"

#include <algorithm>
#include <cstring>

#include "gemm.hpp"
#include "avx512_tile.hpp"
#include "gemm_avx512.hpp"

#pragma GCC diagnostic ignored "-Wpsabi"

namespace rn::cpu {
namespace {

int64_t padded_h(const Conv2dGeometry& g) { return g.h + g.pad_top + g.pad_bottom; }
int64_t padded_w(const Conv2dGeometry& g) { return g.w + g.pad_left + g.pad_right; }

}  // namespace

#if defined(__x86_64__) && defined(__GNUC__)
namespace {

using avx512::load16;
using avx512::v16;
constexpr int kPixels = 12;  // 12 pixels × 2 panels = 24 accumulators, as the AVX-512 GEMM

// Pixels × (Panels·16) outputs. px[r] is pixel r's input at tap (0, 0) (the pixels may lie
// on different output rows, so small maps still fill the register block); tap (ky, kx) is
// ky·row_step + kx·tap_step floats further.
template <int Pixels, int Panels>
RN_TARGET_AVX512 inline __attribute__((always_inline)) void implicit_kernel(const Conv2dGeometry& g,
                                                                            const float* const* px, int64_t row_step,
                                                                            int64_t tap_step, const float* panel,
                                                                            int64_t panel_stride, float* c, int64_t ldc,
                                                                            int64_t cols, bool accumulate) {
  v16 acc[Pixels][Panels];
  for (int r = 0; r < Pixels; ++r) {
    for (int j = 0; j < Panels; ++j) acc[r][j] = v16{};
  }
  const int64_t cin = g.c_in;
  for (int64_t ky = 0; ky < g.kh; ++ky) {
    for (int64_t kx = 0; kx < g.kw; ++kx) {
      const int64_t offset = ky * row_step + kx * tap_step;
      const float* at[Pixels];
      for (int r = 0; r < Pixels; ++r) at[r] = px[r] + offset;
      const float* bt = panel + (ky * g.kw + kx) * cin * kGemmPanel;
      for (int64_t ic = 0; ic < cin; ++ic) {
        v16 b[Panels];
        for (int j = 0; j < Panels; ++j) b[j] = load16(bt + j * panel_stride + ic * kGemmPanel);
        for (int r = 0; r < Pixels; ++r) {
          const float av = at[r][ic];
          for (int j = 0; j < Panels; ++j) acc[r][j] += b[j] * av;
        }
      }
    }
  }
  avx512::store_tile<Pixels, Panels>(acc, c, ldc, cols, accumulate);
}

template <int Pixels, int Panels>
RN_TARGET_AVX512 inline __attribute__((always_inline)) void kernel_for_pixels(
    int64_t pixels, const Conv2dGeometry& g, const float* const* px, int64_t row_step, int64_t tap_step,
    const float* panel, int64_t panel_stride, float* c, int64_t ldc, int64_t cols, bool accumulate) {
  if constexpr (Pixels > 0) {
    if (pixels == Pixels) {
      return implicit_kernel<Pixels, Panels>(g, px, row_step, tap_step, panel, panel_stride, c, ldc, cols, accumulate);
    }
    kernel_for_pixels<Pixels - 1, Panels>(pixels, g, px, row_step, tap_step, panel, panel_stride, c, ldc, cols,
                                          accumulate);
  }
}

// Up to kPixels consecutive output pixels (in flattened order), every output channel.
RN_TARGET_AVX512 void implicit_segment(const Conv2dGeometry& g, const float* const* px, int64_t pixels,
                                       const float* packed_w, float* c, bool accumulate) {
  const int64_t row_step = g.dilation_h * padded_w(g) * g.c_in;
  const int64_t tap_step = g.dilation_w * g.c_in;
  const int64_t k = g.kh * g.kw * g.c_in;
  const int64_t panel_stride = k * kGemmPanel;
  const int64_t panels = (g.c_out + kGemmPanel - 1) / kGemmPanel;
  int64_t q = 0;
  for (; q + 2 <= panels; q += 2) {
    const int64_t cols = std::min(kGemmPanel, g.c_out - (q + 1) * kGemmPanel);
    kernel_for_pixels<kPixels, 2>(pixels, g, px, row_step, tap_step, packed_w + q * panel_stride, panel_stride,
                                  c + q * kGemmPanel, g.c_out, cols, accumulate);
  }
  if (q < panels) {
    const int64_t cols = std::min(kGemmPanel, g.c_out - q * kGemmPanel);
    kernel_for_pixels<kPixels, 1>(pixels, g, px, row_step, tap_step, packed_w + q * panel_stride, panel_stride,
                                  c + q * kGemmPanel, g.c_out, cols, accumulate);
  }
}

}  // namespace

bool conv2d_implicit_available(const Conv2dGeometry& g) { return g.groups == 1 && gemm_avx512_enabled(); }

void conv2d_implicit_rows(const Conv2dGeometry& g, const float* xp, const float* packed_w, int64_t m0, int64_t rows,
                          float* y, bool accumulate) {
  const int64_t hp = padded_h(g), wp = padded_w(g);
  const float* px[kPixels];
  for (int64_t m = m0; m < m0 + rows; m += kPixels) {
    const int64_t pixels = std::min(int64_t{kPixels}, m0 + rows - m);
    for (int64_t r = 0; r < pixels; ++r) {
      const int64_t ow = (m + r) % g.out_w, rest = (m + r) / g.out_w;
      const int64_t oh = rest % g.out_h, b = rest / g.out_h;
      px[r] = xp + ((b * hp + oh * g.stride_h) * wp + ow * g.stride_w) * g.c_in;
    }
    implicit_segment(g, px, pixels, packed_w, y + (m - m0) * g.c_out, accumulate);
  }
}
#else
bool conv2d_implicit_available(const Conv2dGeometry&) { return false; }
void conv2d_implicit_rows(const Conv2dGeometry&, const float*, const float*, int64_t, int64_t, float*, bool) {}
#endif

int64_t conv2d_padded_input_floats(const Conv2dGeometry& g) { return g.n * padded_h(g) * padded_w(g) * g.c_in; }

void conv2d_pad_input(const Conv2dGeometry& g, const float* x, float* xp, int64_t b_begin, int64_t b_end) {
  const int64_t hp = padded_h(g), wp = padded_w(g), c = g.c_in;
  const size_t row_bytes = static_cast<size_t>(g.w * c) * sizeof(float);
  for (int64_t b = b_begin; b < b_end; ++b) {
    float* image = xp + b * hp * wp * c;
    std::memset(image, 0, static_cast<size_t>(g.pad_top * wp * c) * sizeof(float));
    for (int64_t ih = 0; ih < g.h; ++ih) {
      float* row = image + (g.pad_top + ih) * wp * c;
      std::memset(row, 0, static_cast<size_t>(g.pad_left * c) * sizeof(float));
      std::memcpy(row + g.pad_left * c, x + (b * g.h + ih) * g.w * c, row_bytes);
      std::memset(row + (g.pad_left + g.w) * c, 0, static_cast<size_t>(g.pad_right * c) * sizeof(float));
    }
    std::memset(image + (g.pad_top + g.h) * wp * c, 0, static_cast<size_t>(g.pad_bottom * wp * c) * sizeof(float));
  }
}

}  // namespace rn::cpu
