#include "optimizer.hpp"

#include <cmath>
#include <cstring>

#include "error.hpp"

namespace rn {

Optimizer::Optimizer(OptimizerConfig config, const std::vector<ParamInfo>& params, int64_t trainable_floats,
                     Backend& backend)
    : config_(std::move(config)), backend_(backend), trainable_floats_(trainable_floats) {
  for (const ParamInfo& p : params) {
    if (p.trainable) trainable_.push_back(&p);
  }
  if (config_.decay_scale.size() != trainable_.size() || config_.lr_scale.size() != trainable_.size()) {
    fail(ErrorCode::InvalidArgument, "optimizer: parameter groups must give one entry per trainable parameter (" +
                                         std::to_string(trainable_.size()) + ")");
  }
  const bool needs_first = config_.type == OptimizerType::AdamW || config_.momentum != 0.0f;
  if (needs_first) {
    state1_ = BackendBuffer(backend_, trainable_floats, "optimizer state");
    backend_.fill_zero(state1_.data(), trainable_floats);
  }
  if (config_.type == OptimizerType::AdamW) {
    state2_ = BackendBuffer(backend_, trainable_floats, "optimizer state");
    backend_.fill_zero(state2_.data(), trainable_floats);
  }
}

float* Optimizer::slot(int index, const ParamInfo& p) {
  if (!p.trainable) fail(ErrorCode::InvalidArgument, "parameter '" + p.name + "' has no optimizer state");
  BackendBuffer* buf = index == 0 ? &state1_ : index == 1 ? &state2_ : nullptr;
  if (buf == nullptr || buf->data() == nullptr) {
    fail(ErrorCode::InvalidArgument,
         "optimizer state slot " + std::to_string(index) + " does not exist for this optimizer");
  }
  return buf->data() + p.offset;
}

void Optimizer::read_slot(int index, const ParamInfo& p, float* out) {
  backend_.download(out, slot(index, p), p.numel * static_cast<int64_t>(sizeof(float)));
}

void Optimizer::write_slot(int index, const ParamInfo& p, const float* values) {
  backend_.upload(slot(index, p), values, p.numel * static_cast<int64_t>(sizeof(float)));
}

void Optimizer::set_frozen(std::vector<bool> frozen) {
  if (!frozen.empty() && frozen.size() != trainable_.size()) {
    fail(ErrorCode::Internal, "optimizer: one frozen flag per trainable parameter expected");
  }
  frozen_ = std::move(frozen);
}

const std::vector<ParamSlice>& Optimizer::slices() {
  slices_.clear();  // capacity kept: allocates on the first step (and after a change of frozen) only
  slice_param_.clear();
  for (size_t i = 0; i < trainable_.size(); ++i) {
    if (!frozen_.empty() && frozen_[i]) continue;
    const ParamInfo& p = *trainable_[i];
    slices_.push_back(
        {p.offset, p.numel, config_.lr * config_.lr_scale[i], config_.weight_decay * config_.decay_scale[i]});
    slice_param_.push_back(i);
  }
  return slices_;
}

double Optimizer::gradient_norm(const float* grads) {
  // Padding between packed tensors holds zeros, so one sum covers every gradient.
  return std::sqrt(backend_.sum_of_squares(trainable_floats_, grads));
}

void Optimizer::fail_non_finite(double norm) {
  fail(ErrorCode::NaN, "training step: the gradients are not finite (norm " + std::to_string(norm) +
                           "); the weights were left unchanged. Lower the learning rate or clip gradients.");
}

void Optimizer::fail_non_finite_update(int64_t slice) const {
  const std::string what = config_.type == OptimizerType::Sgd ? "SGD" : "AdamW";
  fail(ErrorCode::NaN,
       "training step: the " + what + " update of '" + trainable_[slice_param_[static_cast<size_t>(slice)]]->name +
           "' would make it or its optimizer state non-finite, from finite gradients; the weights "
           "were left unchanged. Lower the learning rate, or check the optimizer's settings (eps > 0).");
}

void Optimizer::apply(float* params, float* grads, double norm, float grad_scale) {
  double factor = grad_scale;
  if (config_.clip_norm > 0.0f && norm > config_.clip_norm) factor *= config_.clip_norm / (norm + 1e-6);
  if (factor != 1.0) backend_.scale(trainable_floats_, static_cast<float>(factor), grads);
  if (const int64_t refused = update(params, grads, steps_ + 1); refused != kUpdateApplied) {
    fail_non_finite_update(refused);
  }
  ++steps_;
}

// `step` is 1-based.
int64_t Optimizer::update(float* params, float* grads, int64_t step) {
  if (slices().empty()) return kUpdateApplied;  // everything frozen
  if (config_.type == OptimizerType::Sgd) {
    SgdArgs a;
    a.momentum = config_.momentum;
    a.nesterov = config_.nesterov;
    a.decoupled = config_.decoupled;
    a.first_step = step == 1;
    return backend_.sgd_update_all(slices_, a, params, grads, state1_.data());
  }
  AdamArgs a;
  a.beta1 = config_.beta1;
  a.beta2 = config_.beta2;
  a.eps = config_.eps;
  a.step = step;
  return backend_.adamw_update_all(slices_, a, params, grads, state1_.data(), state2_.data());
}

StepInputs Optimizer::captured_inputs(StepCapture& capture, float inv_loss_scale) {
  StepInputs in;
  in.loss_scale = 1.0f / inv_loss_scale;
  in.inv_loss_scale = inv_loss_scale;
  in.clip_norm = config_.clip_norm;
  const double step = static_cast<double>(steps_ + 1);
  in.adam_c1 = 1.0 - std::pow(double(config_.beta1), step);
  in.adam_c2 = 1.0 - std::pow(double(config_.beta2), step);
  slices();  // this step's learning rates, uploaded by the backend before the replay
  capture.stage_param_table(slices_);
  return in;
}

void Optimizer::record_captured(StepCapture& capture, float* params, float* grads) {
  backend_.sum_of_squares(trainable_floats_, grads);  // stays on the device
  capture.finish_gradients(trainable_floats_, grads);
  update(params, grads, steps_ + 1);  // the device reads this step's bias corrections and vetoes a non-finite update
}

}  // namespace rn
