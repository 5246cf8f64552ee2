// Optional kernels that inference plans use where a backend has them (found with dynamic_cast,
// so the Backend interface and the CUDA plugin are unchanged): the convolution with its
// epilogue. A backend without them runs inference plans unfused (batch-norm as its own step),
// which keeps the reference kernels an independent oracle.
#pragma once

#include "geometry.hpp"

namespace rn {

class InferenceKernels {
 public:
  virtual ~InferenceKernels() = default;
  // y = [relu](conv(x, w) + bias [+ skip]); skip has y's layout and never aliases y. The
  // epilogue runs on each output tile while it is in cache.
  virtual void conv2d_forward_epilogue(const Conv2dGeometry& g, const float* x, const float* w, const float* bias,
                                       const float* skip, bool relu, float* y, float* scratch) = 0;
};

// False when RESNET_INFERENCE_FUSION=0: inference plans then run unfused (read per plan compiled).
bool inference_fusion_enabled();

}  // namespace rn
