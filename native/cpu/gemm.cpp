#include "gemm.hpp"

#include <algorithm>
#include <cstring>

#include "gemm_avx512.hpp"
#include "simd_dispatch.hpp"

// The 8-float vector helpers below are always inlined into the dispatched kernel, so the
// baseline build's different vector-passing ABI never shows at a call boundary.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace rn::cpu {
namespace {

typedef float v8 __attribute__((vector_size(32)));

inline __attribute__((always_inline)) v8 load8(const float* p) {
  v8 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline __attribute__((always_inline)) void store8(float* p, v8 v) { std::memcpy(p, &v, sizeof(v)); }

// rows × 16 block of C from `rows` rows of A and one B panel; rows ≤ 6 is a template
// argument so the accumulators stay in registers. `cols` ≤ 16 real columns of C.
// A row-major (element (r, p) at a[r·lda + p]) or, with Transposed, stored as Aᵀ (element
// (r, p) at a[p·lda + r]), which the weight gradient's im2col tiles are.
template <int Rows, bool Transposed>
inline __attribute__((always_inline)) void micro_kernel(int64_t k, const float* a, int64_t lda, const float* panel,
                                                        float* c, int64_t ldc, int64_t cols, bool accumulate) {
  v8 acc[Rows][2];
  for (int r = 0; r < Rows; ++r) acc[r][0] = acc[r][1] = v8{};
  for (int64_t p = 0; p < k; ++p) {
    const v8 b0 = load8(panel + p * kGemmPanel);
    const v8 b1 = load8(panel + p * kGemmPanel + 8);
    for (int r = 0; r < Rows; ++r) {
      const float av = Transposed ? a[p * lda + r] : a[r * lda + p];  // vector × scalar: broadcast
      acc[r][0] += b0 * av;
      acc[r][1] += b1 * av;
    }
  }
  for (int r = 0; r < Rows; ++r) {
    float* crow = c + r * ldc;
    if (cols == kGemmPanel) {
      if (accumulate) {
        store8(crow, load8(crow) + acc[r][0]);
        store8(crow + 8, load8(crow + 8) + acc[r][1]);
      } else {
        store8(crow, acc[r][0]);
        store8(crow + 8, acc[r][1]);
      }
    } else {
      float tmp[kGemmPanel];
      store8(tmp, acc[r][0]);
      store8(tmp + 8, acc[r][1]);
      for (int64_t j = 0; j < cols; ++j) crow[j] = accumulate ? crow[j] + tmp[j] : tmp[j];
    }
  }
}

}  // namespace

RN_SIMD_CLONES void pack_b(int64_t k, int64_t n, const float* b, int64_t ldb, float* packed) {
  const int64_t full = n / kGemmPanel, tail = n - full * kGemmPanel;
  // Row by row: B is read front to back (a strided pass per panel left the hardware prefetcher
  // behind on output-gradient tiles coming from memory), each panel written as its own stream.
  for (int64_t p = 0; p < k; ++p) {
    const float* src = b + p * ldb;
    float* dst = packed + p * kGemmPanel;
    for (int64_t q = 0; q < full; ++q) {  // fixed-size copies: vector moves, no loop
      std::memcpy(dst + q * k * kGemmPanel, src + q * kGemmPanel, kGemmPanel * sizeof(float));
    }
    if (tail > 0) {
      float* d = dst + full * k * kGemmPanel;
      int64_t j = 0;
      for (; j < tail; ++j) d[j] = src[full * kGemmPanel + j];
      for (; j < kGemmPanel; ++j) d[j] = 0.0f;
    }
  }
}

namespace {

// 8 × 8 blocks keep both the reads and the writes within a few cache lines at a time.
RN_SIMD_CLONES void transpose_clones(int64_t rows, int64_t cols, const float* src, int64_t lds, float* dst,
                                     int64_t ldd) {
  constexpr int64_t kBlock = 8;
  for (int64_t i0 = 0; i0 < rows; i0 += kBlock) {
    const int64_t i1 = std::min(rows, i0 + kBlock);
    for (int64_t j0 = 0; j0 < cols; j0 += kBlock) {
      const int64_t j1 = std::min(cols, j0 + kBlock);
      for (int64_t j = j0; j < j1; ++j) {
        for (int64_t i = i0; i < i1; ++i) dst[j * ldd + i] = src[i * lds + j];
      }
    }
  }
}

}  // namespace

void transpose_matrix(int64_t rows, int64_t cols, const float* src, int64_t lds, float* dst, int64_t ldd) {
  if (gemm_avx512_enabled()) return transpose_avx512(rows, cols, src, lds, dst, ldd);
  transpose_clones(rows, cols, src, lds, dst, ldd);
}

void pack_b_transposed(int64_t k, int64_t n, const float* s, int64_t lds, float* packed) {
  const int64_t panels = (n + kGemmPanel - 1) / kGemmPanel;
  for (int64_t q = 0; q < panels; ++q) {
    const int64_t j0 = q * kGemmPanel, cols = std::min(kGemmPanel, n - j0);
    float* dst = packed + q * k * kGemmPanel;
    transpose_matrix(cols, k, s + j0 * lds, lds, dst, kGemmPanel);  // dst[p][jj] = s[j0 + jj][p]
    if (cols < kGemmPanel) {
      for (int64_t p = 0; p < k; ++p) std::fill(dst + p * kGemmPanel + cols, dst + (p + 1) * kGemmPanel, 0.0f);
    }
  }
}

namespace {

template <bool Transposed>
inline __attribute__((always_inline)) void gemm_body(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                                                     const float* packed_b, float* c, int64_t ldc, bool accumulate) {
  // Row offset of A's row i: i·lda normally, i when A is stored transposed.
  const int64_t row_step = Transposed ? 1 : lda;
  const int64_t panels = (n + kGemmPanel - 1) / kGemmPanel;
  for (int64_t q = 0; q < panels; ++q) {
    const float* panel = packed_b + q * k * kGemmPanel;
    const int64_t j0 = q * kGemmPanel, cols = std::min(kGemmPanel, n - j0);
    int64_t i = 0;
    for (; i + 6 <= m; i += 6) {
      micro_kernel<6, Transposed>(k, a + i * row_step, lda, panel, c + i * ldc + j0, ldc, cols, accumulate);
    }
    const float* ai = a + i * row_step;
    float* ci = c + i * ldc + j0;
    switch (m - i) {
      case 5:
        micro_kernel<5, Transposed>(k, ai, lda, panel, ci, ldc, cols, accumulate);
        break;
      case 4:
        micro_kernel<4, Transposed>(k, ai, lda, panel, ci, ldc, cols, accumulate);
        break;
      case 3:
        micro_kernel<3, Transposed>(k, ai, lda, panel, ci, ldc, cols, accumulate);
        break;
      case 2:
        micro_kernel<2, Transposed>(k, ai, lda, panel, ci, ldc, cols, accumulate);
        break;
      case 1:
        micro_kernel<1, Transposed>(k, ai, lda, panel, ci, ldc, cols, accumulate);
        break;
      default:
        break;
    }
  }
}

// AVX2+FMA or baseline, chosen by the loader (simd_dispatch.hpp).
RN_SIMD_CLONES void gemm_packed_clones(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                                       const float* packed_b, float* c, int64_t ldc, bool accumulate) {
  gemm_body<false>(m, n, k, a, lda, packed_b, c, ldc, accumulate);
}

RN_SIMD_CLONES void gemm_packed_at_clones(int64_t m, int64_t n, int64_t k, const float* at, int64_t lda,
                                          const float* packed_b, float* c, int64_t ldc, bool accumulate) {
  gemm_body<true>(m, n, k, at, lda, packed_b, c, ldc, accumulate);
}

}  // namespace

void gemm_packed(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* packed_b, float* c,
                 int64_t ldc, bool accumulate) {
  if (gemm_avx512_enabled()) return gemm_avx512(false, m, n, k, a, lda, packed_b, c, ldc, accumulate);
  gemm_packed_clones(m, n, k, a, lda, packed_b, c, ldc, accumulate);
}

void gemm_packed_at(int64_t m, int64_t n, int64_t k, const float* at, int64_t lda, const float* packed_b, float* c,
                    int64_t ldc, bool accumulate) {
  if (gemm_avx512_enabled()) return gemm_avx512(true, m, n, k, at, lda, packed_b, c, ldc, accumulate);
  gemm_packed_at_clones(m, n, k, at, lda, packed_b, c, ldc, accumulate);
}

}  // namespace rn::cpu
