#include "device_bindings.hpp"

#include "../core/device.hpp"

namespace rn::addon {
namespace {

// { available, reason?, pluginPath, cudnnPath?, driverVersion?, runtimeVersion?, cudnnVersion?, devices? }.
// Loads the plugin on first call; never throws (an unavailable GPU is an answer, not an error).
Napi::Value cuda_status(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const CudaStatus s = rn::cuda_status();
  Napi::Object o = Napi::Object::New(env);
  o.Set("available", s.available);
  if (!s.reason.empty()) o.Set("reason", s.reason);
  o.Set("pluginPath", s.plugin_path);
  if (!s.cudnn_path.empty()) o.Set("cudnnPath", s.cudnn_path);
  if (s.info.runtime_version) o.Set("runtimeVersion", s.info.runtime_version);
  if (s.info.driver_version) o.Set("driverVersion", s.info.driver_version);
  if (s.info.cudnn_version) o.Set("cudnnVersion", s.info.cudnn_version);
  if (s.available) {
    const int shown = s.info.device_count < 16 ? s.info.device_count : 16;
    Napi::Array devices = Napi::Array::New(env, static_cast<size_t>(shown));
    for (int i = 0; i < shown; ++i) {
      const cuda_abi::DeviceInfo& d = s.info.devices[i];
      Napi::Object dev = Napi::Object::New(env);
      dev.Set("name", d.name);
      dev.Set("memoryBytes", static_cast<double>(d.memory_bytes));
      dev.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
      dev.Set("multiprocessors", d.multiprocessors);
      devices.Set(static_cast<uint32_t>(i), dev);
    }
    o.Set("devices", devices);
  }
  return o;
}

}  // namespace

void define_device(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaStatus", Napi::Function::New<cuda_status>(env, "cudaStatus"));
}

}  // namespace rn::addon
