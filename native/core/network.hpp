// A Network owns a model's parameters (trainable, gradients, batch-norm running
// statistics), its optimizer and its compiled plans (one per input shape and mode,
// cached). Every public call locks the network: steps run one at a time.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "backend.hpp"
#include "graph.hpp"
#include "loss_scale.hpp"
#include "memory.hpp"
#include "optimizer.hpp"
#include "plan.hpp"
#include "tensor.hpp"

namespace rn {

struct StepResult {
  double loss = 0.0;
  int64_t correct = 0;
  int64_t count = 0;
  double grad_norm = 0.0;
  int64_t correct5 = 0;
  bool skipped = false;     // mixed precision: the scaled gradients overflowed; nothing was updated
  float loss_scale = 1.0f;  // the scale this step's backward used
};

struct LayerInfo {
  std::string name;
  LayerType type;
  Shape output;
  int64_t params = 0;  // trainable
  int64_t running = 0;
  std::vector<std::string> inputs;
};

class Network {
 public:
  // `memory_budget`: the most bytes one plan's arena may take (plan.hpp); with none, a spec
  // whose activations are absurd for its own input shape is refused here already (E_ALLOC).
  explicit Network(GraphSpec spec, Backend& backend = cpu_backend(), int64_t memory_budget = kNoMemoryBudget);

  Backend& backend() { return backend_; }
  const GraphSpec& spec() const { return spec_; }
  const std::vector<ParamInfo>& parameters() const { return params_; }
  int64_t trainable_count() const;
  int64_t running_count() const;

  // torchvision's initialisation: He normal (fan-out) for convolutions, PyTorch's
  // default uniform for dense layers, gamma 1 / beta 0 (gamma 0 for the last batch-norm
  // of each residual branch when zero_init_residual), running mean 0 / variance 1.
  void initialize(uint64_t seed, bool zero_init_residual);

  const ParamInfo& find(const std::string& name) const;  // E_ARG naming the unknown parameter
  void read_parameter(const std::string& name, float* out);
  void write_parameter(const std::string& name, const float* values);
  void read_gradient(const std::string& name, float* out);

  // Layers with their output shapes for a batch of one at `input` ([h, w, c]).
  std::vector<LayerInfo> describe(const Shape& input);

  void set_optimizer(OptimizerConfig config, float label_smoothing);
  Optimizer& optimizer();  // E_ARG before compile
  bool has_optimizer() const { return optimizer_ != nullptr; }
  void set_learning_rate(float lr);
  void set_training(bool training) { training_ = training; }
  // Freezes exactly the layers named in `frozen` (every other layer trains); the batch-norms
  // named in `running_statistics` (each frozen) normalise with their running statistics in
  // training too, and keep them. E_ARG naming an unknown layer, or a running_statistics entry
  // that is not a frozen batch-norm. Compiled plans are dropped (they are rebuilt frozen), the
  // frozen parameters' gradients zeroed (they stay so: no plan writes them), and the optimizer
  // told; its state is kept.
  void set_freezing(const std::vector<std::string>& frozen, const std::vector<std::string>& running_statistics);
  const Freezing& freezing() const { return freezing_; }
  // Loss scaling (mixed precision). The default suits the backend's precision: dynamic from
  // 2^16 for fp16, a fixed 1 for bf16 and fp32.
  LossScaler& loss_scaler() { return scaler_; }
  void set_loss_scale(const LossScaleConfig& config) {
    scaler_ = LossScaler(config);
    ++capture_generation_;
  }
  bool training() const { return training_; }

  // One step: forward, loss, backward, optimizer update. E_NAN (weights, optimizer state,
  // running statistics and step count untouched) when the loss or the gradients are not
  // finite, or when the update would make a weight or its optimizer state non-finite.
  StepResult train_step(const Tensor& images, const int32_t* labels, int64_t count, const LabelMix& mix = {});
  // Forward and backward only; gradients are left in place for read_gradient.
  StepResult compute_gradients(const Tensor& images, const int32_t* labels, int64_t count, float label_smoothing,
                               const LabelMix& mix = {});
  // Inference-mode forward: logits or probabilities [n, classes].
  TensorPtr predict(const Tensor& images, bool softmax);
  // Inference-mode loss and accuracy.
  StepResult evaluate(const Tensor& images, const int32_t* labels, int64_t count);
  // predict's time split over the inference plan's steps (network_profile.cpp): one untimed
  // predict (it builds the plan and prepares the weights), then `runs` timed ones; every step's
  // mean milliseconds, the mean wall time of a whole predict, and the last run's logits.
  struct StepTime {
    std::string name;    // the graph layer the step runs (fused layers ride along)
    std::string op;      // e.g. "conv2d+batchNorm+add+relu"
    std::string detail;  // a convolution's or pool's geometry, else empty
    double ms = 0.0;
  };
  struct PredictProfile {
    TensorPtr logits;
    double total_ms = 0.0;
    std::vector<StepTime> steps;
  };
  PredictProfile profile_predict(const Tensor& images, int runs);

  std::mutex& mutex() { return mutex_; }
  int64_t plan_count() const { return static_cast<int64_t>(plans_.size()); }
  int64_t arena_bytes() const;
  // The most recently used plan's fused steps, and how many of them run backward (0 for an
  // inference plan; fewer than all for a frozen prefix); {0, 0} before any plan.
  std::pair<int, int> last_plan_steps() const {
    if (plans_.empty()) return {0, 0};
    return {plans_.back()->step_count(), plans_.back()->backward_step_count()};
  }
  // Parameters, gradients, running statistics, optimizer state and plan arenas.
  int64_t memory_bytes() const;

 private:
  Plan& plan_for(const Shape& input, PlanMode mode);
  StepResult train_step_captured(StepCapture& capture, Plan& plan, const Tensor& images, const int32_t* labels,
                                 int64_t count);
  // The loss scaler's decision on a step's gradients (true: apply the update; false: an fp16
  // overflow, skipped); E_NAN when they are not finite and cannot be skipped.
  bool gradients_apply(double norm);
  void check_images(const Tensor& images, const char* op) const;
  void check_labels(const int32_t* labels, int64_t count, int64_t batch, const char* op) const;
  // The second labels (same count) and λ ∈ [0, 1] of mixup / cutmix targets.
  void check_mix(const LabelMix& mix, int64_t count, int64_t batch, const char* op) const;
  // For a call that may write parameters or running statistics (training): bumps the generation.
  ParamBuffers buffers();
  // For an inference plan's forward, which writes none: the folded weights (allocated on first
  // need) and the current generation, so the plan refolds only after parameters changed.
  ParamBuffers inference_buffers(const Plan& plan);

  GraphSpec spec_;
  Backend& backend_;
  int64_t memory_budget_;
  std::vector<ParamInfo> params_;
  std::unordered_map<std::string, size_t> param_index_;  // name → index in params_ (find by name in O(1))
  BackendBuffer trainable_, grads_, running_;
  BackendBuffer folded_;  // inference plans' batch-norm-folded weights (plan.hpp), trainable layout
  // Bumped on every write of parameters or running statistics (setParameter, initialize, any
  // training call): inference plans recompute their folded weights when it moved.
  uint64_t params_generation_ = 1;
  std::unique_ptr<Optimizer> optimizer_;
  float label_smoothing_ = 0.0f;
  LossScaler scaler_;
  // Bumped whenever something a captured step bakes in changes (optimizer, loss-scale settings).
  uint64_t capture_generation_ = 0;
  bool training_ = true;
  Freezing freezing_;
  // One flag per trainable parameter (parameter_table order): its layer is frozen.
  std::vector<bool> frozen_trainable() const;
  std::vector<std::unique_ptr<Plan>> plans_;  // most recently used last
  std::mutex mutex_;
};

}  // namespace rn
