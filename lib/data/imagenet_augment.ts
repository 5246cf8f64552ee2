// ImageNet-style augmentation options (random-resized-crop, resize + centre crop, colour
// jitter, mixup / cutmix): their types, their checks, and the form the native augmentBatch
// reads. The pixel work itself is native (native/cpu/augment_kernels.cpp).
import * as validate from '../validate.js';

/** torchvision's RandomResizedCrop: a random box of the source resampled (bilinear) to the output size. */
export interface RandomResizedCropOptions {
  /** Fraction of the source area the box covers, [min, max] with 0 < min ≤ max ≤ 1. Default [0.08, 1]. */
  scale?: readonly [number, number];
  /** Aspect ratio (width / height) of the box, drawn log-uniformly from [min, max], 0 < min ≤ max. Default [3/4, 4/3]. */
  ratio?: readonly [number, number];
}

/** torchvision's Resize(resize) + CenterCrop(output size): the evaluation transform. */
export interface CenterCropOptions {
  /** The shorter side the source is resized to before the centre crop (≥ the output size). Default: the output size's larger side. */
  resize?: number;
}

/**
 * torchvision's ColorJitter on [0, 1] images: a number b draws factors from [max(0, 1 − b), 1 + b],
 * a pair [min, max] from that range. Brightness blends with black, contrast with the mean of the
 * greyscale image, saturation with each pixel's grey; results are clamped to [0, 1]. The ops
 * present run in a random order per image (as torchvision's do).
 */
export interface ColorJitterOptions {
  brightness?: number | readonly [number, number];
  contrast?: number | readonly [number, number];
  saturation?: number | readonly [number, number];
}

/** Mixup (Zhang et al.) or CutMix (Yun et al.) with λ ~ Beta(alpha, alpha) per batch. */
export interface MixOptions {
  /** > 0; 1 draws λ uniformly, 0.2 (mixup) / 1 (cutmix) are common. */
  alpha: number;
}

/** The options augmentBatch passes to native code for the above (absent fields: off). */
export interface NativeImagenetOptions {
  randomResizedCrop?: { scale: [number, number]; ratio: [number, number] };
  centerCrop?: { resize: number };
  colorJitter?: { brightness: [number, number] | null; contrast: [number, number] | null; saturation: [number, number] | null };
  mixupAlpha?: number;
  cutmixAlpha?: number;
}

/** What augmentBatch's batch mixing did: image i's target is λ·onehot(label[i]) + (1 − λ)·onehot(label[count − 1 − i]). */
export interface AugmentResult {
  mix: 'none' | 'mixup' | 'cutmix';
  /** The weight of each image's own label (1 when nothing was mixed). */
  lambda: number;
}

const MAX_FACTOR = 1e6;

function interval(v: unknown, op: string, name: string, lo: number, hi: number, openLo: boolean): [number, number] {
  if (!Array.isArray(v) || v.length !== 2) validate.invalid(v, op, name, '[min, max]');
  const a = validate.number(v[0], op, `${name}[0]`, lo, hi, openLo ? 'min' : undefined);
  const b = validate.number(v[1], op, `${name}[1]`, lo, hi, openLo ? 'min' : undefined);
  if (a > b) validate.fail('E_ARG', `${op}: ${name} must be [min, max] with min ≤ max, got [${a}, ${b}]`);
  return [a, b];
}

function jitterRange(v: unknown, op: string, name: string): [number, number] | null {
  if (v === undefined) return null;
  if (typeof v === 'number') {
    const b = validate.number(v, op, name, 0, MAX_FACTOR);
    return [Math.max(0, 1 - b), 1 + b];
  }
  return interval(v, op, name, 0, MAX_FACTOR, false);
}

function object(v: unknown, op: string, name: string, keys: readonly string[]): Record<string, unknown> {
  if (!validate.isPlainObject(v)) validate.invalid(v, op, name, `an object { ${keys.join(', ')} }`);
  validate.keys(v, `${op} ${name}`, keys);
  return v;
}

export function randomResizedCropOptions(v: unknown, op: string, name = 'randomResizedCrop'): { scale: [number, number]; ratio: [number, number] } {
  const o = object(v, op, name, ['scale', 'ratio', 'size']);
  return {
    scale: o.scale === undefined ? [0.08, 1] : interval(o.scale, op, `${name}.scale`, 0, 1, true),
    ratio: o.ratio === undefined ? [3 / 4, 4 / 3] : interval(o.ratio, op, `${name}.ratio`, 0, MAX_FACTOR, true),
  };
}

export function colorJitterOptions(v: unknown, op: string, name = 'colorJitter'): NonNullable<NativeImagenetOptions['colorJitter']> {
  const o = object(v, op, name, ['brightness', 'contrast', 'saturation']);
  return {
    brightness: jitterRange(o.brightness, op, `${name}.brightness`),
    contrast: jitterRange(o.contrast, op, `${name}.contrast`),
    saturation: jitterRange(o.saturation, op, `${name}.saturation`),
  };
}

export function mixAlpha(v: unknown, op: string, name: 'mixup' | 'cutmix'): number {
  const o = object(v, op, name, ['alpha']);
  return validate.number(o.alpha, op, `${name}.alpha`, 0, MAX_FACTOR, 'min');
}

/** The centre crop's resize for an output of `size`; `resize` must cover it. */
export function centerCropResize(v: unknown, op: string, size: readonly [number, number], name = 'centerCrop'): number {
  const o = object(v, op, name, ['resize', 'size']);
  const need = Math.max(size[0], size[1]);
  if (o.resize === undefined) return need;
  return validate.integer(o.resize, op, `${name}.resize`, need, 2 ** 24);
}

/**
 * augmentBatch's ImageNet-style options checked, in the native form; `size` is the output
 * [height, width] (dst's). Throws E_ARG naming the option.
 */
export function imagenetOptions(
  o: { randomResizedCrop?: unknown; centerCrop?: unknown; colorJitter?: unknown; mixup?: unknown; cutmix?: unknown },
  op: string,
  size: readonly [number, number],
): NativeImagenetOptions {
  const out: NativeImagenetOptions = {};
  if (o.randomResizedCrop !== undefined && o.centerCrop !== undefined) {
    validate.fail('E_ARG', `${op}: pass randomResizedCrop (training) or centerCrop (evaluation), not both`);
  }
  if (o.randomResizedCrop !== undefined) out.randomResizedCrop = randomResizedCropOptions(o.randomResizedCrop, op);
  if (o.centerCrop !== undefined) out.centerCrop = { resize: centerCropResize(o.centerCrop, op, size) };
  for (const name of ['randomResizedCrop', 'centerCrop'] as const) {
    const given = (o[name] as { size?: unknown } | undefined)?.size;
    if (given === undefined) continue;
    const [h, w] = validate.pair(given, op, `${name}.size`);
    if (h !== size[0] || w !== size[1]) {
      validate.fail('E_SHAPE', `${op}: ${name}.size is [${h}, ${w}] but dst's images are [${size[0]}, ${size[1]}]`);
    }
  }
  if (o.colorJitter !== undefined) out.colorJitter = colorJitterOptions(o.colorJitter, op);
  if (o.mixup !== undefined) out.mixupAlpha = mixAlpha(o.mixup, op, 'mixup');
  if (o.cutmix !== undefined) out.cutmixAlpha = mixAlpha(o.cutmix, op, 'cutmix');
  return out;
}
