// Spatial geometry of convolutions and pools: padding rules (TensorFlow's 'same',
// 'valid', explicit) resolved once into explicit pads and output sizes, and the
// shape checks that name the op and the shapes when something does not fit.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "shape.hpp"

namespace rn {

enum class PaddingMode { Same, Valid, Explicit };

struct Padding {
  PaddingMode mode = PaddingMode::Valid;
  std::array<int64_t, 4> pads{0, 0, 0, 0};  // top, bottom, left, right (Explicit only)
};

std::string padding_to_string(const Padding& padding);

struct Window2dOptions {
  int64_t stride_h = 1, stride_w = 1;
  int64_t dilation_h = 1, dilation_w = 1;
  Padding padding;
};

// NHWC input [n, h, w, c_in], HWIO weights [kh, kw, c_in / groups, c_out].
struct Conv2dGeometry {
  int64_t n, h, w, c_in;
  int64_t kh, kw, c_out, groups;
  int64_t stride_h, stride_w, dilation_h, dilation_w;
  int64_t pad_top, pad_bottom, pad_left, pad_right;
  int64_t out_h, out_w;

  int64_t in_per_group() const { return c_in / groups; }
  int64_t out_per_group() const { return c_out / groups; }
  Shape input_shape() const { return {n, h, w, c_in}; }
  Shape weight_shape() const { return {kh, kw, c_in / groups, c_out}; }
  Shape output_shape() const { return {n, out_h, out_w, c_out}; }
};

// Pooling window over NHWC [n, h, w, c].
struct Pool2dGeometry {
  int64_t n, h, w, c;
  int64_t kh, kw, stride_h, stride_w;
  int64_t pad_top, pad_bottom, pad_left, pad_right;
  int64_t out_h, out_w;

  Shape input_shape() const { return {n, h, w, c}; }
  Shape output_shape() const { return {n, out_h, out_w, c}; }
};

Conv2dGeometry conv2d_geometry(const Shape& x, const Shape& w, int64_t groups, const Window2dOptions& opts,
                               const std::string& op);

Pool2dGeometry pool2d_geometry(const Shape& x, int64_t kh, int64_t kw, const Window2dOptions& opts,
                               const std::string& op);

}  // namespace rn
