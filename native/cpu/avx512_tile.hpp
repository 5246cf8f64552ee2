// The pieces the AVX-512 kernels share (gemm_avx512.cpp, conv2d_implicit_avx512.cpp): the
// 16-float vector type, unaligned load / store, and writing a register block of
// accumulators back to C. x86-64 GCC/Clang only; each function is compiled for AVX-512F and
// inlined into kernels that run only when the CPU has it.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__)

#include <cstdint>
#include <cstring>

#include "gemm.hpp"

#define RN_TARGET_AVX512 __attribute__((target("avx512f")))

namespace rn::cpu::avx512 {

typedef float v16 __attribute__((vector_size(64)));

RN_TARGET_AVX512 inline __attribute__((always_inline)) v16 load16(const float* p) {
  v16 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
RN_TARGET_AVX512 inline __attribute__((always_inline)) void store16(float* p, v16 v) { std::memcpy(p, &v, sizeof(v)); }

// C[Rows × Panels·16] = (or +=) acc, row r at c + r·ldc; `cols` real columns in the last panel.
template <int Rows, int Panels>
RN_TARGET_AVX512 inline __attribute__((always_inline)) void store_tile(v16 (&acc)[Rows][Panels], float* c, int64_t ldc,
                                                                       int64_t cols, bool accumulate) {
  for (int r = 0; r < Rows; ++r) {
    for (int j = 0; j < Panels; ++j) {
      float* crow = c + r * ldc + j * kGemmPanel;
      if (j < Panels - 1 || cols == kGemmPanel) {
        store16(crow, accumulate ? load16(crow) + acc[r][j] : acc[r][j]);
      } else {
        float tmp[kGemmPanel];
        store16(tmp, acc[r][j]);
        for (int64_t q = 0; q < cols; ++q) crow[q] = accumulate ? crow[q] + tmp[q] : tmp[q];
      }
    }
  }
}

}  // namespace rn::cpu::avx512

#endif
