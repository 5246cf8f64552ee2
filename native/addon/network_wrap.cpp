#include "network_wrap.hpp"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <optional>
#include <span>

#include "../core/device.hpp"
#include "../core/error.hpp"
#include "../core/memory.hpp"
#include "args.hpp"
#include "async_op.hpp"
#include "errors.hpp"
#include "network_spec.hpp"
#include "tensor_wrap.hpp"

namespace rn::addon {
namespace {

std::string string_arg(const Napi::CallbackInfo& info, size_t i, const std::string& op, const char* what) {
  if (info.Length() <= i || !info[i].IsString())
    fail(ErrorCode::InvalidArgument, op + ": " + what + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

Napi::Array shape_array(Napi::Env env, const Shape& s) {
  Napi::Array a = Napi::Array::New(env, s.size());
  for (size_t i = 0; i < s.size(); ++i) a.Set(static_cast<uint32_t>(i), Napi::Number::New(env, double(s[i])));
  return a;
}

Napi::Object step_result(Napi::Env env, const StepResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("loss", Napi::Number::New(env, r.loss));
  o.Set("correct", Napi::Number::New(env, double(r.correct)));
  o.Set("count", Napi::Number::New(env, double(r.count)));
  o.Set("gradNorm", Napi::Number::New(env, r.grad_norm));
  o.Set("correct5", Napi::Number::New(env, double(r.correct5)));
  o.Set("skipped", Napi::Boolean::New(env, r.skipped));
  o.Set("lossScale", Napi::Number::New(env, r.loss_scale));
  return o;
}

cuda_abi::Precision parse_precision(const Napi::Value& v, const DeviceRequest& device) {
  const std::string p = v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
  cuda_abi::Precision out;
  if (p == "fp32") {
    out = cuda_abi::Precision::Fp32;
  } else if (p == "fp16") {
    out = cuda_abi::Precision::Fp16;
  } else if (p == "bf16") {
    out = cuda_abi::Precision::Bf16;
  } else {
    fail(ErrorCode::InvalidArgument, "NativeNetwork: precision must be 'fp32', 'fp16' or 'bf16'");
  }
  if (out != cuda_abi::Precision::Fp32 && !device.cuda) {
    fail(ErrorCode::InvalidArgument,
         "NativeNetwork: precision '" + p + "' (mixed precision) needs a CUDA device; the CPU engine computes in fp32");
  }
  return out;
}

float finite_float(const Napi::Object& o, const char* key, const std::string& op, float lo, float hi) {
  const double v = number_field(o, key, op);
  if (!(v >= lo && v <= hi)) {
    fail(ErrorCode::InvalidArgument, op + ": " + key + " must be in [" + std::to_string(lo) + ", " +
                                         std::to_string(hi) + "], got " + std::to_string(v));
  }
  return static_cast<float>(v);
}

// { dynamic?: boolean, initial?: number, growthInterval?: number }: unset fields take the
// dynamic defaults (from 2^16), or an initial (fixed) scale of 1 with dynamic: false.
std::optional<LossScaleConfig> parse_loss_scale(const Napi::Value& v) {
  const Napi::Object o = object_arg(v, "NativeNetwork", "lossScale");
  LossScaleConfig c = LossScaleConfig::dynamic_default();
  if (o.Has("dynamic")) c.dynamic = bool_field(o, "dynamic", "NativeNetwork lossScale");
  if (!c.dynamic) c.initial = 1.0f;
  if (o.Has("initial")) c.initial = finite_float(o, "initial", "NativeNetwork lossScale", 1.0f, 16777216.0f);
  if (o.Has("growthInterval")) {
    const double g = number_field(o, "growthInterval", "NativeNetwork lossScale");
    if (!(g >= 1 && g <= 1e9) || g != static_cast<double>(static_cast<int64_t>(g))) {
      fail(ErrorCode::InvalidArgument, "NativeNetwork lossScale: growthInterval must be a positive integer");
    }
    c.growth_interval = static_cast<int64_t>(g);
  }
  return c;
}

std::vector<float> float_list(const Napi::Value& v, size_t expected, const std::string& op, const char* what) {
  std::vector<float> values = typed_array_copy<float>(v, op, what);
  if (values.size() != expected) {
    fail(ErrorCode::InvalidShape,
         op + ": " + what + " has " + std::to_string(values.size()) + " entries, expected " + std::to_string(expected));
  }
  return values;
}

// An array of strings (layer names), at most `limit` of them.
std::vector<std::string> string_list(const Napi::Value& v, size_t limit, const std::string& op, const char* what) {
  if (!v.IsArray()) fail(ErrorCode::InvalidArgument, op + ": " + what + " must be an array of layer names");
  const Napi::Array a = v.As<Napi::Array>();
  if (a.Length() > limit) fail(ErrorCode::InvalidArgument, op + ": " + what + " names more layers than the model has");
  std::vector<std::string> out;
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) {
    const Napi::Value e = a.Get(i);
    if (!e.IsString()) fail(ErrorCode::InvalidArgument, op + ": " + what + " must be an array of layer names");
    out.push_back(e.As<Napi::String>().Utf8Value());
  }
  return out;
}

}  // namespace

void NativeNetwork::define(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "NativeNetwork",
                                    {
                                        InstanceMethod<&NativeNetwork::parameter_table>("parameterTable"),
                                        InstanceMethod<&NativeNetwork::describe>("describe"),
                                        InstanceMethod<&NativeNetwork::initialize>("initialize"),
                                        InstanceMethod<&NativeNetwork::get_parameter>("getParameter"),
                                        InstanceMethod<&NativeNetwork::set_parameter>("setParameter"),
                                        InstanceMethod<&NativeNetwork::get_gradient>("getGradient"),
                                        InstanceMethod<&NativeNetwork::set_optimizer>("setOptimizer"),
                                        InstanceMethod<&NativeNetwork::set_learning_rate>("setLearningRate"),
                                        InstanceMethod<&NativeNetwork::set_training>("setTraining"),
                                        InstanceMethod<&NativeNetwork::set_frozen>("setFrozen"),
                                        InstanceMethod<&NativeNetwork::train_step>("trainStep"),
                                        InstanceMethod<&NativeNetwork::compute_gradients>("computeGradients"),
                                        InstanceMethod<&NativeNetwork::predict>("predict"),
                                        InstanceMethod<&NativeNetwork::evaluate>("evaluate"),
                                        InstanceMethod<&NativeNetwork::profile_predict>("profilePredict"),
                                        InstanceMethod<&NativeNetwork::stats>("stats"),
                                        InstanceMethod<&NativeNetwork::dispose>("dispose"),
                                        InstanceMethod<&NativeNetwork::optimizer_state_info>("optimizerStateInfo"),
                                        InstanceMethod<&NativeNetwork::get_optimizer_state>("getOptimizerState"),
                                        InstanceMethod<&NativeNetwork::set_optimizer_state>("setOptimizerState"),
                                        InstanceMethod<&NativeNetwork::is_disposed>("isDisposed"),
                                    });
  exports.Set("NativeNetwork", ctor);
  exports.Set("allocationStats", Napi::Function::New<allocation_stats>(env, "allocationStats"));
}

NativeNetwork::NativeNetwork(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeNetwork>(info) {
  guarded(info.Env(), [&]() -> Napi::Value {
    if (info.Length() < 1) fail(ErrorCode::InvalidArgument, "NativeNetwork: expects a model spec");
    // Optional { device: 'cpu' | 'cuda' | 'cuda:N', allowTf32: boolean, precision: 'fp32' | 'fp16' | 'bf16',
    //            lossScale: { dynamic, initial, growthInterval }, memoryBudget: bytes (a positive integer) }.
    DeviceRequest device;
    std::optional<LossScaleConfig> loss_scale;
    int64_t memory_budget = kNoMemoryBudget;
    if (info.Length() > 1 && !info[1].IsUndefined()) {
      const Napi::Object o = object_arg(info[1], "NativeNetwork", "options");
      if (o.Has("device")) {
        if (!o.Get("device").IsString()) fail(ErrorCode::InvalidArgument, "NativeNetwork: device must be a string");
        device = parse_device(o.Get("device").As<Napi::String>().Utf8Value());
      }
      if (o.Has("allowTf32")) device.allow_tf32 = bool_field(o, "allowTf32", "NativeNetwork");
      if (o.Has("precision")) device.precision = parse_precision(o.Get("precision"), device);
      if (o.Has("lossScale")) loss_scale = parse_loss_scale(o.Get("lossScale"));
      if (o.Has("memoryBudget")) {
        memory_budget = int_field(o, "memoryBudget", "NativeNetwork");
        if (memory_budget < 1)
          fail(ErrorCode::InvalidArgument, "NativeNetwork: memoryBudget must be a positive number of bytes");
      }
    }
    GraphSpec spec = parse_model_spec(info[0]);
    device_ = device.canonical();
    network_ = std::make_shared<Network>(std::move(spec), backend_for_device(device), memory_budget);
    if (loss_scale) network_->set_loss_scale(*loss_scale);
    sync_external_memory(info.Env());
    return info.Env().Undefined();
  });
}

Napi::Value NativeNetwork::parameter_table(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const auto& params = net()->parameters();
    Napi::Array out = Napi::Array::New(env, params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", params[i].name);
      o.Set("shape", shape_array(env, params[i].shape));
      o.Set("trainable", params[i].trainable);
      o.Set("layer", net()->spec().layers[static_cast<size_t>(params[i].layer)].name);
      out.Set(static_cast<uint32_t>(i), o);
    }
    return out;
  });
}

Napi::Value NativeNetwork::describe(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Napi::Object holder = Napi::Object::New(env);
    holder.Set("shape", info.Length() > 0 ? info[0] : env.Undefined());
    if (!info[0].IsArray() || info[0].As<Napi::Array>().Length() != 3) {
      fail(ErrorCode::InvalidShape, "describe: input shape must be [height, width, channels]");
    }
    Shape input;
    for (uint32_t i = 0; i < 3; ++i) {
      Napi::Object h = Napi::Object::New(env);
      h.Set("d", info[0].As<Napi::Array>().Get(i));
      input.push_back(int_field(h, "d", "describe"));
    }
    const std::vector<LayerInfo> layers = net()->describe(input);
    Napi::Array out = Napi::Array::New(env, layers.size());
    for (size_t i = 0; i < layers.size(); ++i) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", layers[i].name);
      o.Set("type", layer_type_name(layers[i].type));
      o.Set("outputShape", shape_array(env, layers[i].output));
      o.Set("params", Napi::Number::New(env, double(layers[i].params)));
      o.Set("nonTrainable", Napi::Number::New(env, double(layers[i].running)));
      Napi::Array inputs = Napi::Array::New(env, layers[i].inputs.size());
      for (size_t k = 0; k < layers[i].inputs.size(); ++k) inputs.Set(static_cast<uint32_t>(k), layers[i].inputs[k]);
      o.Set("inputs", inputs);
      out.Set(static_cast<uint32_t>(i), o);
    }
    return out;
  });
}

Napi::Value NativeNetwork::initialize(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    auto lock = exclusive("initialize");
    Napi::Object o = object_arg(info[0], "initialize", "options");
    const int64_t seed = int_field(o, "seed", "initialize");
    net()->initialize(static_cast<uint64_t>(seed), bool_field(o, "zeroInitResidual", "initialize"));
    return info.Env().Undefined();
  });
}

Napi::Value NativeNetwork::get_parameter(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    auto lock = exclusive("getParameter");
    const ParamInfo& p = net()->find(string_arg(info, 0, "getParameter", "name"));
    Napi::Float32Array out = Napi::Float32Array::New(info.Env(), static_cast<size_t>(p.numel));
    net()->read_parameter(p.name, out.Data());
    return out;
  });
}

Napi::Value NativeNetwork::get_gradient(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    auto lock = exclusive("getGradient");
    const ParamInfo& p = net()->find(string_arg(info, 0, "getGradient", "name"));
    Napi::Float32Array out = Napi::Float32Array::New(info.Env(), static_cast<size_t>(p.numel));
    net()->read_gradient(p.name, out.Data());
    return out;
  });
}

Napi::Value NativeNetwork::set_parameter(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    auto lock = exclusive("setParameter");
    const std::string name = string_arg(info, 0, "setParameter", "name");
    const ParamInfo& p = net()->find(name);
    read_typed_array<float>(info[1], "setParameter '" + name + "'", "values", [&](std::span<const float> values) {
      if (static_cast<int64_t>(values.size()) != p.numel) {
        fail(ErrorCode::InvalidShape, "setParameter '" + name + "': expected " + std::to_string(p.numel) +
                                          " values (shape " + shape_to_string(p.shape) + "), got " +
                                          std::to_string(values.size()));
      }
      net()->write_parameter(name, values.data());  // copies
    });
    return info.Env().Undefined();
  });
}

Napi::Value NativeNetwork::set_optimizer(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    const std::string op = "compile";
    auto lock = exclusive(op);
    Napi::Object o = object_arg(info[0], op, "optimizer");
    OptimizerConfig c;
    Napi::Value type = o.Get("type");
    const std::string t = type.IsString() ? type.As<Napi::String>().Utf8Value() : "";
    if (t == "sgd") {
      c.type = OptimizerType::Sgd;
    } else if (t == "adamw") {
      c.type = OptimizerType::AdamW;
    } else {
      fail(ErrorCode::InvalidArgument, op + ": optimizer type must be 'sgd' or 'adamw'");
    }
    c.lr = finite_float(o, "lr", op, 0.0f, 1e6f);
    c.momentum = finite_float(o, "momentum", op, 0.0f, 1.0f);
    c.nesterov = bool_field(o, "nesterov", op);
    c.weight_decay = finite_float(o, "weightDecay", op, 0.0f, 1e6f);
    c.decoupled = bool_field(o, "decoupledWeightDecay", op);
    c.beta1 = finite_float(o, "beta1", op, 0.0f, 1.0f);
    c.beta2 = finite_float(o, "beta2", op, 0.0f, 1.0f);
    c.eps = finite_float(o, "eps", op, 0.0f, 1.0f);
    c.clip_norm = finite_float(o, "clipGradNorm", op, 0.0f, 3e38f);
    size_t trainable = 0;
    for (const ParamInfo& p : net()->parameters()) trainable += p.trainable ? 1 : 0;
    c.decay_scale = float_list(o.Get("decayScale"), trainable, op, "decayScale");
    c.lr_scale = float_list(o.Get("lrScale"), trainable, op, "lrScale");
    if (info.Length() < 2 || !info[1].IsNumber())
      fail(ErrorCode::InvalidArgument, op + ": labelSmoothing must be a number");
    const double smoothing = info[1].As<Napi::Number>().DoubleValue();
    if (!(smoothing >= 0.0 && smoothing < 1.0))
      fail(ErrorCode::InvalidArgument, op + ": labelSmoothing must be in [0, 1)");
    net()->set_optimizer(std::move(c), static_cast<float>(smoothing));
    return info.Env().Undefined();
  });
}

Napi::Value NativeNetwork::set_learning_rate(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    auto lock = exclusive("setLearningRate");
    if (info.Length() < 1 || !info[0].IsNumber())
      fail(ErrorCode::InvalidArgument, "setLearningRate: lr must be a number");
    const double lr = info[0].As<Napi::Number>().DoubleValue();
    if (!(lr >= 0.0 && lr <= 1e6))
      fail(ErrorCode::InvalidArgument, "setLearningRate: lr must be in [0, 1e6], got " + std::to_string(lr));
    net()->set_learning_rate(static_cast<float>(lr));
    return info.Env().Undefined();
  });
}

Napi::Value NativeNetwork::set_training(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    auto lock = exclusive("train/eval");
    if (info.Length() < 1 || !info[0].IsBoolean()) fail(ErrorCode::InvalidArgument, "setTraining expects a boolean");
    net()->set_training(info[0].As<Napi::Boolean>().Value());
    return info.Env().Undefined();
  });
}

// setFrozen(frozenLayers: string[], runningStatisticsLayers: string[]): the whole frozen state.
Napi::Value NativeNetwork::set_frozen(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    auto lock = exclusive("freeze");
    const size_t layers = net()->spec().layers.size();
    const auto frozen = string_list(info[0], layers, "freeze", "frozen layers");
    const auto running = string_list(info[1], layers, "freeze", "batch-norm layers on running statistics");
    net()->set_freezing(frozen, running);
    return info.Env().Undefined();
  });
}

std::shared_ptr<NativeNetwork::KeepAlive> NativeNetwork::keep_alive(const Napi::CallbackInfo& info) {
  auto k = std::make_shared<KeepAlive>();
  k->owner = this;
  ++in_flight_;
  k->ref = Napi::Persistent(info.This().As<Napi::Object>());
  return k;
}

namespace {
// trainStep / computeGradients' optional mixup targets: (otherLabels, lambda) at args `at`, `at`+1.
struct MixArg {
  std::shared_ptr<std::vector<int32_t>> other;
  float lambda = 1.0f;
  LabelMix get() const { return other ? LabelMix{other->data(), lambda} : LabelMix{}; }
};

MixArg mix_arg(const Napi::CallbackInfo& info, size_t at, const char* op) {
  MixArg m;
  if (info.Length() <= at || info[at].IsUndefined() || info[at].IsNull()) return m;
  m.other = std::make_shared<std::vector<int32_t>>(labels_arg(info[at], op));
  const bool given = info.Length() > at + 1 && info[at + 1].IsNumber();
  const double lambda = given ? info[at + 1].As<Napi::Number>().DoubleValue() : std::nan("");
  if (!(lambda >= 0.0 && lambda <= 1.0)) {
    fail(ErrorCode::InvalidArgument, std::string(op) + ": lambda must be in [0, 1]");
  }
  m.lambda = static_cast<float>(lambda);
  return m;
}
}  // namespace

Napi::Value NativeNetwork::train_step(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    TensorPtr images = NativeTensor::unwrap(info[0], "trainStep", "images", true);
    auto labels = std::make_shared<std::vector<int32_t>>(labels_arg(info[1], "trainStep"));
    const MixArg mix = mix_arg(info, 2, "trainStep");
    auto network = net();
    auto result = std::make_shared<StepResult>();
    return AsyncOp::queue(
        info.Env(), "resnet-native:trainStep",
        [network, images, labels, mix, result] {
          std::lock_guard<std::mutex> lock(network->mutex());
          *result = network->train_step(*images, labels->data(), static_cast<int64_t>(labels->size()), mix.get());
        },
        [result, self = keep_alive(info)](Napi::Env env) -> Napi::Value {
          self->owner->sync_external_memory(env);
          return step_result(env, *result);
        });
  });
}

Napi::Value NativeNetwork::compute_gradients(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    TensorPtr images = NativeTensor::unwrap(info[0], "computeGradients", "images", true);
    auto labels = std::make_shared<std::vector<int32_t>>(labels_arg(info[1], "computeGradients"));
    if (info.Length() < 3 || !info[2].IsNumber())
      fail(ErrorCode::InvalidArgument, "computeGradients: labelSmoothing must be a number");
    const float smoothing = static_cast<float>(info[2].As<Napi::Number>().DoubleValue());
    if (!(smoothing >= 0.0f && smoothing < 1.0f))
      fail(ErrorCode::InvalidArgument, "computeGradients: labelSmoothing must be in [0, 1)");
    const MixArg mix = mix_arg(info, 3, "computeGradients");
    auto network = net();
    auto result = std::make_shared<StepResult>();
    return AsyncOp::queue(
        info.Env(), "resnet-native:computeGradients",
        [network, images, labels, mix, result, smoothing] {
          std::lock_guard<std::mutex> lock(network->mutex());
          *result = network->compute_gradients(*images, labels->data(), static_cast<int64_t>(labels->size()), smoothing,
                                               mix.get());
        },
        [result, self = keep_alive(info)](Napi::Env env) -> Napi::Value {
          self->owner->sync_external_memory(env);
          return step_result(env, *result);
        });
  });
}

Napi::Value NativeNetwork::predict(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    TensorPtr images = NativeTensor::unwrap(info[0], "predict", "images", true);
    const bool softmax = info.Length() > 1 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
    auto network = net();
    auto out = std::make_shared<TensorPtr>();
    return AsyncOp::queue(
        info.Env(), "resnet-native:predict",
        [network, images, out, softmax] {
          std::lock_guard<std::mutex> lock(network->mutex());
          *out = network->predict(*images, softmax);
        },
        [out, self = keep_alive(info)](Napi::Env env) -> Napi::Value {
          self->owner->sync_external_memory(env);
          return NativeTensor::wrap(env, *out);
        });
  });
}

Napi::Value NativeNetwork::profile_predict(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    TensorPtr images = NativeTensor::unwrap(info[0], "profilePredict", "images", true);
    if (info.Length() < 2 || !info[1].IsNumber())
      fail(ErrorCode::InvalidArgument, "profilePredict: runs must be a number");
    const double runs = info[1].As<Napi::Number>().DoubleValue();
    if (!(runs >= 1 && runs <= 100000) || runs != static_cast<double>(static_cast<int>(runs)))
      fail(ErrorCode::InvalidArgument, "profilePredict: runs must be an integer in [1, 100000]");
    auto network = net();
    auto out = std::make_shared<Network::PredictProfile>();
    return AsyncOp::queue(
        info.Env(), "resnet-native:profilePredict",
        [network, images, out, n = static_cast<int>(runs)] {
          std::lock_guard<std::mutex> lock(network->mutex());
          *out = network->profile_predict(*images, n);
        },
        [out, self = keep_alive(info)](Napi::Env env) -> Napi::Value {
          self->owner->sync_external_memory(env);
          Napi::Object o = Napi::Object::New(env);
          o.Set("logits", NativeTensor::wrap(env, out->logits));
          o.Set("totalMs", Napi::Number::New(env, out->total_ms));
          Napi::Array steps = Napi::Array::New(env, out->steps.size());
          for (size_t i = 0; i < out->steps.size(); ++i) {
            const Network::StepTime& s = out->steps[i];
            Napi::Object step = Napi::Object::New(env);
            step.Set("name", s.name);
            step.Set("op", s.op);
            step.Set("detail", s.detail);
            step.Set("ms", Napi::Number::New(env, s.ms));
            steps.Set(static_cast<uint32_t>(i), step);
          }
          o.Set("steps", steps);
          return o;
        });
  });
}

Napi::Value NativeNetwork::evaluate(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    TensorPtr images = NativeTensor::unwrap(info[0], "evaluate", "images", true);
    auto labels = std::make_shared<std::vector<int32_t>>(labels_arg(info[1], "evaluate"));
    auto network = net();
    auto result = std::make_shared<StepResult>();
    return AsyncOp::queue(
        info.Env(), "resnet-native:evaluate",
        [network, images, labels, result] {
          std::lock_guard<std::mutex> lock(network->mutex());
          *result = network->evaluate(*images, labels->data(), static_cast<int64_t>(labels->size()));
        },
        [result, self = keep_alive(info)](Napi::Env env) -> Napi::Value {
          self->owner->sync_external_memory(env);
          return step_result(env, *result);
        });
  });
}

// Synchronous calls must not touch parameters while a step is queued or running on a
// worker thread: in_flight_ is counted on the JS thread, so there is no window between
// queueing a step and its worker taking the lock.
std::unique_lock<std::mutex> NativeNetwork::exclusive(const std::string& op) {
  auto network = net();
  std::unique_lock<std::mutex> lock(network->mutex(), std::try_to_lock);
  if (in_flight_ > 0 || !lock.owns_lock()) {
    fail(ErrorCode::Busy, op + ": a training step or prediction is still running on this model; await it first");
  }
  return lock;
}

std::shared_ptr<Network> NativeNetwork::net() const {
  if (!network_) fail(ErrorCode::Disposed, "this model was disposed");
  return network_;
}

// Tells V8 how much native memory this model holds (parameters, gradients, optimizer
// state, plan arenas) so the GC weighs an abandoned model by its real size.
void NativeNetwork::sync_external_memory(Napi::Env env) {
  int64_t bytes = 0;
  if (network_) {
    std::unique_lock<std::mutex> lock(network_->mutex(), std::try_to_lock);
    if (!lock.owns_lock()) return;  // a step is running; the next call catches up
    // Device memory is not the JS heap's concern: V8 hears only of host memory.
    bytes = network_->backend().is_device() ? 0 : network_->memory_bytes();
  }
  if (bytes != accounted_bytes_) {
    Napi::MemoryManagement::AdjustExternalMemory(env, bytes - accounted_bytes_);
    accounted_bytes_ = bytes;
  }
}

NativeNetwork::~NativeNetwork() {
  if (accounted_bytes_ != 0) Napi::MemoryManagement::AdjustExternalMemory(Env(), -accounted_bytes_);
}

Napi::Value NativeNetwork::dispose(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    if (network_) {
      // A step in flight keeps its own reference; memory goes when it finishes.
      network_.reset();
      sync_external_memory(info.Env());
    }
    return info.Env().Undefined();
  });
}

Napi::Value NativeNetwork::is_disposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !network_);
}

Napi::Value NativeNetwork::stats(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    auto lock = exclusive("stats");
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("plans", Napi::Number::New(info.Env(), double(net()->plan_count())));
    o.Set("arenaBytes", Napi::Number::New(info.Env(), double(net()->arena_bytes())));
    o.Set("trainable", Napi::Number::New(info.Env(), double(net()->trainable_count())));
    o.Set("nonTrainable", Napi::Number::New(info.Env(), double(net()->running_count())));
    const auto [steps, backward_steps] = net()->last_plan_steps();
    o.Set("planSteps", Napi::Number::New(info.Env(), steps));
    o.Set("backwardSteps", Napi::Number::New(info.Env(), backward_steps));
    o.Set("device", Napi::String::New(info.Env(), device_));
    o.Set("backend", Napi::String::New(info.Env(), net()->backend().name()));
    o.Set("precision", Napi::String::New(info.Env(), net()->backend().precision()));
    const LossScaler& scaler = net()->loss_scaler();
    o.Set("lossScale", Napi::Number::New(info.Env(), scaler.scale()));
    o.Set("skippedSteps", Napi::Number::New(info.Env(), double(scaler.skipped_steps())));
    return o;
  });
}

// { slots, steps }: how many state tensors per parameter the optimizer keeps, and its step count.
Napi::Value NativeNetwork::optimizer_state_info(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    auto network = net();
    auto lock = exclusive("optimizerStateInfo");
    Optimizer& opt = network->optimizer();
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("slots", Napi::Number::New(info.Env(), opt.slot_count()));
    o.Set("steps", Napi::Number::New(info.Env(), double(opt.steps())));
    return o;
  });
}

// getOptimizerState(name, slot) → Float32Array copy.
Napi::Value NativeNetwork::get_optimizer_state(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    auto network = net();
    auto lock = exclusive("getOptimizerState");
    const ParamInfo& p = network->find(string_arg(info, 0, "getOptimizerState", "name"));
    if (info.Length() < 2 || !info[1].IsNumber())
      fail(ErrorCode::InvalidArgument, "getOptimizerState: slot must be 0 or 1");
    Napi::Float32Array out = Napi::Float32Array::New(info.Env(), static_cast<size_t>(p.numel));
    network->optimizer().read_slot(info[1].As<Napi::Number>().Int32Value(), p, out.Data());
    return out;
  });
}

// setOptimizerState(name, slot, values) or setOptimizerState(null, -1, steps).
Napi::Value NativeNetwork::set_optimizer_state(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    auto network = net();
    auto lock = exclusive("setOptimizerState");
    if (info.Length() >= 3 && info[0].IsNull() && info[2].IsNumber()) {
      const double steps = info[2].As<Napi::Number>().DoubleValue();
      if (!(steps >= 0 && steps < 9e15 && steps == static_cast<double>(static_cast<int64_t>(steps)))) {
        fail(ErrorCode::InvalidArgument, "setOptimizerState: steps must be a non-negative integer");
      }
      network->optimizer().set_steps(static_cast<int64_t>(steps));
      return info.Env().Undefined();
    }
    const ParamInfo& p = network->find(string_arg(info, 0, "setOptimizerState", "name"));
    if (info.Length() < 2 || !info[1].IsNumber())
      fail(ErrorCode::InvalidArgument, "setOptimizerState: slot must be 0 or 1");
    const int slot = info[1].As<Napi::Number>().Int32Value();
    const std::vector<float> values = float_list(info[2], static_cast<size_t>(p.numel), "setOptimizerState", "values");
    network->optimizer().write_slot(slot, p, values.data());
    return info.Env().Undefined();
  });
}

Napi::Value allocation_stats(const Napi::CallbackInfo& info) {
  const AllocationStats s = rn::allocation_stats();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("allocations", Napi::Number::New(info.Env(), double(s.allocations)));
  o.Set("liveBytes", Napi::Number::New(info.Env(), double(s.live_bytes)));
  return o;
}

}  // namespace rn::addon
