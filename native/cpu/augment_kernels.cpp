#include "augment_kernels.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/thread_pool.hpp"

namespace rn::cpu {
namespace {

// splitmix64's finaliser (Steele, Lea & Flood 2014): a bijective 64-bit mix.
constexpr uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

constexpr uint64_t kGamma = 0x9e3779b97f4a7c15ULL;

// Key of one image: a hash of (seed, step, index), each mixed in turn.
constexpr uint64_t image_key(uint64_t seed, uint64_t step, uint64_t index) {
  uint64_t k = mix64(seed + kGamma);
  k = mix64(k ^ (step + 2 * kGamma));
  return mix64(k ^ (index + 3 * kGamma));
}

// The n-th 64-bit draw of a key (a splitmix64 stream started at the key).
constexpr uint64_t draw(uint64_t key, uint64_t n) { return mix64(key + (n + 1) * kGamma); }

// Integer in [0, range) from 64 random bits; with range ≤ 2^25 + 1 the modulo bias is
// below 2^-38.
constexpr int64_t below(uint64_t bits, uint64_t range) { return static_cast<int64_t>(bits % range); }

void check(const AugmentParams& p) {
  const std::string op = "augmentBatch";
  if (p.count < 0 || p.height < 1 || p.width < 1 || p.channels < 1) {
    fail(ErrorCode::InvalidShape, op + ": count " + std::to_string(p.count) + ", image shape [" +
                                      std::to_string(p.height) + ", " + std::to_string(p.width) + ", " +
                                      std::to_string(p.channels) + "] is not a valid batch");
  }
  if (p.padding < 0 || p.padding > (int64_t{1} << 24)) {
    fail(ErrorCode::InvalidArgument, op + ": padding must be in [0, 2^24], got " + std::to_string(p.padding));
  }
  if (p.crop == CropMode::Pad &&
      ((p.out_height != 0 && p.out_height != p.height) || (p.out_width != 0 && p.out_width != p.width))) {
    fail(ErrorCode::InvalidShape,
         op + ": the output size differs from the image size; pass randomResizedCrop or centerCrop");
  }
  if (p.crop != CropMode::Pad && p.padding != 0) {
    fail(ErrorCode::InvalidArgument, op + ": padding cannot be combined with randomResizedCrop or centerCrop");
  }
  if (p.crop != CropMode::Pad &&
      (p.out_height < 1 || p.out_width < 1 || p.out_height > (1 << 24) || p.out_width > (1 << 24))) {
    fail(ErrorCode::InvalidShape, op + ": the output size must be positive");
  }
  if (p.crop == CropMode::RandomResized &&
      !(p.scale_lo > 0.0 && p.scale_lo <= p.scale_hi && p.scale_hi <= 1.0 && p.ratio_lo > 0.0 &&
        p.ratio_lo <= p.ratio_hi && std::isfinite(p.ratio_hi))) {
    fail(ErrorCode::InvalidArgument,
         op + ": randomResizedCrop needs 0 < scale[0] ≤ scale[1] ≤ 1 and 0 < ratio[0] ≤ ratio[1]");
  }
  if (p.crop == CropMode::Center && (p.resize < std::max(p.out_height, p.out_width) || p.resize > (1 << 24))) {
    fail(ErrorCode::InvalidArgument, op + ": centerCrop's resize must be at least the output size");
  }
  for (const JitterRange* j : {&p.brightness, &p.contrast, &p.saturation}) {
    if (j->on && !(j->lo >= 0.0f && j->lo <= j->hi && j->hi <= 1.0e6f)) {
      fail(ErrorCode::InvalidArgument, op + ": colour jitter ranges must satisfy 0 ≤ min ≤ max");
    }
  }
  if (!(p.mixup_alpha >= 0.0 && p.mixup_alpha <= 1.0e6) || !(p.cutmix_alpha >= 0.0 && p.cutmix_alpha <= 1.0e6)) {
    fail(ErrorCode::InvalidArgument, op + ": mixup / cutmix alpha must be a finite number ≥ 0");
  }
  if (p.std != nullptr) {
    for (int64_t ch = 0; ch < p.channels; ++ch) {
      if (!(p.std[ch] > 0.0f) || p.std[ch] > 3.0e38f) {
        fail(ErrorCode::InvalidArgument, op + ": std[" + std::to_string(ch) + "] must be a finite number > 0");
      }
    }
  }
}

// A uniform double in [0, 1) from 64 random bits (the top 53).
inline double unit(uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }

// Draw numbers of an image's stream: the pad crop and flip use 0–2.
constexpr uint64_t kJitterOrderDraw = 3, kJitterFactorDraw = 4, kCropDraw = 8;

// One output axis of a resampled window: output index o reads source position
// base + clamp((o + offset + 0.5)·step − 0.5) on a source axis of `extent` samples.
struct Tap {
  int64_t i0, i1;
  float frac;
};
std::vector<Tap> taps(int64_t out, int64_t base, int64_t extent, int64_t offset, double step) {
  std::vector<Tap> t(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o) {
    const double pos = std::max(0.0, (double(o + offset) + 0.5) * step - 0.5);
    const auto lo = static_cast<int64_t>(pos);
    const int64_t i0 = std::min(lo, extent - 1), i1 = std::min(lo + 1, extent - 1);
    t[static_cast<size_t>(o)] = {base + i0, base + i1, static_cast<float>(pos - double(lo))};
  }
  return t;
}

// Bilinear resampling of image `in` (h×w×c) into `out` (oh×ow×c) through the taps; flip mirrors x.
void resample(const float* in, float* out, int64_t w, int64_t c, const std::vector<Tap>& ty, const std::vector<Tap>& tx,
              bool flip) {
  const auto oh = static_cast<int64_t>(ty.size()), ow = static_cast<int64_t>(tx.size());
  for (int64_t y = 0; y < oh; ++y) {
    const Tap& a = ty[static_cast<size_t>(y)];
    const float* r0 = in + a.i0 * w * c;
    const float* r1 = in + a.i1 * w * c;
    for (int64_t x = 0; x < ow; ++x) {
      const Tap& b = tx[static_cast<size_t>(flip ? ow - 1 - x : x)];
      float* o = out + (y * ow + x) * c;
      for (int64_t ch = 0; ch < c; ++ch) {
        const float top = r0[b.i0 * c + ch] + (r0[b.i1 * c + ch] - r0[b.i0 * c + ch]) * b.frac;
        const float bottom = r1[b.i0 * c + ch] + (r1[b.i1 * c + ch] - r1[b.i0 * c + ch]) * b.frac;
        o[ch] = top + (bottom - top) * a.frac;
      }
    }
  }
}

inline float clamp01(float v) { return std::min(1.0f, std::max(0.0f, v)); }

// torchvision's rgb_to_grayscale weights.
inline float grey(const float* px) { return 0.2989f * px[0] + 0.587f * px[1] + 0.114f * px[2]; }

// torchvision's adjust_brightness / adjust_contrast / adjust_saturation on one [0, 1] image of
// `pixels` pixels: a blend with black, with the mean of the greyscale image, with each pixel's
// grey, clamped to [0, 1].
void jitter_op(int op, float f, float* img, int64_t pixels, int64_t c) {
  const int64_t n = pixels * c;
  if (op == 0) {
    for (int64_t k = 0; k < n; ++k) img[k] = clamp01(f * img[k]);
  } else if (op == 1) {
    double sum = 0.0;
    if (c == 3) {
      for (int64_t k = 0; k < pixels; ++k) sum += grey(img + k * 3);
    } else {
      for (int64_t k = 0; k < n; ++k) sum += img[k];
    }
    const auto mean = static_cast<float>(sum / double(c == 3 ? pixels : n));
    for (int64_t k = 0; k < n; ++k) img[k] = clamp01(f * img[k] + (1.0f - f) * mean);
  } else if (c == 3) {  // saturation; a grey image has none (torchvision returns it as it is)
    for (int64_t k = 0; k < pixels; ++k) {
      float* px = img + k * 3;
      const float g = grey(px);
      for (int64_t ch = 0; ch < 3; ++ch) px[ch] = clamp01(f * px[ch] + (1.0f - f) * g);
    }
  }
}

// Gamma(alpha, 1) by Marsaglia & Tsang (2000), α < 1 boosted by U^(1/α); `next` yields random bits.
template <class Next>
double gamma_draw(double alpha, Next&& next) {
  const double boost = alpha < 1.0 ? std::pow(std::max(unit(next()), 0x1.0p-53), 1.0 / alpha) : 1.0;
  const double a = alpha < 1.0 ? alpha + 1.0 : alpha;
  const double d = a - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    // A standard normal by Box–Muller.
    const double u1 = std::max(unit(next()), 0x1.0p-53), u2 = unit(next());
    const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    const double v = std::pow(1.0 + c * z, 3.0);
    if (v <= 0.0) continue;
    const double u = std::max(unit(next()), 0x1.0p-53);
    if (std::log(u) < 0.5 * z * z + d - d * v + d * std::log(v)) return d * v * boost;
  }
  return d * boost;  // unreachable in practice (acceptance is above 95 % per attempt)
}

}  // namespace

CropBox random_resized_box(const AugmentParams& p, int64_t index) {
  const uint64_t key = image_key(p.seed, p.step, static_cast<uint64_t>(index));
  const double H = double(p.height), W = double(p.width), area = H * W;
  const double log_lo = std::log(p.ratio_lo), log_hi = std::log(p.ratio_hi);
  for (uint64_t attempt = 0; attempt < 10; ++attempt) {
    const uint64_t d = kCropDraw + 4 * attempt;
    const double target = area * (p.scale_lo + (p.scale_hi - p.scale_lo) * unit(draw(key, d)));
    const double aspect = std::exp(log_lo + (log_hi - log_lo) * unit(draw(key, d + 1)));
    const auto w = static_cast<int64_t>(std::nearbyint(std::sqrt(target * aspect)));
    const auto h = static_cast<int64_t>(std::nearbyint(std::sqrt(target / aspect)));
    if (w > 0 && w <= p.width && h > 0 && h <= p.height) {
      CropBox b;
      b.height = h;
      b.width = w;
      b.top = below(draw(key, d + 2), static_cast<uint64_t>(p.height - h + 1));
      b.left = below(draw(key, d + 3), static_cast<uint64_t>(p.width - w + 1));
      return b;
    }
  }
  // torchvision's fallback: the centre crop of the whole image clipped to the ratio range.
  CropBox b;
  const double in_ratio = W / H;
  if (in_ratio < p.ratio_lo) {
    b.width = p.width;
    b.height = std::max<int64_t>(1, std::min<int64_t>(p.height, static_cast<int64_t>(std::nearbyint(W / p.ratio_lo))));
  } else if (in_ratio > p.ratio_hi) {
    b.height = p.height;
    b.width = std::max<int64_t>(1, std::min<int64_t>(p.width, static_cast<int64_t>(std::nearbyint(H * p.ratio_hi))));
  } else {
    b.height = p.height;
    b.width = p.width;
  }
  b.top = (p.height - b.height) / 2;
  b.left = (p.width - b.width) / 2;
  return b;
}

namespace {}  // namespace

AugmentDraw augment_draw(const AugmentParams& p, int64_t index) {
  AugmentDraw d;
  const uint64_t key = image_key(p.seed, p.step, static_cast<uint64_t>(index));
  if (p.padding > 0) {
    const auto range = static_cast<uint64_t>(2 * p.padding + 1);
    d.offset_y = below(draw(key, 0), range);
    d.offset_x = below(draw(key, 1), range);
  }
  if (p.flip) d.flip = (draw(key, 2) >> 63) != 0;
  return d;
}

namespace {

// The original fast path: the padded random crop and flip, normalised, one task per row.
void pad_crop_batch(const float* src, float* dst, const AugmentParams& p) {
  const int64_t h = p.height, w = p.width, c = p.channels, pad = p.padding;
  const int64_t row = w * c;
  const int64_t image = h * row;
  const float* mean = p.mean;
  const float* stdev = p.std;

  // One task per output row (image i, row y): rows balance better than whole images
  // when the batch is small, and each row redraws its image's (cheap) random numbers.
  parallel_for(p.count * h, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t i = r / h, y = r % h;
      float* out = dst + i * image + y * row;
      const float* in = src + i * image;

      const bool identity = pad == 0 && !p.flip;
      const AugmentDraw d = identity ? AugmentDraw{} : augment_draw(p, i);
      const int64_t sy = y + d.offset_y - pad;  // source row
      const int64_t shift = d.offset_x - pad;   // source column = xs + shift

      if (mean == nullptr && stdev == nullptr && !d.flip && shift == 0 && sy >= 0 && sy < h) {
        std::memcpy(out, in + sy * row, static_cast<size_t>(row) * sizeof(float));  // plain copy
        continue;
      }
      for (int64_t x = 0; x < w; ++x) {
        const int64_t xs = d.flip ? w - 1 - x : x;
        const int64_t sx = xs + shift;
        const bool inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
        const float* px = inside ? in + sy * row + sx * c : nullptr;
        float* o = out + x * c;
        for (int64_t ch = 0; ch < c; ++ch) {
          float v = inside ? px[ch] : 0.0f;
          if (mean != nullptr) v -= mean[ch];
          if (stdev != nullptr) v /= stdev[ch];
          o[ch] = v;
        }
      }
    }
  });
}

// Image i's window into `out` (before jitter and normalisation).
void window(const float* in, float* out, const AugmentParams& p, int64_t i, bool flip) {
  const int64_t oh = p.out_height, ow = p.out_width, c = p.channels;
  if (p.crop == CropMode::RandomResized) {
    const CropBox b = random_resized_box(p, i);
    resample(in, out, p.width, c, taps(oh, b.top, b.height, 0, double(b.height) / double(oh)),
             taps(ow, b.left, b.width, 0, double(b.width) / double(ow)), flip);
    return;
  }
  // Resize (shorter side → resize; torchvision truncates the longer one), then the centre crop.
  const bool tall = p.height > p.width;
  const int64_t short_side = tall ? p.width : p.height, long_side = tall ? p.height : p.width;
  const auto long_resized = static_cast<int64_t>(double(p.resize) * double(long_side) / double(short_side));
  const int64_t rh = tall ? long_resized : p.resize, rw = tall ? p.resize : long_resized;
  const auto top = static_cast<int64_t>(std::nearbyint(double(rh - oh) / 2.0));
  const auto left = static_cast<int64_t>(std::nearbyint(double(rw - ow) / 2.0));
  resample(in, out, p.width, c, taps(oh, 0, p.height, top, double(p.height) / double(rh)),
           taps(ow, 0, p.width, left, double(p.width) / double(rw)), flip);
}

// Mixes image i with count−1−i in place for every pair (timm's Mixup with x.flip(0)).
void mix_batch(float* dst, const AugmentParams& p, const AugmentMix& m, int64_t image) {
  const int64_t pairs = p.count / 2;
  const auto lam = static_cast<float>(m.lambda);
  const int64_t row = p.out_width * p.channels;
  parallel_for(pairs, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      float* a = dst + i * image;
      float* b = dst + (p.count - 1 - i) * image;
      if (m.kind == 1) {
        for (int64_t k = 0; k < image; ++k) {
          const float va = a[k], vb = b[k];
          a[k] = lam * va + (1.0f - lam) * vb;
          b[k] = lam * vb + (1.0f - lam) * va;
        }
      } else {
        for (int64_t y = m.box_top; y < m.box_bottom; ++y) {
          float* ra = a + y * row + m.box_left * p.channels;
          float* rb = b + y * row + m.box_left * p.channels;
          std::swap_ranges(ra, ra + (m.box_right - m.box_left) * p.channels, rb);
        }
      }
    }
  });
}

// The batch's mixing draw (a stream keyed by seed and step alone).
AugmentMix mix_draw(const AugmentParams& p) {
  AugmentMix m;
  if (p.mixup_alpha <= 0.0 && p.cutmix_alpha <= 0.0) return m;
  const uint64_t key = image_key(p.seed, p.step, ~uint64_t{0});
  uint64_t n = 0;
  auto next = [&] { return draw(key, n++); };
  const bool cut = p.mixup_alpha <= 0.0 || (p.cutmix_alpha > 0.0 && (next() >> 63) != 0);
  const double alpha = cut ? p.cutmix_alpha : p.mixup_alpha;
  const double x = gamma_draw(alpha, next), y = gamma_draw(alpha, next);
  const double lam = x + y > 0.0 ? x / (x + y) : 0.5;
  m.kind = cut ? 2 : 1;
  m.lambda = lam;
  if (!cut) return m;
  // timm's rand_bbox: a box of side √(1 − λ) times the image's, centred at a uniform pixel, clipped.
  const int64_t H = p.out_height, W = p.out_width;
  const double ratio = std::sqrt(1.0 - lam);
  const auto ch = static_cast<int64_t>(double(H) * ratio), cw = static_cast<int64_t>(double(W) * ratio);
  const int64_t cy = below(next(), static_cast<uint64_t>(H)), cx = below(next(), static_cast<uint64_t>(W));
  m.box_top = std::clamp<int64_t>(cy - ch / 2, 0, H);
  m.box_bottom = std::clamp<int64_t>(cy + ch / 2, 0, H);
  m.box_left = std::clamp<int64_t>(cx - cw / 2, 0, W);
  m.box_right = std::clamp<int64_t>(cx + cw / 2, 0, W);
  m.lambda = 1.0 - double((m.box_bottom - m.box_top) * (m.box_right - m.box_left)) / double(H * W);
  return m;
}

}  // namespace

AugmentMix augment_batch(const float* src, float* dst, const AugmentParams& p_in) {
  AugmentParams p = p_in;
  if (p.out_height == 0) p.out_height = p.height;
  if (p.out_width == 0) p.out_width = p.width;
  check(p);
  const bool jitter = p.brightness.on || p.contrast.on || p.saturation.on;
  const int64_t image = p.out_height * p.out_width * p.channels;
  if (p.crop == CropMode::Pad && !jitter) {
    pad_crop_batch(src, dst, p);
  } else {
    const int64_t pixels = p.out_height * p.out_width, c = p.channels;
    parallel_for(p.count, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        float* out = dst + i * image;
        const float* in = src + i * p.height * p.width * c;
        const AugmentDraw d = augment_draw(p, i);
        if (p.crop == CropMode::Pad) {
          // The padded crop of this image, unnormalised (jitter works on [0, 1] values).
          const int64_t h = p.height, w = p.width, pad = p.padding;
          for (int64_t y = 0; y < h; ++y) {
            for (int64_t x = 0; x < w; ++x) {
              const int64_t sy = y + d.offset_y - pad, sx = (d.flip ? w - 1 - x : x) + d.offset_x - pad;
              const bool inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
              for (int64_t ch = 0; ch < c; ++ch) out[(y * w + x) * c + ch] = inside ? in[(sy * w + sx) * c + ch] : 0.0f;
            }
          }
        } else {
          window(in, out, p, i, d.flip);
        }
        if (jitter) {
          const uint64_t key = image_key(p.seed, p.step, static_cast<uint64_t>(i));
          static constexpr std::array<std::array<int, 3>, 6> kOrders = {
              {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}};
          const auto& order = kOrders[static_cast<size_t>(below(draw(key, kJitterOrderDraw), 6))];
          const JitterRange* ranges[3] = {&p.brightness, &p.contrast, &p.saturation};
          for (int op : order) {
            const JitterRange& r = *ranges[op];
            if (!r.on) continue;
            const double u = unit(draw(key, kJitterFactorDraw + static_cast<uint64_t>(op)));
            const auto f = static_cast<float>(double(r.lo) + double(r.hi - r.lo) * u);
            jitter_op(op, f, out, pixels, c);
          }
        }
        if (p.mean != nullptr || p.std != nullptr) {
          for (int64_t k = 0; k < pixels; ++k) {
            for (int64_t ch = 0; ch < c; ++ch) {
              float& v = out[k * c + ch];
              if (p.mean != nullptr) v -= p.mean[ch];
              if (p.std != nullptr) v /= p.std[ch];
            }
          }
        }
      }
    });
  }
  const AugmentMix m = mix_draw(p);
  if (m.kind != 0) mix_batch(dst, p, m, image);
  return m;
}

}  // namespace rn::cpu
