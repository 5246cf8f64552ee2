#include "conv2d_implicit_avx512.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "avx512_tile.hpp"
#include "gemm.hpp"
#include "gemm_avx512.hpp"

#pragma GCC diagnostic ignored "-Wpsabi"

namespace rn::cpu {
namespace {

// How the K loop is cut: `count` segments of `length` floats, contiguous in the input and in
// the packed weights (a kernel row when dilation_w = 1, else one tap).
struct Segments {
  int64_t count, length, pixels_wide;  // pixels_wide: input pixels one output pixel's segment spans
};
Segments segments_of(const Conv2dGeometry& g) {
  if (g.dilation_w == 1) return {g.kh, g.kw * g.c_in, g.kw};
  return {g.kh * g.kw, g.c_in, 1};
}

// The register blocks: Q pixels × 2 panels (Q ≤ 14: 28 accumulators + 2 B vectors + a broadcast
// in the 32 zmm registers) while two panels remain, Q pixels × 1 panel for the last odd one; a
// single-panel output (c_out ≤ 16) takes up to 28 pixels, so that a B vector is shared by as many
// FMAs as registers allow. (Q ≤ 6 × 4 panels, a broadcast feeding four FMAs, measured slower.)
constexpr int kTwoPanelQ[] = {1, 2, 4, 6, 7, 8, 10, 12, 14};
constexpr int kOnePanelQ[] = {1, 2, 4, 8, 12, 16, 20, 24, 28};
constexpr int kMaxQ = 28;

// Pixels per block for output rows `width` wide: the fewest block-pixel slots (dummy pixels of
// a short block are computed and not stored) plus a per-block overhead of about two pixels.
template <size_t N>
int block_pixels(int64_t width, const int (&choices)[N]) {
  int best = 1;
  int64_t best_cost = std::numeric_limits<int64_t>::max();
  for (int q : choices) {
    const int64_t blocks = (width + q - 1) / q;
    const int64_t cost = blocks * (q + 2);
    if (cost <= best_cost) best = q, best_cost = cost;
  }
  return best;
}

// Whether block_kernel_taps runs (see there): 3×3 at stride 1 from 16, 32 or 64 channels, at
// stride 2 from 16 or 32, and the 7×7/2 stem from 3 channels. Its two-panel blocks hold 2·KW
// weight vectors, so they take at most 12 pixels (8 for the stem).
bool register_taps(const Conv2dGeometry& g) {
  if (g.dilation_w != 1) return false;
  if (g.kw == 7 && g.stride_w == 2 && g.c_in == 3) return true;
  if (g.kw != 3) return false;
  if (g.stride_w == 1) return g.c_in == 16 || g.c_in == 32 || g.c_in == 64;
  // At stride 2 from 64 channels the 14-pixel blocks of block_kernel measured faster (~86 % vs ~81 %).
  return g.stride_w == 2 && (g.c_in == 16 || g.c_in == 32);
}
constexpr int kTwoPanelTapsQ[] = {1, 2, 4, 6, 7, 8, 10, 12};
constexpr int kTwoPanelStemQ[] = {1, 2, 4, 6, 7, 8};

int block_pixels(const Conv2dGeometry& g) {
  if (g.c_out <= kGemmPanel) return block_pixels(g.out_w, kOnePanelQ);
  if (!register_taps(g)) return block_pixels(g.out_w, kTwoPanelQ);
  return g.kw == 7 ? block_pixels(g.out_w, kTwoPanelStemQ) : block_pixels(g.out_w, kTwoPanelTapsQ);
}

// Floats one block's segment reads from its base: (Q − 1) pixel strides plus the segment.
int64_t piece_floats(const Conv2dGeometry& g) {
  const Segments s = segments_of(g);
  return ((kMaxQ - 1) * g.stride_w + s.pixels_wide) * g.c_in;
}

int64_t align16(int64_t n) { return (n + 15) / 16 * 16; }

// With dilation_h = 1 the border blocks read zero-padded copies of their input rows from a ring
// of kh rows (the kh rows one output row needs have distinct ih mod kh): each input row is
// copied once per tile, not once per block and kernel row. A ring row is [pad_left zeros | the
// row | zeros up to the farthest pixel a block, dummy pixels included, reads].
bool ring_rows(const Conv2dGeometry& g) { return g.dilation_h == 1; }
int64_t ring_row_floats(const Conv2dGeometry& g) {
  const int64_t reach = (g.out_w - 1 + kMaxQ) * g.stride_w + (g.kw - 1) * g.dilation_w + 1;
  return align16(std::max(reach, g.pad_left + g.w) * g.c_in);
}

}  // namespace

int64_t conv2d_implicit_thread_floats(const Conv2dGeometry& g) {
  const Segments s = segments_of(g);
  // pointer table (two floats per pointer), ring keys, the zero piece, one piece per segment,
  // the ring
  return align16(2 * s.count) + align16(2 * g.kh) + align16(piece_floats(g)) * (1 + s.count) +
         (ring_rows(g) ? g.kh * ring_row_floats(g) : 0);
}

#if defined(__x86_64__) && defined(__GNUC__)
}  // namespace rn::cpu

#include <immintrin.h>

namespace rn::cpu {
namespace {

using avx512::load16;
using avx512::v16;

struct BlockArgs {
  const float* const* base;  // per segment: pixel 0's first float; pixel q's is q·ps further
  int64_t segments, length, ps;
  const float* panel;  // the first panel's packed weights; the second is panel_stride further
  int64_t panel_stride;
  const float* bias;  // at the first panel (zero-padded), or null
  int64_t pixels;     // pixels stored (≤ Q)
  float* y;           // pixel 0's output at the first panel; row stride ldc
  int64_t ldc, cols;  // cols: real columns in the last panel
  const float* skip;  // with y's layout, or null
  bool relu;
  double* sum;  // batch statistics of the stored pixels (before any epilogue) at the first panel, or null
  double* sq;
};

// d[0..16) += v, widened to double.
typedef float v8f __attribute__((vector_size(32)));
typedef double v8d __attribute__((vector_size(64)));
RN_TARGET_AVX512 inline __attribute__((always_inline)) void add_to_doubles(double* d, v16 v) {
  const v8f lo = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7);
  const v8f hi = __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  v8d d0, d1;
  std::memcpy(&d0, d, sizeof(d0));
  std::memcpy(&d1, d + 8, sizeof(d1));
  d0 += __builtin_convertvector(lo, v8d);
  d1 += __builtin_convertvector(hi, v8d);
  std::memcpy(d, &d0, sizeof(d0));
  std::memcpy(d + 8, &d1, sizeof(d1));
}

// The epilogue while the accumulators are in registers: [+ skip], [ReLU], store the first
// args.pixels pixels (the rest are dummies).
template <int Q, int Panels>
RN_TARGET_AVX512 inline __attribute__((always_inline)) void store_block(v16 (&acc)[Q][Panels], const BlockArgs& args) {
  if (args.sum != nullptr) {  // float sums of at most Q ≤ 28 terms, then double (as sums_rows)
    for (int j = 0; j < Panels; ++j) {
      v16 s{}, s2{};
      for (int q = 0; q < Q; ++q) {
        if (q >= args.pixels) break;
        s += acc[q][j];
        s2 += acc[q][j] * acc[q][j];
      }
      add_to_doubles(args.sum + j * kGemmPanel, s);
      add_to_doubles(args.sq + j * kGemmPanel, s2);
    }
  }
  const __mmask16 last = static_cast<__mmask16>((1u << args.cols) - 1u);
  const v16 zero{};
  for (int q = 0; q < Q; ++q) {
    if (q >= args.pixels) break;
    float* row = args.y + q * args.ldc;
    const float* skip = args.skip != nullptr ? args.skip + q * args.ldc : nullptr;
    for (int j = 0; j < Panels; ++j) {
      const __mmask16 mask = j == Panels - 1 ? last : static_cast<__mmask16>(0xffff);
      v16 v = acc[q][j];
      if (mask == 0xffff) {
        if (skip != nullptr) v += load16(skip + j * kGemmPanel);
        if (args.relu) v = v < zero ? zero : v;  // NaN stays NaN, as relu_forward
        avx512::store16(row + j * kGemmPanel, v);
      } else {
        if (skip != nullptr) v += reinterpret_cast<v16>(_mm512_maskz_loadu_ps(mask, skip + j * kGemmPanel));
        if (args.relu) v = v < zero ? zero : v;
        _mm512_mask_storeu_ps(row + j * kGemmPanel, mask, reinterpret_cast<__m512>(v));
      }
    }
  }
}

template <int Q, int Panels>
RN_TARGET_AVX512 inline __attribute__((always_inline)) void start_block(v16 (&acc)[Q][Panels], const BlockArgs& args) {
  for (int j = 0; j < Panels; ++j) {
    const v16 start = args.bias != nullptr ? load16(args.bias + j * kGemmPanel) : v16{};
    for (int q = 0; q < Q; ++q) acc[q][j] = start;
  }
}

// Q pixels × Panels·16 channels. PS: the pixel stride stride_w·c_in when it is one of the
// compiled constants (then every A address is base + a constant and no pointer per pixel is
// held), else 0 and args.ps is used.
template <int Q, int Panels, int PS>
RN_TARGET_AVX512 __attribute__((noinline)) void block_kernel(const BlockArgs& args) {
  v16 acc[Q][Panels];
  start_block<Q, Panels>(acc, args);
  const int64_t ps = PS > 0 ? PS : args.ps;
  const int64_t length = args.length, panel_stride = args.panel_stride;
  const float* bseg = args.panel;
  for (int64_t s = 0; s < args.segments; ++s, bseg += length * kGemmPanel) {
    const float* a = args.base[s];
    for (int64_t kk = 0; kk < length; ++kk) {
      v16 b[Panels];
      for (int j = 0; j < Panels; ++j) b[j] = load16(bseg + j * panel_stride + kk * kGemmPanel);
      for (int q = 0; q < Q; ++q) {
        const float av = a[q * ps + kk];
        for (int j = 0; j < Panels; ++j) acc[q][j] += b[j] * av;
      }
    }
  }
  store_block<Q, Panels>(acc, args);
}

// Narrow kernel rows with few input channels (the 3×3 convolutions of CIFAR ResNets at stride 1
// and 2, the 7×7/2 ImageNet stem): the block's input pixel p feeds every output pixel q with
// q·SW + kx = p, so one broadcast of its channel value feeds up to KW / SW FMAs (against the KW
// weight vectors of the kernel row, held in registers) instead of one: far fewer A loads, which
// bound the single-panel kernel. C = c_in (the pixel stride is SW·C), compiled.
template <int Q, int Panels, int C, int KW, int SW>
RN_TARGET_AVX512 __attribute__((noinline)) void block_kernel_taps(const BlockArgs& args) {
  v16 acc[Q][Panels];
  start_block<Q, Panels>(acc, args);
  const int64_t panel_stride = args.panel_stride;
  const float* bseg = args.panel;
  for (int64_t s = 0; s < args.segments; ++s, bseg += KW * C * kGemmPanel) {
    const float* a = args.base[s];
#pragma GCC unroll 1
    for (int64_t ci = 0; ci < C; ++ci) {
      v16 b[KW][Panels];
#pragma GCC unroll 8
      for (int kx = 0; kx < KW; ++kx) {
        for (int j = 0; j < Panels; ++j) b[kx][j] = load16(bseg + j * panel_stride + (kx * C + ci) * kGemmPanel);
      }
#pragma GCC unroll 64
      for (int p = 0; p < (Q - 1) * SW + KW; ++p) {
        const float av = a[p * C + ci];
#pragma GCC unroll 8
        for (int kx = 0; kx < KW; ++kx) {
          const int d = p - kx;
          if (d < 0 || d % SW != 0 || d / SW >= Q) continue;
          for (int j = 0; j < Panels; ++j) acc[d / SW][j] += b[kx][j] * av;
        }
      }
    }
  }
  store_block<Q, Panels>(acc, args);
}

using BlockKernel = void (*)(const BlockArgs&);

template <int Panels, int PS>
BlockKernel kernel_for_q(int q) {
  if constexpr (Panels == 2) {
    switch (q) {
      case 1:
        return block_kernel<1, 2, PS>;
      case 2:
        return block_kernel<2, 2, PS>;
      case 4:
        return block_kernel<4, 2, PS>;
      case 6:
        return block_kernel<6, 2, PS>;
      case 7:
        return block_kernel<7, 2, PS>;
      case 8:
        return block_kernel<8, 2, PS>;
      case 10:
        return block_kernel<10, 2, PS>;
      case 12:
        return block_kernel<12, 2, PS>;
      default:
        return block_kernel<14, 2, PS>;
    }
  } else {
    switch (q) {
      case 1:
        return block_kernel<1, 1, PS>;
      case 2:
        return block_kernel<2, 1, PS>;
      case 4:
        return block_kernel<4, 1, PS>;
      case 6:
        return block_kernel<6, 1, PS>;
      case 7:
        return block_kernel<7, 1, PS>;
      case 8:
        return block_kernel<8, 1, PS>;
      case 10:
        return block_kernel<10, 1, PS>;
      case 12:
        return block_kernel<12, 1, PS>;
      case 14:
        return block_kernel<14, 1, PS>;
      case 16:
        return block_kernel<16, 1, PS>;
      case 20:
        return block_kernel<20, 1, PS>;
      case 24:
        return block_kernel<24, 1, PS>;
      default:
        return block_kernel<28, 1, PS>;
    }
  }
}

template <int Panels>
BlockKernel kernel_for(int q, int64_t ps) {
  switch (ps) {
    case 3:
      return kernel_for_q<Panels, 3>(q);  // the CIFAR stem: 3 channels
    case 6:
      return kernel_for_q<Panels, 6>(q);  // the ImageNet stem: 3 channels, stride 2
    case 16:
      return kernel_for_q<Panels, 16>(q);
    case 32:
      return kernel_for_q<Panels, 32>(q);
    case 64:
      return kernel_for_q<Panels, 64>(q);
    case 128:
      return kernel_for_q<Panels, 128>(q);
    default:
      return kernel_for_q<Panels, 0>(q);
  }
}

template <int Panels, int C, int KW, int SW>
BlockKernel taps_for_q(int q) {
  if constexpr (Panels == 2 && KW == 7) {
    switch (q) {
      case 1:
        return block_kernel_taps<1, 2, C, KW, SW>;
      case 2:
        return block_kernel_taps<2, 2, C, KW, SW>;
      case 4:
        return block_kernel_taps<4, 2, C, KW, SW>;
      case 6:
        return block_kernel_taps<6, 2, C, KW, SW>;
      case 7:
        return block_kernel_taps<7, 2, C, KW, SW>;
      default:
        return block_kernel_taps<8, 2, C, KW, SW>;
    }
  } else if constexpr (Panels == 2) {
    switch (q) {
      case 1:
        return block_kernel_taps<1, 2, C, KW, SW>;
      case 2:
        return block_kernel_taps<2, 2, C, KW, SW>;
      case 4:
        return block_kernel_taps<4, 2, C, KW, SW>;
      case 6:
        return block_kernel_taps<6, 2, C, KW, SW>;
      case 7:
        return block_kernel_taps<7, 2, C, KW, SW>;
      case 8:
        return block_kernel_taps<8, 2, C, KW, SW>;
      case 10:
        return block_kernel_taps<10, 2, C, KW, SW>;
      default:
        return block_kernel_taps<12, 2, C, KW, SW>;
    }
  } else {
    switch (q) {
      case 1:
        return block_kernel_taps<1, 1, C, KW, SW>;
      case 2:
        return block_kernel_taps<2, 1, C, KW, SW>;
      case 4:
        return block_kernel_taps<4, 1, C, KW, SW>;
      case 6:
        return block_kernel_taps<6, 1, C, KW, SW>;
      case 7:
        return block_kernel_taps<7, 1, C, KW, SW>;
      case 8:
        return block_kernel_taps<8, 1, C, KW, SW>;
      case 10:
        return block_kernel_taps<10, 1, C, KW, SW>;
      case 12:
        return block_kernel_taps<12, 1, C, KW, SW>;
      case 14:
        return block_kernel_taps<14, 1, C, KW, SW>;
      case 16:
        return block_kernel_taps<16, 1, C, KW, SW>;
      case 20:
        return block_kernel_taps<20, 1, C, KW, SW>;
      case 24:
        return block_kernel_taps<24, 1, C, KW, SW>;
      default:
        return block_kernel_taps<28, 1, C, KW, SW>;
    }
  }
}

template <int Panels>
BlockKernel taps_for(const Conv2dGeometry& g, int q) {
  if (g.kw == 7) return taps_for_q<Panels, 3, 7, 2>(q);
  if (g.stride_w == 1) {
    switch (g.c_in) {
      case 16:
        return taps_for_q<Panels, 16, 3, 1>(q);
      case 32:
        return taps_for_q<Panels, 32, 3, 1>(q);
      default:
        return taps_for_q<Panels, 64, 3, 1>(q);
    }
  }
  return g.c_in == 16 ? taps_for_q<Panels, 16, 3, 2>(q) : taps_for_q<Panels, 32, 3, 2>(q);
}

// The ring of padded input rows (see ring_rows).
struct Ring {
  float* rows;
  int64_t* keys;  // b·h + ih of each slot's row; −1: never filled in this call (pads not yet zero)
  int64_t row_floats;
};

const float* padded_row(const Conv2dGeometry& g, const float* x, const Ring& ring, int64_t b, int64_t ih) {
  const int64_t key = b * g.h + ih, slot = ih % g.kh;
  float* row = ring.rows + slot * ring.row_floats;
  if (ring.keys[slot] != key) {
    const int64_t left = g.pad_left * g.c_in, right = left + g.w * g.c_in;
    if (ring.keys[slot] < 0) {  // the pads stay zero for the rest of the call
      std::fill(row, row + left, 0.0f);
      std::fill(row + right, row + ring.row_floats, 0.0f);
    }
    const float* src = x + key * g.w * g.c_in;
    std::copy(src, src + g.w * g.c_in, row + left);
    ring.keys[slot] = key;
  }
  return row;
}

// Where a block's segment starts: in x when its input row is inside the image and its whole
// pixel range [iw0, iw_end) too; the zero piece above or below the image; else the ring's
// padded copy of the row, or (dilation_h > 1) `piece`, filled with the range, zeros outside it.
const float* segment_base(const Conv2dGeometry& g, const float* x, const Ring* ring, int64_t b, int64_t ih, int64_t iw0,
                          int64_t iw_end, const float* zero, float* piece) {
  if (ih < 0 || ih >= g.h) return zero;
  const float* row = x + (b * g.h + ih) * g.w * g.c_in;
  if (iw0 >= 0 && iw_end <= g.w) return row + iw0 * g.c_in;
  if (ring != nullptr) return padded_row(g, x, *ring, b, ih) + (iw0 + g.pad_left) * g.c_in;
  const int64_t lo = std::clamp<int64_t>(iw0, 0, g.w), hi = std::clamp<int64_t>(iw_end, lo, g.w);
  const int64_t c = g.c_in;
  std::fill(piece, piece + (lo - iw0) * c, 0.0f);
  std::copy(row + lo * c, row + hi * c, piece + (lo - iw0) * c);
  std::fill(piece + (hi - iw0) * c, piece + (iw_end - iw0) * c, 0.0f);
  return piece;
}

}  // namespace

bool conv2d_implicit_available(const Conv2dGeometry& g) { return g.groups == 1 && gemm_avx512_enabled(); }

void conv2d_implicit_rows(const Conv2dGeometry& g, const float* x, const float* packed_w, const ImplicitStore& store,
                          int64_t r0, int64_t r1, float* y, float* scratch, double* sum, double* sq,
                          const PanelShare& share) {
  const Segments seg = segments_of(g);
  const int64_t piece = align16(piece_floats(g));
  auto** base = reinterpret_cast<const float**>(scratch);
  auto* keys = reinterpret_cast<int64_t*>(scratch + align16(2 * seg.count));
  float* zero = scratch + align16(2 * seg.count) + align16(2 * g.kh);
  float* pieces = zero + piece;
  Ring ring{pieces + seg.count * piece, keys, ring_row_floats(g)};
  std::fill(keys, keys + g.kh, int64_t{-1});
  const Ring* rows = ring_rows(g) ? &ring : nullptr;
  const int64_t panels = (g.c_out + kGemmPanel - 1) / kGemmPanel;
  const int q = block_pixels(g);
  const int64_t ps = g.stride_w * g.c_in;
  const bool taps = register_taps(g);
  const BlockKernel two = taps ? taps_for<2>(g, q) : kernel_for<2>(q, ps);
  const BlockKernel one = taps ? taps_for<1>(g, q) : kernel_for<1>(q, ps);
  // The last pixel a block's segment reads, counted from its first: (q − 1) strides on.
  const int64_t reach = (q - 1) * g.stride_w + seg.pixels_wide;
  std::fill(zero, zero + (q - 1) * ps + seg.length, 0.0f);

  BlockArgs args{};
  args.base = base;
  args.segments = seg.count;
  args.length = seg.length;
  args.ps = ps;
  args.panel_stride = g.kh * g.kw * g.c_in * kGemmPanel;
  args.ldc = g.c_out;
  args.relu = store.epilogue.relu;
  const int64_t blocks = (g.out_w + q - 1) / q;
  // One register block: output row r, block blk, panels [p_begin, p_end) in pairs.
  auto run_block = [&](int64_t r, int64_t blk, int64_t p_begin, int64_t p_end) {
    const int64_t b = r / g.out_h, oh = r % g.out_h;
    const int64_t ow0 = g.out_w * blk / blocks, ow1 = g.out_w * (blk + 1) / blocks;
    for (int64_t s = 0; s < seg.count; ++s) {
      const int64_t ky = g.dilation_w == 1 ? s : s / g.kw, kx = g.dilation_w == 1 ? 0 : s % g.kw;
      const int64_t ih = oh * g.stride_h - g.pad_top + ky * g.dilation_h;
      const int64_t iw0 = ow0 * g.stride_w - g.pad_left + kx * g.dilation_w;
      base[s] = segment_base(g, x, rows, b, ih, iw0, iw0 + reach, zero, pieces + s * piece);
    }
    const int64_t m = r * g.out_w + ow0;
    args.pixels = ow1 - ow0;
    for (int64_t p = p_begin; p < p_end;) {
      const int64_t step = p + 2 <= p_end ? 2 : 1;
      const int64_t last_panel = p + step - 1;
      args.panel = packed_w + p * args.panel_stride;
      args.bias = store.bias != nullptr ? store.bias + p * kGemmPanel : nullptr;
      args.y = y + m * g.c_out + p * kGemmPanel;
      args.skip = store.epilogue.skip != nullptr ? store.epilogue.skip + m * g.c_out + p * kGemmPanel : nullptr;
      args.cols = std::min(kGemmPanel, g.c_out - last_panel * kGemmPanel);
      args.sum = sum != nullptr ? sum + p * kGemmPanel : nullptr;
      args.sq = sq != nullptr ? sq + p * kGemmPanel : nullptr;
      (step == 2 ? two : one)(args);
      p += step;
    }
  };
  const int64_t p_begin = share.begin, p_end = share.end == PanelShare::kAll ? panels : share.end;
  if (share.pairs_outer) {
    // Each pair of panels over every block: its weights (kh·kw·c_in × 32) stay in L2 across the
    // blocks instead of all the weights streaming past once per block.
    for (int64_t p = p_begin; p < p_end; p += 2) {
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t blk = 0; blk < blocks; ++blk) run_block(r, blk, p, std::min(p + 2, p_end));
      }
    }
    return;
  }
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t blk = 0; blk < blocks; ++blk) run_block(r, blk, p_begin, p_end);
  }
}
#else
bool conv2d_implicit_available(const Conv2dGeometry&) { return false; }
void conv2d_implicit_rows(const Conv2dGeometry&, const float*, const float*, const ImplicitStore&, int64_t, int64_t,
                          float*, float*, double*, double*, const PanelShare&) {}
#endif

}  // namespace rn::cpu
