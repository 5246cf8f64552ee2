#include "tensor_ops.hpp"

#include <cmath>
#include <string>

#include "../core/backend.hpp"
#include "../core/error.hpp"
#include "reference/dense.hpp"
#include "reference/elementwise.hpp"
#include "reference/pool.hpp"
#include "reference/softmax_cross_entropy.hpp"

namespace rn::ops {
namespace {

std::string s(const Tensor& t) { return shape_to_string(t.shape()); }

// Convolution and batch-norm run on the selected CPU kernels (RESNET_KERNELS, see
// kernel_selection.hpp), the same ones models run, so ops-level tests cover them; the
// other ops run the reference kernels. The kernels' scratch is a per-call buffer here.
std::vector<float> kernel_scratch(int64_t floats) { return std::vector<float>(static_cast<size_t>(floats)); }

void expect_same_shape(const Tensor& a, const Tensor& b, const std::string& op, const char* a_name,
                       const char* b_name) {
  if (a.shape() != b.shape()) {
    fail(ErrorCode::InvalidShape,
         op + ": " + a_name + " " + s(a) + " and " + b_name + " " + s(b) + " must have the same shape");
  }
}

void expect_vector(const Tensor& t, int64_t length, const std::string& op, const char* name,
                   const std::string& context) {
  if (t.rank() != 1 || t.dim(0) != length) {
    fail(ErrorCode::InvalidShape,
         op + ": " + name + " must have shape [" + std::to_string(length) + "] (" + context + "), got " + s(t));
  }
}

void check_finite_arg(float v, const std::string& op, const char* name, float lo, float hi) {
  if (!std::isfinite(v) || v < lo || v > hi) {
    fail(ErrorCode::InvalidArgument, op + ": " + name + " must be a number in [" + std::to_string(lo) + ", " +
                                         std::to_string(hi) + "], got " + std::to_string(v));
  }
}

// Channels-last data as [rows, channels]: rank 2 [n, c] or rank 4 [n, h, w, c].
struct RowsChannels {
  int64_t rows, channels;
};

RowsChannels batch_norm_view(const Tensor& x, const BatchNormParams& p, const BatchNormArgs& args,
                             const std::string& op) {
  if (x.rank() != 2 && x.rank() != 4) {
    fail(ErrorCode::InvalidShape, op + ": input must be rank 2 [n, c] or rank 4 NHWC, got " + s(x));
  }
  const int64_t c = x.dim(x.rank() - 1);
  const std::string context = "the input " + s(x) + " has " + std::to_string(c) + " channels";
  expect_vector(*p.gamma, c, op, "gamma", context);
  expect_vector(*p.beta, c, op, "beta", context);
  expect_vector(*p.running_mean, c, op, "runningMean", context);
  expect_vector(*p.running_var, c, op, "runningVar", context);
  check_finite_arg(args.momentum, op, "momentum", 0.0f, 1.0f);
  check_finite_arg(args.epsilon, op, "epsilon", 0.0f, 1.0f);
  const int64_t rows = x.numel() / c;
  if (args.training && rows < 2) {
    fail(ErrorCode::InvalidShape,
         op + ": training mode needs more than one value per channel to compute batch statistics, got input " + s(x));
  }
  return {rows, c};
}

// Statistics the normalisation uses: the batch's in training mode, the running ones otherwise.
struct Statistics {
  std::vector<float> mean, var;
};

Statistics statistics_for(const Tensor& x, const RowsChannels& v, const BatchNormParams& p, const BatchNormArgs& args) {
  Statistics st;
  st.mean.resize(static_cast<size_t>(v.channels));
  st.var.resize(static_cast<size_t>(v.channels));
  if (args.training) {
    Backend& kernels = cpu_backend();
    std::vector<float> scratch = kernel_scratch(kernels.channel_scratch_floats(v.channels));
    kernels.batch_norm_statistics(v.rows, v.channels, x.data(), st.mean.data(), st.var.data(), scratch.data());
  } else {
    st.mean.assign(p.running_mean->data(), p.running_mean->data() + v.channels);
    st.var.assign(p.running_var->data(), p.running_var->data() + v.channels);
  }
  return st;
}

rn::BatchNormArgs kernel_args(const RowsChannels& v, const BatchNormParams& p, const BatchNormArgs& args,
                              const Statistics& st) {
  rn::BatchNormArgs a;
  a.rows = v.rows;
  a.channels = v.channels;
  a.epsilon = args.epsilon;
  a.gamma = p.gamma->data();
  a.beta = p.beta->data();
  a.mean = st.mean.data();
  a.var = st.var.data();
  return a;
}

// The normalisation (with an optional residual add and ReLU) and, in training, the
// running-statistics update.
TensorPtr batch_norm_forward(const Tensor& x, const Tensor* skip, const BatchNormParams& p, const BatchNormArgs& args,
                             const char* op) {
  const RowsChannels v = batch_norm_view(x, p, args, op);
  if (skip) expect_same_shape(x, *skip, op, "x", "skip");
  const Statistics st = statistics_for(x, v, p, args);
  TensorPtr y = Tensor::empty(x.shape(), std::string(op) + " output");
  Backend& kernels = cpu_backend();
  std::vector<float> scratch = kernel_scratch(kernels.channel_scratch_floats(v.channels));
  kernels.batch_norm_forward(kernel_args(v, p, args, st), x.data(), skip ? skip->data() : nullptr, skip != nullptr,
                             y->data(), scratch.data());
  if (args.training) {
    kernels.batch_norm_update_running(v.rows, v.channels, st.mean.data(), st.var.data(), args.momentum,
                                      p.running_mean->data(), p.running_var->data());
  }
  return y;
}

Pool2dGeometry pool_geometry(const Tensor& x, const Pool2dArgs& args, const std::string& op) {
  return pool2d_geometry(x.shape(), args.size_h, args.size_w, args.window, op);
}

void expect_dy(const Tensor& dy, const Shape& expected, const std::string& op) {
  if (dy.shape() != expected) {
    fail(ErrorCode::InvalidShape,
         op + ": dy must have the output's shape " + shape_to_string(expected) + ", got " + s(dy));
  }
}

struct DenseShape {
  int64_t n, k, m;
};

DenseShape dense_shape(const Tensor& x, const Tensor& w, const std::string& op) {
  if (x.rank() != 2) fail(ErrorCode::InvalidShape, op + ": input must be rank 2 [batch, features], got " + s(x));
  if (w.rank() != 2) fail(ErrorCode::InvalidShape, op + ": weights must be rank 2 [in, out], got " + s(w));
  if (x.dim(1) != w.dim(0)) {
    fail(ErrorCode::InvalidShape, op + ": input features " + std::to_string(x.dim(1)) +
                                      " must equal the weights' rows " + std::to_string(w.dim(0)) + " (input " + s(x) +
                                      ", weights " + s(w) + ")");
  }
  return {x.dim(0), x.dim(1), w.dim(1)};
}

void check_labels(const Tensor& logits, const std::vector<int32_t>& labels, float smoothing, const std::string& op) {
  if (logits.rank() != 2)
    fail(ErrorCode::InvalidShape, op + ": logits must be rank 2 [batch, classes], got " + s(logits));
  if (static_cast<int64_t>(labels.size()) != logits.dim(0)) {
    fail(ErrorCode::InvalidShape, op + ": got " + std::to_string(labels.size()) + " labels for a batch of " +
                                      std::to_string(logits.dim(0)) + " (logits " + s(logits) + ")");
  }
  const int64_t classes = logits.dim(1);
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= classes) {
      fail(ErrorCode::InvalidArgument, op + ": label " + std::to_string(labels[i]) + " at index " + std::to_string(i) +
                                           " is out of range [0, " + std::to_string(classes) + ")");
    }
  }
  check_finite_arg(smoothing, op, "labelSmoothing", 0.0f, 1.0f);
}

}  // namespace

TensorPtr conv2d(const Tensor& x, const Tensor& w, const Tensor* bias, const Conv2dArgs& args) {
  const Conv2dGeometry g = conv2d_geometry(x.shape(), w.shape(), args.groups, args.window, "conv2d");
  if (bias) expect_vector(*bias, g.c_out, "conv2d", "bias", "the filter has " + std::to_string(g.c_out) + " outputs");
  TensorPtr y = Tensor::empty(g.output_shape(), "conv2d output");
  Backend& kernels = cpu_backend();
  std::vector<float> scratch = kernel_scratch(kernels.conv2d_scratch_floats(g));
  kernels.conv2d_forward(g, x.data(), w.data(), bias ? bias->data() : nullptr, y->data(), nullptr, nullptr,
                         scratch.data());
  return y;
}

Conv2dGrads conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy, bool with_bias,
                            const Conv2dArgs& args) {
  const Conv2dGeometry g = conv2d_geometry(x.shape(), w.shape(), args.groups, args.window, "conv2dBackward");
  expect_dy(dy, g.output_shape(), "conv2dBackward");
  Conv2dGrads grads;
  grads.dx = Tensor::empty(x.shape(), "conv2dBackward dx");
  grads.dw = Tensor::empty(w.shape(), "conv2dBackward dw");
  if (with_bias) grads.db = Tensor::empty({g.c_out}, "conv2dBackward db");
  Backend& kernels = cpu_backend();
  std::vector<float> scratch = kernel_scratch(kernels.conv2d_scratch_floats(g));
  kernels.conv2d_backward_input(g, dy.data(), w.data(), grads.dx->data(), scratch.data());
  kernels.conv2d_backward_weight(g, x.data(), dy.data(), grads.dw->data(), with_bias ? grads.db->data() : nullptr,
                                 scratch.data());
  return grads;
}

TensorPtr batch_norm(const Tensor& x, const BatchNormParams& p, const BatchNormArgs& args) {
  return batch_norm_forward(x, nullptr, p, args, "batchNorm");
}

BatchNormGrads batch_norm_backward(const Tensor& x, const Tensor& dy, const BatchNormParams& p,
                                   const BatchNormArgs& args) {
  const RowsChannels v = batch_norm_view(x, p, args, "batchNormBackward");
  expect_same_shape(x, dy, "batchNormBackward", "x", "dy");
  const Statistics st = statistics_for(x, v, p, args);
  BatchNormGrads grads;
  grads.dx = Tensor::empty(x.shape(), "batchNormBackward dx");
  grads.dgamma = Tensor::empty({v.channels});
  grads.dbeta = Tensor::empty({v.channels});
  Backend& kernels = cpu_backend();
  std::vector<float> scratch = kernel_scratch(kernels.channel_scratch_floats(v.channels));
  kernels.batch_norm_backward(kernel_args(v, p, args, st), args.training, x.data(), nullptr, false, dy.data(),
                              grads.dx->data(), nullptr, grads.dgamma->data(), grads.dbeta->data(), scratch.data());
  return grads;
}

TensorPtr batch_norm_add_relu(const Tensor& x, const Tensor& skip, const BatchNormParams& p,
                              const BatchNormArgs& args) {
  return batch_norm_forward(x, &skip, p, args, "batchNormAddRelu");
}

BatchNormGrads batch_norm_add_relu_backward(const Tensor& x, const Tensor& skip, const Tensor& dy,
                                            const BatchNormParams& p, const BatchNormArgs& args) {
  const RowsChannels v = batch_norm_view(x, p, args, "batchNormAddReluBackward");
  expect_same_shape(x, skip, "batchNormAddReluBackward", "x", "skip");
  expect_same_shape(x, dy, "batchNormAddReluBackward", "x", "dy");
  const Statistics st = statistics_for(x, v, p, args);
  BatchNormGrads grads;
  grads.dx = Tensor::empty(x.shape(), "batchNormAddReluBackward dx");
  grads.dskip = Tensor::empty(x.shape(), "batchNormAddReluBackward dskip");
  grads.dgamma = Tensor::empty({v.channels});
  grads.dbeta = Tensor::empty({v.channels});
  // The kernels take the ReLU mask from the forward output, so recompute it first.
  Backend& kernels = cpu_backend();
  const rn::BatchNormArgs a = kernel_args(v, p, args, st);
  std::vector<float> scratch = kernel_scratch(kernels.channel_scratch_floats(v.channels));
  std::vector<float> y = kernel_scratch(x.numel());
  kernels.batch_norm_forward(a, x.data(), skip.data(), true, y.data(), scratch.data());
  kernels.batch_norm_backward(a, args.training, x.data(), y.data(), true, dy.data(), grads.dx->data(),
                              grads.dskip->data(), grads.dgamma->data(), grads.dbeta->data(), scratch.data());
  return grads;
}

TensorPtr relu(const Tensor& x) {
  TensorPtr y = Tensor::empty(x.shape(), "relu output");
  reference::relu_forward(x.numel(), x.data(), y->data());
  return y;
}

TensorPtr relu_backward(const Tensor& x, const Tensor& dy) {
  expect_same_shape(x, dy, "reluBackward", "x", "dy");
  TensorPtr dx = Tensor::empty(x.shape(), "reluBackward dx");
  reference::relu_backward(x.numel(), x.data(), dy.data(), dx->data());
  return dx;
}

TensorPtr add(const Tensor& a, const Tensor& b) {
  expect_same_shape(a, b, "add", "a", "b");
  TensorPtr y = Tensor::empty(a.shape(), "add output");
  reference::add_forward(a.numel(), a.data(), b.data(), y->data());
  return y;
}

TensorPtr max_pool(const Tensor& x, const Pool2dArgs& args) {
  const Pool2dGeometry g = pool_geometry(x, args, "maxPool");
  TensorPtr y = Tensor::empty(g.output_shape(), "maxPool output");
  reference::max_pool_forward(g, x.data(), y->data());
  return y;
}

TensorPtr max_pool_backward(const Tensor& x, const Tensor& dy, const Pool2dArgs& args) {
  const Pool2dGeometry g = pool_geometry(x, args, "maxPoolBackward");
  expect_dy(dy, g.output_shape(), "maxPoolBackward");
  TensorPtr dx = Tensor::empty(x.shape(), "maxPoolBackward dx");
  reference::max_pool_backward(g, x.data(), dy.data(), dx->data());
  return dx;
}

TensorPtr avg_pool(const Tensor& x, const Pool2dArgs& args) {
  const Pool2dGeometry g = pool_geometry(x, args, "avgPool");
  TensorPtr y = Tensor::empty(g.output_shape(), "avgPool output");
  reference::avg_pool_forward(g, x.data(), y->data());
  return y;
}

TensorPtr avg_pool_backward(const Tensor& x, const Tensor& dy, const Pool2dArgs& args) {
  const Pool2dGeometry g = pool_geometry(x, args, "avgPoolBackward");
  expect_dy(dy, g.output_shape(), "avgPoolBackward");
  TensorPtr dx = Tensor::empty(x.shape(), "avgPoolBackward dx");
  reference::avg_pool_backward(g, dy.data(), dx->data());
  return dx;
}

TensorPtr global_avg_pool(const Tensor& x) {
  if (x.rank() != 4) fail(ErrorCode::InvalidShape, "globalAvgPool: input must be rank 4 NHWC, got " + s(x));
  TensorPtr y = Tensor::empty({x.dim(0), x.dim(3)}, "globalAvgPool output");
  reference::global_avg_pool_forward(x.dim(0), x.dim(1) * x.dim(2), x.dim(3), x.data(), y->data());
  return y;
}

TensorPtr global_avg_pool_backward(const Tensor& x, const Tensor& dy) {
  if (x.rank() != 4) fail(ErrorCode::InvalidShape, "globalAvgPoolBackward: input must be rank 4 NHWC, got " + s(x));
  expect_dy(dy, {x.dim(0), x.dim(3)}, "globalAvgPoolBackward");
  TensorPtr dx = Tensor::empty(x.shape(), "globalAvgPoolBackward dx");
  reference::global_avg_pool_backward(x.dim(0), x.dim(1) * x.dim(2), x.dim(3), dy.data(), dx->data());
  return dx;
}

TensorPtr dense(const Tensor& x, const Tensor& w, const Tensor* bias) {
  const DenseShape d = dense_shape(x, w, "dense");
  if (bias) expect_vector(*bias, d.m, "dense", "bias", "the weights have " + std::to_string(d.m) + " outputs");
  TensorPtr y = Tensor::empty({d.n, d.m}, "dense output");
  reference::dense_forward(d.n, d.k, d.m, x.data(), w.data(), bias ? bias->data() : nullptr, y->data());
  return y;
}

DenseGrads dense_backward(const Tensor& x, const Tensor& w, const Tensor& dy, bool with_bias) {
  const DenseShape d = dense_shape(x, w, "denseBackward");
  expect_dy(dy, {d.n, d.m}, "denseBackward");
  DenseGrads grads;
  grads.dx = Tensor::empty(x.shape(), "denseBackward dx");
  grads.dw = Tensor::empty(w.shape(), "denseBackward dw");
  if (with_bias) grads.db = Tensor::empty({d.m}, "denseBackward db");
  reference::dense_backward(d.n, d.k, d.m, x.data(), w.data(), dy.data(), grads.dx->data(), grads.dw->data(),
                            with_bias ? grads.db->data() : nullptr);
  return grads;
}

double softmax_cross_entropy(const Tensor& logits, const std::vector<int32_t>& labels, float smoothing) {
  check_labels(logits, labels, smoothing, "softmaxCrossEntropy");
  return reference::softmax_cross_entropy_forward(logits.dim(0), logits.dim(1), logits.data(), labels.data(),
                                                  smoothing);
}

TensorPtr softmax_cross_entropy_backward(const Tensor& logits, const std::vector<int32_t>& labels, float smoothing,
                                         float dloss) {
  check_labels(logits, labels, smoothing, "softmaxCrossEntropyBackward");
  if (!std::isfinite(dloss)) fail(ErrorCode::InvalidArgument, "softmaxCrossEntropyBackward: dloss must be finite");
  TensorPtr dlogits = Tensor::empty(logits.shape(), "softmaxCrossEntropyBackward dlogits");
  reference::softmax_cross_entropy_backward(logits.dim(0), logits.dim(1), logits.data(), labels.data(), smoothing,
                                            dloss, dlogits->data());
  return dlogits;
}

}  // namespace rn::ops
