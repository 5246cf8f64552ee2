// cudaStatus(): what the CUDA side looks like from this addon (plugin, driver, cuDNN, GPUs).
#pragma once

#include "napi_config.hpp"

namespace rn::addon {

void define_device(Napi::Env env, Napi::Object exports);

}  // namespace rn::addon
