// Module entry: registers the tensor class, the ops and the addon's own info.
#include <napi.h>

#include <string>

#include "../core/thread_pool.hpp"
#include "../cpu/kernel_selection.hpp"
#include "../cpu/simd_dispatch.hpp"
#include "augment_bindings.hpp"
#include "device_bindings.hpp"
#include "errors.hpp"
#include "instance_data.hpp"
#include "network_wrap.hpp"
#include "ops_bindings.hpp"
#include "tensor_wrap.hpp"

namespace rn::addon {
namespace {

// lib/errors.ts hands over ResNetError so native failures surface as that class.
Napi::Value set_error_class(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsFunction()) {
    throw Napi::TypeError::New(info.Env(), "setErrorClass expects a constructor");
  }
  instance(info.Env()).error_class = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

Napi::Value runtime_info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Napi::Object o = Napi::Object::New(env);
    o.Set("threads", Napi::Number::New(env, num_threads()));
    // RESNET_KERNELS picks the kernels models and the conv / batch-norm ops run.
    const bool reference = std::string(rn::selected_kernels()) == "reference";
    o.Set("kernels", Napi::String::New(env, rn::selected_kernels()));
    o.Set("engine", Napi::String::New(env, reference ? "cpu: reference kernels (plain loops)"
                                                     : "cpu: packed-GEMM convolutions, fused batch-norm"));
    o.Set("simd", Napi::String::New(env, reference ? "none (reference kernels)" : rn::cpu::simd_level()));
    return o;
  });
}

}  // namespace

Napi::Object init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new InstanceData());
  NativeTensor::define(env, exports);
  define_ops(env, exports);
  define_augment(env, exports);
  define_device(env, exports);
  NativeNetwork::define(env, exports);
  exports.Set("setErrorClass", Napi::Function::New<set_error_class>(env, "setErrorClass"));
  exports.Set("runtimeInfo", Napi::Function::New<runtime_info>(env, "runtimeInfo"));
  return exports;
}

}  // namespace rn::addon

static Napi::Object InitResnetNative(Napi::Env env, Napi::Object exports) { return rn::addon::init(env, exports); }

NODE_API_MODULE(resnet_native, InitResnetNative)
