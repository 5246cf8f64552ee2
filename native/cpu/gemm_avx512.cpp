#include "gemm_avx512.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "avx512_tile.hpp"
#include "gemm.hpp"

#if defined(__x86_64__) && defined(__GNUC__)
// GCC's own unpack / shuffle intrinsics pass _mm512_undefined_ps() as the unused merge source,
// which -Wmaybe-uninitialized reports once they are inlined here.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#define RN_AVX512_KERNELS 1
#endif

#pragma GCC diagnostic ignored "-Wpsabi"

namespace rn::cpu {

bool gemm_avx512_enabled() {
#ifdef RN_AVX512_KERNELS
  static const bool enabled = [] {
    const char* cap = std::getenv("RESNET_SIMD");
    if (cap != nullptr && std::strcmp(cap, "avx2") == 0) return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0;
  }();
  return enabled;
#else
  return false;
#endif
}

#ifdef RN_AVX512_KERNELS
namespace {

using avx512::load16;
using avx512::store16;
using avx512::v16;
// 12 rows × two 16-column panels: 24 accumulators + 2 B vectors + a broadcast fit the 32 zmm
// registers, and each broadcast of A feeds two FMAs.
constexpr int kRows = 12;
constexpr int64_t kDepthBlock = 256;  // packed A (12 KiB) and two B panel slices (32 KiB) stay in L1
// Panels of B per L2 block: kDepthBlock × 512 columns = 512 KiB stays in the (1 MiB) L2 while
// every row block of A passes over it, instead of all of B streaming from L3 per 12 rows.
constexpr int64_t kWidthPanels = 32;

// r[0..15] (rows) → r[0..15] (columns), in registers: the usual unpack / shuffle / lane
// shuffle ladder (4 × 16 shuffles for 256 floats, against 256 scalar loads and stores).
RN_TARGET_AVX512 inline __attribute__((always_inline)) void transpose16(__m512 (&r)[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int h = 0; h < 16; h += 8) {
    for (int i = 0; i < 4; ++i) {
      t[h + i] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0x88);
      t[h + i + 4] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0xdd);
    }
  }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
  }
}

// dst[j·ldd + i] = src[i·lds + j] for i < rows ≤ 16, j < 16; 16 floats are stored per j, so
// lanes rows..15 (zeros) land past row j's `rows` floats: callers leave room or overwrite them.
RN_TARGET_AVX512 inline __attribute__((always_inline)) void transpose_block(const float* src, int64_t lds, int rows,
                                                                            float* dst, int64_t ldd) {
  __m512 r[16];
  for (int i = 0; i < 16; ++i) r[i] = i < rows ? _mm512_loadu_ps(src + i * lds) : _mm512_setzero_ps();
  transpose16(r);
  for (int j = 0; j < 16; ++j) _mm512_storeu_ps(dst + j * ldd, r[j]);
}

// C[Rows × Panels·16] (=|+=) A · `Panels` B panels `panel_stride` floats apart, A's element
// (r, p) at a[p·a_step + r] (packed A: a_step = kRows; Aᵀ: its leading dimension). `cols`
// real columns in the last panel.
template <int Rows, int Panels>
RN_TARGET_AVX512 inline __attribute__((always_inline)) void micro_kernel(int64_t k, const float* a, int64_t a_step,
                                                                         const float* panel, int64_t panel_stride,
                                                                         float* c, int64_t ldc, int64_t cols,
                                                                         bool accumulate) {
  v16 acc[Rows][Panels];
  for (int r = 0; r < Rows; ++r) {
    for (int j = 0; j < Panels; ++j) acc[r][j] = v16{};
  }
  for (int64_t p = 0; p < k; ++p) {
    v16 b[Panels];
    for (int j = 0; j < Panels; ++j) b[j] = load16(panel + j * panel_stride + p * kGemmPanel);
    for (int r = 0; r < Rows; ++r) {
      const float av = a[p * a_step + r];
      for (int j = 0; j < Panels; ++j) acc[r][j] += b[j] * av;
    }
  }
  avx512::store_tile<Rows, Panels>(acc, c, ldc, cols, accumulate);
}

// The last m % 12 rows: Rows counts down to the remainder, so each size is its own kernel.
template <int Rows, int Panels>
RN_TARGET_AVX512 inline __attribute__((always_inline)) void kernel_for_rows(int64_t rows, int64_t k, const float* a,
                                                                            int64_t a_step, const float* panel,
                                                                            int64_t panel_stride, float* c, int64_t ldc,
                                                                            int64_t cols, bool accumulate) {
  if constexpr (Rows > 0) {
    if (rows == Rows) return micro_kernel<Rows, Panels>(k, a, a_step, panel, panel_stride, c, ldc, cols, accumulate);
    kernel_for_rows<Rows - 1, Panels>(rows, k, a, a_step, panel, panel_stride, c, ldc, cols, accumulate);
  }
}

// A's rows [i, i + rows) × columns [p0, p0 + kc) → buf[p][r] (kRows floats per p): the
// micro-kernel then reads one contiguous stream instead of a dozen strided rows, which the L1
// prefetchers do not follow (unpacked, a 14×16 kernel ran no faster than the 6×16 AVX2 one).
// 16 columns at a time are transposed in registers (a scalar loop here cost 25–50 % of the
// FMA time at N = 64); each p's 16-float store spills 4 zeros into the next p, which the next
// store overwrites, and into buf's 16 spare floats at the end. Aᵀ needs no packing: its rows
// are already contiguous per p.
RN_TARGET_AVX512 inline __attribute__((always_inline)) void pack_a(const float* a, int64_t lda, int64_t i, int64_t rows,
                                                                   int64_t p0, int64_t kc, float* buf) {
  const float* src = a + i * lda + p0;
  int64_t p = 0;
  for (; p + 16 <= kc; p += 16) {
    // The next row block's same columns: 12 strided streams are more than the hardware
    // prefetchers follow, and the micro-kernel's FMAs cover the latency. (A prefetch past
    // the end of A is harmless: prefetches never fault.)
    for (int r = 0; r < kRows; ++r)
      _mm_prefetch(reinterpret_cast<const char*>(src + (kRows + r) * lda + p), _MM_HINT_T0);
    transpose_block(src + p, lda, static_cast<int>(rows), buf + p * kRows, kRows);
  }
  for (; p < kc; ++p) {
    for (int64_t r = 0; r < rows; ++r) buf[p * kRows + r] = src[r * lda + p];
  }
}

template <bool Transposed>
RN_TARGET_AVX512 void gemm_body(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* packed_b,
                                float* c, int64_t ldc, bool accumulate) {
  alignas(64) float buf[kDepthBlock * kRows + kGemmPanel];
  const int64_t panels = (n + kGemmPanel - 1) / kGemmPanel;
  const int64_t panel_stride = k * kGemmPanel;
  // GotoBLAS order: a kDepthBlock × (kWidthPanels·16) block of B stays in L2 while every
  // 12-row block of A (packed, in L1) passes over it; C is revisited once per depth block.
  for (int64_t q0 = 0; q0 < panels; q0 += kWidthPanels) {
    const int64_t q1 = std::min(panels, q0 + kWidthPanels);
    for (int64_t p0 = 0; p0 < k; p0 += kDepthBlock) {
      const int64_t kc = std::min(kDepthBlock, k - p0);
      const bool acc = accumulate || p0 > 0;
      for (int64_t i = 0; i < m; i += kRows) {
        const int64_t rows = std::min<int64_t>(kRows, m - i);
        // Aᵀ is read in place: gathering its 12 floats per p into buf too (they are a row of
        // Aᵀ apart) measured 5–10 % slower on the weight gradients.
        const float* ap = buf;
        int64_t a_step = kRows;
        if (Transposed) {
          ap = a + p0 * lda + i;
          a_step = lda;
        } else {
          pack_a(a, lda, i, rows, p0, kc, buf);
        }
        int64_t q = q0;
        for (; q + 2 <= q1; q += 2) {  // pairs of panels
          const int64_t cols = std::min(kGemmPanel, n - (q + 1) * kGemmPanel);
          kernel_for_rows<kRows, 2>(rows, kc, ap, a_step, packed_b + q * panel_stride + p0 * kGemmPanel, panel_stride,
                                    c + i * ldc + q * kGemmPanel, ldc, cols, acc);
        }
        if (q < q1) {  // an odd last panel
          const int64_t cols = std::min(kGemmPanel, n - q * kGemmPanel);
          kernel_for_rows<kRows, 1>(rows, kc, ap, a_step, packed_b + q * panel_stride + p0 * kGemmPanel, panel_stride,
                                    c + i * ldc + q * kGemmPanel, ldc, cols, acc);
        }
      }
    }
  }
}

}  // namespace

void gemm_avx512(bool transposed, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* packed_b,
                 float* c, int64_t ldc, bool accumulate) {
  if (transposed) {
    gemm_body<true>(m, n, k, a, lda, packed_b, c, ldc, accumulate);
  } else {
    gemm_body<false>(m, n, k, a, lda, packed_b, c, ldc, accumulate);
  }
}

RN_TARGET_AVX512 void transpose_avx512(int64_t rows, int64_t cols, const float* src, int64_t lds, float* dst,
                                       int64_t ldd) {
  int64_t i = 0;
  for (; i + 16 <= rows; i += 16) {
    int64_t j = 0;
    for (; j + 16 <= cols; j += 16) {
      transpose_block(src + i * lds + j, lds, 16, dst + j * ldd + i, ldd);
    }
    for (; j < cols; ++j) {
      for (int64_t r = i; r < i + 16; ++r) dst[j * ldd + r] = src[r * lds + j];
    }
  }
  for (; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) dst[j * ldd + i] = src[i * lds + j];
  }
}
#else
void gemm_avx512(bool, int64_t, int64_t, int64_t, const float*, int64_t, const float*, float*, int64_t, bool) {}
void transpose_avx512(int64_t, int64_t, const float*, int64_t, float*, int64_t) {}
#endif

}  // namespace rn::cpu
