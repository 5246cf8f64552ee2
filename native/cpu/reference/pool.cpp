#include "pool.hpp"

#include <algorithm>

namespace rn::reference {
namespace {

struct WindowBounds {
  int64_t h0, h1, w0, w1;  // [h0, h1) x [w0, w1), clipped to the image
};

inline WindowBounds window(const Pool2dGeometry& g, int64_t oh, int64_t ow) {
  const int64_t h0 = oh * g.stride_h - g.pad_top, w0 = ow * g.stride_w - g.pad_left;
  return {std::max<int64_t>(h0, 0), std::min(h0 + g.kh, g.h), std::max<int64_t>(w0, 0), std::min(w0 + g.kw, g.w)};
}

}  // namespace

void max_pool_forward(const Pool2dGeometry& g, const float* x, float* y) {
  for (int64_t b = 0; b < g.n; ++b) {
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        const WindowBounds wb = window(g, oh, ow);
        float* out = y + ((b * g.out_h + oh) * g.out_w + ow) * g.c;
        for (int64_t c = 0; c < g.c; ++c) {
          float best = x[((b * g.h + wb.h0) * g.w + wb.w0) * g.c + c];
          for (int64_t ih = wb.h0; ih < wb.h1; ++ih) {
            for (int64_t iw = wb.w0; iw < wb.w1; ++iw) best = std::max(best, x[((b * g.h + ih) * g.w + iw) * g.c + c]);
          }
          out[c] = best;
        }
      }
    }
  }
}

void max_pool_backward(const Pool2dGeometry& g, const float* x, const float* dy, float* dx) {
  std::fill(dx, dx + g.n * g.h * g.w * g.c, 0.0f);
  for (int64_t b = 0; b < g.n; ++b) {
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        const WindowBounds wb = window(g, oh, ow);
        const float* d = dy + ((b * g.out_h + oh) * g.out_w + ow) * g.c;
        for (int64_t c = 0; c < g.c; ++c) {
          int64_t best_at = ((b * g.h + wb.h0) * g.w + wb.w0) * g.c + c;
          for (int64_t ih = wb.h0; ih < wb.h1; ++ih) {
            for (int64_t iw = wb.w0; iw < wb.w1; ++iw) {
              const int64_t at = ((b * g.h + ih) * g.w + iw) * g.c + c;
              if (x[at] > x[best_at]) best_at = at;
            }
          }
          dx[best_at] += d[c];
        }
      }
    }
  }
}

void avg_pool_forward(const Pool2dGeometry& g, const float* x, float* y) {
  for (int64_t b = 0; b < g.n; ++b) {
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        const WindowBounds wb = window(g, oh, ow);
        const double count = double((wb.h1 - wb.h0) * (wb.w1 - wb.w0));
        float* out = y + ((b * g.out_h + oh) * g.out_w + ow) * g.c;
        for (int64_t c = 0; c < g.c; ++c) {
          double s = 0.0;
          for (int64_t ih = wb.h0; ih < wb.h1; ++ih) {
            for (int64_t iw = wb.w0; iw < wb.w1; ++iw) s += x[((b * g.h + ih) * g.w + iw) * g.c + c];
          }
          out[c] = static_cast<float>(s / count);
        }
      }
    }
  }
}

void avg_pool_backward(const Pool2dGeometry& g, const float* dy, float* dx) {
  std::fill(dx, dx + g.n * g.h * g.w * g.c, 0.0f);
  for (int64_t b = 0; b < g.n; ++b) {
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        const WindowBounds wb = window(g, oh, ow);
        const float scale = 1.0f / static_cast<float>((wb.h1 - wb.h0) * (wb.w1 - wb.w0));
        const float* d = dy + ((b * g.out_h + oh) * g.out_w + ow) * g.c;
        for (int64_t ih = wb.h0; ih < wb.h1; ++ih) {
          for (int64_t iw = wb.w0; iw < wb.w1; ++iw) {
            float* gin = dx + ((b * g.h + ih) * g.w + iw) * g.c;
            for (int64_t c = 0; c < g.c; ++c) gin[c] += d[c] * scale;
          }
        }
      }
    }
  }
}

void global_avg_pool_forward(int64_t n, int64_t hw, int64_t c, const float* x, float* y) {
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t ch = 0; ch < c; ++ch) {
      double s = 0.0;
      for (int64_t p = 0; p < hw; ++p) s += x[(b * hw + p) * c + ch];
      y[b * c + ch] = static_cast<float>(s / double(hw));
    }
  }
}

void global_avg_pool_backward(int64_t n, int64_t hw, int64_t c, const float* dy, float* dx) {
  const float scale = 1.0f / static_cast<float>(hw);
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t p = 0; p < hw; ++p) {
      for (int64_t ch = 0; ch < c; ++ch) dx[(b * hw + p) * c + ch] = dy[b * c + ch] * scale;
    }
  }
}

}  // namespace rn::reference
