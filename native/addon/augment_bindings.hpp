// augmentBatch(src: Float32Array, dst: NativeTensor, options) → Promise<void>: the batch
// augmentation kernel (native/cpu/augment_kernels.hpp) run off the JS thread, writing
// into a preallocated tensor.
#pragma once

#include "napi_config.hpp"

namespace rn::addon {

void define_augment(Napi::Env env, Napi::Object exports);

}  // namespace rn::addon
