// Per-image data augmentation on a batch of NHWC float32 images: random crop with zero
// padding, random horizontal flip, per-channel normalisation — the standard CIFAR/ImageNet
// training-time pipeline, run on the core thread pool.
//
// Randomness is counter-based: image i of step `step` under `seed` always draws the same
// crop offset and flip, whatever the thread count or the order images are processed in.
#pragma once

#include <cstdint>

namespace rn::cpu {

// How each image's output window is chosen. Pad: the zero-padded random crop below (output
// size = input size). RandomResized / Center: a box of the source resampled bilinearly
// (half-pixel centres, no antialiasing: torch's interpolate(align_corners=False),
// tf.image.resize(antialias=False)) to out_height × out_width.
enum class CropMode { Pad, RandomResized, Center };

// Colour jitter (torchvision's ColorJitter on [0, 1] images): each factor is drawn uniformly
// from [lo, hi]; an op whose `on` is false is skipped. The ops run in a random order per image.
struct JitterRange {
  bool on = false;
  float lo = 1.0f, hi = 1.0f;
};

struct AugmentParams {
  int64_t count = 0;            // images in the batch
  int64_t height = 0;           // source image height
  int64_t width = 0;            // source image width
  int64_t channels = 0;         // channels (innermost, NHWC)
  int64_t padding = 0;          // zero padding on every side before the random crop; 0 = no crop
  bool flip = false;            // random horizontal flip with probability 1/2
  const float* mean = nullptr;  // `channels` values subtracted per channel; nullptr = 0
  const float* std = nullptr;   // `channels` divisors per channel (> 0); nullptr = 1
  uint64_t seed = 0;
  uint64_t step = 0;

  CropMode crop = CropMode::Pad;
  int64_t out_height = 0;  // output size; 0 = the source size (required for Pad)
  int64_t out_width = 0;
  // RandomResized: torchvision's RandomResizedCrop.get_params (area fraction in [scale_lo,
  // scale_hi], aspect ratio log-uniform in [ratio_lo, ratio_hi], 10 attempts, then the centre
  // crop fallback).
  double scale_lo = 0.08, scale_hi = 1.0, ratio_lo = 3.0 / 4.0, ratio_hi = 4.0 / 3.0;
  // Center: torchvision's Resize(resize) (shorter side → resize, the longer one truncated)
  // then CenterCrop(out_height, out_width); resize ≥ max(out_height, out_width).
  int64_t resize = 0;
  JitterRange brightness, contrast, saturation;
  // Batch mixing after normalisation (timm's Mixup): image i is mixed with image count−1−i,
  // λ ~ Beta(α, α) per batch. With both α > 0, one of the two is picked per batch (p = 1/2).
  double mixup_alpha = 0.0, cutmix_alpha = 0.0;
};

// What a batch's mixing did: image i's target is λ·onehot(label[i]) + (1−λ)·onehot(label[count−1−i]).
// kind: 0 none (λ = 1), 1 mixup, 2 cutmix (λ = 1 − box area / image area, after clipping).
struct AugmentMix {
  int kind = 0;
  double lambda = 1.0;
  int64_t box_top = 0, box_left = 0, box_bottom = 0, box_right = 0;  // cutmix: [top, bottom) × [left, right)
};

// The source box [top, top+height) × [left, left+width) of image `index` under RandomResized.
struct CropBox {
  int64_t top = 0, left = 0, height = 0, width = 0;
};
CropBox random_resized_box(const AugmentParams& p, int64_t index);

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
// With another crop mode, colour jitter or mixing: per image, the window resampled (or the
// padded crop), flipped, jittered, normalised; then the batch mixed. dst holds
// count·out_height·out_width·c floats.
AugmentMix augment_batch(const float* src, float* dst, const AugmentParams& p);

}  // namespace rn::cpu
