#include "squeeze_excite_kernels.hpp"

#include <algorithm>
#include <cmath>

#include "../core/thread_pool.hpp"
#include "elementwise_kernels.hpp"

namespace rn::cpu {

void squeeze_excite_forward(const SqueezeExciteArgs& a, const float* x, float* y) {
  const int64_t n = a.n, hw = a.hw, c = a.c;
  parallel_for(n, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      float* pooled = a.pooled + b * c;
      std::fill(pooled, pooled + c, 0.0f);
      for (int64_t p = 0; p < hw; ++p) {
        const float* px = x + (b * hw + p) * c;
        for (int64_t ch = 0; ch < c; ++ch) pooled[ch] += px[ch];
      }
      for (int64_t ch = 0; ch < c; ++ch) pooled[ch] /= static_cast<float>(hw);
    }
  });
  dense_forward(n, c, a.hidden, a.pooled, a.w1, a.b1, a.hidden_act);
  for (int64_t i = 0; i < n * a.hidden; ++i) a.hidden_act[i] = std::max(a.hidden_act[i], 0.0f);
  dense_forward(n, a.hidden, c, a.hidden_act, a.w2, a.b2, a.gate);
  for (int64_t i = 0; i < n * c; ++i) a.gate[i] = 1.0f / (1.0f + std::exp(-a.gate[i]));
  parallel_for(n * hw, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const float* g = a.gate + (p / hw) * c;
      for (int64_t ch = 0; ch < c; ++ch) y[p * c + ch] = x[p * c + ch] * g[ch];
    }
  });
}

void squeeze_excite_backward(const SqueezeExciteArgs& a, const float* x, const float* dy, float* dx, float* dw1,
                             float* db1, float* dw2, float* db2, float* scratch) {
  const int64_t n = a.n, hw = a.hw, c = a.c, hidden = a.hidden;
  float* dgate = scratch;            // [n, c]: d(loss)/d(gate) then through the sigmoid
  float* dpooled = dgate + n * c;    // [n, c]
  float* dhidden = dpooled + n * c;  // [n, hidden]
  parallel_for(n, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      float* dg = dgate + b * c;
      std::fill(dg, dg + c, 0.0f);
      for (int64_t p = 0; p < hw; ++p) {
        const float* px = x + (b * hw + p) * c;
        const float* pd = dy + (b * hw + p) * c;
        for (int64_t ch = 0; ch < c; ++ch) dg[ch] += pd[ch] * px[ch];
      }
      const float* g = a.gate + b * c;
      for (int64_t ch = 0; ch < c; ++ch) dg[ch] *= g[ch] * (1.0f - g[ch]);
    }
  });
  dense_backward(n, hidden, c, a.hidden_act, a.w2, dgate, dhidden, dw2, db2);
  for (int64_t i = 0; i < n * hidden; ++i) {
    if (a.hidden_act[i] <= 0.0f) dhidden[i] = 0.0f;
  }
  dense_backward(n, c, hidden, a.pooled, a.w1, dhidden, dpooled, dw1, db1);
  // dx = dy · gate + d(pooled) / hw, the pooled path spread evenly over the image.
  parallel_for(n * hw, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const int64_t b = p / hw;
      const float* g = a.gate + b * c;
      const float* dp = dpooled + b * c;
      for (int64_t ch = 0; ch < c; ++ch) {
        dx[p * c + ch] = dy[p * c + ch] * g[ch] + dp[ch] / static_cast<float>(hw);
      }
    }
  });
}

}  // namespace rn::cpu
