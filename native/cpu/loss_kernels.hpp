// Softmax cross-entropy with label smoothing (mean over the batch), accuracy, softmax.
#pragma once

#include <cstdint>

namespace rn::cpu {

double softmax_cross_entropy(int64_t n, int64_t classes, const float* logits, const int32_t* labels, float smoothing,
                             int64_t* correct, int64_t* correct5);
void softmax_cross_entropy_backward(int64_t n, int64_t classes, const float* logits, const int32_t* labels,
                                    float smoothing, float dloss, float* dlogits);
void softmax(int64_t n, int64_t classes, const float* logits, float* probs);

}  // namespace rn::cpu
