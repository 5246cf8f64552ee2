// The device side of a captured training step (CUDA graphs): one small block of device memory
// per backend that the recorded work reads its per-step values from and writes its results to,
// so a replay needs no host round trip between the loss and the update.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "../core/backend.hpp"

namespace rn::cuda {

struct StepControl {
  StepInputs in;        // written by the host before each replay
  double results[4];    // loss, correct, correct5 (the loss kernel), sum of squares of the scaled gradients
  float grad_factor;    // 1 / loss scale × the clipping factor
  int apply;            // loss and gradients finite, and the update too: the optimizer updates
  int running_ok;       // loss finite and the gradients finite or merely overflowed (a skipped step)
  unsigned bad_tensor;  // the first tensor whose update would not be finite, or kNoBadTensor
};

// One thread: from the loss and the gradients' sum of squares, the factor and the two flags,
// by the host's arithmetic (Network::train_step, Optimizer::apply).
void finish_step(cudaStream_t s, StepControl* control);
// x *= grad_factor, when the step applies and the factor is not 1.
void scale_by_control(cudaStream_t s, int64_t count, const StepControl* control, float* x);
// After the update's check (kernels.hpp's *_update_check_all, into bad_tensor): a non-finite
// update vetoes the step, the optimizer's update and the running statistics both, as the
// host path refuses it (Network::train_step).
void veto_nonfinite_update(cudaStream_t s, StepControl* control);

}  // namespace rn::cuda
