#include "conv2d_kernels.hpp"

#include <algorithm>
#include <cstring>

#include "../core/thread_pool.hpp"
#include "batch_norm_kernels.hpp"
#include "conv2d_gemm.hpp"
#include "conv2d_winograd.hpp"
#include "simd_dispatch.hpp"

namespace rn::cpu {
namespace {

inline int64_t input_coord(int64_t out, int64_t stride, int64_t pad_before, int64_t tap, int64_t dilation) {
  return out * stride - pad_before + tap * dilation;
}

// Output rows [row_begin, row_end) of the flattened (image, oh) range.
RN_SIMD_CLONES void conv_rows(const Conv2dGeometry& g, const float* x, const float* w, const float* bias, float* y,
                              int64_t row_begin, int64_t row_end) {
  const int64_t ipg = g.in_per_group(), opg = g.out_per_group();
  for (int64_t row = row_begin; row < row_end; ++row) {
    const int64_t b = row / g.out_h, oh = row % g.out_h;
    for (int64_t ow = 0; ow < g.out_w; ++ow) {
      float* out = y + (row * g.out_w + ow) * g.c_out;
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
            float* o = out + grp * opg;
            for (int64_t ic = 0; ic < ipg; ++ic) {
              const float xv = in[grp * ipg + ic];
              const float* __restrict wrow = tap + ic * g.c_out + grp * opg;
              for (int64_t oc = 0; oc < opg; ++oc) o[oc] += xv * wrow[oc];
            }
          }
        }
      }
    }
  }
}

// One image's input gradient from the transposed weights (see conv2d_backward_input).
RN_SIMD_CLONES void input_grad_image(const Conv2dGeometry& g, const float* dy, const float* wt, float* dx, int64_t b) {
  const int64_t ipg = g.in_per_group(), opg = g.out_per_group();
  const int64_t image = g.h * g.w * g.c_in;
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
          const float* tap = wt + (ky * g.kw + kx) * g.groups * opg * ipg;
          for (int64_t grp = 0; grp < g.groups; ++grp) {
            float* __restrict gi = gin + grp * ipg;
            const float* dg = d + grp * opg;
            const float* wg = tap + grp * opg * ipg;
            for (int64_t oc = 0; oc < opg; ++oc) {
              const float dv = dg[oc];
              const float* __restrict wrow = wg + oc * ipg;
              for (int64_t ic = 0; ic < ipg; ++ic) gi[ic] += dv * wrow[ic];
            }
          }
        }
      }
    }
  }
}

// Weight (and bias) gradient sums of images [b_begin, b_end) into acc (double, dw then db).
// Within one output row the products of one tap go to a float block first (at most out_w
// terms each), flushed to double per row.
RN_SIMD_CLONES void weight_grad_images(const Conv2dGeometry& g, const float* x, const float* dy, double* acc,
                                       float* block, int64_t b_begin, int64_t b_end) {
  const int64_t ipg = g.in_per_group(), opg = g.out_per_group();
  const int64_t tap_size = ipg * g.c_out;
  double* bacc = acc + g.kh * g.kw * tap_size;
  for (int64_t b = b_begin; b < b_end; ++b) {
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      const float* drow = dy + (b * g.out_h + oh) * g.out_w * g.c_out;
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        for (int64_t oc = 0; oc < g.c_out; ++oc) bacc[oc] += drow[ow * g.c_out + oc];
      }
      for (int64_t ky = 0; ky < g.kh; ++ky) {
        const int64_t ih = input_coord(oh, g.stride_h, g.pad_top, ky, g.dilation_h);
        if (ih < 0 || ih >= g.h) continue;
        for (int64_t kx = 0; kx < g.kw; ++kx) {
          std::fill(block, block + tap_size, 0.0f);
          bool any = false;
          for (int64_t ow = 0; ow < g.out_w; ++ow) {
            const int64_t iw = input_coord(ow, g.stride_w, g.pad_left, kx, g.dilation_w);
            if (iw < 0 || iw >= g.w) continue;
            any = true;
            const float* in = x + ((b * g.h + ih) * g.w + iw) * g.c_in;
            const float* d = drow + ow * g.c_out;
            for (int64_t grp = 0; grp < g.groups; ++grp) {
              const float* dg = d + grp * opg;
              for (int64_t ic = 0; ic < ipg; ++ic) {
                const float xv = in[grp * ipg + ic];
                float* __restrict wrow = block + ic * g.c_out + grp * opg;
                for (int64_t oc = 0; oc < opg; ++oc) wrow[oc] += xv * dg[oc];
              }
            }
          }
          if (!any) continue;
          double* __restrict tap = acc + (ky * g.kw + kx) * tap_size;
          for (int64_t i = 0; i < tap_size; ++i) tap[i] += block[i];
        }
      }
    }
  }
}

int parts_for(int64_t work) { return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(num_threads(), work))); }

}  // namespace

int64_t conv2d_scratch_floats(const Conv2dGeometry& g) {
  const int64_t threads = num_threads();
  const int64_t wsize = g.kh * g.kw * g.in_per_group() * g.c_out;
  const int64_t stats = 2 * g.c_out * threads * 2;  // sum, sum of squares, in double
  // partial dw and db in double, plus one float tap block per thread
  const int64_t weight_grads = (wsize + g.c_out) * threads * 2 + g.in_per_group() * g.c_out * threads;
  const int64_t transposed = wsize;                            // backward-input weights
  const int64_t winograd = conv2d_winograd_scratch_floats(g);  // 0 where not eligible
  if (conv2d_use_gemm(g)) return std::max(winograd, conv2d_gemm_scratch_floats(g));
  return std::max({stats, weight_grads, transposed, winograd});
}

int64_t conv2d_prepared_floats(const Conv2dGeometry& g) {
  if (conv2d_use_winograd(g)) return conv2d_winograd_prepared_floats(g);
  if (conv2d_use_gemm(g)) return conv2d_gemm_prepared_floats(g);
  return 0;
}

void conv2d_prepare_weights(const Conv2dGeometry& g, const float* w, float* prepared, float* scratch) {
  if (conv2d_use_winograd(g)) return conv2d_winograd_prepare(g, w, prepared, scratch);
  if (conv2d_use_gemm(g)) return conv2d_gemm_prepare(g, w, prepared);
}

void conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias, float* y, float* mean,
                    float* var, float* scratch, const ConvEpilogue& epilogue, const float* prepared) {
  if (conv2d_use_winograd(g)) return conv2d_winograd_forward(g, x, w, bias, y, mean, var, scratch, epilogue, prepared);
  if (conv2d_use_gemm(g)) return conv2d_gemm_forward(g, x, w, bias, y, mean, var, scratch, epilogue, prepared);
  const int64_t rows = g.n * g.out_h;
  if (mean == nullptr) {
    parallel_for(rows, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row) {
        conv_rows(g, x, w, bias, y, row, row + 1);
        const int64_t row_floats = g.out_w * g.c_out;
        if (epilogue.active()) apply_conv_epilogue(epilogue, row * row_floats, row_floats, y + row * row_floats);
      }
    });
    return;
  }
  // Each part convolves its rows and, while they are in cache, adds them to its own
  // per-channel sums; the parts are reduced in double below.
  const int parts = parts_for(rows);
  auto* partial = reinterpret_cast<double*>(scratch);
  const int64_t c = g.c_out;
  parallel_for(parts, [&](int64_t pbegin, int64_t pend) {
    for (int64_t p = pbegin; p < pend; ++p) {
      double* sum = partial + p * 2 * c;
      double* sq = sum + c;
      std::fill(sum, sum + 2 * c, 0.0);
      const int64_t begin = rows * p / parts, end = rows * (p + 1) / parts;
      for (int64_t row = begin; row < end; ++row) {
        conv_rows(g, x, w, bias, y, row, row + 1);
        const float* out = y + row * g.out_w * c;
        for (int64_t i = 0; i < g.out_w; ++i) {
          for (int64_t ch = 0; ch < c; ++ch) {
            const double v = out[i * c + ch];
            sum[ch] += v;
            sq[ch] += v * v;
          }
        }
      }
    }
  });
  finish_batch_statistics(parts, c, partial, double(g.n * g.out_h * g.out_w), mean, var);
}

void conv2d_backward_input(const Conv2dGeometry& g, const float* dy, const float* w, float* dx, float* scratch) {
  if (conv2d_use_winograd_backward_input(g)) return conv2d_winograd_backward_input(g, dy, w, dx, scratch);
  if (conv2d_use_gemm(g)) return conv2d_gemm_backward_input(g, dy, w, dx, scratch);
  const int64_t ipg = g.in_per_group(), opg = g.out_per_group();
  const int64_t taps = g.kh * g.kw;
  // Weights as [tap][group][out][in] so the inner loop is a contiguous axpy over input channels.
  float* wt = scratch;
  for (int64_t t = 0; t < taps; ++t) {
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      for (int64_t oc = 0; oc < opg; ++oc) {
        for (int64_t ic = 0; ic < ipg; ++ic) {
          wt[((t * g.groups + grp) * opg + oc) * ipg + ic] = w[(t * ipg + ic) * g.c_out + grp * opg + oc];
        }
      }
    }
  }
  parallel_for(g.n, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) input_grad_image(g, dy, wt, dx, b);
  });
}

void conv2d_backward_weight(const Conv2dGeometry& g, const float* x, const float* dy, float* dw, float* db,
                            float* scratch) {
  if (conv2d_use_gemm(g)) return conv2d_gemm_backward_weight(g, x, dy, dw, db, scratch);
  const int64_t ipg = g.in_per_group();
  const int64_t tap_size = ipg * g.c_out;
  const int64_t wsize = g.kh * g.kw * tap_size;
  const int64_t stride = wsize + g.c_out;  // one part: dw then db, in double
  const int parts = parts_for(g.n);
  auto* partial = reinterpret_cast<double*>(scratch);
  // Each part sums its images into its own double partial (see weight_grad_images).
  float* row_blocks = scratch + 2 * stride * parts;
  parallel_for(parts, [&](int64_t pbegin, int64_t pend) {
    for (int64_t p = pbegin; p < pend; ++p) {
      double* acc = partial + p * stride;
      std::fill(acc, acc + stride, 0.0);
      weight_grad_images(g, x, dy, acc, row_blocks + p * tap_size, g.n * p / parts, g.n * (p + 1) / parts);
    }
  });
  parallel_for(stride, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      double s = 0.0;
      for (int p = 0; p < parts; ++p) s += partial[p * stride + i];
      if (i < wsize) {
        dw[i] = static_cast<float>(s);
      } else if (db != nullptr) {
        db[i - wsize] = static_cast<float>(s);
      }
    }
  });
}

}  // namespace rn::cpu
