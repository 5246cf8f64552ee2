#include "optimizer_kernels.hpp"

#include <cmath>

namespace rn::cpu {

double sum_of_squares(int64_t count, const float* x) {
  double s = 0.0;
  for (int64_t i = 0; i < count; ++i) s += double(x[i]) * x[i];
  return s;
}

void scale(int64_t count, float factor, float* x) {
  for (int64_t i = 0; i < count; ++i) x[i] *= factor;
}

void sgd_update(int64_t count, const SgdArgs& a, float* param, const float* grad, float* buf) {
  // Decoupled decay shrinks the weights directly (as AdamW); L2 adds wd·p to the gradient.
  const float shrink = a.decoupled ? 1.0f - a.lr * a.weight_decay : 1.0f;
  const float l2 = a.decoupled ? 0.0f : a.weight_decay;
  for (int64_t i = 0; i < count; ++i) {
    float g = grad[i] + l2 * param[i];
    float p = param[i] * shrink;
    if (a.momentum != 0.0f) {
      // PyTorch: the buffer starts as the first gradient (no dampening).
      const float b = a.first_step ? g : a.momentum * buf[i] + g;
      buf[i] = b;
      g = a.nesterov ? g + a.momentum * b : b;
    }
    param[i] = p - a.lr * g;
  }
}

void adamw_update(int64_t count, const AdamArgs& a, float* param, const float* grad, float* m, float* v) {
  const double c1 = 1.0 - std::pow(double(a.beta1), double(a.step));
  const double c2 = 1.0 - std::pow(double(a.beta2), double(a.step));
  const float shrink = 1.0f - a.lr * a.weight_decay;
  for (int64_t i = 0; i < count; ++i) {
    const float g = grad[i];
    m[i] = a.beta1 * m[i] + (1.0f - a.beta1) * g;
    v[i] = a.beta2 * v[i] + (1.0f - a.beta2) * g * g;
    const double mhat = m[i] / c1, vhat = v[i] / c2;
    param[i] = static_cast<float>(param[i] * shrink - a.lr * mhat / (std::sqrt(vhat) + a.eps));
  }
}

}  // namespace rn::cpu
