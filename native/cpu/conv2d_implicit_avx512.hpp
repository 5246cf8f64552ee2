// Forward convolution without im2col (implicit GEMM), AVX-512. A register block of Q
// consecutive output pixels of one output row × one or two 16-channel panels reads its A values
// straight from the NHWC input against the packed weights (pack_b panels, HWIO order = the
// GEMM's K order). With dilation_w = 1 a kernel row's taps are contiguous in both the input and
// the weights, so the inner loop runs over kw·c_in values per kernel row (one pointer setup per
// kernel row, not per tap). Within a block the pixels are a fixed stride apart (stride_w·c_in,
// a compile-time constant for the common strides), so one base pointer addresses them all.
// Narrow kernel rows with few channels (3×3 from 16/32/64 channels at stride 1 or 2, the 7×7/2
// stem) hold the kernel row's weight vectors in registers and broadcast each input value once
// for every output pixel it feeds (block_kernel_taps).
// Borders: a kernel row above or below the image reads a zero piece; one that crosses the left
// or right border reads a zero-padded copy of its input row from a per-thread ring of kh rows
// (each row copied once per tile; with dilation_h > 1 a per-block piece): no padded copy of the
// whole input. The bias starts the accumulators and the epilogue (residual add, ReLU) is applied
// in the store, while the accumulators are in registers. Used for groups = 1 when
// gemm_avx512_enabled() (elsewhere these are absent / never called).
#pragma once

#include "../core/geometry.hpp"
#include "conv2d_epilogue.hpp"

namespace rn::cpu {

bool conv2d_implicit_available(const Conv2dGeometry& g);

// Floats of one thread's scratch for conv2d_implicit_rows (the border pieces and a zero piece).
int64_t conv2d_implicit_thread_floats(const Conv2dGeometry& g);

// What the store applies: y = epilogue(bias + x ∗ w).
struct ImplicitStore {
  const float* bias = nullptr;  // c_out floats zero-padded to a multiple of 16, or null
  ConvEpilogue epilogue;        // its skip has y's layout
};

// Which 16-channel panels of the output a call computes: [begin, end), begin even (panels run
// in pairs). pairs_outer: each pair over every block before the next pair (for weights larger
// than L2 when few pixels share them: batch-1 inference of deep layers).
struct PanelShare {
  static constexpr int64_t kAll = -1;  // end: through the last panel
  int64_t begin = 0;
  int64_t end = kAll;
  bool pairs_outer = false;
};

// Output rows [r0, r1) of the flattened (n, out_h) range into y (the whole output, row stride
// c_out), from the NHWC input x and the weights packed by pack_b (K = kh·kw·c_in, N = c_out).
// scratch: conv2d_implicit_thread_floats(g) floats of this thread's own. sum, sq (or null):
// per-channel sums and sums of squares of the outputs (before the epilogue) are added to them,
// c_out doubles each padded to a multiple of 16.
void conv2d_implicit_rows(const Conv2dGeometry& g, const float* x, const float* packed_w, const ImplicitStore& store,
                          int64_t r0, int64_t r1, float* y, float* scratch, double* sum = nullptr, double* sq = nullptr,
                          const PanelShare& share = {});

}  // namespace rn::cpu
