// Turning CUDA and cuDNN status codes into ResNetError E_DEVICE, naming the call.
#pragma once

#include <cudnn.h>
#include <cuda_runtime.h>

#include <string>

#include "../core/error.hpp"

namespace rn::cuda {

[[noreturn]] inline void cuda_fail(const char* what, cudaError_t e) {
  fail(ErrorCode::Device,
       std::string("CUDA: ") + what + " failed: " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

[[noreturn]] inline void cudnn_fail(const char* what, cudnnStatus_t s) {
  fail(ErrorCode::Device, std::string("cuDNN: ") + what + " failed: " + cudnnGetErrorString(s));
}

}  // namespace rn::cuda

#define RN_CUDA(call)                                              \
  do {                                                             \
    const cudaError_t rn_e_ = (call);                              \
    if (rn_e_ != cudaSuccess) ::rn::cuda::cuda_fail(#call, rn_e_); \
  } while (0)

#define RN_CUDNN(call)                                                       \
  do {                                                                       \
    const cudnnStatus_t rn_s_ = (call);                                      \
    if (rn_s_ != CUDNN_STATUS_SUCCESS) ::rn::cuda::cudnn_fail(#call, rn_s_); \
  } while (0)
