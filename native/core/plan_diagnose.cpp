// Diagnosis of a step's numbers: which layer's output first went non-finite, and whether a
// batch-norm's batch statistics did (checked every training step: C values per batch-norm).
//
// first_nonfinite_layer is only called on the E_NAN path, so it is written for clarity, not speed. In a plan that runs
// backward every activation lives until the step ends (plan_memory), so the values the failed
// forward left in the arena are read in place, in step order, without running anything again.
// A forward-only plan reuses activation buffers, but it never computes a training loss: calling
// this on one is an internal error.
#include "error.hpp"
#include "plan.hpp"

namespace rn {

int Plan::first_nonfinite_layer(const float* input) {
  if (!mode_.backward) fail(ErrorCode::Internal, "Plan::first_nonfinite_layer needs a training plan's activations");
  // The last forward's own copy of the input (a device backend staged it in the arena), in
  // fp32 as given, and as the steps read it (converted to the activation type: an fp16 input
  // can overflow where the fp32 one did not).
  if (input_fp32_ != nullptr) input = input_fp32_;
  const Value& in = values_[0];
  if (!backend_.all_finite(in.numel, input)) return kInputNonFinite;
  if (input_ != nullptr) input = input_;
  if (!backend_.activations_finite(in.numel, input)) return kInputNonFinite;
  // Steps run in order, and a fused step (conv + batch-norm statistics, batch-norm + add +
  // ReLU) is named by its first layer: the one whose arithmetic produced the value.
  for (const Step& s : steps_) {
    const Value& y = values_[static_cast<size_t>(s.out)];
    if (!backend_.activations_finite(y.numel, act(s.out, input))) return s.layer;
  }
  return kAllFinite;
}

int Plan::first_nonfinite_batch_statistics() {
  if (!mode_.batch_stats) return kAllFinite;
  const float* arena = arena_.data();
  for (const Step& s : steps_) {
    if (s.type != LayerType::BatchNorm || !s.batch_stats) continue;  // frozen on its running statistics
    const int64_t c = values_[static_cast<size_t>(s.in)].shape.back();
    if (!backend_.all_finite(c, arena + s.mean) || !backend_.all_finite(c, arena + s.var)) return s.layer;
  }
  return kAllFinite;
}

}  // namespace rn
