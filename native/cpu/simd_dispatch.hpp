// Runtime SIMD dispatch for the hot loops: on x86-64 with GCC or Clang, a function marked
// RN_SIMD_CLONES is compiled twice (AVX2 + FMA, and baseline x86-64) and the loader picks
// the right one from CPUID on first call (ifunc), so one binary is fast on modern CPUs and
// still runs on old ones. Elsewhere the macro is empty.
#pragma once

// x86-64-v3 = AVX2 + FMA + BMI2 etc., chosen by CPU features (not by CPU model, as
// "arch=haswell" would be: that clone is skipped on newer Xeons whose model isn't Haswell).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define RN_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#elif defined(__x86_64__) && defined(__clang__) && defined(__linux__)
#define RN_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define RN_SIMD_CLONES
#endif

namespace rn::cpu {

// The instruction set the RN_SIMD_CLONES kernels run with on this CPU: "x86-64-v3
// (AVX2+FMA)" or "baseline"; "x86-64-v4 (AVX-512 GEMM, ...)" when gemm_avx512.hpp runs (RESNET_SIMD=avx2 turns that off).
const char* simd_level();

}  // namespace rn::cpu
