#include "softmax_cross_entropy.hpp"

#include <algorithm>
#include <cmath>

namespace rn::reference {
namespace {

double log_sum_exp(const float* z, int64_t classes) {
  const double top = *std::max_element(z, z + classes);
  double s = 0.0;
  for (int64_t c = 0; c < classes; ++c) s += std::exp(double(z[c]) - top);
  return top + std::log(s);
}

inline double target(int64_t c, int32_t label, int64_t classes, float smoothing) {
  return (c == label ? 1.0 - smoothing : 0.0) + double(smoothing) / double(classes);
}

}  // namespace

double softmax_cross_entropy_forward(int64_t n, int64_t classes, const float* logits, const int32_t* labels,
                                     float smoothing) {
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const float* z = logits + i * classes;
    const double lse = log_sum_exp(z, classes);
    for (int64_t c = 0; c < classes; ++c) total -= target(c, labels[i], classes, smoothing) * (double(z[c]) - lse);
  }
  return total / double(n);
}

void softmax_cross_entropy_backward(int64_t n, int64_t classes, const float* logits, const int32_t* labels,
                                    float smoothing, float dloss, float* dlogits) {
  for (int64_t i = 0; i < n; ++i) {
    const float* z = logits + i * classes;
    const double lse = log_sum_exp(z, classes);
    for (int64_t c = 0; c < classes; ++c) {
      const double p = std::exp(double(z[c]) - lse);
      dlogits[i * classes + c] =
          static_cast<float>(double(dloss) * (p - target(c, labels[i], classes, smoothing)) / double(n));
    }
  }
}

}  // namespace rn::reference
