// Convolution as GEMM (im2col tiles × packed weights) for the training engine: forward with
// the batch-statistics epilogue, input gradients (GEMM with transposed weights, then col2im)
// and weight gradients (transposed im2col tiles × output-gradient tiles, per-thread partial
// sums). 1×1 stride-1 unpadded convolutions skip im2col entirely.
#pragma once

#include "../core/geometry.hpp"
#include "conv2d_epilogue.hpp"

namespace rn::cpu {

// Worth it when each group has enough output channels to fill a 16-wide panel reasonably.
bool conv2d_use_gemm(const Conv2dGeometry& g);

int64_t conv2d_gemm_scratch_floats(const Conv2dGeometry& g);
// `prepared` (inference plans): the weights already packed by conv2d_gemm_prepare (`w` is not read).
void conv2d_gemm_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias, float* y,
                         float* mean, float* var, float* scratch, const ConvEpilogue& epilogue = {},
                         const float* prepared = nullptr);
// Floats of the forward's packed weights (every group's pack_b panels), and the packing itself.
int64_t conv2d_gemm_prepared_floats(const Conv2dGeometry& g);
void conv2d_gemm_prepare(const Conv2dGeometry& g, const float* w, float* prepared);
// The weights of the transposed convolution (a stride-1 input gradient run as a forward): HWIO
// w → [kh][kw][c_out][c_in], spatially flipped (blocked transposes, over the pool when large).
void conv2d_flip_weights(const Conv2dGeometry& g, const float* w, float* flipped);
void conv2d_gemm_backward_input(const Conv2dGeometry& g, const float* dy, const float* w, float* dx, float* scratch);
void conv2d_gemm_backward_weight(const Conv2dGeometry& g, const float* x, const float* dy, float* dw, float* db,
                                 float* scratch);

}  // namespace rn::cpu
