#include "conv2d_gemm.hpp"

#include <algorithm>
#include <cstring>

#include "../core/thread_pool.hpp"
#include "batch_norm_kernels.hpp"
#include "conv2d_implicit_avx512.hpp"
#include "gemm.hpp"
#include "simd_dispatch.hpp"

namespace rn::cpu {
namespace {

constexpr int64_t kTileRows = 64;  // output pixels per forward / input-gradient tile
// Output pixels per implicit-GEMM forward tile: each tile copies the padded input rows its border
// blocks read once (conv2d_implicit_avx512.cpp), so longer tiles copy less.
constexpr int64_t kImplicitTilePixels = 512;

int64_t align16(int64_t n) { return (n + 15) / 16 * 16; }

int64_t taps(const Conv2dGeometry& g) { return g.kh * g.kw; }
int64_t k_of(const Conv2dGeometry& g) { return taps(g) * g.in_per_group(); }

bool pointwise(const Conv2dGeometry& g) {
  return g.kh == 1 && g.kw == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_top == 0 && g.pad_left == 0 &&
         g.pad_bottom == 0 && g.pad_right == 0 && g.groups == 1;
}

// Rows of the weight-gradient tile: enough to amortise updating the K×N partial, capped so
// the transposed tile stays cache-sized.
int64_t weight_tile_rows(const Conv2dGeometry& g) {
  return std::clamp<int64_t>(align16(131072 / std::max<int64_t>(1, k_of(g))), 32, 1024);
}

int threads() { return num_threads(); }

// Units (pixels, or whole output rows on the implicit path) per forward tile without the
// batch-statistics epilogue (inference): about target_pixels, and as many tiles as a multiple
// of the threads, so that small outputs (batch 1 at 7×7 or 14×14: one or four 64-pixel tiles)
// still keep every thread busy with equal shares. (With statistics the tiles stay fixed, so the
// training path's partial sums do not depend on the thread count.)
int64_t balanced_tile_rows(int64_t units, int64_t unit_pixels, int64_t target_pixels) {
  const int64_t t = threads();
  int64_t tiles = (units * unit_pixels + target_pixels - 1) / target_pixels;
  tiles = std::min(units, (tiles + t - 1) / t * t);
  return std::max<int64_t>(1, (units + tiles - 1) / std::max<int64_t>(1, tiles));
}

// im2col rows [m0, m0 + rows) for group `grp` into col [rows × K], K ordered (tap, channel) as
// HWIO. Plain loops rather than memcpy: a tap is often only 16–64 floats.
RN_SIMD_CLONES void im2col(const Conv2dGeometry& g, const float* x, int64_t grp, int64_t m0, int64_t rows, float* col) {
  const int64_t ipg = g.in_per_group(), k = k_of(g);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t m = m0 + r;
    const int64_t ow = m % g.out_w, rest = m / g.out_w;
    const int64_t oh = rest % g.out_h, b = rest / g.out_h;
    float* dst = col + r * k;
    for (int64_t ky = 0; ky < g.kh; ++ky) {
      const int64_t ih = oh * g.stride_h - g.pad_top + ky * g.dilation_h;
      const bool row_inside = ih >= 0 && ih < g.h;
      for (int64_t kx = 0; kx < g.kw; ++kx) {
        float* __restrict d = dst + (ky * g.kw + kx) * ipg;
        const int64_t iw = ow * g.stride_w - g.pad_left + kx * g.dilation_w;
        if (row_inside && iw >= 0 && iw < g.w) {
          const float* __restrict src = x + ((b * g.h + ih) * g.w + iw) * g.c_in + grp * ipg;
          for (int64_t c = 0; c < ipg; ++c) d[c] = src[c];
        } else {
          for (int64_t c = 0; c < ipg; ++c) d[c] = 0.0f;
        }
      }
    }
  }
}

// col2im: adds the tile's input-gradient rows [m0, m0 + rows) back into dx.
RN_SIMD_CLONES void col2im_add(const Conv2dGeometry& g, const float* col, int64_t grp, int64_t m0, int64_t rows,
                               float* dx) {
  const int64_t ipg = g.in_per_group(), k = k_of(g);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t m = m0 + r;
    const int64_t ow = m % g.out_w, rest = m / g.out_w;
    const int64_t oh = rest % g.out_h, b = rest / g.out_h;
    const float* src = col + r * k;
    for (int64_t ky = 0; ky < g.kh; ++ky) {
      const int64_t ih = oh * g.stride_h - g.pad_top + ky * g.dilation_h;
      if (ih < 0 || ih >= g.h) continue;
      for (int64_t kx = 0; kx < g.kw; ++kx) {
        const int64_t iw = ow * g.stride_w - g.pad_left + kx * g.dilation_w;
        if (iw < 0 || iw >= g.w) continue;
        float* __restrict d = dx + ((b * g.h + ih) * g.w + iw) * g.c_in + grp * ipg;
        const float* __restrict s = src + (ky * g.kw + kx) * ipg;
        for (int64_t c = 0; c < ipg; ++c) d[c] += s[c];
      }
    }
  }
}

// The forward reads the input in place instead of im2col tiles (see
// conv2d_implicit_avx512.hpp); 1×1 stride-1 convolutions need neither.
bool implicit_forward(const Conv2dGeometry& g) { return !pointwise(g) && conv2d_implicit_available(g); }

// Forward layout: packed weights per group, stats partials (double), the zero-padded bias, and
// per thread an im2col tile or the implicit kernel's border pieces.
struct ForwardLayout {
  int64_t packed, stats, fsums, bias, col, col_size, total;
};
ForwardLayout forward_layout(const Conv2dGeometry& g) {
  ForwardLayout l;
  l.packed = 0;
  l.stats = l.packed + align16(g.groups * packed_b_floats(k_of(g), g.out_per_group()));
  l.fsums = l.stats + align16(4 * g.c_out * threads());
  l.bias = l.fsums + align16(2 * g.c_out * threads());
  l.col = l.bias + align16(g.c_out);
  l.col_size = align16(implicit_forward(g) ? conv2d_implicit_thread_floats(g) : kTileRows * k_of(g));
  l.total = l.col + l.col_size * threads();
  return l;
}

// For a stride-1 convolution the input gradient is itself a stride-1 convolution of dy with the
// spatially flipped, transposed weights w'[kh-1-ky][kw-1-kx][oc][ic], padded by (k-1)·d − pad
// before and (in − out + pad) after: it runs as a forward on the implicit path (no col2im), as
// long as both pads are ≥ 0. Returns whether it applies and fills `t`.
bool input_grad_as_forward(const Conv2dGeometry& g, Conv2dGeometry* t) {
  if (g.stride_h != 1 || g.stride_w != 1 || pointwise(g) || !conv2d_implicit_available(g)) return false;
  Conv2dGeometry f = g;
  f.h = g.out_h;
  f.w = g.out_w;
  f.c_in = g.c_out;
  f.c_out = g.c_in;
  f.pad_top = (g.kh - 1) * g.dilation_h - g.pad_top;
  f.pad_left = (g.kw - 1) * g.dilation_w - g.pad_left;
  f.pad_bottom = g.h + g.pad_top - g.out_h;
  f.pad_right = g.w + g.pad_left - g.out_w;
  f.out_h = g.h;
  f.out_w = g.w;
  if (f.pad_top < 0 || f.pad_left < 0 || f.pad_bottom < 0 || f.pad_right < 0) return false;
  if (t) *t = f;
  return true;
}

struct InputGradLayout {
  int64_t transposed, packed, col, total;
};
InputGradLayout input_grad_layout(const Conv2dGeometry& g) {
  InputGradLayout l;
  l.transposed = 0;
  l.packed = align16(k_of(g) * g.out_per_group());
  l.col = l.packed + align16(g.groups * packed_b_floats(g.out_per_group(), k_of(g)));
  l.total = l.col + align16(kTileRows * k_of(g)) * threads();
  Conv2dGeometry t;
  if (input_grad_as_forward(g, &t)) {  // flipped weights, then the forward's own scratch
    l.total = std::max(l.total, align16(k_of(g) * g.c_out) + forward_layout(t).total);
  }
  return l;
}

struct WeightGradLayout {
  int64_t partial, part_size, colT, packed, total;
};
WeightGradLayout weight_grad_layout(const Conv2dGeometry& g) {
  const int64_t rows = weight_tile_rows(g);
  WeightGradLayout l;
  l.partial = 0;
  l.part_size = align16(k_of(g) * g.c_out + g.c_out);
  l.colT = l.partial + l.part_size * threads();
  l.packed = l.colT + align16(rows * k_of(g)) * threads();
  l.total = l.packed + align16(packed_b_floats(rows, g.out_per_group())) * threads();
  return l;
}

}  // namespace

bool conv2d_use_gemm(const Conv2dGeometry& g) { return g.out_per_group() >= 8 && g.in_per_group() >= 1; }

int64_t conv2d_gemm_scratch_floats(const Conv2dGeometry& g) {
  return std::max({forward_layout(g).total, input_grad_layout(g).total, weight_grad_layout(g).total});
}

int64_t conv2d_gemm_prepared_floats(const Conv2dGeometry& g) {
  return g.groups * packed_b_floats(k_of(g), g.out_per_group());
}

void conv2d_gemm_prepare(const Conv2dGeometry& g, const float* w, float* prepared) {
  const int64_t k = k_of(g), opg = g.out_per_group();
  const int64_t group_packed = packed_b_floats(k, opg);
  for (int64_t grp = 0; grp < g.groups; ++grp) pack_b(k, opg, w + grp * opg, g.c_out, prepared + grp * group_packed);
}

void conv2d_gemm_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias, float* y,
                         float* mean, float* var, float* scratch, const ConvEpilogue& epilogue, const float* prepared) {
  const ForwardLayout l = forward_layout(g);
  const int64_t k = k_of(g), opg = g.out_per_group(), c = g.c_out;
  const int64_t group_packed = packed_b_floats(k, opg);
  if (prepared == nullptr) {
    conv2d_gemm_prepare(g, w, scratch + l.packed);
    prepared = scratch + l.packed;
  }
  const int64_t m = g.n * g.out_h * g.out_w;
  const bool direct = pointwise(g);
  const bool implicit = implicit_forward(g);
  // Tiles of whole output rows on the implicit path (its register blocks lie within one row).
  const int64_t unit = implicit ? g.out_w : 1, units = m / unit;
  const int64_t target = implicit ? kImplicitTilePixels : kTileRows;
  const int64_t tile_units =
      mean != nullptr ? std::max<int64_t>(1, target / unit) : balanced_tile_rows(units, unit, target);
  const int64_t tiles = (units + tile_units - 1) / tile_units;
  const int parts = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads(), tiles)));
  auto* partial = reinterpret_cast<double*>(scratch + l.stats);
  ImplicitStore store;
  if (implicit) {
    store.epilogue = epilogue;
    if (bias) {  // the accumulators start from it, a whole panel at a time
      float* padded = scratch + l.bias;
      std::copy(bias, bias + c, padded);
      std::fill(padded + c, padded + align16(c), 0.0f);
      store.bias = padded;
    }
  }
  parallel_for(parts, [&](int64_t pbegin, int64_t pend) {
    for (int64_t p = pbegin; p < pend; ++p) {
      float* col = scratch + l.col + p * l.col_size;
      float* fsum = scratch + l.fsums + p * 2 * c;
      double* sum = partial + p * 2 * c;
      double* sq = sum + c;
      if (mean) std::fill(sum, sum + 2 * c, 0.0);
      for (int64_t t = tiles * p / parts; t < tiles * (p + 1) / parts; ++t) {
        const int64_t u0 = t * tile_units, u1 = std::min(units, u0 + tile_units);
        const int64_t m0 = u0 * unit, rows = (u1 - u0) * unit;
        float* out = y + m0 * c;
        if (implicit) {  // groups = 1; bias and epilogue applied in the kernel's store
          conv2d_implicit_rows(g, x, prepared, store, u0, u1, y, col);
          if (mean) sums_rows(c, out, 0, rows, sum, sq, fsum, fsum + c);
          continue;
        }
        if (bias) {
          for (int64_t r = 0; r < rows; ++r) std::memcpy(out + r * c, bias, static_cast<size_t>(c) * sizeof(float));
        }
        for (int64_t grp = 0; grp < g.groups; ++grp) {
          const float* a = x + m0 * g.c_in;
          if (!direct) {
            im2col(g, x, grp, m0, rows, col);
            a = col;
          }
          gemm_packed(rows, opg, k, a, direct ? g.c_in : k, prepared + grp * group_packed, out + grp * opg, c,
                      bias != nullptr);
        }
        if (mean) sums_rows(c, out, 0, rows, sum, sq, fsum, fsum + c);  // the epilogue, while the tile is hot
        if (epilogue.active()) apply_conv_epilogue(epilogue, m0 * c, rows * c, out);
      }
    }
  });
  if (mean) finish_batch_statistics(parts, c, partial, double(m), mean, var);
}

void conv2d_gemm_backward_input(const Conv2dGeometry& g, const float* dy, const float* w, float* dx, float* scratch) {
  Conv2dGeometry t;
  if (input_grad_as_forward(g, &t)) {
    float* flipped = scratch;  // HWIO of the transposed convolution: [kh][kw][c_out][c_in]
    for (int64_t ky = 0; ky < g.kh; ++ky) {
      for (int64_t kx = 0; kx < g.kw; ++kx) {
        const float* src = w + ((g.kh - 1 - ky) * g.kw + (g.kw - 1 - kx)) * g.c_in * g.c_out;
        float* dst = flipped + (ky * g.kw + kx) * g.c_out * g.c_in;
        for (int64_t ic = 0; ic < g.c_in; ++ic) {
          for (int64_t oc = 0; oc < g.c_out; ++oc) dst[oc * g.c_in + ic] = src[ic * g.c_out + oc];
        }
      }
    }
    return conv2d_gemm_forward(t, dy, flipped, nullptr, dx, nullptr, nullptr, scratch + align16(k_of(g) * g.c_out));
  }
  const InputGradLayout l = input_grad_layout(g);
  const int64_t k = k_of(g), opg = g.out_per_group();
  const int64_t group_packed = packed_b_floats(opg, k);
  // W_g^T [opg × K] per group, packed as the B of dA = dY · W^T.
  float* wt = scratch + l.transposed;
  for (int64_t grp = 0; grp < g.groups; ++grp) {
    for (int64_t kk = 0; kk < k; ++kk) {
      for (int64_t oc = 0; oc < opg; ++oc) wt[oc * k + kk] = w[kk * g.c_out + grp * opg + oc];
    }
    pack_b(opg, k, wt, k, scratch + l.packed + grp * group_packed);
  }
  const int64_t pixels = g.out_h * g.out_w;  // output rows per image
  const int64_t image = g.h * g.w * g.c_in;
  const bool direct = pointwise(g);
  // Images are split across threads, so col2im's scattered adds never race.
  const int parts = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads(), g.n)));
  parallel_for(parts, [&](int64_t pbegin, int64_t pend) {
    for (int64_t p = pbegin; p < pend; ++p) {
      float* col = scratch + l.col + p * align16(kTileRows * k);
      for (int64_t b = g.n * p / parts; b < g.n * (p + 1) / parts; ++b) {
        if (direct) {
          gemm_packed(pixels, g.c_in, g.c_out, dy + b * pixels * g.c_out, g.c_out, scratch + l.packed, dx + b * image,
                      g.c_in, false);
          continue;
        }
        std::memset(dx + b * image, 0, static_cast<size_t>(image) * sizeof(float));
        for (int64_t t0 = 0; t0 < pixels; t0 += kTileRows) {
          const int64_t rows = std::min(kTileRows, pixels - t0);
          const int64_t m0 = b * pixels + t0;
          for (int64_t grp = 0; grp < g.groups; ++grp) {
            gemm_packed(rows, k, opg, dy + m0 * g.c_out + grp * opg, g.c_out, scratch + l.packed + grp * group_packed,
                        col, k, false);
            col2im_add(g, col, grp, m0, rows, dx);
          }
        }
      }
    }
  });
}

void conv2d_gemm_backward_weight(const Conv2dGeometry& g, const float* x, const float* dy, float* dw, float* db,
                                 float* scratch) {
  const WeightGradLayout l = weight_grad_layout(g);
  const int64_t k = k_of(g), opg = g.out_per_group(), c = g.c_out;
  const int64_t tile = weight_tile_rows(g);
  const int64_t m = g.n * g.out_h * g.out_w;
  const int64_t tiles = (m + tile - 1) / tile;
  const int parts = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads(), tiles)));
  parallel_for(parts, [&](int64_t pbegin, int64_t pend) {
    for (int64_t p = pbegin; p < pend; ++p) {
      float* part = scratch + l.partial + p * l.part_size;  // dW [K × c] then db [c]
      float* colT = scratch + l.colT + p * align16(tile * k);
      float* packed = scratch + l.packed + p * align16(packed_b_floats(tile, opg));
      std::fill(part, part + k * c + c, 0.0f);
      float* bpart = part + k * c;
      for (int64_t t = tiles * p / parts; t < tiles * (p + 1) / parts; ++t) {
        const int64_t m0 = t * tile, rows = std::min(tile, m - m0);
        const float* d = dy + m0 * c;
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t ch = 0; ch < c; ++ch) bpart[ch] += d[r * c + ch];
        }
        for (int64_t grp = 0; grp < g.groups; ++grp) {
          im2col(g, x, grp, m0, rows, colT);  // [rows × K], which is (dWᵀ's A)ᵀ
          pack_b(rows, opg, d + grp * opg, c, packed);
          gemm_packed_at(k, opg, rows, colT, k, packed, part + grp * opg, c, true);
        }
      }
    }
  });
  parallel_for(k * c + c, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      float s = 0.0f;
      for (int p = 0; p < parts; ++p) s += scratch[l.partial + p * l.part_size + i];
      if (i < k * c) {
        dw[i] = s;
      } else if (db != nullptr) {
        db[i - k * c] = s;
      }
    }
  });
}

}  // namespace rn::cpu
