// Tensor-level ops: check shapes (naming the op and the shapes), allocate the outputs and
// run the kernels. This is what the functional `ops` API of the addon calls; the model
// plan calls the kernels directly on its arena instead.
#pragma once

#include <cstdint>
#include <vector>

#include "../core/geometry.hpp"
#include "../core/tensor.hpp"

namespace rn::ops {

struct Conv2dArgs {
  Window2dOptions window;
  int64_t groups = 1;
};
struct Conv2dGrads {
  TensorPtr dx, dw, db;  // db only when the conv has a bias
};
TensorPtr conv2d(const Tensor& x, const Tensor& w, const Tensor* bias, const Conv2dArgs& args);
Conv2dGrads conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy, bool with_bias, const Conv2dArgs& args);

struct BatchNormArgs {
  bool training = true;
  float momentum = 0.1f;  // weight of the new batch in the running statistics
  float epsilon = 1e-5f;
};
struct BatchNormParams {
  const Tensor* gamma;
  const Tensor* beta;
  Tensor* running_mean;  // updated in place in training mode
  Tensor* running_var;
};
struct BatchNormGrads {
  TensorPtr dx, dskip, dgamma, dbeta;  // dskip only for batch_norm_add_relu
};
TensorPtr batch_norm(const Tensor& x, const BatchNormParams& p, const BatchNormArgs& args);
BatchNormGrads batch_norm_backward(const Tensor& x, const Tensor& dy, const BatchNormParams& p,
                                   const BatchNormArgs& args);
TensorPtr batch_norm_add_relu(const Tensor& x, const Tensor& skip, const BatchNormParams& p, const BatchNormArgs& args);
BatchNormGrads batch_norm_add_relu_backward(const Tensor& x, const Tensor& skip, const Tensor& dy,
                                            const BatchNormParams& p, const BatchNormArgs& args);

TensorPtr relu(const Tensor& x);
TensorPtr relu_backward(const Tensor& x, const Tensor& dy);
TensorPtr add(const Tensor& a, const Tensor& b);

struct Pool2dArgs {
  int64_t size_h = 2, size_w = 2;
  Window2dOptions window;
};
TensorPtr max_pool(const Tensor& x, const Pool2dArgs& args);
TensorPtr max_pool_backward(const Tensor& x, const Tensor& dy, const Pool2dArgs& args);
TensorPtr avg_pool(const Tensor& x, const Pool2dArgs& args);
TensorPtr avg_pool_backward(const Tensor& x, const Tensor& dy, const Pool2dArgs& args);
TensorPtr global_avg_pool(const Tensor& x);
TensorPtr global_avg_pool_backward(const Tensor& x, const Tensor& dy);

struct DenseGrads {
  TensorPtr dx, dw, db;
};
TensorPtr dense(const Tensor& x, const Tensor& w, const Tensor* bias);
DenseGrads dense_backward(const Tensor& x, const Tensor& w, const Tensor& dy, bool with_bias);

double softmax_cross_entropy(const Tensor& logits, const std::vector<int32_t>& labels, float smoothing);
TensorPtr softmax_cross_entropy_backward(const Tensor& logits, const std::vector<int32_t>& labels, float smoothing,
                                         float dloss);

}  // namespace rn::ops
