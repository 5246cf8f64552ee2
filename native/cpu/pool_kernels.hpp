// The optimized CPU's max pooling (NHWC): each output pixel the maximum over its window,
// vectorised over channels and split over output rows. reference/pool.cpp is its oracle.
#pragma once

#include "../core/geometry.hpp"

namespace rn::cpu {

void max_pool_forward(const Pool2dGeometry& g, const float* x, float* y);

}  // namespace rn::cpu
