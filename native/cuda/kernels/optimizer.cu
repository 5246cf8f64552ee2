// SGD (PyTorch semantics: buffer = first gradient on the first step, Nesterov, L2 or
// decoupled decay) and AdamW with bias correction, in one launch over every parameter
// tensor. Block b updates floats [b·kChunk, (b+1)·kChunk) of the packed buffers: its first
// thread finds the first tensor reaching into that range by binary search over the table
// (sorted by offset, as the plan packs them), and the block walks the tensors that
// overlap the range, each with its own learning rate and decay. Floats between tensors
// (alignment padding) belong to no tensor and are left alone. Per element the arithmetic
// is native/cpu/optimizer_kernels.cpp's, term by term. Before an update, a read-only check over
// the same arithmetic finds a tensor whose new values would not be finite (all or nothing:
// Backend::sgd_update_all).
#include <cmath>

#include "../kernels.hpp"
#include "../step_control.hpp"
#include "kernel_support.cuh"

namespace rn::cuda {
namespace {

constexpr int64_t kChunk = 8192;  // floats per block: 32 per thread

__device__ int first_tensor_reaching(const ParamSlice* table, int tensors, int64_t at) {
  int lo = 0, hi = tensors;  // first t with offset + numel > at
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (table[mid].offset + table[mid].numel > at) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

// Calls visit(slice, t, i) for every float i of this block's chunk that belongs to a tensor
// (t: the tensor's index in the table).
template <typename Visit>
__device__ void for_chunk(const ParamSlice* table, int tensors, int64_t total, const Visit& visit) {
  __shared__ int first;
  const int64_t begin = int64_t(blockIdx.x) * kChunk;
  const int64_t end = begin + kChunk < total ? begin + kChunk : total;
  if (threadIdx.x == 0) first = first_tensor_reaching(table, tensors, begin);
  __syncthreads();
  for (int t = first; t < tensors; ++t) {
    const ParamSlice slice = table[t];
    if (slice.offset >= end) break;
    const int64_t from = slice.offset > begin ? slice.offset : begin;
    const int64_t to = slice.offset + slice.numel < end ? slice.offset + slice.numel : end;
    for (int64_t i = from + threadIdx.x; i < to; i += blockDim.x) visit(slice, t, i);
  }
}

// Each step computes an element's new values once (`next`), for the update to write and for
// the check to test, so the two agree exactly.
struct SgdStep {
  float momentum;
  bool nesterov, decoupled, first_step;
  float *params, *momentum_buf;
  const float* grads;
  struct Next {
    float param, buf;
  };
  __device__ Next next(const ParamSlice& s, int64_t i) const {
    const float shrink = decoupled ? 1.0f - s.lr * s.weight_decay : 1.0f;
    const float l2 = decoupled ? 0.0f : s.weight_decay;
    float g = grads[i] + l2 * params[i];
    const float p = params[i] * shrink;
    float b = 0.0f;
    if (momentum != 0.0f) {
      b = first_step ? g : momentum * momentum_buf[i] + g;
      g = nesterov ? g + momentum * b : b;
    }
    return {p - s.lr * g, b};
  }
  __device__ void write(int64_t i, const Next& n) const {
    params[i] = n.param;
    if (momentum != 0.0f) momentum_buf[i] = n.buf;
  }
  __device__ static bool finite(const Next& n) { return isfinite(n.param) && isfinite(n.buf); }
  __device__ void set_step(const StepInputs&) {}
};

struct AdamStep {
  float beta1, beta2, eps;
  double c1, c2;  // bias corrections 1 − β^step
  float *params, *m, *v;
  const float* grads;
  struct Next {
    float param, m, v;
  };
  __device__ Next next(const ParamSlice& s, int64_t i) const {
    const float shrink = 1.0f - s.lr * s.weight_decay;
    const float g = grads[i];
    const float mi = beta1 * m[i] + (1.0f - beta1) * g;
    const float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    const double mhat = mi / c1, vhat = vi / c2;
    return {static_cast<float>(params[i] * shrink - s.lr * mhat / (sqrt(vhat) + eps)), mi, vi};
  }
  __device__ void write(int64_t i, const Next& n) const {
    m[i] = n.m;
    v[i] = n.v;
    params[i] = n.param;
  }
  __device__ static bool finite(const Next& n) { return isfinite(n.param) && isfinite(n.m) && isfinite(n.v); }
  __device__ void set_step(const StepInputs& in) { c1 = in.adam_c1, c2 = in.adam_c2; }
};

// In a captured step (control non-null) the update applies only to a finite step whose check
// found nothing (control->apply), and Adam's bias corrections are this step's, read from the
// device.
template <typename Step>
__global__ void __launch_bounds__(detail::kThreads)
    update_all_kernel(const ParamSlice* table, int tensors, int64_t total, Step step, const StepControl* control) {
  if (control != nullptr) {
    if (!control->apply) return;
    step.set_step(control->in);
  }
  for_chunk(table, tensors, total, [&](const ParamSlice& s, int, int64_t i) { step.write(i, step.next(s, i)); });
}

// Reads only: lowers *first_bad to the index of each tensor with an element whose new values
// would not be finite, one atomic per thread at most.
template <typename Step>
__global__ void __launch_bounds__(detail::kThreads)
    check_all_kernel(const ParamSlice* table, int tensors, int64_t total, Step step, unsigned* first_bad,
                     const StepControl* control) {
  if (control != nullptr) {
    if (!control->apply) return;
    step.set_step(control->in);
  }
  unsigned bad = kNoBadTensor;
  for_chunk(table, tensors, total, [&](const ParamSlice& s, int t, int64_t i) {
    if (!Step::finite(step.next(s, i)) && unsigned(t) < bad) bad = unsigned(t);
  });
  if (bad != kNoBadTensor) atomicMin(first_bad, bad);
}

unsigned chunks(int64_t total) { return static_cast<unsigned>(detail::ceil_div(total, kChunk)); }

SgdStep sgd_step(const SgdArgs& a, const float* params, const float* grads, const float* momentum) {
  // The check shares the functor with the update but never writes through it.
  return {a.momentum, a.nesterov, a.decoupled, a.first_step, const_cast<float*>(params), const_cast<float*>(momentum),
          grads};
}

AdamStep adam_step(const AdamArgs& a, const float* params, const float* grads, const float* m, const float* v) {
  const double c1 = 1.0 - std::pow(double(a.beta1), double(a.step));
  const double c2 = 1.0 - std::pow(double(a.beta2), double(a.step));
  return {a.beta1, a.beta2, a.eps, c1, c2, const_cast<float*>(params), const_cast<float*>(m), const_cast<float*>(v),
          grads};
}

}  // namespace

void sgd_update_all(cudaStream_t s, const ParamSlice* table, int tensors, int64_t total_floats, const SgdArgs& a,
                    float* params, const float* grads, float* momentum, const StepControl* control) {
  if (tensors <= 0 || total_floats <= 0) return;
  update_all_kernel<<<chunks(total_floats), detail::kThreads, 0, s>>>(table, tensors, total_floats,
                                                                      sgd_step(a, params, grads, momentum), control);
}

void adamw_update_all(cudaStream_t s, const ParamSlice* table, int tensors, int64_t total_floats, const AdamArgs& a,
                      float* params, const float* grads, float* m, float* v, const StepControl* control) {
  if (tensors <= 0 || total_floats <= 0) return;
  update_all_kernel<<<chunks(total_floats), detail::kThreads, 0, s>>>(table, tensors, total_floats,
                                                                      adam_step(a, params, grads, m, v), control);
}

void sgd_update_check_all(cudaStream_t s, const ParamSlice* table, int tensors, int64_t total_floats, const SgdArgs& a,
                          const float* params, const float* grads, const float* momentum, unsigned* first_bad,
                          const StepControl* control) {
  if (tensors <= 0 || total_floats <= 0) return;
  check_all_kernel<<<chunks(total_floats), detail::kThreads, 0, s>>>(
      table, tensors, total_floats, sgd_step(a, params, grads, momentum), first_bad, control);
}

void adamw_update_check_all(cudaStream_t s, const ParamSlice* table, int tensors, int64_t total_floats,
                            const AdamArgs& a, const float* params, const float* grads, const float* m, const float* v,
                            unsigned* first_bad, const StepControl* control) {
  if (tensors <= 0 || total_floats <= 0) return;
  check_all_kernel<<<chunks(total_floats), detail::kThreads, 0, s>>>(
      table, tensors, total_floats, adam_step(a, params, grads, m, v), first_bad, control);
}

}  // namespace rn::cuda
