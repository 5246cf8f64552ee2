// Reference pooling over NHWC, forward and backward side by side. Padding never takes
// part: max ignores it, average divides by the number of real pixels (TensorFlow's rule).
#pragma once

#include "../../core/geometry.hpp"

namespace rn::reference {

void max_pool_forward(const Pool2dGeometry& g, const float* x, float* y);
// The gradient goes to the first maximum of each window (row-major scan); overwrites dx.
void max_pool_backward(const Pool2dGeometry& g, const float* x, const float* dy, float* dx);

void avg_pool_forward(const Pool2dGeometry& g, const float* x, float* y);
void avg_pool_backward(const Pool2dGeometry& g, const float* dy, float* dx);

// [n, h, w, c] -> [n, c], the mean over h*w.
void global_avg_pool_forward(int64_t n, int64_t hw, int64_t c, const float* x, float* y);
void global_avg_pool_backward(int64_t n, int64_t hw, int64_t c, const float* dy, float* dx);

}  // namespace rn::reference
