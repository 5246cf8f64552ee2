#include "padding_kernels.hpp"

#include <algorithm>
#include <cstring>

#include "../core/thread_pool.hpp"

namespace rn::cpu {

void zero_pad_forward(const Shape& xs, const int64_t* pads, const float* x, float* y) {
  const int64_t n = xs[0], h = xs[1], w = xs[2], c = xs[3];
  const int64_t oh = h + pads[0] + pads[1], ow = w + pads[2] + pads[3];
  parallel_for(n * oh, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / oh, i = row % oh - pads[0];
      float* out = y + row * ow * c;
      std::fill(out, out + ow * c, 0.0f);
      if (i < 0 || i >= h) continue;
      std::memcpy(out + pads[2] * c, x + (b * h + i) * w * c, static_cast<size_t>(w * c) * sizeof(float));
    }
  });
}

void zero_pad_backward(const Shape& xs, const int64_t* pads, const float* dy, float* dx) {
  const int64_t n = xs[0], h = xs[1], w = xs[2], c = xs[3];
  const int64_t oh = h + pads[0] + pads[1], ow = w + pads[2] + pads[3];
  parallel_for(n * h, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / h, i = row % h;
      std::memcpy(dx + row * w * c, dy + ((b * oh + i + pads[0]) * ow + pads[2]) * c,
                  static_cast<size_t>(w * c) * sizeof(float));
    }
  });
}

void zero_pad_shortcut_forward(const Shape& xs, const Shape& ys, int64_t sh, int64_t sw, const float* x, float* y) {
  const int64_t h = xs[1], w = xs[2], c = xs[3];
  const int64_t oh = ys[1], ow = ys[2], oc = ys[3];
  const int64_t before = (oc - c) / 2;
  parallel_for(ys[0] * oh, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / oh, i = row % oh;
      for (int64_t j = 0; j < ow; ++j) {
        float* out = y + (row * ow + j) * oc;
        std::fill(out, out + oc, 0.0f);
        std::memcpy(out + before, x + ((b * h + i * sh) * w + j * sw) * c, static_cast<size_t>(c) * sizeof(float));
      }
    }
  });
}

void zero_pad_shortcut_backward(const Shape& xs, const Shape& ys, int64_t sh, int64_t sw, const float* dy, float* dx) {
  const int64_t h = xs[1], w = xs[2], c = xs[3];
  const int64_t oh = ys[1], ow = ys[2], oc = ys[3];
  const int64_t before = (oc - c) / 2;
  parallel_for(xs[0] * h, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / h, i = row % h;
      float* out = dx + row * w * c;
      std::fill(out, out + w * c, 0.0f);
      if (i % sh != 0) continue;
      for (int64_t j = 0; j < w; j += sw) {
        std::memcpy(out + j * c, dy + ((b * oh + i / sh) * ow + j / sw) * oc + before,
                    static_cast<size_t>(c) * sizeof(float));
      }
    }
  });
}

}  // namespace rn::cpu
