// Reference element-wise ops: ReLU and addition, forward and backward.
#pragma once

#include <cstdint>

namespace rn::reference {

void relu_forward(int64_t count, const float* x, float* y);
// dx = dy where x > 0, else 0 (the gradient at 0 is 0, as in TensorFlow).
void relu_backward(int64_t count, const float* x, const float* dy, float* dx);

void add_forward(int64_t count, const float* a, const float* b, float* y);

}  // namespace rn::reference
