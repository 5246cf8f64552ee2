// Optimizer configuration and the update over all trainable parameters: per-parameter
// groups (weight decay and learning-rate multipliers), clipping by global norm, then
// SGD (momentum, Nesterov, L2 or decoupled decay) or AdamW, each in place.
#pragma once

#include <cstdint>
#include <vector>

#include "backend.hpp"
#include "graph.hpp"
#include "memory.hpp"

namespace rn {

enum class OptimizerType { Sgd, AdamW };

struct OptimizerConfig {
  OptimizerType type = OptimizerType::Sgd;
  float lr = 0.1f;
  float momentum = 0.0f;
  bool nesterov = false;
  float weight_decay = 0.0f;
  bool decoupled = false;  // SGD: decay the weights directly instead of adding an L2 gradient
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  float clip_norm = 0.0f;  // 0: no clipping
  // One entry per trainable parameter (parameter_table order, trainable ones only).
  std::vector<float> decay_scale;  // multiplies weight_decay
  std::vector<float> lr_scale;     // multiplies lr
};

class Optimizer {
 public:
  // Allocates the state (momentum, or Adam's two moments) once.
  Optimizer(OptimizerConfig config, const std::vector<ParamInfo>& params, int64_t trainable_floats, Backend& backend);

  const OptimizerConfig& config() const { return config_; }
  void set_lr(float lr) { config_.lr = lr; }
  // Frozen parameters (one flag per trainable parameter, parameter_table order; empty: none)
  // are left out of every update: no step, no weight decay, their state (momentum, moments)
  // kept as it is for when they thaw.
  void set_frozen(std::vector<bool> frozen);
  int64_t steps() const { return steps_; }
  int64_t state_floats() const { return state1_.size() + state2_.size(); }

  // Saved state for checkpoints: slot 0 = momentum buffer (SGD) or first moment (AdamW),
  // slot 1 = AdamW's second moment. slot_count() is 0, 1 or 2.
  int slot_count() const { return (state1_.data() ? 1 : 0) + (state2_.data() ? 1 : 0); }
  // Copies one parameter's slot out of / into the backend's memory; E_ARG for a missing slot.
  void read_slot(int index, const ParamInfo& p, float* out);
  void write_slot(int index, const ParamInfo& p, const float* values);
  void set_steps(int64_t steps) { steps_ = steps; }

  // One step in two halves, with the loss scaler's decision between them (network.cpp): the
  // global norm of the gradients as they are, then — clipping if configured — the update from
  // gradients scaled by `grad_scale` (the loss scale's inverse) whose true norm is `norm`. The
  // unscaling and the clipping are one pass. fail_non_finite is the E_NAN of a step whose
  // gradients are not finite (nothing updated).
  double gradient_norm(const float* grads);
  // All or nothing (OptimizerKernels::sgd_update_all): when any new parameter or state value would not be
  // finite, nothing is written, the step is not counted, and it fails with
  // fail_non_finite_update's E_NAN.
  void apply(float* params, float* grads, double norm, float grad_scale);
  [[noreturn]] static void fail_non_finite(double norm);
  // E_NAN naming the parameter (trainable index `slice`) whose update was refused.
  [[noreturn]] void fail_non_finite_update(int64_t slice) const;

  // A captured step (Backend::step_capture; network.cpp). Before the replay: the per-step
  // values the device reads (bias corrections, clipping) and the parameter table, uploaded
  // outside the capture; `first_step` is baked into the capture (SGD's buffer starts as the
  // first gradient), so it belongs to the capture's version. Inside the recording: the norm,
  // the unscale + clip and the update, applied by the device only to a finite step. After it:
  // count_step once the host knows the step was applied.
  StepInputs captured_inputs(StepCapture& capture, float inv_loss_scale);
  bool next_is_first_step() const { return steps_ == 0; }
  void record_captured(StepCapture& capture, float* params, float* grads);
  void count_step() { ++steps_; }

 private:
  float* slot(int index, const ParamInfo& p);
  const std::vector<ParamSlice>& slices();
  // kUpdateApplied, or the slice whose update was refused (nothing written).
  int64_t update(float* params, float* grads, int64_t step);

  OptimizerConfig config_;
  Backend& backend_;
  std::vector<const ParamInfo*> trainable_;
  int64_t trainable_floats_ = 0;
  BackendBuffer state1_, state2_;
  std::vector<ParamSlice> slices_;
  std::vector<bool> frozen_;         // by trainable index
  std::vector<size_t> slice_param_;  // slices_[i] updates trainable_[slice_param_[i]]
  int64_t steps_ = 0;
};

}  // namespace rn
