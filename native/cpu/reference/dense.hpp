// Reference fully-connected layer: y[n, m] = x[n, k] . w[k, m] + b[m] (Keras layout,
// weights [in, out]), forward and backward side by side.
#pragma once

#include <cstdint>

namespace rn::reference {

void dense_forward(int64_t n, int64_t k, int64_t m, const float* x, const float* w, const float* b, float* y);

// Overwrites dx [n, k], dw [k, m] and db [m] (dx and db may be nullptr).
void dense_backward(int64_t n, int64_t k, int64_t m, const float* x, const float* w, const float* dy, float* dx,
                    float* dw, float* db);

}  // namespace rn::reference
