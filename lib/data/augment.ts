// Training-time augmentation of a whole batch in native code, off the JS thread.
import { native } from '../native.js';
import { Tensor } from '../tensor.js';
import * as validate from '../validate.js';
import {
  type AugmentResult,
  type CenterCropOptions,
  type ColorJitterOptions,
  imagenetOptions,
  type MixOptions,
  type RandomResizedCropOptions,
} from './imagenet_augment.js';

export type { AugmentResult } from './imagenet_augment.js';

export interface AugmentOptions {
  /** Images to process: src holds at least count·h·w·c floats; dst's batch dimension is ≥ count. */
  count: number;
  /** [height, width, channels] of each image; dst must be [n, height, width, channels]. */
  imageShape: readonly [number, number, number];
  /** Random crop: pad every side with `padding` zeros, then crop back to h×w at a random offset. Default 0 (no crop). */
  padding?: number;
  /** Mirror each image left–right with probability 1/2. Default false. */
  flip?: boolean;
  /** Per-channel mean subtracted after crop and flip (so padded pixels become −mean/std). Default 0. */
  mean?: readonly number[];
  /** Per-channel divisor, > 0. Default 1. */
  std?: readonly number[];
  /** Seed of the random crops and flips: an integer in [0, 2^53). */
  seed: number;
  /** Training step (or any counter): an integer in [0, 2^53); different steps draw differently. */
  step: number;
  /** Random-resized-crop to dst's [height, width] (which may differ from imageShape's). Not with padding. */
  randomResizedCrop?: RandomResizedCropOptions & { size?: number | readonly [number, number] };
  /** Resize (shorter side → resize) and centre-crop to dst's [height, width]: evaluation's transform. */
  centerCrop?: CenterCropOptions & { size?: number | readonly [number, number] };
  /** Colour jitter before the normalisation (source values in [0, 1]). */
  colorJitter?: ColorJitterOptions;
  /** Mix image i with image count − 1 − i (λ per batch, see the result). */
  mixup?: MixOptions;
  /** Paste a box of image count − 1 − i into image i (λ = the share of i's pixels left). With mixup: one of the two per batch. */
  cutmix?: MixOptions;
}

const OP = 'augmentBatch';

function channelValues(v: unknown, name: string, channels: number, positive: boolean): number[] | null {
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v)) validate.fail('E_ARG', `${OP}: ${name} must be an array of ${channels} numbers`);
  if (v.length !== channels) {
    validate.fail('E_SHAPE', `${OP}: ${name} has ${v.length} values but imageShape has ${channels} channels`);
  }
  return v.map((x, i) =>
    positive ? validate.number(x, OP, `${name}[${i}]`, Number.MIN_VALUE, 3e38) : validate.number(x, OP, `${name}[${i}]`, -3e38, 3e38),
  );
}

/**
 * Writes `count` augmented images from `src` (NHWC float32, as a Dataset fills it) into
 * `dst`, a preallocated [n, h, w, c] tensor reused from step to step (images past `count`
 * are left as they are). Per image i: random crop with zero padding, random horizontal
 * flip, then (x − mean[ch]) / std[ch]; with padding 0 and flip false it only normalises.
 * The crop offset and flip of image i depend only on (seed, step, i) — a splitmix64 hash —
 * so results are reproducible and independent of the thread count.
 *
 * With randomResizedCrop or centerCrop, a window of each source image is resampled
 * (bilinear, half-pixel centres, no antialiasing) to dst's [height, width]; then flip,
 * colour jitter, normalisation, and mixup / cutmix across the batch (image i with image
 * count − 1 − i, λ per batch from (seed, step)). Resolves to what the mixing did, so that
 * the loss can use the matching targets (Model.trainStep's `mix`).
 *
 * Runs off the JS thread on a copy of the `count` images it reads from `src`, taken before
 * it returns: src may be written, resized or transferred at once. Do not use dst until the
 * promise settles. Bad arguments reject with a ResNetError
 * (E_ARG, E_SHAPE, E_DTYPE, E_DISPOSED).
 */
export async function augmentBatch(src: Float32Array, dst: Tensor, options: AugmentOptions): Promise<AugmentResult> {
  if (!(src instanceof Float32Array)) {
    validate.fail(
      'E_DTYPE',
      `${OP}: src must be a Float32Array, got ${src === null ? 'null' : typeof src === 'object' ? (src as object).constructor?.name : typeof src}`,
    );
  }
  const out = Tensor.check(dst, OP, 'dst');
  if (options === undefined || options === null) validate.fail('E_ARG', `${OP}: options { count, imageShape, seed, step } are required`);
  const o = validate.options<AugmentOptions>(options, OP);
  validate.keys(o, OP, [
    'count',
    'imageShape',
    'padding',
    'flip',
    'mean',
    'std',
    'seed',
    'step',
    'randomResizedCrop',
    'centerCrop',
    'colorJitter',
    'mixup',
    'cutmix',
  ]);
  const count = validate.integer(o.count, OP, 'count', 0);
  const shape = o.imageShape;
  if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((d) => Number.isInteger(d) && d >= 1 && d <= 2 ** 24)) {
    validate.fail('E_SHAPE', `${OP}: imageShape must be [height, width, channels] of positive integers, got ${JSON.stringify(shape)}`);
  }
  const [h, w, c] = shape as [number, number, number];
  const padding = validate.integer(o.padding ?? 0, OP, 'padding', 0, 2 ** 24);
  const flip = validate.boolean(o.flip ?? false, OP, 'flip');
  const mean = channelValues(o.mean, 'mean', c, false);
  const std = channelValues(o.std, 'std', c, true);
  const seed = validate.integer(o.seed, OP, 'seed', 0, Number.MAX_SAFE_INTEGER);
  const step = validate.integer(o.step, OP, 'step', 0, Number.MAX_SAFE_INTEGER);

  const ds = out.shape;
  const extra = imagenetOptions(o, OP, [ds[1] ?? h, ds[2] ?? w]);
  const resamples = extra.randomResizedCrop !== undefined || extra.centerCrop !== undefined;
  if (resamples && padding !== 0) validate.fail('E_ARG', `${OP}: padding cannot be combined with randomResizedCrop or centerCrop`);
  if (ds.length !== 4 || ds[3] !== c || (!resamples && (ds[1] !== h || ds[2] !== w))) {
    validate.fail('E_SHAPE', `${OP}: dst has shape [${ds.join(', ')}] but imageShape [${h}, ${w}, ${c}] needs [n, ${h}, ${w}, ${c}]`);
  }
  if (count > ds[0]!) validate.fail('E_SHAPE', `${OP}: count ${count} is above dst's batch size (dst shape [${ds.join(', ')}])`);
  if (src.length < count * h * w * c) {
    validate.fail('E_SHAPE', `${OP}: src has ${src.length} floats but ${count} images of [${h}, ${w}, ${c}] need ${count * h * w * c}`);
  }
  const r = await native.augmentBatch(src, out.handle, { count, imageShape: [h, w, c], padding, flip, mean, std, seed, step, ...extra });
  return { mix: r.kind, lambda: r.lambda };
}
