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

// Rows of the weight-gradient tile on the row-split path (small K): enough to amortise
// updating the K×N partial, capped so the transposed tile and the packed output-gradient tile
// (rows × c_out: 1 MiB at 1024 × 256, which spilled from L2 and made pack_b a fifth of the
// time) stay cache-sized together.
int64_t weight_tile_rows(const Conv2dGeometry& g) {
  return std::clamp<int64_t>(align16(131072 / std::max<int64_t>(1, k_of(g) + g.c_out)), 32, 1024);
}

// Depth (output pixels) per step of the K-split weight gradient: as gemm's depth block.
constexpr int64_t kWeightDepth = 256;

int threads() { return num_threads(); }

// Weight preparation over the pool only when there is enough of it: waking the workers costs
// more than packing a CIFAR layer's few thousand floats.
void prepare_range(int64_t n, int64_t floats, RangeFn fn) {
  if (floats >= (int64_t{1} << 16)) return parallel_for(n, fn);
  fn(0, n);
}

// Inference outputs of at most this many pixels (batch 1 at 7×7 or 14×14) are split over the
// threads by output channels rather than by pixels: there the weights, not the pixels, are most of
// the bytes, so each thread reads only its share of them, and every register block stays full.
constexpr int64_t kChannelSplitPixels = 256;

// How many channel shares the forward's output is split into (1: split by pixel tiles only).
// Shares are whole panel pairs, at least two per thread; the statistics path never splits (its
// per-thread partial sums cover every channel).
int64_t channel_shares(const Conv2dGeometry& g, int64_t m, bool statistics, bool implicit, bool direct) {
  const int64_t t = threads();
  const int64_t pairs = (g.c_out + 2 * kGemmPanel - 1) / (2 * kGemmPanel);
  if (statistics || t == 1 || g.groups != 1 || m > kChannelSplitPixels || !(implicit || direct)) return 1;
  return pairs >= 2 * t ? t : 1;
}

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

// sum[j] += Σ_r d[r·ld + j] for j < cols: the bias gradient's column sums.
RN_SIMD_CLONES void add_rows(int64_t rows, int64_t cols, const float* d, int64_t ld, float* sum) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* __restrict row = d + r * ld;
    float* __restrict s = sum;
    for (int64_t j = 0; j < cols; ++j) s[j] += row[j];
  }
}

// im2col rows [m0, m0 + rows) for group `grp` into col [rows × K], K ordered (tap, channel) as
// HWIO. Plain loops rather than memcpy: a tap is often only 16–64 floats.
RN_SIMD_CLONES void im2col(const Conv2dGeometry& g, const float* x, int64_t grp, int64_t m0, int64_t rows, float* col) {
  const int64_t ipg = g.in_per_group(), k = k_of(g);
  // The output pixel (b, oh, ow) of row m0 + r, stepped rather than divided out per row.
  int64_t ow = m0 % g.out_w, oh = m0 / g.out_w % g.out_h, b = m0 / g.out_w / g.out_h;
  for (int64_t r = 0; r < rows; ++r, ow = ow + 1 < g.out_w ? ow + 1 : 0) {
    if (r > 0 && ow == 0 && ++oh == g.out_h) {
      oh = 0;
      ++b;
    }
    float* dst = col + r * k;
    const int64_t iw0 = ow * g.stride_w - g.pad_left;
    // A whole row of taps inside the input is one contiguous run of kw·c_in floats (one group,
    // no dilation): a single copy instead of kw copies of c_in floats (3 for the stem).
    const bool run = g.groups == 1 && g.dilation_w == 1 && iw0 >= 0 && iw0 + g.kw <= g.w;
    for (int64_t ky = 0; ky < g.kh; ++ky) {
      const int64_t ih = oh * g.stride_h - g.pad_top + ky * g.dilation_h;
      const bool row_inside = ih >= 0 && ih < g.h;
      if (row_inside && run) {
        const float* __restrict src = x + ((b * g.h + ih) * g.w + iw0) * g.c_in;
        float* __restrict d = dst + ky * g.kw * ipg;
        for (int64_t i = 0; i < g.kw * ipg; ++i) d[i] = src[i];
        continue;
      }
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
  // The output pixel (b, oh, ow) of row m0 + r, stepped rather than divided out per row.
  int64_t ow = m0 % g.out_w, oh = m0 / g.out_w % g.out_h, b = m0 / g.out_w / g.out_h;
  for (int64_t r = 0; r < rows; ++r, ow = ow + 1 < g.out_w ? ow + 1 : 0) {
    if (r > 0 && ow == 0 && ++oh == g.out_h) {
      oh = 0;
      ++b;
    }
    const float* src = col + r * k;
    const int64_t iw0 = ow * g.stride_w - g.pad_left;
    const bool run = g.groups == 1 && g.dilation_w == 1 && iw0 >= 0 && iw0 + g.kw <= g.w;  // as in im2col
    for (int64_t ky = 0; ky < g.kh; ++ky) {
      const int64_t ih = oh * g.stride_h - g.pad_top + ky * g.dilation_h;
      if (ih < 0 || ih >= g.h) continue;
      if (run) {
        float* __restrict d = dx + ((b * g.h + ih) * g.w + iw0) * g.c_in;
        const float* __restrict s = src + ky * g.kw * ipg;
        for (int64_t i = 0; i < g.kw * ipg; ++i) d[i] += s[i];
        continue;
      }
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

// im2col rows [m0, m0 + rows) restricted to columns [k0, k1) of K into col [rows × (k1 − k0)]:
// the K-split weight gradient's share of a tile.
RN_SIMD_CLONES void im2col_columns(const Conv2dGeometry& g, const float* x, int64_t grp, int64_t m0, int64_t rows,
                                   int64_t k0, int64_t k1, float* col) {
  const int64_t ipg = g.in_per_group(), width = k1 - k0;
  // The output pixel (b, oh, ow) of row m0 + r, stepped rather than divided out per row.
  int64_t ow = m0 % g.out_w, oh = m0 / g.out_w % g.out_h, b = m0 / g.out_w / g.out_h;
  for (int64_t r = 0; r < rows; ++r, ow = ow + 1 < g.out_w ? ow + 1 : 0) {
    if (r > 0 && ow == 0 && ++oh == g.out_h) {
      oh = 0;
      ++b;
    }
    float* dst = col + r * width - k0;  // dst[kk] for kk in [k0, k1)
    for (int64_t tap = k0 / ipg; tap * ipg < k1; ++tap) {
      const int64_t ky = tap / g.kw, kx = tap % g.kw;
      const int64_t c0 = std::max<int64_t>(0, k0 - tap * ipg), c1 = std::min(ipg, k1 - tap * ipg);
      float* __restrict d = dst + tap * ipg;
      const int64_t ih = oh * g.stride_h - g.pad_top + ky * g.dilation_h;
      const int64_t iw = ow * g.stride_w - g.pad_left + kx * g.dilation_w;
      if (ih >= 0 && ih < g.h && iw >= 0 && iw < g.w) {
        const float* __restrict src = x + ((b * g.h + ih) * g.w + iw) * g.c_in + grp * ipg;
        for (int64_t c = c0; c < c1; ++c) d[c] = src[c];
      } else {
        for (int64_t c = c0; c < c1; ++c) d[c] = 0.0f;
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
  // float sums of sums_rows, or the implicit kernel's padded double sums (four floats per channel)
  l.bias = l.fsums + align16(4 * align16(g.c_out) * threads());
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
  int64_t packed, col, total;
};
InputGradLayout input_grad_layout(const Conv2dGeometry& g) {
  InputGradLayout l;
  l.packed = 0;
  l.col = l.packed + align16(g.groups * packed_b_floats(g.out_per_group(), k_of(g)));
  l.total = l.col + align16(kTileRows * k_of(g)) * threads();
  Conv2dGeometry t;
  if (input_grad_as_forward(g, &t)) {  // flipped weights, then the forward's own scratch
    l.total = std::max(l.total, align16(k_of(g) * g.c_out) + forward_layout(t).total);
  }
  return l;
}

// The weight gradient dW_g = colᵀ · dY_g splits the K rows of dW across the threads when there
// are enough of them (deep layers: K in the thousands, M a few hundred pixels): every thread
// runs over all pixels for its rows, so there are no per-thread K × N partials to clear and add
// up, and the GEMM's depth is kWeightDepth rather than the few dozen rows that kept a full
// K-wide transposed tile cache-sized. Small K keeps the pixel split with partial sums.
int weight_grad_k_parts(const Conv2dGeometry& g) {
  const int64_t k = k_of(g);
  const int t = threads();
  // Measured (kernel bench, 2 threads): from K ≈ 1024 on (3×3 × 128 channels) the K split
  // wins, up to 2× at K = 2048 and 4608; below it the pixel split is 10–40 % faster (it
  // packs only its own share of dY, and its partials are small).
  return k >= 1024 && k >= 96 * t ? t : 0;
}

struct WeightGradLayout {
  int64_t partial, part_size, colT, col_size, packed, packed_size, total;
};
WeightGradLayout weight_grad_layout(const Conv2dGeometry& g) {
  const int64_t k = k_of(g);
  WeightGradLayout l;
  if (const int parts = weight_grad_k_parts(g)) {
    l.partial = l.part_size = 0;
    l.colT = 0;
    l.col_size = align16(kWeightDepth * ((k + parts - 1) / parts + kGemmPanel));
    l.packed = l.colT + l.col_size * parts;
    l.packed_size = align16(packed_b_floats(kWeightDepth, g.out_per_group()));
    l.total = l.packed + l.packed_size * parts;
    return l;
  }
  const int64_t rows = weight_tile_rows(g);
  l.partial = 0;
  l.part_size = align16(k * g.c_out + g.c_out);
  l.colT = l.partial + l.part_size * threads();
  l.col_size = align16(rows * k);
  l.packed = l.colT + l.col_size * threads();
  l.packed_size = align16(packed_b_floats(rows, g.out_per_group()));
  l.total = l.packed + l.packed_size * threads();
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
  const int64_t panels = (opg + kGemmPanel - 1) / kGemmPanel;
  // Panel by panel over the pool: the input gradient packs 2.4 M floats per call at 3×3 512.
  prepare_range(g.groups * panels, g.groups * group_packed, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t grp = i / panels, j0 = i % panels * kGemmPanel;
      pack_b(k, std::min(kGemmPanel, opg - j0), w + grp * opg + j0, g.c_out, prepared + grp * group_packed + j0 * k);
    }
  });
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
  const int64_t shares = channel_shares(g, m, mean != nullptr, implicit, direct);
  const int64_t tile_units = shares > 1        ? units  // one tile; the threads split its channels
                             : mean != nullptr ? std::max<int64_t>(1, target / unit)
                                               : balanced_tile_rows(units, unit, target);
  const int64_t tiles = (units + tile_units - 1) / tile_units;
  const int64_t items = tiles * shares;  // (tile, channel share) pairs
  const int64_t pairs = (c + 2 * kGemmPanel - 1) / (2 * kGemmPanel);
  const int parts = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads(), items)));
  auto* partial = reinterpret_cast<double*>(scratch + l.stats);
  ImplicitStore store;
  // The kernel applies the epilogue in its store; with batch statistics (taken before the
  // epilogue) it runs after them instead, as on the GEMM path.
  const bool epilogue_after = implicit && mean != nullptr && epilogue.active();
  if (implicit) {
    if (!epilogue_after) store.epilogue = epilogue;
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
      float* fsum = scratch + l.fsums + p * 4 * align16(c);
      auto* dsum = reinterpret_cast<double*>(fsum);  // the implicit path: [sum | sq], align16(c) each
      if (implicit && mean) std::fill(dsum, dsum + 2 * align16(c), 0.0);
      double* sum = partial + p * 2 * c;
      double* sq = sum + c;
      if (mean) std::fill(sum, sum + 2 * c, 0.0);
      for (int64_t item = items * p / parts; item < items * (p + 1) / parts; ++item) {
        const int64_t t = item / shares, share = item % shares;
        const int64_t u0 = t * tile_units, u1 = std::min(units, u0 + tile_units);
        const int64_t m0 = u0 * unit, rows = (u1 - u0) * unit;
        float* out = y + m0 * c;
        if (shares > 1) {  // inference, groups = 1: this share's panels of every pixel
          PanelShare panels;
          panels.begin = 2 * (pairs * share / shares);
          panels.end = std::min((c + kGemmPanel - 1) / kGemmPanel, 2 * (pairs * (share + 1) / shares));
          const int64_t c0 = panels.begin * kGemmPanel, cn = std::min(c, panels.end * kGemmPanel) - c0;
          if (implicit) {
            panels.pairs_outer = true;
            conv2d_implicit_rows(g, x, prepared, store, u0, u1, y, col, nullptr, nullptr, panels);
            continue;
          }
          if (bias) {
            for (int64_t r = 0; r < rows; ++r) std::copy(bias + c0, bias + c0 + cn, out + r * c + c0);
          }
          gemm_packed(rows, cn, k, x + m0 * g.c_in, g.c_in, prepared + panels.begin * k * kGemmPanel, out + c0, c,
                      bias != nullptr);
          if (epilogue.active()) {
            for (int64_t r = 0; r < rows; ++r) apply_conv_epilogue(epilogue, (m0 + r) * c + c0, cn, out + r * c + c0);
          }
          continue;
        }
        if (implicit) {  // groups = 1; bias and epilogue applied in the kernel's store
          // The statistics from the accumulators in the kernel's store (no second pass).
          conv2d_implicit_rows(g, x, prepared, store, u0, u1, y, col, mean ? dsum : nullptr,
                               mean ? dsum + align16(c) : nullptr);
          if (epilogue_after) apply_conv_epilogue(epilogue, m0 * c, rows * c, out);
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
      if (implicit && mean) {
        for (int64_t ch = 0; ch < c; ++ch) {
          sum[ch] += dsum[ch];
          sq[ch] += dsum[align16(c) + ch];
        }
      }
    }
  });
  if (mean) finish_batch_statistics(parts, c, partial, double(m), mean, var);
}

void conv2d_flip_weights(const Conv2dGeometry& g, const float* w, float* flipped) {
  // Each tap's [c_in × c_out] block transposed, in blocks of 64 input channels over the pool.
  const int64_t taps_n = taps(g), chunk = 64, chunks = (g.c_in + chunk - 1) / chunk;
  prepare_range(taps_n * chunks, k_of(g) * g.c_out, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t tap = i / chunks, ic0 = i % chunks * chunk, ics = std::min(chunk, g.c_in - ic0);
      const float* src = w + (taps_n - 1 - tap) * g.c_in * g.c_out + ic0 * g.c_out;
      transpose_matrix(ics, g.c_out, src, g.c_out, flipped + tap * g.c_out * g.c_in + ic0, g.c_in);
    }
  });
}

void conv2d_gemm_backward_input(const Conv2dGeometry& g, const float* dy, const float* w, float* dx, float* scratch) {
  Conv2dGeometry t;
  if (input_grad_as_forward(g, &t)) {
    float* flipped = scratch;
    conv2d_flip_weights(g, w, flipped);
    return conv2d_gemm_forward(t, dy, flipped, nullptr, dx, nullptr, nullptr, scratch + align16(k_of(g) * g.c_out));
  }
  const InputGradLayout l = input_grad_layout(g);
  const int64_t k = k_of(g), opg = g.out_per_group();
  const int64_t group_packed = packed_b_floats(opg, k);
  // W_gᵀ [opg × K] per group, packed as the B of dA = dY · Wᵀ in one transposing pass, panel
  // by panel over the pool.
  const int64_t panels = (k + kGemmPanel - 1) / kGemmPanel;
  prepare_range(g.groups * panels, g.groups * group_packed, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t grp = i / panels, j0 = i % panels * kGemmPanel;
      pack_b_transposed(opg, std::min(kGemmPanel, k - j0), w + j0 * g.c_out + grp * opg, g.c_out,
                        scratch + l.packed + grp * group_packed + j0 * opg);
    }
  });
  const int64_t pixels = g.out_h * g.out_w;  // output rows per image
  const int64_t image = g.h * g.w * g.c_in;
  if (pointwise(g)) {
    // dX = dY · Wᵀ over every pixel of the batch at once, its rows split across the threads in
    // multiples of the micro-kernel's 12 (not image by image: 49-row GEMMs at 7×7).
    const int64_t m = g.n * pixels, blocks = (m + 11) / 12;
    const int parts = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads(), blocks)));
    parallel_for(parts, [&](int64_t pbegin, int64_t pend) {
      for (int64_t p = pbegin; p < pend; ++p) {
        const int64_t m0 = std::min(m, blocks * p / parts * 12), m1 = std::min(m, blocks * (p + 1) / parts * 12);
        if (m1 > m0) {
          gemm_packed(m1 - m0, g.c_in, g.c_out, dy + m0 * g.c_out, g.c_out, scratch + l.packed, dx + m0 * g.c_in,
                      g.c_in, false);
        }
      }
    });
    return;
  }
  // Images are split across threads, so col2im's scattered adds never race.
  const int parts = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads(), g.n)));
  parallel_for(parts, [&](int64_t pbegin, int64_t pend) {
    for (int64_t p = pbegin; p < pend; ++p) {
      float* col = scratch + l.col + p * align16(kTileRows * k);
      for (int64_t b = g.n * p / parts; b < g.n * (p + 1) / parts; ++b) {
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
  if (const int kparts = weight_grad_k_parts(g)) {
    const int64_t m = g.n * g.out_h * g.out_w, blocks = (k + 11) / 12;
    parallel_for(kparts, [&](int64_t pbegin, int64_t pend) {
      for (int64_t p = pbegin; p < pend; ++p) {
        // dW rows [k0, k1), in multiples of the micro-kernel's 12, and db channels [c0, c1).
        const int64_t k0 = std::min(k, blocks * p / kparts * 12), k1 = std::min(k, blocks * (p + 1) / kparts * 12);
        const int64_t c0 = c * p / kparts, c1 = c * (p + 1) / kparts;
        float* colT = scratch + l.colT + p * l.col_size;
        float* packed = scratch + l.packed + p * l.packed_size;
        if (db != nullptr) {
          std::fill(db + c0, db + c1, 0.0f);
          add_rows(m, c1 - c0, dy + c0, c, db + c0);
        }
        if (k1 <= k0) continue;
        for (int64_t m0 = 0; m0 < m; m0 += kWeightDepth) {
          const int64_t rows = std::min(kWeightDepth, m - m0);
          const float* d = dy + m0 * c;
          for (int64_t grp = 0; grp < g.groups; ++grp) {
            // Aᵀ = the tile's im2col columns [k0, k1), copied even for 1×1 convolutions: read in
            // place, each 12-row block of dW touches `rows` lines of x a whole input row apart.
            im2col_columns(g, x, grp, m0, rows, k0, k1, colT);
            pack_b(rows, opg, d + grp * opg, c, packed);
            gemm_packed_at(k1 - k0, opg, rows, colT, k1 - k0, packed, dw + k0 * c + grp * opg, c, m0 > 0);
          }
        }
      }
    });
    return;
  }
  const int64_t tile = weight_tile_rows(g);
  const int64_t m = g.n * g.out_h * g.out_w;
  const int64_t tiles = (m + tile - 1) / tile;
  const int parts = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads(), tiles)));
  const bool direct = pointwise(g);
  // 1×1 with more output than input channels: dWᵀ = dYᵀ · X instead, packing the narrower X
  // and reading dY in place, so that the larger stream from memory overlaps the FMAs instead
  // of stalling pack_b (64 → 256: 1.2× faster; 128 → 512: 1.05×). The partials are then
  // [c × K]. Not past 512 channels: dY rows 4 KiB apart alias in L1 (256 → 1024: 0.85×).
  const bool swapped = direct && c > k && c <= 512;
  parallel_for(parts, [&](int64_t pbegin, int64_t pend) {
    for (int64_t p = pbegin; p < pend; ++p) {
      float* part = scratch + l.partial + p * l.part_size;  // dW [K × c] (or dWᵀ) then db [c]
      float* colT = scratch + l.colT + p * align16(tile * k);
      float* packed = scratch + l.packed + p * align16(packed_b_floats(tile, opg));
      std::fill(part, part + k * c + c, 0.0f);
      float* bpart = part + k * c;
      for (int64_t t = tiles * p / parts; t < tiles * (p + 1) / parts; ++t) {
        const int64_t m0 = t * tile, rows = std::min(tile, m - m0);
        const float* d = dy + m0 * c;
        if (db != nullptr) add_rows(rows, c, d, c, bpart);  // (as costly as a 16th of the GEMM)
        if (swapped) {                                      // one group
          pack_b(rows, k, x + m0 * g.c_in, g.c_in, packed);
          gemm_packed_at(c, k, rows, d, c, packed, part, k, true);
          continue;
        }
        for (int64_t grp = 0; grp < g.groups; ++grp) {
          // [rows × K], which is (dWᵀ's A)ᵀ: for 1×1 stride-1 convolutions the input itself.
          const float* at = x + m0 * g.c_in;
          if (!direct) {
            im2col(g, x, grp, m0, rows, colT);
            at = colT;
          }
          pack_b(rows, opg, d + grp * opg, c, packed);
          gemm_packed_at(k, opg, rows, at, direct ? g.c_in : k, packed, part + grp * opg, c, true);
        }
      }
    }
  });
  parallel_for(k * c + c, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t at = swapped && i < k * c ? i % c * k + i / c : i;
      float s = 0.0f;
      for (int p = 0; p < parts; ++p) s += scratch[l.partial + p * l.part_size + at];
      if (i < k * c) {
        dw[i] = s;
      } else if (db != nullptr) {
        db[i - k * c] = s;
      }
    }
  });
}

}  // namespace rn::cpu
