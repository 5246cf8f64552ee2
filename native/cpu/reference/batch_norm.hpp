// Reference batch normalisation over channels-last data viewed as [rows, channels]
// (rows = n*h*w for NHWC, n for [n, c]), forward and backward side by side, plus the
// fused relu(bn(x) + skip) that ends a residual block. Statistics accumulate in double.
#pragma once

#include <cstdint>

namespace rn::reference {

// Per-channel batch mean and biased variance.
void batch_norm_statistics(int64_t rows, int64_t channels, const float* x, float* mean, float* var);

// running = (1 - momentum) * running + momentum * batch, with the unbiased batch
// variance (rows / (rows - 1)) as PyTorch does.
void batch_norm_update_running(int64_t rows, int64_t channels, const float* mean, const float* var, float momentum,
                               float* running_mean, float* running_var);

// y = gamma * (x - mean) / sqrt(var + eps) + beta with the given statistics.
void batch_norm_apply(int64_t rows, int64_t channels, const float* x, const float* mean, const float* var,
                      const float* gamma, const float* beta, float eps, float* y);

// y = max(0, gamma * (x - mean) / sqrt(var + eps) + beta + skip).
void batch_norm_add_relu_apply(int64_t rows, int64_t channels, const float* x, const float* skip, const float* mean,
                               const float* var, const float* gamma, const float* beta, float eps, float* y);

// Gradients of batch_norm_apply. training=true: mean/var are the batch statistics of x
// and depend on it; training=false: they are constants (running statistics).
void batch_norm_backward(bool training, int64_t rows, int64_t channels, const float* x, const float* dy,
                         const float* mean, const float* var, const float* gamma, float eps, float* dx, float* dgamma,
                         float* dbeta);

// Gradients of batch_norm_add_relu_apply; dskip doubles as the scratch for the
// ReLU-masked gradient.
void batch_norm_add_relu_backward(bool training, int64_t rows, int64_t channels, const float* x, const float* skip,
                                  const float* dy, const float* mean, const float* var, const float* gamma,
                                  const float* beta, float eps, float* dx, float* dskip, float* dgamma, float* dbeta);

}  // namespace rn::reference
