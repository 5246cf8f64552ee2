// The C entry points the CUDA plugin (libresnet_cuda.so) exports, and the one the core
// (device.cpp) calls after dlopen. Bump kCudaPluginAbi whenever Backend (or any interface it
// is made of, backend.hpp) or these change: an addon never talks to a plugin built against
// another layout.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rn {
class Backend;
}

namespace rn::cuda_abi {

// 3: Backend split by role (DeviceMemory, the kernel families, the optional StepCapture).
constexpr int kCudaPluginAbi = 3;

// Bits 1-2 of rn_cuda_create_backend's options.
enum class Precision : unsigned { Fp32 = 0, Fp16 = 1, Bf16 = 2 };

struct DeviceInfo {
  char name[256];
  int64_t memory_bytes;
  int major, minor;  // compute capability
  int multiprocessors;
};

struct PluginInfo {
  int driver_version;   // cudaDriverGetVersion, e.g. 13000
  int runtime_version;  // the cudart the plugin was linked with
  int cudnn_version;    // cudnnGetVersion() of the loaded cuDNN, e.g. 92400
  int device_count;
  DeviceInfo devices[16];
};

}  // namespace rn::cuda_abi

extern "C" {
typedef int (*rn_cuda_abi_version_fn)();
// Fills `info`; returns 0, or non-zero with a message in `error` (driver missing, no GPU, ...).
typedef int (*rn_cuda_query_fn)(rn::cuda_abi::PluginInfo* info, char* error, size_t error_size);
// The backend for GPU `ordinal` (lives until the process exits), or null with a message.
// `options`: bit 0 = allow TF32 tensor cores for fp32 convolutions; bits 1-2 = Precision.
typedef rn::Backend* (*rn_cuda_create_backend_fn)(int ordinal, unsigned options, char* error, size_t error_size);
}
