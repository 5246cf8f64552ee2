#include "ops_bindings.hpp"

#include <memory>

#include "../core/error.hpp"
#include "../cpu/tensor_ops.hpp"
#include "args.hpp"
#include "async_op.hpp"
#include "errors.hpp"
#include "tensor_wrap.hpp"

namespace rn::addon {
namespace {

using Info = Napi::CallbackInfo;

TensorPtr tensor(const Info& info, size_t i, const std::string& op, const char* name) {
  return NativeTensor::unwrap(info[i], op, name);
}

TensorPtr optional_tensor(const Info& info, size_t i, const std::string& op, const char* name) {
  if (info[i].IsNull() || info[i].IsUndefined()) return nullptr;
  return tensor(info, i, op, name);
}

Napi::Value js_tensor(Napi::Env env, const TensorPtr& t) {
  return t ? Napi::Value(NativeTensor::wrap(env, t)) : env.Undefined();
}

// Queues work that produces one tensor.
template <typename Work>
Napi::Value tensor_op(Napi::Env env, const char* name, Work work) {
  auto out = std::make_shared<TensorPtr>();
  return AsyncOp::queue(
      env, name, [out, work]() { *out = work(); }, [out](Napi::Env e) { return js_tensor(e, *out); });
}

ops::Conv2dArgs conv_args(const Info& info, size_t i, const std::string& op) {
  Napi::Object o = object_arg(info[i], op, "options");
  ops::Conv2dArgs a;
  a.window = window_options(o, op);
  a.groups = int_field(o, "groups", op);
  return a;
}

ops::Pool2dArgs pool_args(const Info& info, size_t i, const std::string& op) {
  Napi::Object o = object_arg(info[i], op, "options");
  ops::Pool2dArgs a;
  pair_field(o, "size", op, a.size_h, a.size_w);
  a.window = window_options(o, op);
  return a;
}

ops::BatchNormArgs bn_args(const Info& info, size_t i, const std::string& op) {
  Napi::Object o = object_arg(info[i], op, "options");
  ops::BatchNormArgs a;
  a.training = bool_field(o, "training", op);
  a.momentum = static_cast<float>(number_field(o, "momentum", op));
  a.epsilon = static_cast<float>(number_field(o, "epsilon", op));
  return a;
}

// gamma, beta, runningMean, runningVar starting at argument i.
struct BatchNormTensors {
  TensorPtr gamma, beta, running_mean, running_var;
  ops::BatchNormParams params() const { return {gamma.get(), beta.get(), running_mean.get(), running_var.get()}; }
};

BatchNormTensors bn_tensors(const Info& info, size_t i, const std::string& op) {
  return {tensor(info, i, op, "gamma"), tensor(info, i + 1, op, "beta"), tensor(info, i + 2, op, "runningMean"),
          tensor(info, i + 3, op, "runningVar")};
}

Napi::Value bn_grads_object(Napi::Env env, const ops::BatchNormGrads& g) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("dx", js_tensor(env, g.dx));
  if (g.dskip) o.Set("dskip", js_tensor(env, g.dskip));
  o.Set("dgamma", js_tensor(env, g.dgamma));
  o.Set("dbeta", js_tensor(env, g.dbeta));
  return o;
}

// Each binding: read and check arguments on the JS thread, compute on a worker.

Napi::Value conv2d(const Info& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    const std::string op = "conv2d";
    auto x = tensor(info, 0, op, "x"), w = tensor(info, 1, op, "filter"), b = optional_tensor(info, 2, op, "bias");
    auto args = conv_args(info, 3, op);
    return tensor_op(info.Env(), "conv2d", [=] { return ops::conv2d(*x, *w, b.get(), args); });
  });
}

Napi::Value conv2d_backward(const Info& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    const std::string op = "conv2dBackward";
    auto x = tensor(info, 0, op, "x"), w = tensor(info, 1, op, "filter"), dy = tensor(info, 2, op, "dy");
    const bool with_bias = info[3].ToBoolean().Value();
    auto args = conv_args(info, 4, op);
    auto out = std::make_shared<ops::Conv2dGrads>();
    return AsyncOp::queue(
        info.Env(), "conv2dBackward", [=] { *out = ops::conv2d_backward(*x, *w, *dy, with_bias, args); },
        [out](Napi::Env env) -> Napi::Value {
          Napi::Object o = Napi::Object::New(env);
          o.Set("dx", js_tensor(env, out->dx));
          o.Set("dw", js_tensor(env, out->dw));
          if (out->db) o.Set("db", js_tensor(env, out->db));
          return o;
        });
  });
}

Napi::Value batch_norm(const Info& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    const std::string op = "batchNorm";
    auto x = tensor(info, 0, op, "x");
    auto p = bn_tensors(info, 1, op);
    auto args = bn_args(info, 5, op);
    return tensor_op(info.Env(), "batchNorm", [=] { return ops::batch_norm(*x, p.params(), args); });
  });
}

Napi::Value batch_norm_backward(const Info& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    const std::string op = "batchNormBackward";
    auto x = tensor(info, 0, op, "x"), dy = tensor(info, 1, op, "dy");
    auto p = bn_tensors(info, 2, op);
    auto args = bn_args(info, 6, op);
    auto out = std::make_shared<ops::BatchNormGrads>();
    return AsyncOp::queue(
        info.Env(), "batchNormBackward", [=] { *out = ops::batch_norm_backward(*x, *dy, p.params(), args); },
        [out](Napi::Env env) { return bn_grads_object(env, *out); });
  });
}

Napi::Value batch_norm_add_relu(const Info& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    const std::string op = "batchNormAddRelu";
    auto x = tensor(info, 0, op, "x"), skip = tensor(info, 1, op, "skip");
    auto p = bn_tensors(info, 2, op);
    auto args = bn_args(info, 6, op);
    return tensor_op(info.Env(), "batchNormAddRelu",
                     [=] { return ops::batch_norm_add_relu(*x, *skip, p.params(), args); });
  });
}

Napi::Value batch_norm_add_relu_backward(const Info& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    const std::string op = "batchNormAddReluBackward";
    auto x = tensor(info, 0, op, "x"), skip = tensor(info, 1, op, "skip"), dy = tensor(info, 2, op, "dy");
    auto p = bn_tensors(info, 3, op);
    auto args = bn_args(info, 7, op);
    auto out = std::make_shared<ops::BatchNormGrads>();
    return AsyncOp::queue(
        info.Env(), "batchNormAddReluBackward",
        [=] { *out = ops::batch_norm_add_relu_backward(*x, *skip, *dy, p.params(), args); },
        [out](Napi::Env env) { return bn_grads_object(env, *out); });
  });
}

Napi::Value relu(const Info& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    auto x = tensor(info, 0, "relu", "x");
    return tensor_op(info.Env(), "relu", [=] { return ops::relu(*x); });
  });
}

Napi::Value relu_backward(const Info& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    auto x = tensor(info, 0, "reluBackward", "x"), dy = tensor(info, 1, "reluBackward", "dy");
    return tensor_op(info.Env(), "reluBackward", [=] { return ops::relu_backward(*x, *dy); });
  });
}

Napi::Value add(const Info& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    auto a = tensor(info, 0, "add", "a"), b = tensor(info, 1, "add", "b");
    return tensor_op(info.Env(), "add", [=] { return ops::add(*a, *b); });
  });
}

template <TensorPtr (*Forward)(const Tensor&, const ops::Pool2dArgs&)>
Napi::Value pool_forward(const Info& info, const char* op) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    auto x = tensor(info, 0, op, "x");
    auto args = pool_args(info, 1, op);
    return tensor_op(info.Env(), op, [=] { return Forward(*x, args); });
  });
}

template <TensorPtr (*Backward)(const Tensor&, const Tensor&, const ops::Pool2dArgs&)>
Napi::Value pool_backward(const Info& info, const char* op) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    auto x = tensor(info, 0, op, "x"), dy = tensor(info, 1, op, "dy");
    auto args = pool_args(info, 2, op);
    return tensor_op(info.Env(), op, [=] { return Backward(*x, *dy, args); });
  });
}

Napi::Value max_pool(const Info& info) { return pool_forward<ops::max_pool>(info, "maxPool"); }
Napi::Value max_pool_backward(const Info& info) {
  return pool_backward<ops::max_pool_backward>(info, "maxPoolBackward");
}
Napi::Value avg_pool(const Info& info) { return pool_forward<ops::avg_pool>(info, "avgPool"); }
Napi::Value avg_pool_backward(const Info& info) {
  return pool_backward<ops::avg_pool_backward>(info, "avgPoolBackward");
}

Napi::Value global_avg_pool(const Info& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    auto x = tensor(info, 0, "globalAvgPool", "x");
    return tensor_op(info.Env(), "globalAvgPool", [=] { return ops::global_avg_pool(*x); });
  });
}

Napi::Value global_avg_pool_backward(const Info& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    auto x = tensor(info, 0, "globalAvgPoolBackward", "x"), dy = tensor(info, 1, "globalAvgPoolBackward", "dy");
    return tensor_op(info.Env(), "globalAvgPoolBackward", [=] { return ops::global_avg_pool_backward(*x, *dy); });
  });
}

Napi::Value dense(const Info& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    auto x = tensor(info, 0, "dense", "x"), w = tensor(info, 1, "dense", "weights");
    auto b = optional_tensor(info, 2, "dense", "bias");
    return tensor_op(info.Env(), "dense", [=] { return ops::dense(*x, *w, b.get()); });
  });
}

Napi::Value dense_backward(const Info& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    const std::string op = "denseBackward";
    auto x = tensor(info, 0, op, "x"), w = tensor(info, 1, op, "weights"), dy = tensor(info, 2, op, "dy");
    const bool with_bias = info[3].ToBoolean().Value();
    auto out = std::make_shared<ops::DenseGrads>();
    return AsyncOp::queue(
        info.Env(), "denseBackward", [=] { *out = ops::dense_backward(*x, *w, *dy, with_bias); },
        [out](Napi::Env env) -> Napi::Value {
          Napi::Object o = Napi::Object::New(env);
          o.Set("dx", js_tensor(env, out->dx));
          o.Set("dw", js_tensor(env, out->dw));
          if (out->db) o.Set("db", js_tensor(env, out->db));
          return o;
        });
  });
}

float number_arg(const Info& info, size_t i, const std::string& op, const char* name) {
  if (!info[i].IsNumber()) fail(ErrorCode::InvalidArgument, op + ": " + name + " must be a number");
  return info[i].As<Napi::Number>().FloatValue();
}

Napi::Value softmax_cross_entropy(const Info& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    const std::string op = "softmaxCrossEntropy";
    auto logits = tensor(info, 0, op, "logits");
    auto labels = std::make_shared<std::vector<int32_t>>(labels_arg(info[1], op));
    const float smoothing = number_arg(info, 2, op, "labelSmoothing");
    auto loss = std::make_shared<double>(0.0);
    return AsyncOp::queue(
        info.Env(), "softmaxCrossEntropy", [=] { *loss = ops::softmax_cross_entropy(*logits, *labels, smoothing); },
        [loss](Napi::Env env) { return Napi::Number::New(env, *loss); });
  });
}

Napi::Value softmax_cross_entropy_backward(const Info& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    const std::string op = "softmaxCrossEntropyBackward";
    auto logits = tensor(info, 0, op, "logits");
    auto labels = std::make_shared<std::vector<int32_t>>(labels_arg(info[1], op));
    const float smoothing = number_arg(info, 2, op, "labelSmoothing");
    const float dloss = number_arg(info, 3, op, "dloss");
    return tensor_op(info.Env(), "softmaxCrossEntropyBackward",
                     [=] { return ops::softmax_cross_entropy_backward(*logits, *labels, smoothing, dloss); });
  });
}

}  // namespace

void define_ops(Napi::Env env, Napi::Object exports) {
  exports.Set("conv2d", Napi::Function::New<conv2d>(env, "conv2d"));
  exports.Set("conv2dBackward", Napi::Function::New<conv2d_backward>(env, "conv2dBackward"));
  exports.Set("batchNorm", Napi::Function::New<batch_norm>(env, "batchNorm"));
  exports.Set("batchNormBackward", Napi::Function::New<batch_norm_backward>(env, "batchNormBackward"));
  exports.Set("batchNormAddRelu", Napi::Function::New<batch_norm_add_relu>(env, "batchNormAddRelu"));
  exports.Set("batchNormAddReluBackward",
              Napi::Function::New<batch_norm_add_relu_backward>(env, "batchNormAddReluBackward"));
  exports.Set("relu", Napi::Function::New<relu>(env, "relu"));
  exports.Set("reluBackward", Napi::Function::New<relu_backward>(env, "reluBackward"));
  exports.Set("add", Napi::Function::New<add>(env, "add"));
  exports.Set("maxPool", Napi::Function::New<max_pool>(env, "maxPool"));
  exports.Set("maxPoolBackward", Napi::Function::New<max_pool_backward>(env, "maxPoolBackward"));
  exports.Set("avgPool", Napi::Function::New<avg_pool>(env, "avgPool"));
  exports.Set("avgPoolBackward", Napi::Function::New<avg_pool_backward>(env, "avgPoolBackward"));
  exports.Set("globalAvgPool", Napi::Function::New<global_avg_pool>(env, "globalAvgPool"));
  exports.Set("globalAvgPoolBackward", Napi::Function::New<global_avg_pool_backward>(env, "globalAvgPoolBackward"));
  exports.Set("dense", Napi::Function::New<dense>(env, "dense"));
  exports.Set("denseBackward", Napi::Function::New<dense_backward>(env, "denseBackward"));
  exports.Set("softmaxCrossEntropy", Napi::Function::New<softmax_cross_entropy>(env, "softmaxCrossEntropy"));
  exports.Set("softmaxCrossEntropyBackward",
              Napi::Function::New<softmax_cross_entropy_backward>(env, "softmaxCrossEntropyBackward"));
}

}  // namespace rn::addon
