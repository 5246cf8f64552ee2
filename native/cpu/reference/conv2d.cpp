#include "conv2d.hpp"

#include <algorithm>
#include <vector>

#include "../../core/thread_pool.hpp"

namespace rn::reference {
namespace {

// Input row/column for an output position and a filter tap; may fall in the padding.
inline int64_t input_coord(int64_t out, int64_t stride, int64_t pad_before, int64_t tap, int64_t dilation) {
  return out * stride - pad_before + tap * dilation;
}

}  // namespace

void conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias, float* y) {
  const int64_t ipg = g.in_per_group(), opg = g.out_per_group();
  // One task per output row (image, oh): rows write disjoint parts of y.
  parallel_for(g.n * g.out_h, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / g.out_h, oh = row % g.out_h;
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        float* out = y + ((b * g.out_h + oh) * g.out_w + ow) * g.c_out;
        for (int64_t oc = 0; oc < g.c_out; ++oc) out[oc] = bias ? bias[oc] : 0.0f;
        for (int64_t ky = 0; ky < g.kh; ++ky) {
          const int64_t ih = input_coord(oh, g.stride_h, g.pad_top, ky, g.dilation_h);
          if (ih < 0 || ih >= g.h) continue;
          for (int64_t kx = 0; kx < g.kw; ++kx) {
            const int64_t iw = input_coord(ow, g.stride_w, g.pad_left, kx, g.dilation_w);
            if (iw < 0 || iw >= g.w) continue;
            const float* in = x + ((b * g.h + ih) * g.w + iw) * g.c_in;
            const float* tap = w + (ky * g.kw + kx) * ipg * g.c_out;
            for (int64_t grp = 0; grp < g.groups; ++grp) {
              for (int64_t ic = 0; ic < ipg; ++ic) {
                const float xv = in[grp * ipg + ic];
                const float* wrow = tap + ic * g.c_out + grp * opg;
                float* o = out + grp * opg;
                for (int64_t oc = 0; oc < opg; ++oc) o[oc] += xv * wrow[oc];
              }
            }
          }
        }
      }
    }
  });
}

void conv2d_backward_input(const Conv2dGeometry& g, const float* dy, const float* w, float* dx) {
  const int64_t ipg = g.in_per_group(), opg = g.out_per_group();
  const int64_t image = g.h * g.w * g.c_in;
  // One task per image: each scatters into its own slice of dx.
  parallel_for(g.n, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      float* dxi = dx + b * image;
      std::fill(dxi, dxi + image, 0.0f);
      for (int64_t oh = 0; oh < g.out_h; ++oh) {
        for (int64_t ow = 0; ow < g.out_w; ++ow) {
          const float* d = dy + ((b * g.out_h + oh) * g.out_w + ow) * g.c_out;
          for (int64_t ky = 0; ky < g.kh; ++ky) {
            const int64_t ih = input_coord(oh, g.stride_h, g.pad_top, ky, g.dilation_h);
            if (ih < 0 || ih >= g.h) continue;
            for (int64_t kx = 0; kx < g.kw; ++kx) {
              const int64_t iw = input_coord(ow, g.stride_w, g.pad_left, kx, g.dilation_w);
              if (iw < 0 || iw >= g.w) continue;
              float* gin = dxi + (ih * g.w + iw) * g.c_in;
              const float* tap = w + (ky * g.kw + kx) * ipg * g.c_out;
              for (int64_t grp = 0; grp < g.groups; ++grp) {
                for (int64_t ic = 0; ic < ipg; ++ic) {
                  const float* wrow = tap + ic * g.c_out + grp * opg;
                  const float* dg = d + grp * opg;
                  float acc = 0.0f;
                  for (int64_t oc = 0; oc < opg; ++oc) acc += wrow[oc] * dg[oc];
                  gin[grp * ipg + ic] += acc;
                }
              }
            }
          }
        }
      }
    }
  });
}

void conv2d_backward_weight(const Conv2dGeometry& g, const float* x, const float* dy, float* dw) {
  const int64_t ipg = g.in_per_group(), opg = g.out_per_group();
  const int64_t wsize = g.kh * g.kw * ipg * g.c_out;
  // Per-thread partial sums over a share of the images, in double, reduced at the end.
  const int64_t parts = std::min<int64_t>(num_threads(), g.n);
  std::vector<std::vector<double>> partial(static_cast<size_t>(parts));
  parallel_for(parts, [&](int64_t pbegin, int64_t pend) {
    for (int64_t p = pbegin; p < pend; ++p) {
      std::vector<double>& acc = partial[static_cast<size_t>(p)];
      acc.assign(static_cast<size_t>(wsize), 0.0);
      for (int64_t b = g.n * p / parts; b < g.n * (p + 1) / parts; ++b) {
        for (int64_t oh = 0; oh < g.out_h; ++oh) {
          for (int64_t ow = 0; ow < g.out_w; ++ow) {
            const float* d = dy + ((b * g.out_h + oh) * g.out_w + ow) * g.c_out;
            for (int64_t ky = 0; ky < g.kh; ++ky) {
              const int64_t ih = input_coord(oh, g.stride_h, g.pad_top, ky, g.dilation_h);
              if (ih < 0 || ih >= g.h) continue;
              for (int64_t kx = 0; kx < g.kw; ++kx) {
                const int64_t iw = input_coord(ow, g.stride_w, g.pad_left, kx, g.dilation_w);
                if (iw < 0 || iw >= g.w) continue;
                const float* in = x + ((b * g.h + ih) * g.w + iw) * g.c_in;
                double* tap = acc.data() + (ky * g.kw + kx) * ipg * g.c_out;
                for (int64_t grp = 0; grp < g.groups; ++grp) {
                  for (int64_t ic = 0; ic < ipg; ++ic) {
                    const double xv = in[grp * ipg + ic];
                    double* wrow = tap + ic * g.c_out + grp * opg;
                    const float* dg = d + grp * opg;
                    for (int64_t oc = 0; oc < opg; ++oc) wrow[oc] += xv * dg[oc];
                  }
                }
              }
            }
          }
        }
      }
    }
  });
  for (int64_t i = 0; i < wsize; ++i) {
    double s = 0.0;
    for (const auto& acc : partial) s += acc[static_cast<size_t>(i)];
    dw[i] = static_cast<float>(s);
  }
}

void conv2d_backward_bias(const Conv2dGeometry& g, const float* dy, float* db) {
  std::vector<double> acc(static_cast<size_t>(g.c_out), 0.0);
  const int64_t pixels = g.n * g.out_h * g.out_w;
  for (int64_t p = 0; p < pixels; ++p) {
    const float* d = dy + p * g.c_out;
    for (int64_t oc = 0; oc < g.c_out; ++oc) acc[static_cast<size_t>(oc)] += d[oc];
  }
  for (int64_t oc = 0; oc < g.c_out; ++oc) db[oc] = static_cast<float>(acc[static_cast<size_t>(oc)]);
}

}  // namespace rn::reference
