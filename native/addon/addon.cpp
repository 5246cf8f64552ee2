// Module entry: registers the tensor class, the ops and the addon's own info.
#include "napi_config.hpp"

#include <string>

#ifdef _WIN32
#define NOMINMAX
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#else
#include <dlfcn.h>
#endif

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

// Node unloads an addon once no environment uses it any more — e.g. when a worker that
// loaded it exits and the main thread never did — and the next worker loads it afresh. This
// library must not go: the core's thread pool is process-wide and its threads live on inside
// its code (thread_pool.cpp), so they would run unmapped code, and a reload would start a
// second pool, second allocation counters, a second CUDA plugin. So it pins itself in memory
// for the life of the process, on first load.
bool pin_library() {
#ifdef _WIN32
  HMODULE self = nullptr;
  GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_PIN,
                     reinterpret_cast<LPCWSTR>(&pin_library), &self);
#else
  Dl_info self;
  if (dladdr(reinterpret_cast<void*>(&pin_library), &self) != 0 && self.dli_fname != nullptr) {
    dlopen(self.dli_fname, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE);  // the handle is never closed
  }
#endif
  return true;
}

}  // namespace

// Runs once per environment (the main thread, each worker thread): all the addon's JS state
// lives in that environment's InstanceData, freed with it.
Napi::Object init(Napi::Env env, Napi::Object exports) {
  [[maybe_unused]] static const bool pinned = pin_library();  // once per process
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
