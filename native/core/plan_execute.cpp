// Running a compiled Plan: forward, loss and backward over the arena (plan.cpp compiles).
#include <chrono>
#include <cmath>

#include "error.hpp"
#include "plan.hpp"

namespace rn {

SqueezeExciteArgs Plan::se_args(const Step& s, ParamBuffers& p) {
  const Shape& xs = values_[static_cast<size_t>(s.in)].shape;
  SqueezeExciteArgs a;
  a.n = xs[0];
  a.hw = xs[1] * xs[2];
  a.c = xs[3];
  a.hidden = s.hidden;
  a.w1 = p.params + s.w;
  a.b1 = p.params + s.b;
  a.w2 = p.params + s.w2;
  a.b2 = p.params + s.b2;
  float* aux = arena_.data() + s.aux;
  const int64_t nc = (a.n * a.c + 15) / 16 * 16;
  a.pooled = aux;
  a.gate = aux + nc;
  a.hidden_act = aux + 2 * nc;
  return a;
}

// One flat switch over the step types, each case one backend call: ~80 lines, kept whole so the
// order of a forward pass reads top to bottom.
const float* Plan::forward(const float* input, ParamBuffers& p, bool input_on_device) {
  float* arena = arena_.data();
  if (input_slot_ >= 0 && !input_on_device) input = stage_input(input, false);  // a device computes from its own copy
  input_fp32_ = input;
  if (input_act_slot_ >= 0) {  // mixed precision: the steps read the input in the activation type
    backend_.to_activation(values_[0].numel, input, arena + input_act_slot_);
    input = arena + input_act_slot_;
  }
  input_ = input;
  if (inference_ != nullptr && (p.generation == 0 || p.generation != folded_generation_)) {
    refresh_inference_weights(p);
    folded_generation_ = p.generation;
  }
  float* scratch = arena + scratch_;
  std::chrono::steady_clock::time_point step_start;
  for (size_t si = 0; si < steps_.size(); ++si) {
    if (step_times_ != nullptr) step_start = std::chrono::steady_clock::now();
    const Step& s = steps_[si];
    const Value& xv = values_[static_cast<size_t>(s.in)];
    const Value& yv = values_[static_cast<size_t>(s.out)];
    const float* x = act(s.in, input);
    float* y = act(s.out, input);
    switch (s.type) {
      case LayerType::Conv2d: {
        if (s.epilogue) {  // an inference plan's fused convolution (plan_inference.cpp)
          const bool folded = s.fold_beta >= 0;
          const float* w = (folded ? p.folded : p.params) + s.w;
          const float* bias = folded ? p.folded + s.fold_beta : (s.b >= 0 ? p.params + s.b : nullptr);
          const float* prepared = s.prepared >= 0 ? prepared_.data() + s.prepared : nullptr;
          inference_->conv2d_forward_epilogue(s.conv, x, w, prepared, bias, s.in2 >= 0 ? act(s.in2, input) : nullptr,
                                              s.relu, y, scratch);
          break;
        }
        float *mean = nullptr, *var = nullptr;
        if (s.stats_step >= 0) {
          const Step& bn = steps_[static_cast<size_t>(s.stats_step)];
          mean = arena + bn.mean;
          var = arena + bn.var;
        }
        backend_.conv2d_forward(s.conv, x, p.params + s.w, s.b >= 0 ? p.params + s.b : nullptr, y, mean, var, scratch);
        break;
      }
      case LayerType::BatchNorm: {
        const int64_t c = xv.shape.back();
        BatchNormArgs a;
        a.rows = xv.numel / c;
        a.channels = c;
        a.gamma = p.params + s.w;
        a.beta = p.params + s.b;
        if (s.batch_stats) {
          if (!s.stats_in_conv) backend_.batch_norm_statistics(a.rows, c, x, arena + s.mean, arena + s.var, scratch);
          a.mean = arena + s.mean;
          a.var = arena + s.var;
        } else {
          a.mean = p.running + s.rmean;
          a.var = p.running + s.rvar;
        }
        a.epsilon = s.epsilon;
        backend_.batch_norm_forward(a, x, s.in2 >= 0 ? act(s.in2, input) : nullptr, s.relu, y, scratch);
        break;
      }
      case LayerType::Relu:
        backend_.relu_forward(yv.numel, x, y);
        break;
      case LayerType::Add:
        backend_.add_forward(yv.numel, x, act(s.in2, input), s.relu, y);
        break;
      case LayerType::MaxPool:
        backend_.max_pool_forward(s.pool, x, y);
        break;
      case LayerType::AvgPool:
        backend_.avg_pool_forward(s.pool, x, y);
        break;
      case LayerType::GlobalAvgPool:
        backend_.global_avg_pool_forward(xv.shape[0], xv.shape[1] * xv.shape[2], xv.shape[3], x, y);
        break;
      case LayerType::Flatten:
        backend_.copy(yv.numel, x, y);
        break;
      case LayerType::Dense:
        backend_.dense_forward(xv.shape[0], xv.shape[1], yv.shape[1], x, p.params + s.w,
                               s.b >= 0 ? p.params + s.b : nullptr, y);
        break;
      case LayerType::ZeroPad:
        backend_.zero_pad_forward(xv.shape, s.pads.data(), x, y);
        break;
      case LayerType::ZeroPadShortcut:
        backend_.zero_pad_shortcut_forward(xv.shape, yv.shape, s.sh, s.sw, x, y);
        break;
      case LayerType::SqueezeExcite:
        backend_.squeeze_excite_forward(se_args(s, p), x, y);
        break;
    }
    if (step_times_ != nullptr) time_step(si, step_start, y);
  }
  return act(output_, input);
}

void Plan::update_running_statistics(ParamBuffers& p) {
  if (!mode_.batch_stats) return;
  float* arena = arena_.data();
  for (const Step& s : steps_) {
    if (s.type != LayerType::BatchNorm || !s.batch_stats) continue;  // a frozen one keeps its own
    const Value& xv = values_[static_cast<size_t>(s.in)];
    const int64_t c = xv.shape.back();
    backend_.batch_norm_update_running(xv.numel / c, c, arena + s.mean, arena + s.var, s.momentum, p.running + s.rmean,
                                       p.running + s.rvar);
  }
}

LossResult Plan::loss(const int32_t* labels, float smoothing, const LabelMix& mix) {
  labels = stage_labels(labels);
  const Value& out = values_[static_cast<size_t>(output_)];
  LossResult r;
  r.loss = backend_.softmax_cross_entropy(out.shape[0], classes_, act(output_, input_), labels, smoothing, &r.correct,
                                          &r.correct5);
  if (mix.other != nullptr) {
    check_mix_host();
    LossResult b;
    b.loss = backend_.softmax_cross_entropy(out.shape[0], classes_, act(output_, input_), mix.other, smoothing,
                                            &b.correct, &b.correct5);
    r.loss = double(mix.lambda) * r.loss + (1.0 - double(mix.lambda)) * b.loss;
    if (mix.lambda < 0.5f) {
      r.correct = b.correct;
      r.correct5 = b.correct5;
    }
  }
  return r;
}

void Plan::check_mix_host() const {
  if (labels_slot_ >= 0) {
    fail(ErrorCode::InvalidArgument,
         "trainStep: mixup / cutmix targets are supported on the CPU only (this model is on a device)");
  }
}

void Plan::backward(const int32_t* labels, float smoothing, ParamBuffers& p, float loss_scale, const LabelMix& mix) {
  if (!mode_.backward) fail(ErrorCode::Internal, "Plan::backward on a forward-only plan");
  labels = stage_labels(labels);
  const Value& out = values_[static_cast<size_t>(output_)];
  if (!out.needs_grad) return;  // everything is frozen
  const int64_t n = out.shape[0];
  if (mix.other == nullptr || mix.lambda == 1.0f) {
    backend_.softmax_cross_entropy_backward(n, classes_, act(output_, input_), labels, smoothing, loss_scale,
                                            grad(output_));
  } else {
    // The loss is linear in the targets: λ·∂CE(labels) + (1 − λ)·∂CE(other).
    check_mix_host();
    backend_.softmax_cross_entropy_backward(n, classes_, act(output_, input_), labels, smoothing,
                                            loss_scale * mix.lambda, grad(output_));
    mix_grad_.resize(static_cast<size_t>(n * classes_));
    backend_.softmax_cross_entropy_backward(n, classes_, act(output_, input_), mix.other, smoothing,
                                            loss_scale * (1.0f - mix.lambda), mix_grad_.data());
    backend_.accumulate(n * classes_, mix_grad_.data(), grad(output_));
  }
  // Steps that do not run backward (a frozen prefix) are skipped: their output's gradient
  // would reach no trainable parameter.
  for (size_t si = steps_.size(); si-- > 0;) {
    if (steps_[si].runs_backward) backward_step(steps_[si], p);
  }
}

float* Plan::param_grad(const Step& s, ParamBuffers& p, int64_t offset) {
  if (offset < 0) return nullptr;
  return s.frozen ? arena_.data() + sink_ + (offset - s.params_lo) : p.grads + offset;
}

float* Plan::grad_target(int v, bool acc, int64_t slot) const {
  if (v == 0 || !values_[static_cast<size_t>(v)].needs_grad) return nullptr;
  return acc ? const_cast<float*>(arena_.data()) + slot : grad(v);
}

void Plan::finish_grad(int v, bool acc, int64_t slot) {
  if (acc && grad(v) != nullptr)
    backend_.accumulate(values_[static_cast<size_t>(v)].numel, arena_.data() + slot, grad(v));
}

void Plan::backward_step(const Step& s, ParamBuffers& p) {
  float* scratch = arena_.data() + scratch_;
  const Value& xv = values_[static_cast<size_t>(s.in)];
  const Value& yv = values_[static_cast<size_t>(s.out)];
  const float* x = act(s.in, input_);
  const float* y = act(s.out, input_);
  const float* dy = grad(s.out);
  float* dx = grad_target(s.in, s.acc_in, acc_a_);
  switch (s.type) {
    case LayerType::Conv2d:
      if (dx) backend_.conv2d_backward_input(s.conv, dy, p.params + s.w, dx, scratch);
      if (!s.frozen) backend_.conv2d_backward_weight(s.conv, x, dy, p.grads + s.w, param_grad(s, p, s.b), scratch);
      break;
    case LayerType::BatchNorm:
      batch_norm_backward(s, p, dx);
      break;
    case LayerType::Relu:
      if (dx) backend_.relu_backward_from_output(yv.numel, y, dy, dx);
      break;
    case LayerType::Add:
      add_backward(s, dx);
      return;  // finished s.in itself
    case LayerType::MaxPool:
      if (dx) backend_.max_pool_backward(s.pool, x, dy, dx);
      break;
    case LayerType::AvgPool:
      if (dx) backend_.avg_pool_backward(s.pool, dy, dx);
      break;
    case LayerType::GlobalAvgPool:
      if (dx) backend_.global_avg_pool_backward(xv.shape[0], xv.shape[1] * xv.shape[2], xv.shape[3], dy, dx);
      break;
    case LayerType::Flatten:
      if (dx) backend_.copy(xv.numel, dy, dx);
      break;
    case LayerType::Dense:
      backend_.dense_backward(xv.shape[0], xv.shape[1], yv.shape[1], x, p.params + s.w, dy, dx, param_grad(s, p, s.w),
                              param_grad(s, p, s.b));
      break;
    case LayerType::ZeroPad:
      if (dx) backend_.zero_pad_backward(xv.shape, s.pads.data(), dy, dx);
      break;
    case LayerType::ZeroPadShortcut:
      if (dx) backend_.zero_pad_shortcut_backward(xv.shape, yv.shape, s.sh, s.sw, dy, dx);
      break;
    case LayerType::SqueezeExcite: {
      float* dxs = dx ? dx : arena_.data() + acc_a_;
      backend_.squeeze_excite_backward(se_args(s, p), x, dy, dxs, param_grad(s, p, s.w), param_grad(s, p, s.b),
                                       param_grad(s, p, s.w2), param_grad(s, p, s.b2), scratch);
      break;
    }
  }
  finish_grad(s.in, s.acc_in, acc_a_);
}

void Plan::batch_norm_backward(const Step& s, ParamBuffers& p, float* dx) {
  float* arena = arena_.data();
  const Value& xv = values_[static_cast<size_t>(s.in)];
  const int64_t c = xv.shape.back();
  BatchNormArgs a;
  a.rows = xv.numel / c;
  a.channels = c;
  a.epsilon = s.epsilon;
  a.gamma = p.params + s.w;
  a.beta = p.params + s.b;
  a.mean = s.batch_stats ? arena + s.mean : p.running + s.rmean;
  a.var = s.batch_stats ? arena + s.var : p.running + s.rvar;
  // A skip operand whose gradient nothing needs (a frozen prefix) still gets one written: into
  // the second accumulation buffer, which is free here and read by nobody.
  float* dskip = nullptr;
  if (s.in2 >= 0) {
    dskip = grad_target(s.in2, s.acc_in2, acc_b_);
    if (dskip == nullptr) dskip = arena + acc_b_;
  }
  // The input gradient is needed for the batch-norm's own parameters even when x is the network input.
  float* dxb = dx ? dx : arena + acc_a_;
  // Off batch statistics (inference mode, or a frozen batch-norm on its running ones) the
  // kernel's backward is the affine map's: dx = dy · gamma / sqrt(running_var + eps).
  backend_.batch_norm_backward(a, s.batch_stats, act(s.in, input_), act(s.out, input_), s.relu, grad(s.out), dxb, dskip,
                               param_grad(s, p, s.w), param_grad(s, p, s.b), arena + scratch_);
  if (s.in2 >= 0) finish_grad(s.in2, s.acc_in2, acc_b_);
}

void Plan::add_backward(const Step& s, float* dx) {
  const int64_t numel = values_[static_cast<size_t>(s.out)].numel;
  const float* dy = grad(s.out);
  float* first = dx ? dx : arena_.data() + acc_a_;
  if (s.relu) {
    backend_.relu_backward_from_output(numel, act(s.out, input_), dy, first);
  } else {
    backend_.copy(numel, dy, first);
  }
  finish_grad(s.in, s.acc_in, acc_a_);
  if (grad(s.in2) != nullptr) {
    if (s.acc_in2) {
      backend_.accumulate(numel, first, grad(s.in2));
    } else {
      backend_.copy(numel, first, grad(s.in2));
    }
  }
}

}  // namespace rn
