// The functional ops (lib/ops.ts) as N-API functions returning Promises.
#pragma once

#include "napi_config.hpp"

namespace rn::addon {

void define_ops(Napi::Env env, Napi::Object exports);

}  // namespace rn::addon
