// Squeeze-and-excitation as one fused layer: pool, fc1 + ReLU, fc2 + sigmoid, rescale.
#pragma once

#include "../core/backend.hpp"

namespace rn::cpu {

void squeeze_excite_forward(const SqueezeExciteArgs& a, const float* x, float* y);
// scratch: 2·n·c + n·hidden floats.
void squeeze_excite_backward(const SqueezeExciteArgs& a, const float* x, const float* dy, float* dx, float* dw1,
                             float* db1, float* dw2, float* db2, float* scratch);

}  // namespace rn::cpu
