// The training engine's convolution kernels: direct convolution over NHWC/HWIO with the
// batch-statistics epilogue (conv → batch-norm fusion) and allocation-free weight
// gradients (per-thread double partial sums live in plan scratch).
#pragma once

#include "../core/geometry.hpp"
#include "conv2d_epilogue.hpp"

namespace rn::cpu {

int64_t conv2d_scratch_floats(const Conv2dGeometry& g);
// `epilogue` (inference plans only; never with mean / var): residual add and ReLU per output tile.
// `prepared`: conv2d_prepare_weights' output for g (inference plans), or null.
void conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias, float* y, float* mean,
                    float* var, float* scratch, const ConvEpilogue& epilogue = {}, const float* prepared = nullptr);
// The forward's weights prepared once (packed for the GEMM, or Winograd-transformed) for the
// kernel conv2d_forward picks for g: their size (0 where it reads HWIO directly), and the work.
int64_t conv2d_prepared_floats(const Conv2dGeometry& g);
void conv2d_prepare_weights(const Conv2dGeometry& g, const float* w, float* prepared, float* scratch);
void conv2d_backward_input(const Conv2dGeometry& g, const float* dy, const float* w, float* dx, float* scratch);
void conv2d_backward_weight(const Conv2dGeometry& g, const float* x, const float* dy, float* dw, float* db,
                            float* scratch);

}  // namespace rn::cpu
