// The two CPU kernel sets behind the Backend interface, and which one runs.
// RESNET_KERNELS=reference (read once, at first use) makes models and the functional ops
// run the plain reference kernels (native/cpu/reference), the oracle the optimized ones are
// tested against; unset or "optimized" runs the optimized kernels. cpu_backend()
// (core/backend.hpp) returns the selected one.
#pragma once

#include "../core/backend.hpp"

namespace rn {

// The packed-GEMM / SIMD kernels (cpu_backend.cpp).
Backend& optimized_backend();
// The reference kernels, plain loops (reference_backend.cpp).
Backend& reference_backend();

// "optimized" or "reference", from RESNET_KERNELS; any other value fails with E_ARG.
const char* selected_kernels();

}  // namespace rn
