#include "batch_norm_kernels.hpp"

#include <algorithm>
#include <cmath>

#include "../core/thread_pool.hpp"

namespace rn::cpu {
namespace {

int parts_for(int64_t rows) { return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(num_threads(), rows))); }

// scale = gamma / sqrt(var + eps), shift = beta - mean · scale, into two float rows.
void affine(const BatchNormArgs& a, float* scale, float* shift) {
  for (int64_t c = 0; c < a.channels; ++c) {
    const double s = double(a.gamma[c]) / std::sqrt(double(a.var[c]) + a.epsilon);
    scale[c] = static_cast<float>(s);
    shift[c] = static_cast<float>(double(a.beta[c]) - double(a.mean[c]) * s);
  }
}

}  // namespace

int64_t channel_scratch_floats(int64_t channels) {
  // Two double rows per thread, plus four float rows.
  return 4 * channels * num_threads() + 4 * channels;
}

void batch_norm_statistics(int64_t rows, int64_t channels, const float* x, float* mean, float* var, float* scratch) {
  const int parts = parts_for(rows);
  auto* partial = reinterpret_cast<double*>(scratch);
  const int64_t c = channels;
  parallel_for(parts, [&](int64_t pbegin, int64_t pend) {
    for (int64_t p = pbegin; p < pend; ++p) {
      double* sum = partial + p * 2 * c;
      double* sq = sum + c;
      std::fill(sum, sum + 2 * c, 0.0);
      for (int64_t r = rows * p / parts; r < rows * (p + 1) / parts; ++r) {
        const float* row = x + r * c;
        for (int64_t ch = 0; ch < c; ++ch) {
          const double v = row[ch];
          sum[ch] += v;
          sq[ch] += v * v;
        }
      }
    }
  });
  for (int64_t ch = 0; ch < c; ++ch) {
    double s = 0.0, s2 = 0.0;
    for (int p = 0; p < parts; ++p) {
      s += partial[p * 2 * c + ch];
      s2 += partial[p * 2 * c + c + ch];
    }
    const double mu = s / double(rows);
    mean[ch] = static_cast<float>(mu);
    var[ch] = static_cast<float>(std::max(0.0, s2 / double(rows) - mu * mu));
  }
}

void batch_norm_forward(const BatchNormArgs& a, const float* x, const float* skip, bool relu, float* y,
                        float* scratch) {
  const int64_t c = a.channels;
  float* scale = scratch;
  float* shift = scratch + c;
  affine(a, scale, shift);
  parallel_for(a.rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* in = x + r * c;
      const float* sk = skip ? skip + r * c : nullptr;
      float* out = y + r * c;
      for (int64_t ch = 0; ch < c; ++ch) {
        float v = in[ch] * scale[ch] + shift[ch];
        if (sk) v += sk[ch];
        out[ch] = relu ? std::max(v, 0.0f) : v;
      }
    }
  });
}

void batch_norm_backward(const BatchNormArgs& a, bool training, const float* x, const float* y, bool relu,
                         const float* dy, float* dx, float* dskip, float* dgamma, float* dbeta, float* scratch) {
  const int64_t c = a.channels, rows = a.rows;
  const int parts = parts_for(rows);
  auto* partial = reinterpret_cast<double*>(scratch);
  float* invstd = scratch + 4 * c * num_threads();
  float* k1 = invstd + c;  // d(x) = scale · dz − k1 − xhat · k2 (training); folded per channel
  float* k2 = k1 + c;
  float* scale = k2 + c;
  for (int64_t ch = 0; ch < c; ++ch) {
    invstd[ch] = static_cast<float>(1.0 / std::sqrt(double(a.var[ch]) + a.epsilon));
  }
  // Pass 1: per-channel sums of the gradient past the ReLU and of its product with xhat.
  parallel_for(parts, [&](int64_t pbegin, int64_t pend) {
    for (int64_t p = pbegin; p < pend; ++p) {
      double* sdz = partial + p * 2 * c;
      double* sdzx = sdz + c;
      std::fill(sdz, sdz + 2 * c, 0.0);
      for (int64_t r = rows * p / parts; r < rows * (p + 1) / parts; ++r) {
        const float* xr = x + r * c;
        const float* dyr = dy + r * c;
        const float* yr = y + r * c;
        for (int64_t ch = 0; ch < c; ++ch) {
          const float dz = (!relu || yr[ch] > 0.0f) ? dyr[ch] : 0.0f;
          const double xhat = (double(xr[ch]) - a.mean[ch]) * invstd[ch];
          sdz[ch] += dz;
          sdzx[ch] += dz * xhat;
        }
      }
    }
  });
  for (int64_t ch = 0; ch < c; ++ch) {
    double s = 0.0, sx = 0.0;
    for (int p = 0; p < parts; ++p) {
      s += partial[p * 2 * c + ch];
      sx += partial[p * 2 * c + c + ch];
    }
    dgamma[ch] = static_cast<float>(sx);
    dbeta[ch] = static_cast<float>(s);
    const double sc = double(a.gamma[ch]) * invstd[ch];
    scale[ch] = static_cast<float>(sc);
    k1[ch] = training ? static_cast<float>(sc * s / double(rows)) : 0.0f;
    k2[ch] = training ? static_cast<float>(sc * sx / double(rows)) : 0.0f;
  }
  // Pass 2: input gradients (and the skip's, which is the gradient past the ReLU).
  parallel_for(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = x + r * c;
      const float* dyr = dy + r * c;
      const float* yr = y + r * c;
      float* dxr = dx + r * c;
      float* dsr = dskip ? dskip + r * c : nullptr;
      for (int64_t ch = 0; ch < c; ++ch) {
        const float dz = (!relu || yr[ch] > 0.0f) ? dyr[ch] : 0.0f;
        const float xhat = (xr[ch] - a.mean[ch]) * invstd[ch];
        if (dsr) dsr[ch] = dz;
        dxr[ch] = scale[ch] * dz - k1[ch] - xhat * k2[ch];
      }
    }
  });
}

}  // namespace rn::cpu
