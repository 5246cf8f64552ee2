// The AVX-512 GEMM micro-kernels (12×32: two 512-bit accumulators per row of C over pairs of
// gemm.cpp's 16-column B panels, A packed per 12-row block), compiled for AVX-512F only in this file and
// called only when the CPU has it, so the binary still runs on every x86-64. gemm.cpp's
// gemm_packed / gemm_packed_at dispatch here; elsewhere (other CPUs, arm64) these are absent.
#pragma once

#include <cstdint>

namespace rn::cpu {

// True when the CPU runs AVX-512F and RESNET_SIMD does not cap the level at avx2 (read once).
bool gemm_avx512_enabled();

// As gemm_packed (Transposed = false) and gemm_packed_at (true); call only when enabled.
void gemm_avx512(bool transposed, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* packed_b,
                 float* c, int64_t ldc, bool accumulate);

// As transpose_matrix (gemm.hpp), with 16×16 blocks transposed in registers; call only when enabled.
void transpose_avx512(int64_t rows, int64_t cols, const float* src, int64_t lds, float* dst, int64_t ldd);

}  // namespace rn::cpu
