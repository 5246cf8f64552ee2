#include "tensor_wrap.hpp"

#include <cmath>
#include <cstring>

#include "../core/backend.hpp"
#include "../core/device.hpp"
#include "../core/error.hpp"
#include "args.hpp"
#include "errors.hpp"
#include "instance_data.hpp"

namespace rn::addon {
namespace {

// Marker passed to the constructor by wrap(): the handle is filled in afterwards.
struct AdoptTag {};
AdoptTag adopt_tag;

Shape read_shape(const Napi::Value& value) {
  if (!value.IsArray()) fail(ErrorCode::InvalidArgument, "Tensor.fromArray: shape must be an array of integers");
  Napi::Array arr = value.As<Napi::Array>();
  if (arr.Length() > 8)
    fail(ErrorCode::InvalidShape,
         "Tensor.fromArray: rank " + std::to_string(arr.Length()) + " is above the limit of 8");
  Shape shape;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value d = arr.Get(i);
    double v = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : std::nan("");
    if (!std::isfinite(v) || v != std::floor(v) || v < 1 || v > double(kMaxElements)) {
      fail(ErrorCode::InvalidShape,
           "Tensor.fromArray: shape dimension " + std::to_string(i) + " must be a positive integer");
    }
    shape.push_back(static_cast<int64_t>(v));
  }
  return shape;
}

}  // namespace

void NativeTensor::define(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "NativeTensor",
                                   {
                                       InstanceMethod<&NativeTensor::shape>("shape"),
                                       InstanceMethod<&NativeTensor::to_float32_array>("toFloat32Array"),
                                       InstanceMethod<&NativeTensor::dispose>("dispose"),
                                       InstanceMethod<&NativeTensor::is_disposed>("isDisposed"),
                                       InstanceMethod<&NativeTensor::device>("device"),
                                       InstanceMethod<&NativeTensor::to_device>("toDevice"),
                                   });
  instance(env).tensor_class = Napi::Persistent(cls);
  exports.Set("NativeTensor", cls);
}

// new NativeTensor(data: Float32Array, shape: number[]) copies data.
NativeTensor::NativeTensor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeTensor>(info) {
  Napi::Env env = info.Env();
  if (info.Length() == 1 && info[0].IsExternal() && info[0].As<Napi::External<AdoptTag>>().Data() == &adopt_tag) {
    return;
  }
  guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 2)
      fail(ErrorCode::InvalidArgument, "Tensor.fromArray: expected (data: Float32Array, shape: number[])");
    Shape shape = read_shape(info[1]);  // first: reading it can run JS (getters)
    TensorPtr t = Tensor::empty(shape, "Tensor.fromArray");
    read_typed_array<float>(info[0], "Tensor.fromArray", "data", [&](std::span<const float> data) {
      if (static_cast<int64_t>(data.size()) != t->numel()) {
        fail(ErrorCode::InvalidShape, "Tensor.fromArray: data has " + std::to_string(data.size()) +
                                          " elements but shape " + shape_to_string(shape) + " needs " +
                                          std::to_string(t->numel()));
      }
      std::memcpy(t->data(), data.data(), static_cast<size_t>(t->bytes()));
    });
    adopt(env, std::move(t));
    return env.Undefined();
  });
}

NativeTensor::~NativeTensor() {
  if (accounted_bytes_ != 0) Napi::MemoryManagement::AdjustExternalMemory(Env(), -accounted_bytes_);
}

void NativeTensor::adopt(Napi::Env env, TensorPtr tensor) {
  tensor_ = std::move(tensor);
  // V8 hears of host memory only; a device tensor's bytes are the GPU's.
  accounted_bytes_ = tensor_->device() ? 0 : tensor_->bytes();
  Napi::MemoryManagement::AdjustExternalMemory(env, accounted_bytes_);
}

Napi::Object NativeTensor::wrap(Napi::Env env, TensorPtr tensor) {
  Napi::Object obj = instance(env).tensor_class.New({Napi::External<AdoptTag>::New(env, &adopt_tag)});
  Unwrap(obj)->adopt(env, std::move(tensor));
  return obj;
}

TensorPtr NativeTensor::unwrap(const Napi::Value& value, const std::string& op, const std::string& name,
                               bool allow_device) {
  Napi::Env env = value.Env();
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(instance(env).tensor_class.Value())) {
    fail(ErrorCode::InvalidArgument, op + ": " + name + " must be a Tensor");
  }
  NativeTensor* self = Unwrap(value.As<Napi::Object>());
  if (!self->tensor_) fail(ErrorCode::Disposed, op + ": " + name + " was disposed");
  if (!allow_device && self->tensor_->device() != nullptr) {
    fail(ErrorCode::Device, op + ": " + name + " lives on " + self->tensor_->device()->device_name() +
                                "; this op runs on the CPU: pass tensor.to('cpu')");
  }
  return self->tensor_;
}

Napi::Value NativeTensor::shape(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!tensor_) fail(ErrorCode::Disposed, "Tensor.shape: the tensor was disposed");
    Napi::Array arr = Napi::Array::New(env, tensor_->shape().size());
    for (size_t i = 0; i < tensor_->shape().size(); ++i) {
      arr.Set(static_cast<uint32_t>(i), Napi::Number::New(env, double(tensor_->shape()[i])));
    }
    return arr;
  });
}

Napi::Value NativeTensor::to_float32_array(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!tensor_) fail(ErrorCode::Disposed, "Tensor.toFloat32Array: the tensor was disposed");
    Napi::Float32Array out = Napi::Float32Array::New(env, static_cast<size_t>(tensor_->numel()));
    if (Backend* device = tensor_->device()) {
      BackendCall call(*device);
      device->download(out.Data(), tensor_->data(), tensor_->bytes());
    } else {
      std::memcpy(out.Data(), tensor_->data(), static_cast<size_t>(tensor_->bytes()));
    }
    return out;
  });
}

Napi::Value NativeTensor::device(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    if (!tensor_) fail(ErrorCode::Disposed, "Tensor.device: the tensor was disposed");
    return Napi::String::New(info.Env(), tensor_->device() ? tensor_->device()->device_name() : "cpu");
  });
}

// toDevice(device) → a new tensor holding a copy on that device (host ↔ GPU, or GPU → GPU
// through the host). The caller (lib/tensor.ts) returns the same tensor when nothing moves.
Napi::Value NativeTensor::to_device(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!tensor_) fail(ErrorCode::Disposed, "Tensor.to: the tensor was disposed");
    if (info.Length() < 1 || !info[0].IsString())
      fail(ErrorCode::InvalidArgument, "Tensor.to: device must be a string");
    Backend& target = backend_for_device(parse_device(info[0].As<Napi::String>().Utf8Value()));
    TensorPtr host = tensor_;
    if (Backend* source = tensor_->device()) {
      host = Tensor::empty(tensor_->shape(), "Tensor.to");
      BackendCall call(*source);
      source->download(host->data(), tensor_->data(), tensor_->bytes());
    }
    TensorPtr out = host;
    if (target.is_device()) {
      // No BackendCall: a training step may hold the backend on a worker thread, and this
      // copy is meant to overlap it (the allocator is thread-safe; upload_input queues on
      // the GPU's copy stream, and later calls are ordered after it). The block handed out
      // cannot still be read by a step: a tensor is released only after the steps that
      // used it have finished (each holds a reference until its call has synchronised).
      out = Tensor::on_backend(target, tensor_->shape(), "Tensor.to");
      target.upload_input(out->data(), host->data(), host->bytes());
    }
    return wrap(env, out);
  });
}

Napi::Value NativeTensor::dispose(const Napi::CallbackInfo& info) {
  if (accounted_bytes_ != 0) Napi::MemoryManagement::AdjustExternalMemory(info.Env(), -accounted_bytes_);
  accounted_bytes_ = 0;
  tensor_.reset();
  return info.Env().Undefined();
}

Napi::Value NativeTensor::is_disposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !tensor_);
}

}  // namespace rn::addon
