// Reference 2-D convolution, NHWC activations and HWIO weights, grouped and dilated,
// forward and backward side by side. Plain loops that are easy to check by eye: this is
// the oracle the fast kernels are validated against, so clarity beats speed here.
#pragma once

#include "../../core/geometry.hpp"

namespace rn::reference {

// y = conv(x, w) (+ bias when bias != nullptr). y is [n, out_h, out_w, c_out].
void conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias, float* y);

// dx = d(loss)/dx given dy; overwrites dx.
void conv2d_backward_input(const Conv2dGeometry& g, const float* dy, const float* w, float* dx);

// dw = d(loss)/dw given x and dy; overwrites dw.
void conv2d_backward_weight(const Conv2dGeometry& g, const float* x, const float* dy, float* dw);

// db[c] = sum of dy over every output pixel; overwrites db.
void conv2d_backward_bias(const Conv2dGeometry& g, const float* dy, float* db);

}  // namespace rn::reference
