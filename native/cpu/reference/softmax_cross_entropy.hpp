// Reference softmax cross-entropy with integer labels and optional label smoothing:
// targets are (1 - s) * onehot + s / classes; the loss is the mean over the batch.
#pragma once

#include <cstdint>

namespace rn::reference {

// Returns the mean loss. Labels must already be checked to lie in [0, classes).
double softmax_cross_entropy_forward(int64_t n, int64_t classes, const float* logits, const int32_t* labels,
                                     float smoothing);

// dlogits = dloss * (softmax(logits) - targets) / n; overwrites dlogits.
void softmax_cross_entropy_backward(int64_t n, int64_t classes, const float* logits, const int32_t* labels,
                                    float smoothing, float dloss, float* dlogits);

}  // namespace rn::reference
