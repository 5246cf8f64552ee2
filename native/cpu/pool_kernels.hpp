// The optimized CPU's max pooling and global average pooling (NHWC), vectorised over channels
// and split over the pool's threads even at batch 1. reference/pool.cpp is their oracle; both
// give its values bit for bit (the same comparisons; the same double sums in the same order).
#pragma once

#include "../core/geometry.hpp"

namespace rn::cpu {

void max_pool_forward(const Pool2dGeometry& g, const float* x, float* y);
// y[b, c] = mean over the hw pixels of x[b, :, c].
void global_avg_pool_forward(int64_t n, int64_t hw, int64_t c, const float* x, float* y);

}  // namespace rn::cpu
