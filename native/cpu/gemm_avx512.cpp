#include "gemm_avx512.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "avx512_tile.hpp"
#include "gemm.hpp"

#pragma GCC diagnostic ignored "-Wpsabi"

namespace rn::cpu {

#if defined(__x86_64__) && defined(__GNUC__)
#define RN_AVX512_KERNELS 1
#endif

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
using avx512::v16;
// 12 rows × two 16-column panels: 24 accumulators + 2 B vectors + a broadcast fit the 32 zmm
// registers, and each broadcast of A feeds two FMAs.
constexpr int kRows = 12;
constexpr int64_t kDepthBlock = 256;  // packed A (12 KiB) and two B panel slices (32 KiB) stay in L1

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
// Aᵀ needs no packing: its rows are already contiguous per p.
RN_TARGET_AVX512 inline __attribute__((always_inline)) void pack_a(const float* a, int64_t lda, int64_t i, int64_t rows,
                                                                   int64_t p0, int64_t kc, float* buf) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* src = a + (i + r) * lda + p0;
    for (int64_t p = 0; p < kc; ++p) buf[p * kRows + r] = src[p];
  }
}

template <bool Transposed>
RN_TARGET_AVX512 void gemm_body(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* packed_b,
                                float* c, int64_t ldc, bool accumulate) {
  alignas(64) float buf[kDepthBlock * kRows];
  const int64_t panels = (n + kGemmPanel - 1) / kGemmPanel;
  const int64_t panel_stride = k * kGemmPanel;
  for (int64_t i = 0; i < m; i += kRows) {
    const int64_t rows = std::min<int64_t>(kRows, m - i);
    for (int64_t p0 = 0; p0 < k; p0 += kDepthBlock) {
      const int64_t kc = std::min(kDepthBlock, k - p0);
      const float* ap = buf;
      int64_t a_step = kRows;
      if (Transposed) {
        ap = a + p0 * lda + i;
        a_step = lda;
      } else {
        pack_a(a, lda, i, rows, p0, kc, buf);
      }
      const bool acc = accumulate || p0 > 0;
      int64_t q = 0;
      for (; q + 2 <= panels; q += 2) {  // pairs of panels
        const int64_t cols = std::min(kGemmPanel, n - (q + 1) * kGemmPanel);
        kernel_for_rows<kRows, 2>(rows, kc, ap, a_step, packed_b + q * panel_stride + p0 * kGemmPanel, panel_stride,
                                  c + i * ldc + q * kGemmPanel, ldc, cols, acc);
      }
      if (q < panels) {  // an odd last panel
        const int64_t cols = std::min(kGemmPanel, n - q * kGemmPanel);
        kernel_for_rows<kRows, 1>(rows, kc, ap, a_step, packed_b + q * panel_stride + p0 * kGemmPanel, panel_stride,
                                  c + i * ldc + q * kGemmPanel, ldc, cols, acc);
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
#else
void gemm_avx512(bool, int64_t, int64_t, int64_t, const float*, int64_t, const float*, float*, int64_t, bool) {}
#endif

}  // namespace rn::cpu
