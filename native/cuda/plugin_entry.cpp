// The plugin's C entry points (native/core/cuda_plugin_abi.hpp): the core finds them with
// dlsym after loading libresnet_cuda.so. Nothing here may throw across the boundary.
#include <cudnn.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstring>
#include <exception>

#include "../core/cuda_plugin_abi.hpp"
#include "cuda_backend.hpp"

namespace {

void set_error(char* error, size_t size, const char* message) {
  if (error != nullptr && size > 0) std::snprintf(error, size, "%s", message);
}

}  // namespace

#define RN_EXPORT extern "C" __attribute__((visibility("default")))

RN_EXPORT int rn_cuda_abi_version() { return rn::cuda_abi::kCudaPluginAbi; }

RN_EXPORT int rn_cuda_query(rn::cuda_abi::PluginInfo* info, char* error, size_t error_size) {
  std::memset(info, 0, sizeof(*info));
  cudaRuntimeGetVersion(&info->runtime_version);
  info->cudnn_version = static_cast<int>(cudnnGetVersion());
  cudaError_t e = cudaDriverGetVersion(&info->driver_version);
  if (e == cudaSuccess && info->driver_version == 0) e = cudaErrorNoDevice;
  if (e == cudaSuccess) e = cudaGetDeviceCount(&info->device_count);
  if (e != cudaSuccess) {
    info->device_count = 0;
    char message[512];
    std::snprintf(message, sizeof(message), "the CUDA driver reports no usable GPU: %s (%s)", cudaGetErrorName(e),
                  cudaGetErrorString(e));
    set_error(error, error_size, message);
    return 1;
  }
  const int shown = info->device_count < 16 ? info->device_count : 16;
  for (int i = 0; i < shown; ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
    rn::cuda_abi::DeviceInfo& d = info->devices[i];
    std::snprintf(d.name, sizeof(d.name), "%s", p.name);
    d.memory_bytes = static_cast<int64_t>(p.totalGlobalMem);
    d.major = p.major;
    d.minor = p.minor;
    d.multiprocessors = p.multiProcessorCount;
  }
  return 0;
}

RN_EXPORT rn::Backend* rn_cuda_create_backend(int ordinal, unsigned options, char* error, size_t error_size) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    char message[512];
    std::snprintf(message, sizeof(message), "no CUDA GPU is available: %s",
                  e != cudaSuccess ? cudaGetErrorString(e) : "the driver sees no device");
    set_error(error, error_size, message);
    return nullptr;
  }
  if (ordinal < 0 || ordinal >= count) {
    char message[256];
    std::snprintf(message, sizeof(message), "there is no GPU %d (this machine has %d: cuda:0 … cuda:%d)", ordinal,
                  count, count - 1);
    set_error(error, error_size, message);
    return nullptr;
  }
  const int cudnn_major = static_cast<int>(cudnnGetVersion() / 10000);
  if (cudnn_major != CUDNN_MAJOR) {
    char message[256];
    std::snprintf(message, sizeof(message), "the loaded cuDNN is version %zu; this plugin needs cuDNN %d",
                  cudnnGetVersion(), CUDNN_MAJOR);
    set_error(error, error_size, message);
    return nullptr;
  }
  try {
    return new rn::cuda::CudaBackend(ordinal, (options & 1u) != 0,
                                     static_cast<rn::cuda_abi::Precision>((options >> 1) & 3u));
  } catch (const std::exception& ex) {
    set_error(error, error_size, ex.what());
    return nullptr;
  }
}
