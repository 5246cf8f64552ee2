#include "network.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "error.hpp"

namespace rn {
namespace {

constexpr size_t kMaxCachedPlans = 6;

constexpr int64_t bytes_of(int64_t floats) { return floats * static_cast<int64_t>(sizeof(float)); }

LossScaleConfig default_loss_scale(const Backend& backend) {
  return std::string(backend.precision()) == "fp16" ? LossScaleConfig::dynamic_default() : LossScaleConfig{};
}

}  // namespace

Network::Network(GraphSpec spec, Backend& backend, int64_t memory_budget)
    : spec_(std::move(spec)), backend_(backend), memory_budget_(memory_budget), scaler_(default_loss_scale(backend)) {
  validate_graph(spec_);
  if (memory_budget_ < 0) fail(ErrorCode::InvalidArgument, "memoryBudget must be a positive number of bytes");
  Shape input{1, spec_.input_shape[0], spec_.input_shape[1], spec_.input_shape[2]};
  const std::vector<Shape> shapes = infer_shapes(spec_, input);
  if (memory_budget_ == kNoMemoryBudget) check_activation_growth(spec_, shapes);
  params_ = parameter_table(spec_, shapes);
  param_index_.reserve(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) param_index_.emplace(params_[i].name, i);
  int64_t trainable = 0, running = 0;
  for (const ParamInfo& p : params_) {
    int64_t& end = p.trainable ? trainable : running;
    end = std::max(end, p.offset + (p.numel + 15) / 16 * 16);
  }
  BackendCall call(backend_);
  trainable_ = BackendBuffer(backend_, trainable, "parameters");
  grads_ = BackendBuffer(backend_, trainable, "gradients");
  running_ = BackendBuffer(backend_, running, "batch-norm statistics");
  // Zeros until initialize() (Model.fromSpec always calls it with the user's seed). The
  // gradients' padding between tensors must stay zero: the optimizer sums over all of it.
  backend_.fill_zero(trainable_.data(), trainable);
  backend_.fill_zero(grads_.data(), trainable);
  backend_.fill_zero(running_.data(), running);
}

int64_t Network::trainable_count() const {
  int64_t n = 0;
  for (const ParamInfo& p : params_) n += p.trainable ? p.numel : 0;
  return n;
}

int64_t Network::running_count() const {
  int64_t n = 0;
  for (const ParamInfo& p : params_) n += p.trainable ? 0 : p.numel;
  return n;
}

const ParamInfo& Network::find(const std::string& name) const {
  if (auto it = param_index_.find(name); it != param_index_.end()) return params_[it->second];
  fail(ErrorCode::InvalidArgument, "model has no parameter named '" + name + "'");
}

void Network::read_parameter(const std::string& name, float* out) {
  const ParamInfo& p = find(name);
  const float* src = (p.trainable ? trainable_.data() : running_.data()) + p.offset;
  BackendCall call(backend_);
  backend_.download(out, src, bytes_of(p.numel));
}

void Network::write_parameter(const std::string& name, const float* values) {
  const ParamInfo& p = find(name);
  for (int64_t i = 0; i < p.numel; ++i) {
    if (!std::isfinite(values[i])) {
      fail(ErrorCode::InvalidArgument,
           "setParameter '" + name + "': value at index " + std::to_string(i) + " is not finite");
    }
  }
  if (p.role == ParamRole::RunningVar) {
    for (int64_t i = 0; i < p.numel; ++i) {
      if (values[i] < 0.0f)
        fail(ErrorCode::InvalidArgument, "setParameter '" + name + "': a variance cannot be negative");
    }
  }
  float* dst = (p.trainable ? trainable_.data() : running_.data()) + p.offset;
  ++params_generation_;
  BackendCall call(backend_);
  backend_.upload(dst, values, bytes_of(p.numel));
}

void Network::read_gradient(const std::string& name, float* out) {
  const ParamInfo& p = find(name);
  if (!p.trainable) fail(ErrorCode::InvalidArgument, "parameter '" + name + "' is not trainable and has no gradient");
  BackendCall call(backend_);
  backend_.download(out, grads_.data() + p.offset, bytes_of(p.numel));
}

std::vector<LayerInfo> Network::describe(const Shape& input) {
  if (input.size() != 3) fail(ErrorCode::InvalidShape, "describe: input shape must be [height, width, channels]");
  const Shape batch_of_one{1, input[0], input[1], input[2]};
  const std::vector<Shape> shapes = infer_shapes(spec_, batch_of_one);
  check_feature_counts(spec_, params_, shapes, batch_of_one);
  std::vector<LayerInfo> out;
  out.reserve(spec_.layers.size());
  for (size_t i = 0; i < spec_.layers.size(); ++i) {
    const Layer& l = spec_.layers[i];
    LayerInfo info{l.name, l.type, shapes[i + 1], 0, 0, {}};
    for (int v : l.inputs) info.inputs.push_back(v == 0 ? "input" : spec_.layers[static_cast<size_t>(v - 1)].name);
    out.push_back(std::move(info));
  }
  for (const ParamInfo& p : params_) {
    LayerInfo& info = out[static_cast<size_t>(p.layer)];
    (p.trainable ? info.params : info.running) += p.numel;
  }
  return out;
}

void Network::set_optimizer(OptimizerConfig config, float label_smoothing) {
  BackendCall call(backend_);
  optimizer_ = std::make_unique<Optimizer>(std::move(config), params_, trainable_.size(), backend_);
  optimizer_->set_frozen(frozen_trainable());
  label_smoothing_ = label_smoothing;
  ++capture_generation_;
}

std::vector<bool> Network::frozen_trainable() const {
  std::vector<bool> out;
  for (const ParamInfo& p : params_) {
    if (p.trainable) out.push_back(freezing_.is_frozen(p.layer));
  }
  return out;
}

void Network::set_freezing(const std::vector<std::string>& frozen, const std::vector<std::string>& running_statistics) {
  std::unordered_map<std::string, int> layer_index;
  for (size_t i = 0; i < spec_.layers.size(); ++i) layer_index.emplace(spec_.layers[i].name, static_cast<int>(i));
  auto find_layer = [&](const std::string& name) {
    auto it = layer_index.find(name);
    if (it == layer_index.end())
      fail(ErrorCode::InvalidArgument, "freeze: the model has no layer named '" + name + "'");
    return it->second;
  };
  Freezing f;
  f.frozen.assign(spec_.layers.size(), false);
  f.running_statistics.assign(spec_.layers.size(), false);
  for (const std::string& name : frozen) f.frozen[static_cast<size_t>(find_layer(name))] = true;
  for (const std::string& name : running_statistics) {
    const int i = find_layer(name);
    if (!f.frozen[static_cast<size_t>(i)] || spec_.layers[static_cast<size_t>(i)].type != LayerType::BatchNorm) {
      fail(ErrorCode::InvalidArgument,
           "freeze: '" + name + "' keeps running statistics only as a frozen batch-norm layer");
    }
    f.running_statistics[static_cast<size_t>(i)] = true;
  }
  if (f == freezing_) return;
  BackendCall call(backend_);
  freezing_ = std::move(f);
  plans_.clear();
  ++capture_generation_;
  // No plan writes a frozen parameter's gradient, so a zero now stays: the gradient norm (one
  // sum over the whole buffer) and clipping see only the trainable ones.
  for (const ParamInfo& p : params_) {
    if (p.trainable && freezing_.is_frozen(p.layer)) backend_.fill_zero(grads_.data() + p.offset, p.numel);
  }
  if (optimizer_) optimizer_->set_frozen(frozen_trainable());
}

Optimizer& Network::optimizer() {
  if (!optimizer_) fail(ErrorCode::InvalidArgument, "the model has no optimizer; compile it first");
  return *optimizer_;
}

void Network::set_learning_rate(float lr) {
  if (!optimizer_) fail(ErrorCode::InvalidArgument, "setLearningRate: compile the model first");
  optimizer_->set_lr(lr);
}

ParamBuffers Network::buffers() {
  ++params_generation_;
  return {trainable_.data(), grads_.data(), running_.data(), nullptr, params_generation_};
}

ParamBuffers Network::inference_buffers(const Plan& plan) {
  if (plan.folds() && folded_.data() == nullptr) folded_ = BackendBuffer(backend_, trainable_.size(), "folded weights");
  return {trainable_.data(), grads_.data(), running_.data(), folded_.data(), params_generation_};
}

int64_t Network::arena_bytes() const {
  int64_t total = 0;
  for (const auto& p : plans_) total += p->arena_bytes();
  return total;
}

int64_t Network::memory_bytes() const {
  int64_t floats = trainable_.size() * 2 + running_.size() + folded_.size();
  if (optimizer_) floats += optimizer_->state_floats();
  int64_t prepared = 0;
  for (const auto& p : plans_) prepared += p->prepared_bytes();
  return floats * static_cast<int64_t>(sizeof(float)) + arena_bytes() + prepared;
}

Plan& Network::plan_for(const Shape& input, PlanMode mode) {
  for (size_t i = 0; i < plans_.size(); ++i) {
    if (plans_[i]->input_shape() == input && plans_[i]->mode() == mode) {
      if (i + 1 != plans_.size()) {  // keep most recently used last
        auto p = std::move(plans_[i]);
        plans_.erase(plans_.begin() + static_cast<std::ptrdiff_t>(i));
        plans_.push_back(std::move(p));
      }
      return *plans_.back();
    }
  }
  if (plans_.size() >= kMaxCachedPlans) plans_.erase(plans_.begin());
  plans_.push_back(std::make_unique<Plan>(spec_, params_, input, mode, backend_, memory_budget_, freezing_));
  return *plans_.back();
}

void Network::check_images(const Tensor& images, const char* op) const {
  if (images.device() != nullptr && images.device()->device_name() != backend_.device_name()) {
    // (Backends of one GPU with different options share its memory, so the name decides.)
    fail(ErrorCode::Device, std::string(op) + ": the images live on " + images.device()->device_name() +
                                " but the model on " + backend_.device_name() + "; move them with tensor.to('" +
                                backend_.device_name() + "')");
  }
  const Shape& s = images.shape();
  if (s.size() != 4 || s[3] != spec_.input_shape[2]) {
    fail(ErrorCode::InvalidShape, std::string(op) + ": images must be [batch, height, width, " +
                                      std::to_string(spec_.input_shape[2]) + "] (NHWC), got " + shape_to_string(s));
  }
}

void Network::check_labels(const int32_t* labels, int64_t count, int64_t batch, const char* op) const {
  if (count != batch) {
    fail(ErrorCode::InvalidShape, std::string(op) + ": " + std::to_string(count) + " labels for a batch of " +
                                      std::to_string(batch) + " images");
  }
  for (int64_t i = 0; i < count; ++i) {
    if (labels[i] < 0 || labels[i] >= spec_.classes) {
      fail(ErrorCode::InvalidArgument, std::string(op) + ": label " + std::to_string(labels[i]) + " at index " +
                                           std::to_string(i) + " is outside [0, " + std::to_string(spec_.classes) +
                                           ")");
    }
  }
}

namespace {
// Before anything is updated: a batch-norm whose batch variance overflowed (inputs near the
// float limit) normalises to 0 with a finite loss, and would quietly put inf into its running
// statistics.
void check_batch_statistics(const GraphSpec& spec, Plan& plan, const char* op) {
  const int layer = plan.first_nonfinite_batch_statistics();
  if (layer == Plan::kAllFinite) return;
  fail(ErrorCode::NaN, std::string(op) + ": the batch statistics of batch-norm '" +
                           spec.layers[static_cast<size_t>(layer)].name +
                           "' are not finite (its inputs are too large for float32); the weights and running "
                           "statistics were left unchanged. Check the inputs' scale (normalize them).");
}

}  // namespace

void Network::check_mix(const LabelMix& mix, int64_t count, int64_t batch, const char* op) const {
  if (mix.other == nullptr) return;
  if (!(mix.lambda >= 0.0f && mix.lambda <= 1.0f)) {
    fail(ErrorCode::InvalidArgument, std::string(op) + ": the mix weight lambda must be in [0, 1]");
  }
  check_labels(mix.other, count, batch, op);
}

StepResult Network::compute_gradients(const Tensor& images, const int32_t* labels, int64_t count, float label_smoothing,
                                      const LabelMix& mix) {
  check_images(images, "computeGradients");
  check_labels(labels, count, images.dim(0), "computeGradients");
  check_mix(mix, count, images.dim(0), "computeGradients");
  BackendCall call(backend_);
  Plan& plan = plan_for(images.shape(), {true, training_});
  ParamBuffers p = buffers();
  plan.forward(images.data(), p, images.device() != nullptr);
  LossResult l = plan.loss(labels, label_smoothing, mix);
  if (std::isfinite(l.loss)) check_batch_statistics(spec_, plan, "computeGradients");
  // Scaled like a training step's (fp16 gradients underflow otherwise), then unscaled. An
  // overflow backs the scale off as a training step would, and backward runs again (the
  // forward's activations are still in the arena).
  float loss_scale = scaler_.scale();
  plan.backward(labels, label_smoothing, p, loss_scale, mix);
  while (loss_scale != 1.0f && std::isfinite(l.loss) && scaler_.can_skip() &&
         !std::isfinite(backend_.sum_of_squares(grads_.size(), p.grads))) {
    scaler_.update(false);
    loss_scale = scaler_.scale();
    plan.backward(labels, label_smoothing, p, loss_scale, mix);
  }
  if (loss_scale != 1.0f) backend_.scale(grads_.size(), 1.0f / loss_scale, p.grads);
  if (std::isfinite(l.loss)) plan.update_running_statistics(p);
  return {l.loss, l.correct, count, 0.0, l.correct5, false, loss_scale};
}

namespace {
// For E_NAN messages: where the last forward first produced a non-finite value.
std::string nonfinite_origin(const GraphSpec& spec, Plan& plan, const float* images) {
  const int layer = plan.first_nonfinite_layer(images);
  if (layer == Plan::kInputNonFinite) return "the input images already hold a non-finite value";
  if (layer == Plan::kAllFinite) return "every layer's output is finite (the loss itself overflowed)";
  const Layer& l = spec.layers[static_cast<size_t>(layer)];
  return "the first layer whose output went non-finite is '" + l.name + "' (" + layer_type_name(l.type) + ")";
}

[[noreturn]] void fail_nonfinite_loss(const GraphSpec& spec, Plan& plan, const Tensor& images, double loss) {
  fail(ErrorCode::NaN, "trainStep: the loss is not finite (" + std::to_string(loss) + "); " +
                           nonfinite_origin(spec, plan, images.data()) +
                           "; the weights were left unchanged. Check the inputs and lower the learning rate.");
}
}  // namespace

bool Network::gradients_apply(double norm) {
  const LossScaler::Verdict verdict = scaler_.update(std::isfinite(norm));
  if (verdict == LossScaler::Verdict::Fail) Optimizer::fail_non_finite(norm);  // E_NAN before any update
  return verdict == LossScaler::Verdict::Apply;  // Skip: fp16 overflow, the scale was halved
}

StepResult Network::train_step(const Tensor& images, const int32_t* labels, int64_t count, const LabelMix& mix) {
  if (!optimizer_) fail(ErrorCode::InvalidArgument, "trainStep: compile the model with an optimizer first");
  check_images(images, "trainStep");
  check_labels(labels, count, images.dim(0), "trainStep");
  check_mix(mix, count, images.dim(0), "trainStep");
  BackendCall call(backend_);
  Plan& plan = plan_for(images.shape(), {true, training_});
  if (StepCapture* capture = backend_.step_capture()) {
    if (mix.other != nullptr) {
      fail(ErrorCode::InvalidArgument, "trainStep: mixup / cutmix targets are supported on the CPU only");
    }
    return train_step_captured(*capture, plan, images, labels, count);
  }
  ParamBuffers p = buffers();
  plan.forward(images.data(), p, images.device() != nullptr);
  LossResult l = plan.loss(labels, label_smoothing_, mix);
  if (!std::isfinite(l.loss)) fail_nonfinite_loss(spec_, plan, images, l.loss);
  check_batch_statistics(spec_, plan, "trainStep");
  const float loss_scale = scaler_.scale();
  plan.backward(labels, label_smoothing_, p, loss_scale, mix);
  const double norm = optimizer_->gradient_norm(p.grads) / loss_scale;
  const LossScaler scaler_before = scaler_;
  const bool skipped = !gradients_apply(norm);
  if (!skipped) {
    try {
      optimizer_->apply(p.params, p.grads, norm, 1.0f / loss_scale);  // E_NAN, writing nothing, for a non-finite update
    } catch (...) {
      scaler_ = scaler_before;  // a refused step changes nothing, the loss scale's count included
      throw;
    }
  }
  // The forward was sound either way (its loss is finite), as PyTorch's GradScaler also keeps.
  plan.update_running_statistics(p);
  return {l.loss, l.correct, count, skipped ? 0.0 : norm, l.correct5, skipped, loss_scale};
}

// The same step as train_step, for a backend that captures it (a CUDA graph, replayed): the
// inputs are staged at fixed addresses first, the recorded work decides on the device whether
// the update applies (finite loss and gradients), and the host reads the outcome once at the
// end and then makes the same decisions train_step makes, in the same order.
StepResult Network::train_step_captured(StepCapture& capture, Plan& plan, const Tensor& images, const int32_t* labels,
                                        int64_t count) {
  ParamBuffers p = buffers();
  const float* input = plan.stage_input(images.data(), images.device() != nullptr);
  const int32_t* staged_labels = plan.stage_labels(labels);
  const float loss_scale = scaler_.scale();
  StepInputs inputs = optimizer_->captured_inputs(capture, 1.0f / loss_scale);
  inputs.overflow_skips = scaler_.can_skip();
  capture.set_step_inputs(inputs);
  // What the capture bakes in: the loss scale (backward's first factor), SGD's first step, and
  // the optimizer and its settings (the generation).
  uint32_t scale_bits = 0;
  std::memcpy(&scale_bits, &loss_scale, sizeof(scale_bits));
  const uint64_t version =
      (capture_generation_ << 33) | (uint64_t(optimizer_->next_is_first_step()) << 32) | scale_bits;
  auto record = [&] {
    plan.forward(input, p, true);
    plan.loss(staged_labels, label_smoothing_);
    plan.backward(staged_labels, label_smoothing_, p, loss_scale);
    optimizer_->record_captured(capture, p.params, p.grads);
    plan.update_running_statistics(p);
  };
  capture.run_captured(&plan, version, record);
  const StepOutcome out = capture.step_outcome();
  if (!std::isfinite(out.loss)) fail_nonfinite_loss(spec_, plan, images, out.loss);
  const double norm = std::sqrt(out.grad_sum_of_squares) / loss_scale;
  // The device vetoed a non-finite update, and the running statistics with it, as train_step.
  if (out.nonfinite_update != kUpdateApplied) optimizer_->fail_non_finite_update(out.nonfinite_update);
  const bool skipped = !gradients_apply(norm);  // the device applied the update exactly when this holds
  if (!skipped) optimizer_->count_step();
  return {out.loss,
          static_cast<int64_t>(out.correct),
          count,
          skipped ? 0.0 : norm,
          static_cast<int64_t>(out.correct5),
          skipped,
          loss_scale};
}

TensorPtr Network::predict(const Tensor& images, bool softmax) {
  check_images(images, "predict");
  BackendCall call(backend_);
  Plan& plan = plan_for(images.shape(), {false, false});
  ParamBuffers p = inference_buffers(plan);
  const float* logits = plan.forward(images.data(), p, images.device() != nullptr);
  TensorPtr out = Tensor::empty(plan.output_shape(), "predict output");
  // The softmax runs where the logits are, into the plan's fp32 scratch on a device, which also
  // takes the logits widened from a mixed-precision activation type.
  float* result = backend_.is_device() ? plan.output_scratch() : out->data();
  if (softmax) {
    backend_.softmax(out->dim(0), out->dim(1), logits, result);
  } else if (backend_.activation_bytes() != static_cast<int>(sizeof(float))) {
    backend_.activation_to_float(out->numel(), logits, result);
  } else {
    result = const_cast<float*>(logits);
  }
  if (result != out->data()) backend_.download(out->data(), result, out->bytes());
  return out;
}

StepResult Network::evaluate(const Tensor& images, const int32_t* labels, int64_t count) {
  check_images(images, "evaluate");
  check_labels(labels, count, images.dim(0), "evaluate");
  BackendCall call(backend_);
  Plan& plan = plan_for(images.shape(), {false, false});
  ParamBuffers p = inference_buffers(plan);
  plan.forward(images.data(), p, images.device() != nullptr);
  LossResult l = plan.loss(labels, 0.0f);
  return {l.loss, l.correct, count, 0.0, l.correct5};
}

}  // namespace rn
