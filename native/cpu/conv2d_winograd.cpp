#include "conv2d_winograd.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "../core/thread_pool.hpp"
#include "batch_norm_kernels.hpp"
#include "conv2d_gemm.hpp"
#include "gemm.hpp"
#include "gemm_avx512.hpp"
#include "simd_dispatch.hpp"

#pragma GCC diagnostic ignored "-Wpsabi"

namespace rn::cpu {
namespace {

constexpr int64_t kElements = 16;      // F(2×2): 4×4 transformed tile
constexpr int64_t kElements4 = 36;     // F(4×4): 6×6 transformed tile
constexpr int64_t kStatsPixels = 128;  // pixels whose statistics are summed in float before going to double
constexpr int64_t kWeightRows = 16;    // input channels per weight-transform part

#define RN_INLINE inline __attribute__((always_inline))

// The transforms' channel loops read and write 16 distinct streams: no iteration depends on
// another, which the compiler cannot prove (restrict on locals is not honoured).
#if defined(__clang__)
#define RN_INDEPENDENT _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define RN_INDEPENDENT _Pragma("GCC ivdep")
#else
#define RN_INDEPENDENT
#endif

int64_t align16(int64_t n) { return (n + 15) / 16 * 16; }

// Floats between consecutive elements' matrices in V (c = c_in) and M (c = c_out): padded off
// powers of two, so the transforms' 16 streams do not fall into the same L1 sets.
int64_t element_stride(int64_t chunk, int64_t c) { return align16(chunk * c) + 16; }
int threads() { return num_threads(); }

// m: the output tile's side, 2 (F(2×2, 3×3)) or 4 (F(4×4, 3×3)).
int64_t elements(int m) { return m == 4 ? kElements4 : kElements; }
int64_t tiles_h(const Conv2dGeometry& g, int m = 2) { return (g.out_h + m - 1) / m; }
int64_t tiles_w(const Conv2dGeometry& g, int m = 2) { return (g.out_w + m - 1) / m; }

// Tiles per chunk: the chunk's transformed input and GEMM output (elements × tiles × (c_in +
// c_out) floats) stay within about 1 MiB of L2.
int64_t chunk_tiles(const Conv2dGeometry& g, int m) {
  return std::clamp<int64_t>(16384 * 16 / elements(m) / std::max<int64_t>(1, g.c_in + g.c_out) / 8 * 8, 16, 256);
}

// RESNET_WINOGRAD: -1 unset (heuristic), 0 never, 1 always where eligible (the tile the heuristic
// prefers), 2 ("2x2") / 4 ("4x4") always where eligible with that tile.
int winograd_override() {
  static const int mode = [] {
    const char* v = std::getenv("RESNET_WINOGRAD");
    if (v == nullptr || *v == '\0') return -1;
    if (std::strcmp(v, "0") == 0) return 0;
    if (std::strcmp(v, "1") == 0) return 1;
    if (std::strcmp(v, "2x2") == 0) return 2;
    if (std::strcmp(v, "4x4") == 0) return 4;
    return -1;
  }();
  return mode;
}

// The transposed convolution whose forward is g's input gradient: dy convolved with the flipped,
// transposed weights; its pads may be negative (handled by the input transform's bounds).
Conv2dGeometry transposed(const Conv2dGeometry& g) {
  Conv2dGeometry f = g;
  f.h = g.out_h;
  f.w = g.out_w;
  f.c_in = g.c_out;
  f.c_out = g.c_in;
  f.pad_top = 2 - g.pad_top;
  f.pad_left = 2 - g.pad_left;
  f.pad_bottom = g.h + g.pad_top - g.out_h;
  f.pad_right = g.w + g.pad_left - g.out_w;
  f.out_h = g.h;
  f.out_w = g.w;
  return f;
}

struct Layout {
  int64_t packed, element_size, stats, fsums, zeros, v, m, dump, per_thread, total;
  int64_t chunk;
};
Layout layout(const Conv2dGeometry& g, int tile) {
  Layout l;
  const int64_t t = threads(), ne = elements(tile);
  l.chunk = chunk_tiles(g, tile);
  l.element_size = align16(packed_b_floats(g.c_in, g.c_out)) + 16;  // off powers of two (see element_stride)
  l.packed = 0;
  l.stats = l.packed + ne * l.element_size;      // double sum, sum of squares per thread
  l.fsums = l.stats + align16(4 * g.c_out * t);  // float block sums per thread
  l.zeros = l.fsums + align16(2 * g.c_out * t);  // zeros: padding reads, absent bias
  l.v = l.zeros + align16(std::max(g.c_in, g.c_out));
  // per thread: V [elements][chunk][c_in], M [elements][chunk][c_out], dump rows for clipped outputs
  l.m = ne * element_stride(l.chunk, g.c_in);
  l.dump = l.m + ne * element_stride(l.chunk, g.c_out);
  l.per_thread = l.dump + align16(tile * tile * g.c_out);
  l.total = l.v + l.per_thread * t;
  return l;
}

// The N×N input pixels of a tile whose top-left input pixel is (ih0, iw0) of image b, row by row:
// pointers into x, or `zeros` (c_in floats) where the pixel lies outside the image.
template <int N>
RN_INLINE void tile_inputs(const Conv2dGeometry& g, const float* x, const float* zeros, int64_t b, int64_t ih0,
                           int64_t iw0, const float* (&p)[N * N]) {
  for (int i = 0; i < N; ++i) {
    const int64_t ih = ih0 + i;
    for (int j = 0; j < N; ++j) {
      const int64_t iw = iw0 + j;
      p[i * N + j] = (ih >= 0 && ih < g.h && iw >= 0 && iw < g.w) ? x + ((b * g.h + ih) * g.w + iw) * g.c_in : zeros;
    }
  }
}

// Bᵀ·d·B of tiles [t0, t0 + count) into V [16][chunk][c_in]; Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1].
RN_SIMD_CLONES void input_transform(const Conv2dGeometry& g, const float* x, const float* zeros, int64_t t0,
                                    int64_t count, int64_t chunk, float* v) {
  const int64_t th = tiles_h(g), tw = tiles_w(g), c = g.c_in;
  const int64_t estride = element_stride(chunk, c);
  for (int64_t lt = 0; lt < count; ++lt) {
    const int64_t t = t0 + lt;
    const int64_t tx = t % tw, rest = t / tw;
    const int64_t ty = rest % th, b = rest / th;
    const float* p[16];
    tile_inputs<4>(g, x, zeros, b, 2 * ty - g.pad_top, 2 * tx - g.pad_left, p);
    const float* __restrict d00 = p[0], * __restrict d01 = p[1], * __restrict d02 = p[2], * __restrict d03 = p[3];
    const float* __restrict d10 = p[4], * __restrict d11 = p[5], * __restrict d12 = p[6], * __restrict d13 = p[7];
    const float* __restrict d20 = p[8], * __restrict d21 = p[9], * __restrict d22 = p[10], * __restrict d23 = p[11];
    const float* __restrict d30 = p[12], * __restrict d31 = p[13], * __restrict d32 = p[14], * __restrict d33 = p[15];
    float* __restrict o = v + lt * c;
    RN_INDEPENDENT
    for (int64_t ch = 0; ch < c; ++ch) {
      // rows: Bᵀ·d
      const float r00 = d00[ch] - d20[ch], r01 = d01[ch] - d21[ch], r02 = d02[ch] - d22[ch], r03 = d03[ch] - d23[ch];
      const float r10 = d10[ch] + d20[ch], r11 = d11[ch] + d21[ch], r12 = d12[ch] + d22[ch], r13 = d13[ch] + d23[ch];
      const float r20 = d20[ch] - d10[ch], r21 = d21[ch] - d11[ch], r22 = d22[ch] - d12[ch], r23 = d23[ch] - d13[ch];
      const float r30 = d10[ch] - d30[ch], r31 = d11[ch] - d31[ch], r32 = d12[ch] - d32[ch], r33 = d13[ch] - d33[ch];
      // columns: (Bᵀ·d)·B
      o[0 * estride + ch] = r00 - r02;
      o[1 * estride + ch] = r01 + r02;
      o[2 * estride + ch] = r02 - r01;
      o[3 * estride + ch] = r01 - r03;
      o[4 * estride + ch] = r10 - r12;
      o[5 * estride + ch] = r11 + r12;
      o[6 * estride + ch] = r12 - r11;
      o[7 * estride + ch] = r11 - r13;
      o[8 * estride + ch] = r20 - r22;
      o[9 * estride + ch] = r21 + r22;
      o[10 * estride + ch] = r22 - r21;
      o[11 * estride + ch] = r21 - r23;
      o[12 * estride + ch] = r30 - r32;
      o[13 * estride + ch] = r31 + r32;
      o[14 * estride + ch] = r32 - r31;
      o[15 * estride + ch] = r31 - r33;
    }
  }
}

// Aᵀ·m·A (+ bias) of tiles [t0, t0 + count) from M [16][chunk][c_out] into y;
// Aᵀ = [1 1 1 0; 0 1 −1 −1]. Outputs past the bottom / right edge go to `dump` (3 rows).
// With sum != nullptr, adds the written pixels to the statistics (float blocks, then double).
RN_SIMD_CLONES void output_transform(const Conv2dGeometry& g, const float* m, const float* bias, int64_t t0,
                                     int64_t count, int64_t chunk, float* y, float* dump, double* sum, double* sq,
                                     float* fs, float* fq, const ConvEpilogue& epilogue) {
  const int64_t th = tiles_h(g), tw = tiles_w(g), c = g.c_out;
  const int64_t estride = element_stride(chunk, c);
  if (sum) {
    std::fill(fs, fs + c, 0.0f);
    std::fill(fq, fq + c, 0.0f);
  }
  for (int64_t lt = 0; lt < count; ++lt) {
    const int64_t t = t0 + lt;
    const int64_t tx = t % tw, rest = t / tw;
    const int64_t ty = rest % th, b = rest / th;
    const int64_t oh = 2 * ty, ow = 2 * tx;
    const bool down = oh + 1 < g.out_h, right = ow + 1 < g.out_w;
    float* base = y + ((b * g.out_h + oh) * g.out_w + ow) * c;
    float* __restrict y00 = base;
    float* __restrict y01 = right ? base + c : dump;
    float* __restrict y10 = down ? base + g.out_w * c : dump + c;
    float* __restrict y11 = down && right ? base + (g.out_w + 1) * c : dump + 2 * c;
    const float* __restrict s = m + lt * c;
    const float* __restrict bs = bias;
    RN_INDEPENDENT
    for (int64_t ch = 0; ch < c; ++ch) {
      const float m00 = s[0 * estride + ch], m01 = s[1 * estride + ch], m02 = s[2 * estride + ch],
                  m03 = s[3 * estride + ch];
      const float m10 = s[4 * estride + ch], m11 = s[5 * estride + ch], m12 = s[6 * estride + ch],
                  m13 = s[7 * estride + ch];
      const float m20 = s[8 * estride + ch], m21 = s[9 * estride + ch], m22 = s[10 * estride + ch],
                  m23 = s[11 * estride + ch];
      const float m30 = s[12 * estride + ch], m31 = s[13 * estride + ch], m32 = s[14 * estride + ch],
                  m33 = s[15 * estride + ch];
      // rows: Aᵀ·m
      const float a0 = m00 + m10 + m20, a1 = m01 + m11 + m21, a2 = m02 + m12 + m22, a3 = m03 + m13 + m23;
      const float b0 = m10 - m20 - m30, b1 = m11 - m21 - m31, b2 = m12 - m22 - m32, b3 = m13 - m23 - m33;
      // columns: (Aᵀ·m)·A
      y00[ch] = a0 + a1 + a2 + bs[ch];
      y01[ch] = a1 - a2 - a3 + bs[ch];
      y10[ch] = b0 + b1 + b2 + bs[ch];
      y11[ch] = b1 - b2 - b3 + bs[ch];
    }
    if (epilogue.active()) {  // the inference plan's residual add and ReLU, on the tile's pixels
      float* pixels[4] = {y00, right ? y01 : nullptr, down ? y10 : nullptr, down && right ? y11 : nullptr};
      for (float* px : pixels) {
        if (px != nullptr) apply_conv_epilogue(epilogue, px - y, c, px);
      }
    }
    if (sum) {
      float* rows[4] = {y00, right ? y01 : nullptr, down ? y10 : nullptr, down && right ? y11 : nullptr};
      for (float* r : rows) {
        if (r == nullptr) continue;
        const float* __restrict rr = r;
        for (int64_t ch = 0; ch < c; ++ch) {
          fs[ch] += rr[ch];
          fq[ch] += rr[ch] * rr[ch];
        }
      }
      if ((lt + 1) % (kStatsPixels / 4) == 0 || lt + 1 == count) {
        for (int64_t ch = 0; ch < c; ++ch) {
          sum[ch] += fs[ch];
          sq[ch] += fq[ch];
          fs[ch] = 0.0f;
          fq[ch] = 0.0f;
        }
      }
    }
  }
}

// ---- F(4×4, 3×3): interpolation points 0, 1, −1, 2, −2 and ∞ (Lavin & Gray's matrices) ----
//   Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1]
//   G  = [¼ 0 0; −⅙ −⅙ −⅙; −⅙ ⅙ −⅙; 1⁄24 1⁄12 ⅙; 1⁄24 −1⁄12 ⅙; 0 0 1]
//   Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1]
// The transforms are written once over a vector type V (16 floats for AVX-512, 8 for the AVX2 /
// baseline clones, 1 for the channels left over) and run over the channels of NHWC pixels.

template <class V>
RN_INLINE V load_v(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}
template <class V>
RN_INLINE void store_v(float* p, V v) {
  std::memcpy(p, &v, sizeof(V));
}

// r = Bᵀ·d for one column of 6.
template <class V>
RN_INLINE void bt6(const V (&d)[6], V (&r)[6]) {
  const V t1 = d[4] - 4.0f * d[2], t2 = d[3] - 4.0f * d[1];
  const V t3 = d[4] - d[2], t4 = 2.0f * (d[3] - d[1]);
  r[0] = (d[4] - 5.0f * d[2]) + 4.0f * d[0];
  r[1] = t1 + t2;
  r[2] = t1 - t2;
  r[3] = t3 + t4;
  r[4] = t3 - t4;
  r[5] = (d[5] - 5.0f * d[3]) + 4.0f * d[1];
}

// y = Aᵀ·m for one column of 6.
template <class V>
RN_INLINE void at6(const V (&m)[6], V (&y)[4]) {
  const V s12 = m[1] + m[2], d12 = m[1] - m[2], s34 = m[3] + m[4], d34 = m[3] - m[4];
  y[0] = m[0] + s12 + s34;
  y[1] = d12 + 2.0f * d34;
  y[2] = s12 + 4.0f * s34;
  y[3] = d12 + 8.0f * d34 + m[5];
}

// Bᵀ·d·B of one tile's channels [ch, ch + lanes): p[36] the input pixels (zeros outside).
template <class V>
RN_INLINE void input_tile4(const float* const* p, int64_t ch, float* o, int64_t estride) {
  V t[6][6];
  for (int j = 0; j < 6; ++j) {
    V d[6], r[6];
    for (int i = 0; i < 6; ++i) d[i] = load_v<V>(p[i * 6 + j] + ch);
    bt6(d, r);
    for (int i = 0; i < 6; ++i) t[i][j] = r[i];
  }
  for (int i = 0; i < 6; ++i) {
    V r[6];
    bt6(t[i], r);
    for (int k = 0; k < 6; ++k) store_v<V>(o + (i * 6 + k) * estride + ch, r[k]);
  }
}

// Aᵀ·m·A + bias of one tile's channels [ch, ch + lanes) into the 16 output pixels px.
template <class V>
RN_INLINE void output_tile4(const float* s, int64_t estride, const float* bias, int64_t ch, float* const* px) {
  V t[4][6];
  for (int k = 0; k < 6; ++k) {
    V mm[6], r[4];
    for (int i = 0; i < 6; ++i) mm[i] = load_v<V>(s + (i * 6 + k) * estride + ch);
    at6(mm, r);
    for (int i = 0; i < 4; ++i) t[i][k] = r[i];
  }
  const V b = load_v<V>(bias + ch);
  for (int i = 0; i < 4; ++i) {
    V r[4];
    at6(t[i], r);
    for (int k = 0; k < 4; ++k) store_v<V>(px[i * 4 + k] + ch, r[k] + b);
  }
}

// Bᵀ·d·B of tiles [t0, t0 + count) into V [36][chunk][c_in].
template <class V>
RN_INLINE void input_transform4_body(const Conv2dGeometry& g, const float* x, const float* zeros, int64_t t0,
                                     int64_t count, int64_t estride, float* v) {
  constexpr int64_t lanes = sizeof(V) / sizeof(float);
  const int64_t th = tiles_h(g, 4), tw = tiles_w(g, 4), c = g.c_in;
  for (int64_t lt = 0; lt < count; ++lt) {
    const int64_t t = t0 + lt;
    const int64_t tx = t % tw, rest = t / tw;
    const int64_t ty = rest % th, b = rest / th;
    const float* p[36];
    tile_inputs<6>(g, x, zeros, b, 4 * ty - g.pad_top, 4 * tx - g.pad_left, p);
    float* o = v + lt * c;
    int64_t ch = 0;
    for (; ch + lanes <= c; ch += lanes) input_tile4<V>(p, ch, o, estride);
    for (; ch < c; ++ch) input_tile4<float>(p, ch, o, estride);
  }
}

// Aᵀ·m·A (+ bias, the epilogue, the statistics) of tiles [t0, t0 + count) from M [36][chunk][c_out].
template <class V>
RN_INLINE void output_transform4_body(const Conv2dGeometry& g, const float* m, const float* bias, int64_t t0,
                                      int64_t count, int64_t estride, float* y, float* dump, double* sum, double* sq,
                                      float* fs, float* fq, const ConvEpilogue& epilogue) {
  constexpr int64_t lanes = sizeof(V) / sizeof(float);
  const int64_t th = tiles_h(g, 4), tw = tiles_w(g, 4), c = g.c_out;
  if (sum) {
    std::fill(fs, fs + c, 0.0f);
    std::fill(fq, fq + c, 0.0f);
  }
  for (int64_t lt = 0; lt < count; ++lt) {
    const int64_t t = t0 + lt;
    const int64_t tx = t % tw, rest = t / tw;
    const int64_t ty = rest % th, b = rest / th;
    const int64_t oh = 4 * ty, ow = 4 * tx;
    float* px[16];
    bool inside[16];
    for (int i = 0; i < 4; ++i) {
      for (int k = 0; k < 4; ++k) {
        inside[i * 4 + k] = oh + i < g.out_h && ow + k < g.out_w;
        px[i * 4 + k] =
            inside[i * 4 + k] ? y + ((b * g.out_h + oh + i) * g.out_w + ow + k) * c : dump + (i * 4 + k) * c;
      }
    }
    const float* s = m + lt * c;
    int64_t ch = 0;
    for (; ch + lanes <= c; ch += lanes) output_tile4<V>(s, estride, bias, ch, px);
    for (; ch < c; ++ch) output_tile4<float>(s, estride, bias, ch, px);
    if (epilogue.active()) {  // the inference plan's residual add and ReLU, on the tile's pixels
      for (int q = 0; q < 16; ++q) {
        if (inside[q]) apply_conv_epilogue(epilogue, px[q] - y, c, px[q]);
      }
    }
    if (sum) {
      for (int q = 0; q < 16; ++q) {
        if (!inside[q]) continue;
        const float* __restrict rr = px[q];
        for (int64_t k = 0; k < c; ++k) {
          fs[k] += rr[k];
          fq[k] += rr[k] * rr[k];
        }
      }
      if ((lt + 1) % (kStatsPixels / 16) == 0 || lt + 1 == count) {
        for (int64_t k = 0; k < c; ++k) {
          sum[k] += fs[k];
          sq[k] += fq[k];
          fs[k] = 0.0f;
          fq[k] = 0.0f;
        }
      }
    }
  }
}

typedef float v8f __attribute__((vector_size(32)));

RN_SIMD_CLONES void input_transform4_v8(const Conv2dGeometry& g, const float* x, const float* zeros, int64_t t0,
                                        int64_t count, int64_t estride, float* v) {
  input_transform4_body<v8f>(g, x, zeros, t0, count, estride, v);
}
RN_SIMD_CLONES void output_transform4_v8(const Conv2dGeometry& g, const float* m, const float* bias, int64_t t0,
                                         int64_t count, int64_t estride, float* y, float* dump, double* sum, double* sq,
                                         float* fs, float* fq, const ConvEpilogue& epilogue) {
  output_transform4_body<v8f>(g, m, bias, t0, count, estride, y, dump, sum, sq, fs, fq, epilogue);
}

#if defined(__x86_64__) && defined(__GNUC__)
typedef float v16f __attribute__((vector_size(64)));
__attribute__((target("avx512f"))) void input_transform4_v16(const Conv2dGeometry& g, const float* x,
                                                             const float* zeros, int64_t t0, int64_t count,
                                                             int64_t estride, float* v) {
  input_transform4_body<v16f>(g, x, zeros, t0, count, estride, v);
}
__attribute__((target("avx512f"))) void output_transform4_v16(const Conv2dGeometry& g, const float* m,
                                                              const float* bias, int64_t t0, int64_t count,
                                                              int64_t estride, float* y, float* dump, double* sum,
                                                              double* sq, float* fs, float* fq,
                                                              const ConvEpilogue& epilogue) {
  output_transform4_body<v16f>(g, m, bias, t0, count, estride, y, dump, sum, sq, fs, fq, epilogue);
}
#endif

void input_transform4(const Conv2dGeometry& g, const float* x, const float* zeros, int64_t t0, int64_t count,
                      int64_t estride, float* v) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (gemm_avx512_enabled()) return input_transform4_v16(g, x, zeros, t0, count, estride, v);
#endif
  input_transform4_v8(g, x, zeros, t0, count, estride, v);
}
void output_transform4(const Conv2dGeometry& g, const float* m, const float* bias, int64_t t0, int64_t count,
                       int64_t estride, float* y, float* dump, double* sum, double* sq, float* fs, float* fq,
                       const ConvEpilogue& epilogue) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (gemm_avx512_enabled())
    return output_transform4_v16(g, m, bias, t0, count, estride, y, dump, sum, sq, fs, fq, epilogue);
#endif
  output_transform4_v8(g, m, bias, t0, count, estride, y, dump, sum, sq, fs, fq, epilogue);
}

// G·g·Gᵀ of the weights. F(2×2): G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]; F(4×4): G above. Written
// straight into the packed B matrices (pack_b's layout: panels [c_out/16][c_in][16], zero past
// c_out), vectorised over output channels: a vector of lanes never crosses a 16-wide panel.
template <class V>
RN_INLINE void gcol(const V& a, const V& b, const V& c, V (&u)[4]) {
  u[0] = a;
  u[1] = 0.5f * (a + b + c);
  u[2] = 0.5f * (a - b + c);
  u[3] = c;
}
template <class V>
RN_INLINE void gcol(const V& a, const V& b, const V& c, V (&u)[6]) {
  u[0] = 0.25f * a;
  u[1] = (-1.0f / 6.0f) * (a + b + c);
  u[2] = (-1.0f / 6.0f) * (a - b + c);
  u[3] = (1.0f / 24.0f) * a + (1.0f / 12.0f) * b + (1.0f / 6.0f) * c;
  u[4] = (1.0f / 24.0f) * a - (1.0f / 12.0f) * b + (1.0f / 6.0f) * c;
  u[5] = c;
}

// One input channel's output channels [q, q + lanes): g = w + ci·cout + q (taps `size` apart),
// out = the packed position of (element 0, ci, q).
template <int N, class V>
RN_INLINE void weight_lanes(const float* g, int64_t size, float* out, int64_t element_size) {
  V t[N][3];
  for (int j = 0; j < 3; ++j) {
    V col[N];
    gcol(load_v<V>(g + j * size), load_v<V>(g + (3 + j) * size), load_v<V>(g + (6 + j) * size), col);
    for (int i = 0; i < N; ++i) t[i][j] = col[i];
  }
  for (int i = 0; i < N; ++i) {
    V row[N];
    gcol(t[i][0], t[i][1], t[i][2], row);
    for (int k = 0; k < N; ++k) store_v<V>(out + (i * N + k) * element_size, row[k]);
  }
}

// Input channels [ci0, ci1); N = 4 (F(2×2)) or 6 (F(4×4)).
template <int N, class V>
RN_INLINE void transform_weights_body(int64_t cin, int64_t cout, const float* w, int64_t ci0, int64_t ci1,
                                      float* packed, int64_t element_size) {
  constexpr int64_t lanes = sizeof(V) / sizeof(float);
  const int64_t size = cin * cout;
  const int64_t tail = cout % kGemmPanel, last = cout / kGemmPanel;
  for (int64_t ci = ci0; ci < ci1; ++ci) {
    if (tail != 0) {  // the last panel's padding
      for (int64_t e = 0; e < N * N; ++e) {
        float* d = packed + e * element_size + (last * cin + ci) * kGemmPanel;
        for (int64_t q = tail; q < kGemmPanel; ++q) d[q] = 0.0f;
      }
    }
    const float* g = w + ci * cout;
    const auto at = [&](int64_t q) { return packed + ((q / kGemmPanel) * cin + ci) * kGemmPanel + q % kGemmPanel; };
    int64_t q = 0;
    for (; q + lanes <= cout; q += lanes) weight_lanes<N, V>(g + q, size, at(q), element_size);
    for (; q < cout; ++q) weight_lanes<N, float>(g + q, size, at(q), element_size);
  }
}

RN_SIMD_CLONES void transform_weights_v8(int tile, int64_t cin, int64_t cout, const float* w, int64_t ci0, int64_t ci1,
                                         float* packed, int64_t element_size) {
  if (tile == 4) return transform_weights_body<6, v8f>(cin, cout, w, ci0, ci1, packed, element_size);
  transform_weights_body<4, v8f>(cin, cout, w, ci0, ci1, packed, element_size);
}
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx512f"))) void transform_weights_v16(int tile, int64_t cin, int64_t cout, const float* w,
                                                              int64_t ci0, int64_t ci1, float* packed,
                                                              int64_t element_size) {
  if (tile == 4) return transform_weights_body<6, v16f>(cin, cout, w, ci0, ci1, packed, element_size);
  transform_weights_body<4, v16f>(cin, cout, w, ci0, ci1, packed, element_size);
}
#endif

void transform_weights(int tile, int64_t cin, int64_t cout, const float* w, int64_t ci0, int64_t ci1, float* packed,
                       int64_t element_size) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (gemm_avx512_enabled()) return transform_weights_v16(tile, cin, cout, w, ci0, ci1, packed, element_size);
#endif
  transform_weights_v8(tile, cin, cout, w, ci0, ci1, packed, element_size);
}

#if defined(__x86_64__) && defined(__GNUC__)
// C[m × 16] = A[m × k] · B[k × 16] for one 16-wide panel (c_out = 16: the narrow layers, whose
// GEMMs are too thin for the general kernel's 12×32 blocks): 16 rows of B stay in registers while
// blocks of 8 rows of A stream past, each element of A a broadcast operand of one FMA.
__attribute__((target("avx512f"))) void gemm_panel16(int64_t m, int64_t k, const float* a, int64_t lda, const float* b,
                                                     float* c) {
  constexpr int kRows = 8;
  for (int64_t k0 = 0; k0 < k; k0 += 16) {
    const int64_t kb = std::min<int64_t>(16, k - k0);
    __m512 bv[16];
    for (int64_t q = 0; q < 16; ++q) bv[q] = q < kb ? _mm512_loadu_ps(b + (k0 + q) * kGemmPanel) : _mm512_setzero_ps();
    int64_t r = 0;
    for (; r + kRows <= m; r += kRows) {
      __m512 acc[kRows];
      for (int i = 0; i < kRows; ++i) acc[i] = k0 == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(c + (r + i) * 16);
      if (kb == 16) {
        for (int q = 0; q < 16; ++q) {
          for (int i = 0; i < kRows; ++i) {
            acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(a[(r + i) * lda + k0 + q]), bv[q], acc[i]);
          }
        }
      } else {
        for (int64_t q = 0; q < kb; ++q) {
          for (int i = 0; i < kRows; ++i) {
            acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(a[(r + i) * lda + k0 + q]), bv[q], acc[i]);
          }
        }
      }
      for (int i = 0; i < kRows; ++i) _mm512_storeu_ps(c + (r + i) * 16, acc[i]);
    }
    for (; r < m; ++r) {
      __m512 acc = k0 == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(c + r * 16);
      for (int64_t q = 0; q < kb; ++q) acc = _mm512_fmadd_ps(_mm512_set1_ps(a[r * lda + k0 + q]), bv[q], acc);
      _mm512_storeu_ps(c + r * 16, acc);
    }
  }
}
#endif

#if defined(__x86_64__) && defined(__GNUC__)
// C[Rows × Panels·16] = A[Rows × k] · B for Panels 16-wide panels (B streamed from L1: k ≤ 128),
// A read in place (no packing: with K ≤ 128 the general GEMM spends about as much on packing A
// as on arithmetic): each broadcast of A feeds Panels FMAs.
template <int Rows, int Panels>
__attribute__((target("avx512f"))) inline __attribute__((always_inline)) void panel_rows(int64_t k, const float* a,
                                                                                         int64_t lda, const float* b,
                                                                                         int64_t panel_stride, float* c,
                                                                                         int64_t ldc) {
  __m512 acc[Rows][Panels];
  for (int i = 0; i < Rows; ++i) {
    for (int j = 0; j < Panels; ++j) acc[i][j] = _mm512_setzero_ps();
  }
  for (int64_t q = 0; q < k; ++q) {
    __m512 bv[Panels];
    for (int j = 0; j < Panels; ++j) bv[j] = _mm512_loadu_ps(b + j * panel_stride + q * kGemmPanel);
    for (int i = 0; i < Rows; ++i) {
      const __m512 av = _mm512_set1_ps(a[i * lda + q]);
      for (int j = 0; j < Panels; ++j) acc[i][j] = _mm512_fmadd_ps(av, bv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < Rows; ++i) {
    for (int j = 0; j < Panels; ++j) _mm512_storeu_ps(c + i * ldc + j * kGemmPanel, acc[i][j]);
  }
}
template <int Rows, int Panels>
__attribute__((target("avx512f"))) inline __attribute__((always_inline)) void panel_columns(int64_t m, int64_t k,
                                                                                            const float* a, int64_t lda,
                                                                                            const float* b, float* c,
                                                                                            int64_t ldc) {
  const int64_t panel_stride = k * kGemmPanel;
  int64_t r = 0;
  for (; r + Rows <= m; r += Rows) panel_rows<Rows, Panels>(k, a + r * lda, lda, b, panel_stride, c + r * ldc, ldc);
  for (; r < m; ++r) panel_rows<1, Panels>(k, a + r * lda, lda, b, panel_stride, c + r * ldc, ldc);
}
// n a multiple of 16: groups of 4 panels (6 rows), then 2 (12 rows), then 1 (12 rows).
__attribute__((target("avx512f"))) void gemm_panels(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                                                    const float* b, float* c) {
  int64_t col = 0;
  for (; col + 4 * kGemmPanel <= n; col += 4 * kGemmPanel) panel_columns<6, 4>(m, k, a, lda, b + col * k, c + col, n);
  if (col + 2 * kGemmPanel <= n) {
    panel_columns<12, 2>(m, k, a, lda, b + col * k, c + col, n);
    col += 2 * kGemmPanel;
  }
  if (col < n) panel_columns<12, 1>(m, k, a, lda, b + col * k, c + col, n);
}
#endif

// The element GEMMs' C[m × n] = A[m × k] · B (packed).
void element_gemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, float* c) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (n == kGemmPanel && gemm_avx512_enabled()) return gemm_panel16(m, k, a, lda, b, c);
  if (n % kGemmPanel == 0 && k <= 128 && gemm_avx512_enabled()) return gemm_panels(m, n, k, a, lda, b, c);
#endif
  gemm_packed(m, n, k, a, lda, b, c, n, false);
}

}  // namespace

bool conv2d_winograd_eligible(const Conv2dGeometry& g) {
  return g.kh == 3 && g.kw == 3 && g.stride_h == 1 && g.stride_w == 1 && g.dilation_h == 1 && g.dilation_w == 1 &&
         g.groups == 1 && g.out_h >= 1 && g.out_w >= 1;
}

namespace {

// Products (transformed-tile elements) per image: F(4×4) does 36 per 16 pixels, F(2×2) 16 per 4,
// both counted over whole tiles, so odd edges cost what they compute.
int64_t products(const Conv2dGeometry& g, int tile) { return elements(tile) * tiles_h(g, tile) * tiles_w(g, tile); }

// The tile for an eligible g once Winograd runs (RESNET_WINOGRAD=1 too): F(4×4) unless it needs
// more products than F(2×2) (outputs of 1 or 2 pixels a side).
int preferred_tile(const Conv2dGeometry& g) { return products(g, 4) <= products(g, 2) ? 4 : 2; }

// The measured choice (RESNET_WINOGRAD unset): 0 (the direct / implicit-GEMM kernels), 2 or 4.
// Measured (bench/RESULTS.md, issue 20: best of 3 interleaved runs, CPU clock, 2 threads, for
// CIFAR 16/32/64 channels at N 32 and 128 and the ResNet-18/50 3×3 layers at N 1, 8 and 16):
// F(4×4) beats the direct / implicit GEMM from 16 channels up (1.6–2.6× with 16–64 channels, up
// to 3× on 128) wherever each thread gets at least 8 tiles; F(2×2) only where F(4×4) does not
// run. Neither when the tiles' products exceed 6 per output pixel (the direct kernel's 9, less
// the transforms' cost): 1×1 maps. ResNet layer4 (512 channels, 7×7) at batch 1 has 4 tiles of
// 4×4 and 49 pixels: direct.
int heuristic_tile(const Conv2dGeometry& g) {
  const int64_t pixels = g.out_h * g.out_w;
  if (preferred_tile(g) == 4 && products(g, 4) <= 6 * pixels && g.c_in >= 16 && g.c_out >= 16 &&
      g.n * tiles_h(g, 4) * tiles_w(g, 4) >= 16) {
    return 4;
  }
  // F(2×2) (issue 5): with 16 and 32 channels its 16 GEMMs (K = c_in) were too thin to beat the
  // implicit GEMM; the weight transform is paid per call, so it needs enough pixels to amortise it.
  if (products(g, 2) <= 6 * pixels && g.c_in >= 64 && g.c_out >= 64 && g.n * pixels >= 256) return 2;
  return 0;
}

}  // namespace

int conv2d_winograd_tile(const Conv2dGeometry& g) {
  if (!conv2d_winograd_eligible(g)) return 0;
  const int mode = winograd_override();
  if (mode == 0 || mode == 2 || mode == 4) return mode;
  if (mode == 1) return preferred_tile(g);
  return heuristic_tile(g);
}

bool conv2d_use_winograd(const Conv2dGeometry& g) { return conv2d_winograd_tile(g) != 0; }

bool conv2d_use_winograd_backward_input(const Conv2dGeometry& g) {
  return conv2d_winograd_eligible(g) && conv2d_use_winograd(transposed(g));
}

int64_t conv2d_winograd_scratch_floats(const Conv2dGeometry& g) {
  if (!conv2d_winograd_eligible(g)) return 0;
  const Conv2dGeometry t = transposed(g);
  const int forward = conv2d_winograd_tile(g), backward = conv2d_winograd_tile(t);
  return std::max(forward ? layout(g, forward).total : 0,
                  backward ? align16(9 * g.c_in * g.c_out) + layout(t, backward).total : 0);
}

int64_t conv2d_winograd_prepared_floats(const Conv2dGeometry& g) {
  const int tile = conv2d_winograd_tile(g);
  return tile ? elements(tile) * layout(g, tile).element_size : 0;
}

namespace {

void prepare(const Conv2dGeometry& g, int tile, const float* w, float* prepared) {
  const Layout l = layout(g, tile);
  const int64_t cin = g.c_in, cout = g.c_out;
  // Weights: 16 or 36 transformed matrices, each packed as the GEMM's B.
  const int64_t wblocks = (cin + kWeightRows - 1) / kWeightRows;
  const int wparts = static_cast<int>(std::min<int64_t>(threads(), wblocks));
  parallel_for(wparts, [&](int64_t pbegin, int64_t pend) {
    for (int64_t p = pbegin; p < pend; ++p) {
      const int64_t ci0 = wblocks * p / wparts * kWeightRows;
      const int64_t ci1 = std::min(cin, wblocks * (p + 1) / wparts * kWeightRows);
      transform_weights(tile, cin, cout, w, ci0, ci1, prepared, l.element_size);
    }
  });
}

void forward(const Conv2dGeometry& g, int tile, const float* x, const float* w, const float* bias, float* y,
             float* mean, float* var, float* scratch, const ConvEpilogue& epilogue, const float* prepared) {
  const Layout l = layout(g, tile);
  const int64_t cin = g.c_in, cout = g.c_out, ne = elements(tile);
  float* zeros = scratch + l.zeros;
  std::fill(zeros, zeros + std::max(cin, cout), 0.0f);
  if (prepared == nullptr) {
    prepare(g, tile, w, scratch + l.packed);
    prepared = scratch + l.packed;
  }
  const int64_t tiles = g.n * tiles_h(g, tile) * tiles_w(g, tile);
  // Tiles split evenly over the threads (whole chunks would leave one thread a chunk more), each
  // thread's share in chunks of at most l.chunk tiles.
  const int parts = static_cast<int>(std::clamp<int64_t>(tiles / 8, 1, threads()));
  const int64_t ein = element_stride(l.chunk, cin), eout = element_stride(l.chunk, cout);
  auto* partial = reinterpret_cast<double*>(scratch + l.stats);
  const float* b = bias ? bias : zeros;
  parallel_for(parts, [&](int64_t pbegin, int64_t pend) {
    for (int64_t p = pbegin; p < pend; ++p) {
      float* v = scratch + l.v + p * l.per_thread;
      float* m = v + l.m;
      float* dump = v + l.dump;
      double* sum = mean ? partial + p * 2 * cout : nullptr;
      double* sq = mean ? sum + cout : nullptr;
      float* fs = scratch + l.fsums + p * 2 * cout;
      if (sum) std::fill(sum, sum + 2 * cout, 0.0);
      const int64_t first = tiles * p / parts, last = tiles * (p + 1) / parts;
      for (int64_t t0 = first; t0 < last; t0 += l.chunk) {
        const int64_t count = std::min(l.chunk, last - t0);
        if (tile == 4) {
          input_transform4(g, x, zeros, t0, count, ein, v);
        } else {
          input_transform(g, x, zeros, t0, count, l.chunk, v);
        }
        for (int64_t e = 0; e < ne; ++e) {
          element_gemm(count, cout, cin, v + e * ein, cin, prepared + e * l.element_size, m + e * eout);
        }
        if (tile == 4) {
          output_transform4(g, m, b, t0, count, eout, y, dump, sum, sq, fs, fs + cout, epilogue);
        } else {
          output_transform(g, m, b, t0, count, l.chunk, y, dump, sum, sq, fs, fs + cout, epilogue);
        }
      }
    }
  });
  if (mean) finish_batch_statistics(parts, cout, partial, double(g.n * g.out_h * g.out_w), mean, var);
}

}  // namespace

void conv2d_winograd_prepare(const Conv2dGeometry& g, const float* w, float* prepared, float* /*scratch*/) {
  prepare(g, conv2d_winograd_tile(g), w, prepared);
}

void conv2d_winograd_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias, float* y,
                             float* mean, float* var, float* scratch, const ConvEpilogue& epilogue,
                             const float* prepared) {
  forward(g, conv2d_winograd_tile(g), x, w, bias, y, mean, var, scratch, epilogue, prepared);
}

void conv2d_winograd_backward_input(const Conv2dGeometry& g, const float* dy, const float* w, float* dx,
                                    float* scratch) {
  const Conv2dGeometry t = transposed(g);
  float* flipped = scratch;  // HWIO of the transposed convolution: [3][3][c_out][c_in]
  conv2d_flip_weights(g, w, flipped);
  conv2d_winograd_forward(t, dy, flipped, nullptr, dx, nullptr, nullptr, scratch + align16(9 * g.c_in * g.c_out));
}

}  // namespace rn::cpu
