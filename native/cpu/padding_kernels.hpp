// Zero padding around images (Keras' ZeroPadding2D) and the CIFAR option-A shortcut
// (subsample, then zero channels split evenly before and after).
#pragma once

#include "../core/shape.hpp"

namespace rn::cpu {

void zero_pad_forward(const Shape& xs, const int64_t* pads, const float* x, float* y);
void zero_pad_backward(const Shape& xs, const int64_t* pads, const float* dy, float* dx);
void zero_pad_shortcut_forward(const Shape& xs, const Shape& ys, int64_t sh, int64_t sw, const float* x, float* y);
void zero_pad_shortcut_backward(const Shape& xs, const Shape& ys, int64_t sh, int64_t sw, const float* dy, float* dx);

}  // namespace rn::cpu
