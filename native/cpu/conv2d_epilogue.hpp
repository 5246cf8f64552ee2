// What an inference plan fuses behind a convolution (native/core/inference_kernels.hpp): the
// residual add and the ReLU, applied to each output tile while it is still in cache, after the
// bias (batch-norm already folded into the weights and bias). Training plans pass none.
#pragma once

#include <algorithm>
#include <cstdint>

namespace rn::cpu {

struct ConvEpilogue {
  const float* skip = nullptr;  // same layout as y: y += skip
  bool relu = false;
  bool active() const { return skip != nullptr || relu; }
};

// y[i] = [relu](y[i] [+ skip[offset + i]]) for i in [0, count); y already points at `offset`.
inline void apply_conv_epilogue(const ConvEpilogue& e, int64_t offset, int64_t count, float* __restrict y) {
  if (e.skip != nullptr) {
    const float* __restrict s = e.skip + offset;
    if (e.relu) {
      for (int64_t i = 0; i < count; ++i) {
        y[i] = std::max(y[i] + s[i], 0.0f);  // NaN stays NaN, as relu_forward
      }
    } else {
      for (int64_t i = 0; i < count; ++i) y[i] += s[i];
    }
  } else if (e.relu) {
    for (int64_t i = 0; i < count; ++i) y[i] = std::max(y[i], 0.0f);
  }
}

}  // namespace rn::cpu
