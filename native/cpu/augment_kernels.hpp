// Per-image data augmentation on a batch of NHWC float32 images: random crop with zero
// padding, random horizontal flip, per-channel normalisation — the standard CIFAR/ImageNet
// training-time pipeline, run on the core thread pool.
//
// Randomness is counter-based: image i of step `step` under `seed` always draws the same
// crop offset and flip, whatever the thread count or the order images are processed in.
#pragma once

#include <cstdint>

namespace rn::cpu {

struct AugmentParams {
  int64_t count = 0;            // images in the batch
  int64_t height = 0;           // image height (also the output height)
  int64_t width = 0;            // image width (also the output width)
  int64_t channels = 0;         // channels (innermost, NHWC)
  int64_t padding = 0;          // zero padding on every side before the random crop; 0 = no crop
  bool flip = false;            // random horizontal flip with probability 1/2
  const float* mean = nullptr;  // `channels` values subtracted per channel; nullptr = 0
  const float* std = nullptr;   // `channels` divisors per channel (> 0); nullptr = 1
  uint64_t seed = 0;
  uint64_t step = 0;
};

// What image `index` draws: its crop offset into the padded image, each in [0, 2·padding],
// and whether it is mirrored.
struct AugmentDraw {
  int64_t offset_y = 0;
  int64_t offset_x = 0;
  bool flip = false;
};

// The crop offset and flip of image `index` under p.seed / p.step (0 offsets when
// p.padding = 0, no flip when !p.flip).
AugmentDraw augment_draw(const AugmentParams& p, int64_t index);

// dst[i, y, x, ch] = (v − mean[ch]) / std[ch], where v = padded_i(y + oy, xs + ox, ch),
// xs = flipped ? width − 1 − x : x, padded_i is src image i with `padding` zeros on every
// side, and (oy, ox, flipped) = augment_draw(p, i). src and dst hold count·h·w·c floats
// and must not overlap. Throws rn::Error (E_ARG / E_SHAPE) for parameters out of range.
void augment_batch(const float* src, float* dst, const AugmentParams& p);

}  // namespace rn::cpu
