#include "simd_dispatch.hpp"

#include "gemm_avx512.hpp"

namespace rn::cpu {

const char* simd_level() {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
  __builtin_cpu_init();
  if (gemm_avx512_enabled()) return "x86-64-v4 (AVX-512 GEMM, AVX2+FMA elsewhere)";
  return __builtin_cpu_supports("x86-64-v3") ? "x86-64-v3 (AVX2+FMA)" : "baseline x86-64";
#elif defined(__x86_64__) && defined(__clang__) && defined(__linux__)
  __builtin_cpu_init();
  if (gemm_avx512_enabled()) return "avx512f GEMM, avx2 elsewhere";
  return __builtin_cpu_supports("avx2") ? "avx2" : "baseline x86-64";
#else
  return "portable C++";
#endif
}

}  // namespace rn::cpu
