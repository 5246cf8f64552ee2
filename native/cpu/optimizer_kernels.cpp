#include "optimizer_kernels.hpp"

#include <bit>
#include <cmath>
#include <cstdint>

namespace rn::cpu {
namespace {

// The per-element arithmetic, shared by each update and its check so that the check sees
// exactly the values the update would write.

// SGD: decoupled decay shrinks the weights directly (as AdamW); L2 adds wd·p to the gradient.
// With momentum the buffer starts as the first gradient (PyTorch, no dampening).
struct SgdStep {
  float shrink, l2, lr, momentum;
  bool nesterov, first_step;
  explicit SgdStep(const SgdArgs& a)
      : shrink(a.decoupled ? 1.0f - a.lr * a.weight_decay : 1.0f),
        l2(a.decoupled ? 0.0f : a.weight_decay),
        lr(a.lr),
        momentum(a.momentum),
        nesterov(a.nesterov),
        first_step(a.first_step) {}
  // The new parameter; `buf` becomes the new momentum buffer value (used when momentum != 0).
  float operator()(float param, float grad, float& buf) const {
    float g = grad + l2 * param;
    const float p = param * shrink;
    if (momentum != 0.0f) {
      buf = first_step ? g : momentum * buf + g;
      g = nesterov ? g + momentum * buf : buf;
    }
    return p - lr * g;
  }
};

// AdamW with bias correction, the moments updated in place in m and v.
struct AdamStep {
  float beta1, beta2, eps, lr, shrink;
  double c1, c2;
  explicit AdamStep(const AdamArgs& a)
      : beta1(a.beta1),
        beta2(a.beta2),
        eps(a.eps),
        lr(a.lr),
        shrink(1.0f - a.lr * a.weight_decay),
        c1(1.0 - std::pow(double(a.beta1), double(a.step))),
        c2(1.0 - std::pow(double(a.beta2), double(a.step))) {}
  float operator()(float param, float grad, float& m, float& v) const {
    m = beta1 * m + (1.0f - beta1) * grad;
    v = beta2 * v + (1.0f - beta2) * grad * grad;
    const double mhat = m / c1, vhat = v / c2;
    return static_cast<float>(param * shrink - lr * mhat / (std::sqrt(vhat) + eps));
  }
};

// 1 when x is infinite or NaN (all exponent bits set). Integer arithmetic, so the checks'
// loops accumulate with | and vectorise.
inline uint32_t non_finite(float x) { return (std::bit_cast<uint32_t>(x) & 0x7f800000u) == 0x7f800000u; }

}  // namespace

double sum_of_squares(int64_t count, const float* x) {
  double s = 0.0;
  for (int64_t i = 0; i < count; ++i) s += double(x[i]) * x[i];
  return s;
}

void scale(int64_t count, float factor, float* x) {
  for (int64_t i = 0; i < count; ++i) x[i] *= factor;
}

void sgd_update(int64_t count, const SgdArgs& a, float* param, const float* grad, float* buf) {
  const SgdStep step(a);
  if (a.momentum == 0.0f) {
    float unused = 0.0f;
    for (int64_t i = 0; i < count; ++i) param[i] = step(param[i], grad[i], unused);
    return;
  }
  for (int64_t i = 0; i < count; ++i) param[i] = step(param[i], grad[i], buf[i]);
}

bool sgd_update_finite(int64_t count, const SgdArgs& a, const float* param, const float* grad, const float* buf) {
  const SgdStep step(a);
  uint32_t bad = 0;
  if (a.momentum == 0.0f) {
    float unused = 0.0f;
    for (int64_t i = 0; i < count; ++i) bad |= non_finite(step(param[i], grad[i], unused));
    return bad == 0;
  }
  for (int64_t i = 0; i < count; ++i) {
    float b = buf[i];
    bad |= non_finite(step(param[i], grad[i], b)) | non_finite(b);
  }
  return bad == 0;
}

void adamw_update(int64_t count, const AdamArgs& a, float* param, const float* grad, float* m, float* v) {
  const AdamStep step(a);
  for (int64_t i = 0; i < count; ++i) param[i] = step(param[i], grad[i], m[i], v[i]);
}

bool adamw_update_finite(int64_t count, const AdamArgs& a, const float* param, const float* grad, const float* m,
                         const float* v) {
  const AdamStep step(a);
  uint32_t bad = 0;
  for (int64_t i = 0; i < count; ++i) {
    float mi = m[i], vi = v[i];
    bad |= non_finite(step(param[i], grad[i], mi, vi)) | non_finite(mi) | non_finite(vi);
  }
  return bad == 0;
}

}  // namespace rn::cpu
