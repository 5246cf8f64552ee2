#include "batch_norm.hpp"

#include <cmath>
#include <vector>

namespace rn::reference {

void batch_norm_statistics(int64_t rows, int64_t channels, const float* x, float* mean, float* var) {
  std::vector<double> sum(static_cast<size_t>(channels), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < channels; ++c) sum[static_cast<size_t>(c)] += x[r * channels + c];
  }
  std::vector<double> mu(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) mu[static_cast<size_t>(c)] = sum[static_cast<size_t>(c)] / double(rows);
  // Two-pass variance: exact enough to serve as the oracle.
  std::vector<double> sq(static_cast<size_t>(channels), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < channels; ++c) {
      const double d = x[r * channels + c] - mu[static_cast<size_t>(c)];
      sq[static_cast<size_t>(c)] += d * d;
    }
  }
  for (int64_t c = 0; c < channels; ++c) {
    mean[c] = static_cast<float>(mu[static_cast<size_t>(c)]);
    var[c] = static_cast<float>(sq[static_cast<size_t>(c)] / double(rows));
  }
}

void batch_norm_update_running(int64_t rows, int64_t channels, const float* mean, const float* var, float momentum,
                               float* running_mean, float* running_var) {
  const double bessel = rows > 1 ? double(rows) / double(rows - 1) : 1.0;
  for (int64_t c = 0; c < channels; ++c) {
    running_mean[c] = static_cast<float>((1.0 - momentum) * running_mean[c] + momentum * double(mean[c]));
    running_var[c] = static_cast<float>((1.0 - momentum) * running_var[c] + momentum * double(var[c]) * bessel);
  }
}

void batch_norm_apply(int64_t rows, int64_t channels, const float* x, const float* mean, const float* var,
                      const float* gamma, const float* beta, float eps, float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < channels; ++c) {
      const double invstd = 1.0 / std::sqrt(double(var[c]) + eps);
      y[r * channels + c] = static_cast<float>(gamma[c] * (x[r * channels + c] - double(mean[c])) * invstd + beta[c]);
    }
  }
}

void batch_norm_add_relu_apply(int64_t rows, int64_t channels, const float* x, const float* skip, const float* mean,
                               const float* var, const float* gamma, const float* beta, float eps, float* y) {
  batch_norm_apply(rows, channels, x, mean, var, gamma, beta, eps, y);
  for (int64_t i = 0; i < rows * channels; ++i) {
    const float v = y[i] + skip[i];
    y[i] = v > 0.0f ? v : 0.0f;
  }
}

void batch_norm_backward(bool training, int64_t rows, int64_t channels, const float* x, const float* dy,
                         const float* mean, const float* var, const float* gamma, float eps, float* dx, float* dgamma,
                         float* dbeta) {
  std::vector<double> sum_dy(static_cast<size_t>(channels), 0.0), sum_dy_xhat(static_cast<size_t>(channels), 0.0);
  std::vector<double> invstd(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) invstd[static_cast<size_t>(c)] = 1.0 / std::sqrt(double(var[c]) + eps);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < channels; ++c) {
      const size_t ci = static_cast<size_t>(c);
      const double xhat = (x[r * channels + c] - double(mean[c])) * invstd[ci];
      sum_dy[ci] += dy[r * channels + c];
      sum_dy_xhat[ci] += dy[r * channels + c] * xhat;
    }
  }
  for (int64_t c = 0; c < channels; ++c) {
    dgamma[c] = static_cast<float>(sum_dy_xhat[static_cast<size_t>(c)]);
    dbeta[c] = static_cast<float>(sum_dy[static_cast<size_t>(c)]);
  }
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < channels; ++c) {
      const size_t ci = static_cast<size_t>(c);
      const double scale = gamma[c] * invstd[ci];
      const double g = dy[r * channels + c];
      if (!training) {
        dx[r * channels + c] = static_cast<float>(scale * g);
        continue;
      }
      // The mean and variance depend on x: subtract their share of the gradient.
      const double xhat = (x[r * channels + c] - double(mean[c])) * invstd[ci];
      const double m = double(rows);
      dx[r * channels + c] = static_cast<float>(scale * (g - sum_dy[ci] / m - xhat * sum_dy_xhat[ci] / m));
    }
  }
}

void batch_norm_add_relu_backward(bool training, int64_t rows, int64_t channels, const float* x, const float* skip,
                                  const float* dy, const float* mean, const float* var, const float* gamma,
                                  const float* beta, float eps, float* dx, float* dskip, float* dgamma, float* dbeta) {
  // Recompute the pre-ReLU sum to get the mask; the gradient past the ReLU goes to both
  // the skip input and the batch-norm.
  batch_norm_add_relu_apply(rows, channels, x, skip, mean, var, gamma, beta, eps, dskip);
  for (int64_t i = 0; i < rows * channels; ++i) dskip[i] = dskip[i] > 0.0f ? dy[i] : 0.0f;
  batch_norm_backward(training, rows, channels, x, dskip, mean, var, gamma, eps, dx, dgamma, dbeta);
}

}  // namespace rn::reference
