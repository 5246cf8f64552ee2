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
  int apply;            // loss and gradients finite: the optimizer updates
  int running_ok;       // loss finite and the gradients finite or merely overflowed (a skipped step)
};

// One thread: from the loss and the gradients' sum of squares, the factor and the two flags,
// by the host's arithmetic (Network::train_step, Optimizer::apply).
void finish_step(cudaStream_t s, StepControl* control);
// x *= grad_factor, when the step applies and the factor is not 1.
void scale_by_control(cudaStream_t s, int64_t count, const StepControl* control, float* x);

}  // namespace rn::cuda
