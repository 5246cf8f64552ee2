// Forward convolution without im2col (implicit GEMM), AVX-512: the input is copied once into
// an explicitly zero-padded NHWC buffer, after which every output pixel's receptive field is
// in bounds, and a 12-pixel × 32-channel register block reads its A values straight from that
// buffer (tap by tap, channel by channel; the 12 pixels may span output rows) against the packed weights (pack_b panels, HWIO order
// = the GEMM's K order). Saves im2col's write and read and the A packing of the GEMM path; used
// for groups = 1 when gemm_avx512_enabled() (elsewhere these are absent / never called).
#pragma once

#include "../core/geometry.hpp"

namespace rn::cpu {

bool conv2d_implicit_available(const Conv2dGeometry& g);

// Floats of the padded input [n, h + pad_top + pad_bottom, w + pad_left + pad_right, c_in].
int64_t conv2d_padded_input_floats(const Conv2dGeometry& g);

// Copies images [b_begin, b_end) of x into xp with their zero borders.
void conv2d_pad_input(const Conv2dGeometry& g, const float* x, float* xp, int64_t b_begin, int64_t b_end);

// Output pixels [m0, m0 + rows) of the flattened (n, out_h, out_w) range into y (row stride
// c_out), from the padded input and the weights packed by pack_b (K = kh·kw·c_in, N = c_out).
// accumulate: y += (the bias is already there).
void conv2d_implicit_rows(const Conv2dGeometry& g, const float* xp, const float* packed_w, int64_t m0, int64_t rows,
                          float* y, bool accumulate);

}  // namespace rn::cpu
