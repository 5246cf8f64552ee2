// Single-precision GEMM for the convolution and dense kernels: C[M×N] (=|+=) A[M×K] · B[K×N],
// row-major with leading dimensions. B is packed once into 16-column panels (pack_b) and
// reused by every row block; a 6×16 register-blocked micro-kernel does the arithmetic,
// compiled for AVX2+FMA and for baseline x86-64 with runtime dispatch (simd_dispatch.hpp);
// on CPUs with AVX-512F a 14×16 kernel over the same panels runs instead (gemm_avx512.hpp).
// Blocked GotoBLAS-style for large K × N (see gemm_avx512.cpp). Not threaded: callers split M
// (or the batch, or the output's rows) across the pool.
#pragma once

#include <cstdint>

namespace rn::cpu {

constexpr int64_t kGemmPanel = 16;

// Floats pack_b writes for a K×N matrix.
inline int64_t packed_b_floats(int64_t k, int64_t n) { return k * ((n + kGemmPanel - 1) / kGemmPanel * kGemmPanel); }

// B[K×N] (leading dimension ldb) → panels [N/16][K][16], zero-padded past N.
void pack_b(int64_t k, int64_t n, const float* b, int64_t ldb, float* packed);

// As pack_b for B = Sᵀ, where S [N × K] (leading dimension lds) is stored: B[p][j] = s[j·lds + p].
// One pass instead of a transpose and then pack_b (the input gradient's Wᵀ).
void pack_b_transposed(int64_t k, int64_t n, const float* s, int64_t lds, float* packed);

// dst[j·ldd + i] = src[i·lds + j] for i < rows, j < cols: the rows × cols matrix src transposed.
void transpose_matrix(int64_t rows, int64_t cols, const float* src, int64_t lds, float* dst, int64_t ldd);

// C = A·B (accumulate: C += A·B) with B from pack_b.
void gemm_packed(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* packed_b, float* c,
                 int64_t ldc, bool accumulate);

// C = Aᵀ·B (accumulate: C += Aᵀ·B) where `at` holds A transposed: A is m×k, at is k×m
// with leading dimension lda (A[i][p] = at[p·lda + i]).
void gemm_packed_at(int64_t m, int64_t n, int64_t k, const float* at, int64_t lda, const float* packed_b, float* c,
                    int64_t ldc, bool accumulate);

}  // namespace rn::cpu
