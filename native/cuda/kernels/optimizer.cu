// SGD (PyTorch semantics: buffer = first gradient on the first step, Nesterov, L2 or
// decoupled decay) and AdamW with bias correction, in one launch over every parameter
// tensor. Block b updates floats [b·kChunk, (b+1)·kChunk) of the packed buffers: its first
// thread finds the first tensor reaching into that range by binary search over the table
// (sorted by offset, as the plan packs them), and the block walks the tensors that
// overlap the range, each with its own learning rate and decay. Floats between tensors
// (alignment padding) belong to no tensor and are left alone. Per element the arithmetic
// is native/cpu/optimizer_kernels.cpp's, term by term.
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

// Calls update(slice, i) for every float i of this block's chunk that belongs to a tensor.
template <typename Update>
__device__ void for_chunk(const ParamSlice* table, int tensors, int64_t total, const Update& update) {
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
    for (int64_t i = from + threadIdx.x; i < to; i += blockDim.x) update(slice, i);
  }
}

struct SgdStep {
  float momentum;
  bool nesterov, decoupled, first_step;
  float *params, *momentum_buf;
  const float* grads;
  __device__ void operator()(const ParamSlice& s, int64_t i) const {
    const float shrink = decoupled ? 1.0f - s.lr * s.weight_decay : 1.0f;
    const float l2 = decoupled ? 0.0f : s.weight_decay;
    float g = grads[i] + l2 * params[i];
    const float p = params[i] * shrink;
    if (momentum != 0.0f) {
      const float b = first_step ? g : momentum * momentum_buf[i] + g;
      momentum_buf[i] = b;
      g = nesterov ? g + momentum * b : b;
    }
    params[i] = p - s.lr * g;
  }
  __device__ void set_step(const StepInputs&) {}
};

struct AdamStep {
  float beta1, beta2, eps;
  double c1, c2;  // bias corrections 1 − β^step
  float *params, *m, *v;
  const float* grads;
  __device__ void operator()(const ParamSlice& s, int64_t i) const {
    const float shrink = 1.0f - s.lr * s.weight_decay;
    const float g = grads[i];
    const float mi = beta1 * m[i] + (1.0f - beta1) * g;
    const float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    const double mhat = mi / c1, vhat = vi / c2;
    params[i] = static_cast<float>(params[i] * shrink - s.lr * mhat / (sqrt(vhat) + eps));
  }
  __device__ void set_step(const StepInputs& in) { c1 = in.adam_c1, c2 = in.adam_c2; }
};

// In a captured step (control non-null) the update applies only to a finite step, and Adam's
// bias corrections are this step's, read from the device.
template <typename Step>
__global__ void __launch_bounds__(detail::kThreads)
    update_all_kernel(const ParamSlice* table, int tensors, int64_t total, Step step, const StepControl* control) {
  if (control != nullptr) {
    if (!control->apply) return;
    step.set_step(control->in);
  }
  for_chunk(table, tensors, total, step);
}

unsigned chunks(int64_t total) { return static_cast<unsigned>(detail::ceil_div(total, kChunk)); }

}  // namespace

void sgd_update_all(cudaStream_t s, const ParamSlice* table, int tensors, int64_t total_floats, const SgdArgs& a,
                    float* params, const float* grads, float* momentum, const StepControl* control) {
  if (tensors <= 0 || total_floats <= 0) return;
  const SgdStep step{a.momentum, a.nesterov, a.decoupled, a.first_step, params, momentum, grads};
  update_all_kernel<<<chunks(total_floats), detail::kThreads, 0, s>>>(table, tensors, total_floats, step, control);
}

void adamw_update_all(cudaStream_t s, const ParamSlice* table, int tensors, int64_t total_floats, const AdamArgs& a,
                      float* params, const float* grads, float* m, float* v, const StepControl* control) {
  if (tensors <= 0 || total_floats <= 0) return;
  const double c1 = 1.0 - std::pow(double(a.beta1), double(a.step));
  const double c2 = 1.0 - std::pow(double(a.beta2), double(a.step));
  const AdamStep step{a.beta1, a.beta2, a.eps, c1, c2, params, m, v, grads};
  update_all_kernel<<<chunks(total_floats), detail::kThreads, 0, s>>>(table, tensors, total_floats, step, control);
}

}  // namespace rn::cuda
