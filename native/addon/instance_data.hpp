// Per-environment state of the addon (one per Node main thread or worker thread).
#pragma once

#include "napi_config.hpp"

namespace rn::addon {

struct InstanceData {
  Napi::FunctionReference error_class;   // lib's ResNetError, set once by setErrorClass()
  Napi::FunctionReference tensor_class;  // NativeTensor
};

inline InstanceData& instance(Napi::Env env) { return *env.GetInstanceData<InstanceData>(); }

}  // namespace rn::addon
