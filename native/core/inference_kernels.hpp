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
  // `prepared`: conv2d_prepare_weights' output for these weights, or null (then `w` is read).
  virtual void conv2d_forward_epilogue(const Conv2dGeometry& g, const float* x, const float* w, const float* prepared,
                                       const float* bias, const float* skip, bool relu, float* y, float* scratch) = 0;
  // The weights prepared once per plan for g's forward kernel (packed for the GEMM, or
  // Winograd-transformed): their size in floats (0: the kernel reads `w` as it is), and the
  // preparation (scratch: conv2d_scratch_floats(g)).
  virtual int64_t conv2d_prepared_floats(const Conv2dGeometry& g) const = 0;
  virtual void conv2d_prepare_weights(const Conv2dGeometry& g, const float* w, float* prepared, float* scratch) = 0;
};

// False when RESNET_INFERENCE_FUSION=0: inference plans then run unfused (read per plan compiled).
bool inference_fusion_enabled();

}  // namespace rn
