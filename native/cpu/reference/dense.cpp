#include "dense.hpp"

#include "../../core/thread_pool.hpp"

namespace rn::reference {

void dense_forward(int64_t n, int64_t k, int64_t m, const float* x, const float* w, const float* b, float* y) {
  parallel_for(n, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      float* out = y + i * m;
      for (int64_t j = 0; j < m; ++j) out[j] = b ? b[j] : 0.0f;
      for (int64_t p = 0; p < k; ++p) {
        const float xv = x[i * k + p];
        const float* wrow = w + p * m;
        for (int64_t j = 0; j < m; ++j) out[j] += xv * wrow[j];
      }
    }
  });
}

void dense_backward(int64_t n, int64_t k, int64_t m, const float* x, const float* w, const float* dy, float* dx,
                    float* dw, float* db) {
  if (dx != nullptr)
    parallel_for(n, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        for (int64_t p = 0; p < k; ++p) {
          const float* wrow = w + p * m;
          double acc = 0.0;
          for (int64_t j = 0; j < m; ++j) acc += double(wrow[j]) * dy[i * m + j];
          dx[i * k + p] = static_cast<float>(acc);
        }
      }
    });
  parallel_for(k, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      for (int64_t j = 0; j < m; ++j) {
        double acc = 0.0;
        for (int64_t i = 0; i < n; ++i) acc += double(x[i * k + p]) * dy[i * m + j];
        dw[p * m + j] = static_cast<float>(acc);
      }
    }
  });
  if (db) {
    for (int64_t j = 0; j < m; ++j) {
      double acc = 0.0;
      for (int64_t i = 0; i < n; ++i) acc += dy[i * m + j];
      db[j] = static_cast<float>(acc);
    }
  }
}

}  // namespace rn::reference
