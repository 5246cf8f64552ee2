// Winograd F(2×2, 3×3) and F(4×4, 3×3) convolution for 3×3, stride-1, dilation-1, groups-1
// convolutions in NHWC / HWIO: the weights are transformed once per call or per inference plan
// (G·g·Gᵀ, 16 or 36 matrices [c_in × c_out], packed for gemm_packed); output tiles of 2×2 or
// 4×4 pixels are processed in chunks of a few hundred per thread: input transform (Bᵀ·d·B of
// each 4×4 / 6×6 input tile, zero outside the image, any pads), 16 / 36 GEMMs
// [tiles × c_in]·[c_in × c_out], output transform (Aᵀ·m·A) with the bias, partial tiles at the
// bottom / right edges, and the epilogue and batch statistics from the tile while it is hot. The
// input gradient of a stride-1 3×3 convolution is a forward of the flipped, transposed weights,
// so it runs here too. F(2×2) does 2.25× and F(4×4) 4× fewer multiplies than the direct
// convolution; both are within the project's tolerance (tested against the reference kernels:
// test/native/kernels_vs_reference.test.ts, test/native/winograd4_vs_reference.test.ts).
// F(4×4) uses the points 0, ±1, ±2, ∞ (the transforms are vectorised over channels: 16 per
// AVX-512 vector, 8 in the AVX2 / baseline clones).
//
// RESNET_WINOGRAD=0 never uses it; =1 always where eligible (with the tile the heuristic
// prefers); =2x2 / =4x4 always where eligible, with that tile; unset, conv2d_winograd_tile's
// measured heuristic decides (see bench/RESULTS.md).
#pragma once

#include "../core/geometry.hpp"
#include "conv2d_epilogue.hpp"

namespace rn::cpu {

// 3×3, stride 1, dilation 1, one group.
bool conv2d_winograd_eligible(const Conv2dGeometry& g);

// The output tile g's forward runs with: 0 (not on Winograd), 2 (F(2×2, 3×3)) or 4 (F(4×4, 3×3)),
// from eligibility, RESNET_WINOGRAD and the heuristic.
int conv2d_winograd_tile(const Conv2dGeometry& g);
// Whether the forward of g runs on Winograd (eligibility, RESNET_WINOGRAD, the heuristic).
bool conv2d_use_winograd(const Conv2dGeometry& g);
// Whether g's input gradient runs on Winograd (as the forward of the transposed convolution).
bool conv2d_use_winograd_backward_input(const Conv2dGeometry& g);

// Scratch for both passes of g (each with the tile it runs with; 0 where neither is on Winograd).
int64_t conv2d_winograd_scratch_floats(const Conv2dGeometry& g);

// `prepared` (inference plans): the weights already transformed by conv2d_winograd_prepare, so
// `w` is not read; null transforms them in scratch as part of the call.
void conv2d_winograd_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias, float* y,
                             float* mean, float* var, float* scratch, const ConvEpilogue& epilogue = {},
                             const float* prepared = nullptr);
// Floats of the transformed, GEMM-packed weights of g (0 where its forward is not on Winograd;
// the tile conv2d_winograd_tile picks), and the transform itself (`scratch` is not used).
int64_t conv2d_winograd_prepared_floats(const Conv2dGeometry& g);
void conv2d_winograd_prepare(const Conv2dGeometry& g, const float* w, float* prepared, float* scratch);
void conv2d_winograd_backward_input(const Conv2dGeometry& g, const float* dy, const float* w, float* dx,
                                    float* scratch);

}  // namespace rn::cpu
