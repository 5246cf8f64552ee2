#include "augment_kernels.hpp"

#include <cstring>
#include <string>

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
  if (p.std != nullptr) {
    for (int64_t ch = 0; ch < p.channels; ++ch) {
      if (!(p.std[ch] > 0.0f) || p.std[ch] > 3.0e38f) {
        fail(ErrorCode::InvalidArgument, op + ": std[" + std::to_string(ch) + "] must be a finite number > 0");
      }
    }
  }
}

}  // namespace

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

void augment_batch(const float* src, float* dst, const AugmentParams& p) {
  check(p);
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

}  // namespace rn::cpu
