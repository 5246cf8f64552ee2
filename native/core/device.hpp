// Devices: "cpu" is the CPU backend, always there; "cuda" / "cuda:N" is GPU N through the
// CUDA plugin, which is found beside the addon and loaded (with the driver and cuDNN it
// needs) only when a GPU is first asked for. Every way that can fail is an E_DEVICE
// naming the missing piece and how to provide it.
#pragma once

#include <string>

#include "backend.hpp"
#include "cuda_plugin_abi.hpp"

namespace rn {

struct DeviceRequest {
  bool cuda = false;
  int ordinal = 0;
  bool allow_tf32 = false;  // fp32 convolutions may use TF32 tensor cores
  // Activation type on the GPU: fp32, or mixed precision with fp16 / bf16 activations.
  cuda_abi::Precision precision = cuda_abi::Precision::Fp32;
  std::string canonical() const { return cuda ? "cuda:" + std::to_string(ordinal) : "cpu"; }
};

// "cpu", "cuda", "cuda:N" → a request; anything else is E_ARG.
DeviceRequest parse_device(const std::string& device);

// The backend for a request (cached: one per GPU and option set, alive until exit).
Backend& backend_for_device(const DeviceRequest& request);

struct CudaStatus {
  bool available = false;
  std::string reason;       // why not, when unavailable
  std::string plugin_path;  // where the plugin was looked for / loaded from
  std::string cudnn_path;   // the libcudnn.so.9 that was loaded
  cuda_abi::PluginInfo info{};
};

// What the CUDA side looks like from here; never throws, loads the plugin if it can.
CudaStatus cuda_status();

}  // namespace rn
