// train's ImageNet-style augmentation flags (--random-resized-crop, --crop-scale,
// --color-jitter, --mixup, --cutmix), checked before the data is loaded and mapped to
// Trainer.fit's augment options (lib/train/fit_imagenet.ts).
//
// With --random-resized-crop, folder images are stored larger than the model's input (the
// weights' resize side, or --image-size / 0.875 as torchvision's 256 → 224), training crops a
// random box of them to --image-size, and evaluation centre-crops --image-size from the stored
// image (torchvision's Resize + CenterCrop).
import { type Options, UsageError, type Values, str } from './args.js';

export const IMAGENET_AUGMENT: Options = {
  'random-resized-crop': { type: 'boolean' },
  'crop-scale': { type: 'string' },
  'color-jitter': { type: 'string' },
  mixup: { type: 'string' },
  cutmix: { type: 'string' },
};

export const IMAGENET_AUGMENT_HELP = `  --random-resized-crop  train on random boxes of the images resized to the image size, in
                         place of the padded crops (torchvision's RandomResizedCrop; folder
                         images are stored at the weights' resize side, or image size / 0.875,
                         and evaluated on their centre crop)
  --crop-scale <lo,hi>   with --random-resized-crop: the box's share of the image area
                         (default 0.08,1)
  --color-jitter <x>     colour jitter of training images: brightness, contrast and
                         saturation factors in [1 - x, 1 + x]; or b,c,s, one for each
  --mixup <alpha>        mixup of training batches, λ ~ Beta(alpha, alpha) (e.g. 0.2; CPU only)
  --cutmix <alpha>       CutMix of training batches (e.g. 1; with --mixup, one per batch)`;

export interface ImagenetAugmentFlags {
  randomResizedCrop: boolean;
  scale?: [number, number];
  colorJitter?: { brightness: number; contrast: number; saturation: number };
  mixup?: number;
  cutmix?: number;
}

/** A comma-separated list of non-negative numbers (count: the lengths allowed). */
function numbers(v: Values, key: string, counts: readonly number[], form: string): number[] | undefined {
  const s = str(v, key);
  if (s === undefined) return undefined;
  const parts = s.split(',').map((p) => p.trim());
  const values = parts.map((p) => (p === '' ? Number.NaN : Number(p)));
  if (!counts.includes(values.length) || !values.every((x) => Number.isFinite(x) && x >= 0 && x <= 1e6)) {
    throw new UsageError(`--${key} must be ${form}, got '${s}'`);
  }
  return values;
}

function alpha(v: Values, key: string): number | undefined {
  const a = numbers(v, key, [1], "a number > 0 (the Beta distribution's alpha)")?.[0];
  if (a === 0) throw new UsageError(`--${key} must be a number > 0 (the Beta distribution's alpha), got '${str(v, key)}'`);
  return a;
}

export function imagenetAugmentOptions(v: Values): ImagenetAugmentFlags {
  const randomResizedCrop = v['random-resized-crop'] === true;
  const scale = numbers(v, 'crop-scale', [2], 'lo,hi with 0 < lo ≤ hi ≤ 1 (e.g. 0.08,1)');
  if (scale && !(scale[0]! > 0 && scale[0]! <= scale[1]! && scale[1]! <= 1)) {
    throw new UsageError(`--crop-scale must be lo,hi with 0 < lo ≤ hi ≤ 1 (e.g. 0.08,1), got '${str(v, 'crop-scale')}'`);
  }
  if (scale && !randomResizedCrop) throw new UsageError('--crop-scale applies to --random-resized-crop only');
  const jitter = numbers(v, 'color-jitter', [1, 3], 'b or b,c,s (non-negative numbers, e.g. 0.4)');
  const out: ImagenetAugmentFlags = { randomResizedCrop };
  if (scale) out.scale = scale as [number, number];
  if (jitter) {
    const [b, c = b, s = b] = jitter as [number, number?, number?];
    out.colorJitter = { brightness: b, contrast: c, saturation: s };
  }
  const mixup = alpha(v, 'mixup');
  const cutmix = alpha(v, 'cutmix');
  if (mixup !== undefined) out.mixup = mixup;
  if (cutmix !== undefined) out.cutmix = cutmix;
  return out;
}

/** The side folder images are stored at for random-resized-crops to `side` without weights (torchvision's 224 / 256). */
export function storedSize(side: number): number {
  return Math.round(side / 0.875);
}

/**
 * fit's augment options for the flags: training crops to `side` from images stored at
 * `stored`, evaluation centre-crops `side` from them.
 */
export function imagenetFitOptions(f: ImagenetAugmentFlags, side: number, stored: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (f.randomResizedCrop) {
    out.randomResizedCrop = { size: side, ...(f.scale ? { scale: f.scale } : {}) };
    out.centerCrop = { size: side, resize: stored };
  }
  if (f.colorJitter) out.colorJitter = f.colorJitter;
  if (f.mixup !== undefined) out.mixup = { alpha: f.mixup };
  if (f.cutmix !== undefined) out.cutmix = { alpha: f.cutmix };
  return out;
}

/** The settings line's words for the flags ('' when none). */
export function describeImagenetAugment(f: ImagenetAugmentFlags, stored: number): string {
  const parts: string[] = [];
  if (f.randomResizedCrop) parts.push(`random-resized-crop${f.scale ? ` scale ${f.scale.join('-')}` : ''} from ${stored}`);
  if (f.colorJitter) parts.push(`color jitter ${f.colorJitter.brightness},${f.colorJitter.contrast},${f.colorJitter.saturation}`);
  if (f.mixup !== undefined) parts.push(`mixup ${f.mixup}`);
  if (f.cutmix !== undefined) parts.push(`cutmix ${f.cutmix}`);
  return parts.join(' + ');
}
