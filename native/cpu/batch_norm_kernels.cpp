#include "batch_norm_kernels.hpp"

#include <algorithm>
#include <cmath>

#include "../core/thread_pool.hpp"
#include "simd_dispatch.hpp"

namespace rn::cpu {
namespace {

// Per-channel sums are taken in float over blocks of this many rows, then added to double:
// vectorisable, and no float sum ever has more than kBlock terms.
constexpr int64_t kBlock = 32;

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

// sum[c] += Σ x, sq[c] += Σ x² over rows [begin, end); fs/fq are float block buffers.
RN_SIMD_CLONES void sums_rows(int64_t c, const float* __restrict x, int64_t begin, int64_t end, double* sum, double* sq,
                              float* __restrict fs, float* __restrict fq) {
  for (int64_t r0 = begin; r0 < end; r0 += kBlock) {
    std::fill(fs, fs + c, 0.0f);
    std::fill(fq, fq + c, 0.0f);
    for (int64_t r = r0; r < std::min(end, r0 + kBlock); ++r) {
      const float* row = x + r * c;
      for (int64_t ch = 0; ch < c; ++ch) {
        fs[ch] += row[ch];
        fq[ch] += row[ch] * row[ch];
      }
    }
    for (int64_t ch = 0; ch < c; ++ch) {
      sum[ch] += fs[ch];
      sq[ch] += fq[ch];
    }
  }
}

namespace {

RN_SIMD_CLONES void forward_rows(int64_t c, const float* x, const float* skip, bool relu, const float* scale,
                                 const float* shift, float* y, int64_t begin, int64_t end) {
  for (int64_t r = begin; r < end; ++r) {
    const float* in = x + r * c;
    float* out = y + r * c;
    if (skip) {
      const float* sk = skip + r * c;
      for (int64_t ch = 0; ch < c; ++ch) {
        const float v = in[ch] * scale[ch] + shift[ch] + sk[ch];
        out[ch] = relu ? std::max(v, 0.0f) : v;
      }
    } else {
      for (int64_t ch = 0; ch < c; ++ch) {
        const float v = in[ch] * scale[ch] + shift[ch];
        out[ch] = relu ? std::max(v, 0.0f) : v;
      }
    }
  }
}

// Σ dz and Σ dz·xhat per channel, dz being dy masked by the ReLU (y > 0) when relu.
RN_SIMD_CLONES void backward_sums_rows(int64_t c, const float* __restrict x, const float* __restrict y,
                                       const float* __restrict dy, bool relu, const float* __restrict mean,
                                       const float* __restrict invstd, int64_t begin, int64_t end, double* sdz,
                                       double* sdzx, float* __restrict fs, float* __restrict fx) {
  for (int64_t r0 = begin; r0 < end; r0 += kBlock) {
    std::fill(fs, fs + c, 0.0f);
    std::fill(fx, fx + c, 0.0f);
    for (int64_t r = r0; r < std::min(end, r0 + kBlock); ++r) {
      const float* xr = x + r * c;
      const float* dyr = dy + r * c;
      const float* yr = y + r * c;
      for (int64_t ch = 0; ch < c; ++ch) {
        const float dz = (!relu || yr[ch] > 0.0f) ? dyr[ch] : 0.0f;
        const float xhat = (xr[ch] - mean[ch]) * invstd[ch];
        fs[ch] += dz;
        fx[ch] += dz * xhat;
      }
    }
    for (int64_t ch = 0; ch < c; ++ch) {
      sdz[ch] += fs[ch];
      sdzx[ch] += fx[ch];
    }
  }
}

RN_SIMD_CLONES void backward_rows(int64_t c, const float* x, const float* y, const float* dy, bool relu,
                                  const float* mean, const float* invstd, const float* scale, const float* k1,
                                  const float* k2, float* dx, float* dskip, int64_t begin, int64_t end) {
  for (int64_t r = begin; r < end; ++r) {
    const float* xr = x + r * c;
    const float* dyr = dy + r * c;
    const float* yr = y + r * c;
    float* dxr = dx + r * c;
    float* dsr = dskip ? dskip + r * c : nullptr;
    for (int64_t ch = 0; ch < c; ++ch) {
      const float dz = (!relu || yr[ch] > 0.0f) ? dyr[ch] : 0.0f;
      const float xhat = (xr[ch] - mean[ch]) * invstd[ch];
      if (dsr) dsr[ch] = dz;
      dxr[ch] = scale[ch] * dz - k1[ch] - xhat * k2[ch];
    }
  }
}

}  // namespace

int64_t channel_scratch_floats(int64_t channels) {
  // Per thread: two double rows and two float block rows; then four float rows.
  return 6 * channels * num_threads() + 4 * channels;
}

void finish_batch_statistics(int parts, int64_t channels, const double* partial, double count, float* mean,
                             float* var) {
  const int64_t c = channels;
  for (int64_t ch = 0; ch < c; ++ch) {
    double s = 0.0, s2 = 0.0;
    for (int p = 0; p < parts; ++p) {
      s += partial[p * 2 * c + ch];
      s2 += partial[p * 2 * c + c + ch];
    }
    const double mu = s / count;
    mean[ch] = static_cast<float>(mu);
    var[ch] = static_cast<float>(std::max(0.0, s2 / count - mu * mu));
  }
}

void batch_norm_statistics(int64_t rows, int64_t channels, const float* x, float* mean, float* var, float* scratch) {
  const int parts = parts_for(rows);
  const int64_t c = channels;
  auto* partial = reinterpret_cast<double*>(scratch);
  float* blocks = scratch + 4 * c * num_threads();
  parallel_for(parts, [&](int64_t pbegin, int64_t pend) {
    for (int64_t p = pbegin; p < pend; ++p) {
      double* sum = partial + p * 2 * c;
      std::fill(sum, sum + 2 * c, 0.0);
      sums_rows(c, x, rows * p / parts, rows * (p + 1) / parts, sum, sum + c, blocks + p * 2 * c,
                blocks + p * 2 * c + c);
    }
  });
  finish_batch_statistics(parts, c, partial, double(rows), mean, var);
}

void batch_norm_forward(const BatchNormArgs& a, const float* x, const float* skip, bool relu, float* y,
                        float* scratch) {
  const int64_t c = a.channels;
  float* scale = scratch;
  float* shift = scratch + c;
  affine(a, scale, shift);
  parallel_for(a.rows,
               [&](int64_t begin, int64_t end) { forward_rows(c, x, skip, relu, scale, shift, y, begin, end); });
}

void batch_norm_backward(const BatchNormArgs& a, bool training, const float* x, const float* y, bool relu,
                         const float* dy, float* dx, float* dskip, float* dgamma, float* dbeta, float* scratch) {
  const int64_t c = a.channels, rows = a.rows;
  const int parts = parts_for(rows);
  auto* partial = reinterpret_cast<double*>(scratch);
  float* blocks = scratch + 4 * c * num_threads();
  float* invstd = scratch + 6 * c * num_threads();
  float* k1 = invstd + c;  // dx = scale · dz − k1 − xhat · k2 (k1 = k2 = 0 in inference mode)
  float* k2 = k1 + c;
  float* scale = k2 + c;
  for (int64_t ch = 0; ch < c; ++ch) {
    invstd[ch] = static_cast<float>(1.0 / std::sqrt(double(a.var[ch]) + a.epsilon));
  }
  parallel_for(parts, [&](int64_t pbegin, int64_t pend) {
    for (int64_t p = pbegin; p < pend; ++p) {
      double* sdz = partial + p * 2 * c;
      std::fill(sdz, sdz + 2 * c, 0.0);
      backward_sums_rows(c, x, y, dy, relu, a.mean, invstd, rows * p / parts, rows * (p + 1) / parts, sdz, sdz + c,
                         blocks + p * 2 * c, blocks + p * 2 * c + c);
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
  parallel_for(rows, [&](int64_t begin, int64_t end) {
    backward_rows(c, x, y, dy, relu, a.mean, invstd, scale, k1, k2, dx, dskip, begin, end);
  });
}

}  // namespace rn::cpu
