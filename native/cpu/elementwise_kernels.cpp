#include "elementwise_kernels.hpp"

#include <algorithm>
#include <cstring>

#include "../core/thread_pool.hpp"
#include "simd_dispatch.hpp"

namespace rn::cpu {
namespace {

// Chunks of at least 16K elements: below that, waking threads costs more than it saves.
template <typename F>
void for_elements(int64_t count, F&& fn) {
  constexpr int64_t kGrain = 1 << 14;
  const int64_t chunks = (count + kGrain - 1) / kGrain;
  parallel_for(chunks, [&](int64_t begin, int64_t end) {
    const int64_t b = begin * kGrain, e = std::min(count, end * kGrain);
    fn(b, e);
  });
}

}  // namespace

void relu_forward(int64_t count, const float* x, float* y) {
  for_elements(count, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = std::max(x[i], 0.0f);
  });
}

void relu_backward_from_output(int64_t count, const float* y, const float* dy, float* dx) {
  for_elements(count, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
  });
}

void add_forward(int64_t count, const float* a, const float* bsrc, bool relu, float* y) {
  for_elements(count, [&](int64_t b, int64_t e) {
    if (relu) {
      for (int64_t i = b; i < e; ++i) y[i] = std::max(a[i] + bsrc[i], 0.0f);
    } else {
      for (int64_t i = b; i < e; ++i) y[i] = a[i] + bsrc[i];
    }
  });
}

void accumulate(int64_t count, const float* x, float* y) {
  for_elements(count, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] += x[i];
  });
}

void copy(int64_t count, const float* x, float* y) {
  if (x == y) return;
  for_elements(count,
               [&](int64_t b, int64_t e) { std::memcpy(y + b, x + b, static_cast<size_t>(e - b) * sizeof(float)); });
}

namespace {

// Rows × blocks of output units, so that a batch of one still splits over the threads (the
// weights, read once per row, dominate there). Each output sums over k in the same order
// whatever the split.
RN_SIMD_CLONES void dense_block(int64_t k, int64_t m, const float* x, const float* w, const float* bias, float* y,
                                int64_t j0, int64_t j1) {
  float* __restrict out = y;
  for (int64_t j = j0; j < j1; ++j) out[j] = bias ? bias[j] : 0.0f;
  for (int64_t p = 0; p < k; ++p) {
    const float xv = x[p];
    const float* __restrict wrow = w + p * m;
    for (int64_t j = j0; j < j1; ++j) out[j] += xv * wrow[j];
  }
}

}  // namespace

void dense_forward(int64_t n, int64_t k, int64_t m, const float* x, const float* w, const float* bias, float* y) {
  constexpr int64_t kBlock = 256;  // output units per task: 1 KB of each weight row
  const int64_t blocks = (m + kBlock - 1) / kBlock;
  parallel_for(n * blocks, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t i = t / blocks, j0 = t % blocks * kBlock;
      dense_block(k, m, x + i * k, w, bias, y + i * m, j0, std::min(m, j0 + kBlock));
    }
  });
}

void dense_backward(int64_t n, int64_t k, int64_t m, const float* x, const float* w, const float* dy, float* dx,
                    float* dw, float* db) {
  if (dx != nullptr) {
    parallel_for(n, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        for (int64_t p = 0; p < k; ++p) {
          const float* wrow = w + p * m;
          const float* d = dy + i * m;
          float acc = 0.0f;
          for (int64_t j = 0; j < m; ++j) acc += wrow[j] * d[j];
          dx[i * k + p] = acc;
        }
      }
    });
  }
  // dw row p = sum_i x[i, p] · dy[i, :], threads split the rows of dw.
  parallel_for(k, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      float* out = dw + p * m;
      std::fill(out, out + m, 0.0f);
      for (int64_t i = 0; i < n; ++i) {
        const float xv = x[i * k + p];
        const float* __restrict d = dy + i * m;
        for (int64_t j = 0; j < m; ++j) out[j] += xv * d[j];
      }
    }
  });
  if (db != nullptr) {
    std::fill(db, db + m, 0.0f);
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < m; ++j) db[j] += dy[i * m + j];
    }
  }
}

}  // namespace rn::cpu
