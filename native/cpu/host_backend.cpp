// The kernels the two CPU backends share (host_backend.hpp).
#include "host_backend.hpp"

#include "loss_kernels.hpp"
#include "optimizer_kernels.hpp"
#include "padding_kernels.hpp"
#include "reference/batch_norm.hpp"
#include "reference/pool.hpp"
#include "squeeze_excite_kernels.hpp"

namespace rn {

bool HostBackend::all_finite(int64_t count, const float* x) {
  for (int64_t i = 0; i < count; ++i) {
    if (!std::isfinite(x[i])) return false;
  }
  return true;
}

void HostBackend::batch_norm_update_running(int64_t rows, int64_t channels, const float* mean, const float* var,
                                            float momentum, float* running_mean, float* running_var) {
  reference::batch_norm_update_running(rows, channels, mean, var, momentum, running_mean, running_var);
}

void HostBackend::max_pool_forward(const Pool2dGeometry& g, const float* x, float* y) {
  reference::max_pool_forward(g, x, y);
}
void HostBackend::max_pool_backward(const Pool2dGeometry& g, const float* x, const float* dy, float* dx) {
  reference::max_pool_backward(g, x, dy, dx);
}
void HostBackend::avg_pool_forward(const Pool2dGeometry& g, const float* x, float* y) {
  reference::avg_pool_forward(g, x, y);
}
void HostBackend::avg_pool_backward(const Pool2dGeometry& g, const float* dy, float* dx) {
  reference::avg_pool_backward(g, dy, dx);
}
void HostBackend::global_avg_pool_forward(int64_t n, int64_t hw, int64_t c, const float* x, float* y) {
  reference::global_avg_pool_forward(n, hw, c, x, y);
}
void HostBackend::global_avg_pool_backward(int64_t n, int64_t hw, int64_t c, const float* dy, float* dx) {
  reference::global_avg_pool_backward(n, hw, c, dy, dx);
}

void HostBackend::zero_pad_forward(const Shape& xs, const int64_t* pads, const float* x, float* y) {
  cpu::zero_pad_forward(xs, pads, x, y);
}
void HostBackend::zero_pad_backward(const Shape& xs, const int64_t* pads, const float* dy, float* dx) {
  cpu::zero_pad_backward(xs, pads, dy, dx);
}
void HostBackend::zero_pad_shortcut_forward(const Shape& xs, const Shape& ys, int64_t sh, int64_t sw, const float* x,
                                            float* y) {
  cpu::zero_pad_shortcut_forward(xs, ys, sh, sw, x, y);
}
void HostBackend::zero_pad_shortcut_backward(const Shape& xs, const Shape& ys, int64_t sh, int64_t sw, const float* dy,
                                             float* dx) {
  cpu::zero_pad_shortcut_backward(xs, ys, sh, sw, dy, dx);
}

void HostBackend::squeeze_excite_forward(const SqueezeExciteArgs& a, const float* x, float* y) {
  cpu::squeeze_excite_forward(a, x, y);
}
void HostBackend::squeeze_excite_backward(const SqueezeExciteArgs& a, const float* x, const float* dy, float* dx,
                                          float* dw1, float* db1, float* dw2, float* db2, float* scratch) {
  cpu::squeeze_excite_backward(a, x, dy, dx, dw1, db1, dw2, db2, scratch);
}

void HostBackend::softmax(int64_t n, int64_t classes, const float* logits, float* probs) {
  cpu::softmax(n, classes, logits, probs);
}

void HostBackend::sgd_update(int64_t count, const SgdArgs& a, float* param, const float* grad, float* momentum_buf) {
  cpu::sgd_update(count, a, param, grad, momentum_buf);
}
void HostBackend::adamw_update(int64_t count, const AdamArgs& a, float* param, const float* grad, float* m, float* v) {
  cpu::adamw_update(count, a, param, grad, m, v);
}
bool HostBackend::sgd_update_finite(int64_t count, const SgdArgs& a, const float* param, const float* grad,
                                    const float* momentum_buf) {
  return cpu::sgd_update_finite(count, a, param, grad, momentum_buf);
}
bool HostBackend::adamw_update_finite(int64_t count, const AdamArgs& a, const float* param, const float* grad,
                                      const float* m, const float* v) {
  return cpu::adamw_update_finite(count, a, param, grad, m, v);
}

int64_t HostBackend::sgd_update_all(const std::vector<ParamSlice>& slices, SgdArgs a, float* params, const float* grads,
                                    float* momentum) {
  auto buf = [&](const ParamSlice& p) { return momentum ? momentum + p.offset : nullptr; };
  for (size_t i = 0; i < slices.size(); ++i) {
    const ParamSlice& p = slices[i];
    a.lr = p.lr, a.weight_decay = p.weight_decay;
    if (!sgd_update_finite(p.numel, a, params + p.offset, grads + p.offset, buf(p))) return static_cast<int64_t>(i);
  }
  for (const ParamSlice& p : slices) {
    a.lr = p.lr, a.weight_decay = p.weight_decay;
    sgd_update(p.numel, a, params + p.offset, grads + p.offset, buf(p));
  }
  return kUpdateApplied;
}

int64_t HostBackend::adamw_update_all(const std::vector<ParamSlice>& slices, AdamArgs a, float* params,
                                      const float* grads, float* m, float* v) {
  for (size_t i = 0; i < slices.size(); ++i) {
    const ParamSlice& p = slices[i];
    a.lr = p.lr, a.weight_decay = p.weight_decay;
    const int64_t o = p.offset;
    if (!adamw_update_finite(p.numel, a, params + o, grads + o, m + o, v + o)) return static_cast<int64_t>(i);
  }
  for (const ParamSlice& p : slices) {
    a.lr = p.lr, a.weight_decay = p.weight_decay;
    const int64_t o = p.offset;
    adamw_update(p.numel, a, params + o, grads + o, m + o, v + o);
  }
  return kUpdateApplied;
}

}  // namespace rn
