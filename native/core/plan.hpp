// A Plan is the graph compiled for one input shape and one mode: a list of fused steps
// and one arena that holds every activation, gradient, batch statistic and kernel
// scratch buffer, with offsets fixed at compile time. Running it allocates nothing.
//
// Fusions: conv → batch-norm statistics (the conv's epilogue), batch-norm + residual add
// + ReLU (one step), add + ReLU, and in backward the ReLU mask folded into the
// batch-norm backward. Gradient buffers are placed by lifetime (a buffer is reused once
// its value's gradient is consumed), and batch-norm / ReLU backward write in place over
// their incoming gradient.
//
// Inference plans (no backward, running statistics) on a backend with InferenceKernels
// (inference_kernels.hpp: the optimized CPU) go further: a batch-norm whose input is a
// convolution's only use is folded into that convolution (w' = w·s, b' = β − μ·s + b·s with
// s = γ/√(σ² + ε)), and the residual add and ReLU behind it (or behind a convolution feeding an
// add directly) run in the convolution's epilogue. The folded weights live in a buffer laid out
// as the trainable parameters (ParamBuffers::folded: a convolution's at its weight's offset, its
// bias at the batch-norm beta's) and are recomputed whenever ParamBuffers::generation changes,
// i.e. after any parameter write; so are every convolution's weights prepared for its forward
// kernel (packed for the GEMM or Winograd-transformed: the plan's own buffer), which the
// kernels would otherwise redo on every call. RESNET_INFERENCE_FUSION=0 compiles inference
// plans unfused and unprepared.
//
// Freezing (Freezing below): a frozen layer's parameters get no gradient. Backward runs only
// the steps whose output's gradient something trainable needs, so a frozen prefix of the
// network (every layer from the input up to the first trainable one) costs no backward work
// at all; a frozen layer behind a trainable one passes its input gradient on and nothing else.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "backend.hpp"
#include "graph.hpp"
#include "inference_kernels.hpp"
#include "memory.hpp"

namespace rn {

struct ParamBuffers {
  float* params = nullptr;   // trainable, packed as parameter_table's offsets
  float* grads = nullptr;    // same layout
  float* running = nullptr;  // batch-norm running statistics
  // Inference plans that fold batch-norms (Plan::folds): their folded weights, in the trainable
  // layout. `generation` changes whenever any parameter or running statistic may have been
  // written; 0 means unknown (the folded weights are recomputed on every forward).
  float* folded = nullptr;
  uint64_t generation = 0;
};

struct PlanMode {
  bool backward = false;     // compute gradients (training or gradient evaluation)
  bool batch_stats = false;  // batch-norm uses (and updates) batch statistics
  bool operator==(const PlanMode& o) const { return backward == o.backward && batch_stats == o.batch_stats; }
};

// Which layers train, by graph layer (empty: every layer trains). A frozen layer's parameters
// get no gradient (and so no update). A frozen batch-norm with `running_statistics` set
// normalises with its running statistics in training too and leaves them as they are (as
// PyTorch's eval() on that module or Keras' trainable = False): there it is an affine map, and
// its backward is dx = dy · gamma / sqrt(running_var + eps).
struct Freezing {
  std::vector<bool> frozen;              // by graph layer
  std::vector<bool> running_statistics;  // by graph layer: frozen batch-norms on their running statistics
  bool is_frozen(int layer) const {
    return static_cast<size_t>(layer) < frozen.size() && frozen[static_cast<size_t>(layer)];
  }
  bool uses_running_statistics(int layer) const {
    return static_cast<size_t>(layer) < running_statistics.size() && running_statistics[static_cast<size_t>(layer)];
  }
  bool operator==(const Freezing& o) const { return frozen == o.frozen && running_statistics == o.running_statistics; }
};

struct LossResult {
  double loss = 0.0;
  int64_t correct = 0;
  int64_t correct5 = 0;
};

// Mixup / cutmix targets: every example's target is λ·onehot(labels) + (1 − λ)·onehot(other),
// so the loss is λ·CE(labels) + (1 − λ)·CE(other) (each with the label smoothing) and its
// gradient the same blend. Accuracy counts the dominant label (labels when λ ≥ 1/2, else
// other). `other` null: plain targets. Host backends only (the second labels are not staged).
struct LabelMix {
  const int32_t* other = nullptr;
  float lambda = 1.0f;
};

// The most bytes one plan's arena may take (Model.fromSpec's memoryBudget); kNoMemoryBudget
// when the user set none, and then check_activation_growth (graph.hpp) guards instead.
constexpr int64_t kNoMemoryBudget = 0;

class Plan {
 public:
  // E_ALLOC, before allocating, when the arena would exceed `memory_budget` bytes, or (with
  // no budget) when a layer's activations are absurd for its input (check_activation_growth).
  Plan(const GraphSpec& spec, const std::vector<ParamInfo>& params, const Shape& input, PlanMode mode, Backend& backend,
       int64_t memory_budget = kNoMemoryBudget, const Freezing& freezing = Freezing{});
  ~Plan() {
    if (StepCapture* capture = backend_.step_capture()) capture->drop_captures(this);
  }
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;

  const Shape& input_shape() const { return input_shape_; }
  const Shape& output_shape() const;
  PlanMode mode() const { return mode_; }
  int64_t arena_bytes() const { return arena_.size() * static_cast<int64_t>(sizeof(float)); }
  // [n, classes] fp32 floats in the arena for a device backend's predict (the softmax, or the
  // logits widened from the activation type); null on the CPU.
  float* output_scratch() { return probs_slot_ >= 0 ? arena_.data() + probs_slot_ : nullptr; }
  int step_count() const { return static_cast<int>(steps_.size()); }
  // Whether forward needs ParamBuffers::folded (an inference plan with batch-norms folded).
  bool folds() const { return folds_; }
  // Bytes of the convolution weights this inference plan keeps prepared for its kernels.
  int64_t prepared_bytes() const { return prepared_.size() * static_cast<int64_t>(sizeof(float)); }
  // Steps whose backward runs (the others lie in a frozen prefix, or lead only to one).
  int backward_step_count() const;

  // What a forward step runs, for profiling (Network::profile_predict): its graph layer, the
  // ops fused into it ("conv2d+batchNorm+add+relu") and, for a convolution or pool, its
  // geometry ("3x3/2 64->128, 56x56 out").
  struct StepDescription {
    int layer = 0;
    std::string op;
    std::string detail;
  };
  std::vector<StepDescription> describe_steps() const;
  // While set (not null, step_count() entries), forward adds each step's wall time in
  // milliseconds (steady_clock; a device backend is synchronised after each step) into
  // (*times)[step]. Unset (the default) forward reads no clock.
  void set_step_timer(std::vector<double>* times) { step_times_ = times; }

  // Forward pass; the logits (in the backend's activation type) stay in the arena until the
  // next run.
  // `input_on_device`: a device backend reads the input where it is (Tensor.to(device)).
  const float* forward(const float* input, ParamBuffers& p, bool input_on_device = false);
  // Folds the last forward's batch statistics into the running ones (batch_stats mode).
  // Separate from forward so a step rejected for a non-finite loss leaves them untouched.
  void update_running_statistics(ParamBuffers& p);
  // Loss and accuracy of the last forward's logits.
  LossResult loss(const int32_t* labels, float smoothing, const LabelMix& mix = {});
  // Backward from the last forward into p.grads (needs mode.backward), of the loss multiplied
  // by `loss_scale` (mixed precision; the gradients come out scaled by it).
  void backward(const int32_t* labels, float smoothing, ParamBuffers& p, float loss_scale = 1.0f,
                const LabelMix& mix = {});
  // After a forward whose loss was not finite (plan_diagnose.cpp): the index of the graph layer
  // whose step first produced a non-finite value, kInputNonFinite when the input already held
  // one, or kAllFinite when every activation is finite (the loss alone overflowed).
  static constexpr int kInputNonFinite = -1;
  static constexpr int kAllFinite = -2;
  int first_nonfinite_layer(const float* input);
  // After a training forward, before anything is updated: the graph layer of the first
  // batch-norm whose batch mean or variance is not finite, or kAllFinite. A variance that
  // overflowed normalises its channel to 0, so the loss stays finite and only this shows it.
  int first_nonfinite_batch_statistics();

  // A device backend's copies of the step's inputs in the arena, made before a captured step
  // (whose recorded work must read fixed addresses): the images (from the host, or from a
  // resident tensor) and the labels. forward / loss / backward given these pointers copy nothing.
  const float* stage_input(const float* input, bool input_on_device);
  const int32_t* stage_labels(const int32_t* labels);

 private:
  void check_mix_host() const;  // E_ARG: LabelMix on a device backend
  struct Step {
    LayerType type = LayerType::Relu;  // of the graph layer it runs (fused layers ride along)
    int layer = 0;
    int in = -1, in2 = -1, out = -1;  // value ids; in2 = BN skip or the add's second operand
    bool relu = false;
    bool frozen = false;                   // its parameters get no gradient (Freezing)
    bool batch_stats = false;              // BN: normalises with (and updates) batch statistics
    bool runs_backward = false;            // some trainable parameter needs the gradient of its output
    bool stats_in_conv = false;            // BN: its conv producer computed the batch statistics
    int stats_step = -1;                   // conv: the BN step whose statistics it computes
    bool acc_in = false, acc_in2 = false;  // backward accumulates into the inputs' gradients
    Conv2dGeometry conv{};
    Pool2dGeometry pool{};
    int64_t w = -1, b = -1, w2 = -1, b2 = -1;  // trainable offsets
    int64_t params_lo = -1, params_hi = -1;    // trainable span of its layer (a frozen one's gradients go to the sink)
    int64_t rmean = -1, rvar = -1;             // running-statistics offsets
    int64_t mean = -1, var = -1;               // arena: batch statistics
    int64_t aux = -1;                          // arena: squeeze-excite saved activations
    int64_t hidden = 0;                        // squeeze-excite hidden units
    float epsilon = 1e-5f, momentum = 0.1f;    // batch-norm
    std::array<int64_t, 4> pads{0, 0, 0, 0};   // zeroPad
    int64_t sh = 1, sw = 1;                    // zeroPadShortcut strides
    // Inference conv (InferenceKernels): in2 / relu run in its epilogue; with a folded batch-norm
    // (its parameters' offsets below, its epsilon in `epsilon`) the weights and bias come from
    // ParamBuffers::folded; `prepared` is its weights' offset in prepared_ (-1: none).
    bool epilogue = false;
    int64_t prepared = -1;
    int64_t fold_gamma = -1, fold_beta = -1, fold_mean = -1, fold_var = -1;
  };
  struct Value {
    Shape shape;
    int64_t numel = 0;
    int producer = -1;  // step index; -1 for the network input
    std::vector<int> consumers;
    int64_t act = -1, grad = -1;  // arena offsets
    bool needs_grad = false;      // a trainable parameter's gradient depends on this value's
  };

  struct StepBuild;  // build_steps' bookkeeping: consumers, absorbed layers, materialized values (plan.cpp)
  struct Buffers;    // plan_memory's buffers to place, with the scratch and accumulation sizes (plan.cpp)

  void build_steps(const GraphSpec& spec, const std::vector<ParamInfo>& params, const std::vector<Shape>& shapes,
                   const Freezing& freezing);
  // The step of graph layer `layer` (input shape `x`), unfused: its geometry and parameter offsets.
  Step layer_step(const StepBuild& b, int layer, const Shape& x, const Freezing& freezing) const;
  // Forward over the steps: a value needs a gradient when its producer has trainable
  // parameters or one of the producer's inputs needs one; a step runs backward when its
  // output needs a gradient. The input never does.
  void mark_gradient_needs();
  // Batch-norm → ReLU, or → add (other operand materialized earlier) [→ ReLU]; and its
  // statistics into the conv producing its input when it is that value's only user.
  void fuse_batch_norm(Step& s, StepBuild& b);
  // Add → ReLU.
  void fuse_add(Step& s, StepBuild& b) const;
  // Inference: step s (a batch-norm, or an add, already fused with what follows) folded into the
  // convolution producing its input, which then writes s's value. False (nothing changed) where
  // that convolution has other users, an epilogue already, or runs before the skip operand exists.
  bool fuse_into_conv(const Step& s, StepBuild& b, const std::vector<Shape>& shapes, const std::string& name);
  // The folded weights and biases into p.folded, from p's parameters and running statistics.
  void fold_batch_norms(ParamBuffers& p) const;
  // Places every inference convolution's prepared weights in prepared_ (allocated here).
  void plan_prepared_weights();
  // After a parameter change: folds, then prepares every convolution's weights.
  void refresh_inference_weights(ParamBuffers& p);
  // Values' consumer lists; E_ARG when the output is fused away or a layer's output is unused.
  void link_values(const GraphSpec& spec, const std::vector<bool>& materialized);
  // Backward runs the steps in reverse: the first to reach a value writes its gradient, later
  // ones accumulate (acc_in / acc_in2).
  void mark_accumulation();

  void plan_memory(int64_t memory_budget);
  // Activations, batch statistics and squeeze-excite buffers by lifetime, and the scratch size.
  void forward_lifetimes(Buffers& m) const;
  // Gradient buffers by lifetime; batch-norm / ReLU chains written in place share their owner's.
  void gradient_lifetimes(Buffers& m) const;
  // A device backend's input, labels and probabilities slots above `total` floats; the new total.
  int64_t place_device_slots(int64_t total);
  // E_ALLOC when `total` floats of arena exceed the memory budget (none: kNoMemoryBudget).
  void check_memory_budget(int64_t total, int64_t memory_budget) const;
  // The placed offsets into values_, steps_ and the scratch / accumulation members.
  void assign_offsets(const Buffers& m);

  float* act(int v, const float* input) const;
  float* grad(int v) const;
  SqueezeExciteArgs se_args(const Step& s, ParamBuffers& p);
  // One step's backward, from grad(s.out) into its inputs' gradients and p.grads.
  void backward_step(const Step& s, ParamBuffers& p);
  void batch_norm_backward(const Step& s, ParamBuffers& p, float* dx);
  // Where step s writes the gradient of its parameter at trainable offset `offset`: p.grads, or
  // for a frozen layer whose backward must run (to pass its input gradient on) the sink, which
  // nothing reads. Null for offset -1.
  float* param_grad(const Step& s, ParamBuffers& p, int64_t offset);
  // Both operands receive the same gradient (past the ReLU when fused); finishes s.in itself.
  void add_backward(const Step& s, float* dx);
  // Where value v's gradient must be added to one already written (acc), the kernel writes to
  // the accumulation buffer at `slot` first; null for the network input.
  float* grad_target(int v, bool acc, int64_t slot) const;
  // Adds the accumulation buffer at `slot` into grad(v) when `acc`.
  void finish_grad(int v, bool acc, int64_t slot);
  // Adds the time since `start` to (*step_times_)[step], after a device backend finished `y`.
  void time_step(size_t step, std::chrono::steady_clock::time_point start, const float* y);

  Shape input_shape_;
  PlanMode mode_;
  Backend& backend_;
  InferenceKernels* inference_ = nullptr;  // set for an inference plan on a backend that has them
  bool folds_ = false;
  uint64_t folded_generation_ = 0;  // ParamBuffers::generation of the last refresh_inference_weights
  BackendBuffer prepared_;          // inference convolutions' weights prepared for their kernels
  std::vector<Step> steps_;
  std::vector<Value> values_;  // indexed by graph value id (unused ids stay empty)
  int output_ = 0;
  int64_t classes_ = 0;
  int64_t scratch_ = -1, scratch_floats_ = 0;
  int64_t acc_a_ = -1, acc_b_ = -1;  // gradient accumulation buffers
  int64_t sink_ = -1;                // frozen layers' parameter gradients (discarded)
  // A device backend's copies of the host input and labels, and predict's probabilities.
  int64_t input_slot_ = -1, labels_slot_ = -1, probs_slot_ = -1;
  int64_t input_act_slot_ = -1;  // mixed precision: the input in the activation type
  BackendBuffer arena_;
  std::vector<float> mix_grad_;                // the second targets' logit gradient (LabelMix), host memory
  const float* input_ = nullptr;               // the last forward's input as the steps read it
  const float* input_fp32_ = nullptr;          // the same before conversion to the activation type
  std::vector<double>* step_times_ = nullptr;  // set_step_timer
};

}  // namespace rn
