// finish_step, veto_nonfinite_update and scale_by_control (native/cuda/step_control.hpp).
#include <cmath>

#include "../kernels.hpp"
#include "../step_control.hpp"
#include "kernel_support.cuh"

namespace rn::cuda {
namespace {

__global__ void finish_step_kernel(StepControl* c) {
  const double loss = c->results[0];
  const double norm = sqrt(c->results[3]) / double(c->in.loss_scale);
  const bool loss_ok = isfinite(loss), grads_ok = isfinite(norm);
  double factor = c->in.inv_loss_scale;
  if (c->in.clip_norm > 0.0f && norm > c->in.clip_norm) factor *= c->in.clip_norm / (norm + 1e-6);
  c->grad_factor = static_cast<float>(factor);
  c->apply = loss_ok && grads_ok;
  c->running_ok = loss_ok && (grads_ok || c->in.overflow_skips);
  c->bad_tensor = kNoBadTensor;  // until the update's check finds one
}

__global__ void veto_kernel(StepControl* c) {
  if (c->bad_tensor == kNoBadTensor) return;
  c->apply = 0;
  c->running_ok = 0;
}

__global__ void __launch_bounds__(detail::kThreads) scale_kernel(int64_t count, const StepControl* c, float* x) {
  if (!c->apply) return;
  const float f = c->grad_factor;
  if (f == 1.0f) return;
  for (int64_t i = detail::global_thread(); i < count; i += detail::global_stride()) x[i] *= f;
}

}  // namespace

void finish_step(cudaStream_t s, StepControl* control) { finish_step_kernel<<<1, 1, 0, s>>>(control); }

void veto_nonfinite_update(cudaStream_t s, StepControl* control) { veto_kernel<<<1, 1, 0, s>>>(control); }

void scale_by_control(cudaStream_t s, int64_t count, const StepControl* control, float* x) {
  if (count <= 0) return;
  scale_kernel<<<detail::grid_for(count), detail::kThreads, 0, s>>>(count, control, x);
}

}  // namespace rn::cuda
