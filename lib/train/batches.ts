// The batch pipeline: two preallocated slots per batch size, each filled from a Dataset,
// augmented natively and, for a model on a GPU, copied there, so the next batch is ready
// while the current step runs. Also the checks every Dataset passes before it is used.
import { type AugmentOptions, augmentBatch } from '../data/augment.js';
import type { Dataset } from '../data/dataset.js';
import type { CenterCropOptions, ColorJitterOptions, MixOptions, RandomResizedCropOptions } from '../data/imagenet_augment.js';
import { ResNetError } from '../errors.js';
import type { Model } from '../model/model.js';
import { Tensor } from '../tensor.js';
import * as validate from '../validate.js';

/** Per-channel (or one value for every channel) input normalisation: (x − mean) / std. */
export interface NormalizeOptions {
  mean?: number | readonly number[];
  std?: number | readonly number[];
}

/** Training-time augmentation (native, see augmentBatch) plus the normalisation applied to training and validation images. */
export interface TrainAugmentOptions extends NormalizeOptions {
  /** Random crop after zero padding by this many pixels on each side. Default 0. */
  padding?: number;
  /** Random horizontal flip. Default false. */
  flip?: boolean;
  /** torchvision's RandomResizedCrop to `size` (the model's input size); validation then uses `centerCrop`. Not with padding. */
  randomResizedCrop?: RandomResizedCropOptions & { size: number | readonly [number, number] };
  /**
   * Validation's transform: resize (shorter side → resize) and centre-crop to `size`. Default with
   * randomResizedCrop: its size, resize = round(size / 0.875) (torchvision's 256 → 224).
   */
  centerCrop?: CenterCropOptions & { size?: number | readonly [number, number] };
  /** Colour jitter of training images (before the normalisation). */
  colorJitter?: ColorJitterOptions;
  /** Mixup of training batches, with the matching mixed-target loss. */
  mixup?: MixOptions;
  /** CutMix of training batches (with mixup: one of the two per batch). */
  cutmix?: MixOptions;
}

/** The ImageNet-style part of a pipeline's augmentation: augmentBatch's options, and the output size when it resamples. */
export interface ImagenetAugment {
  outputSize?: [number, number];
  options: Pick<AugmentOptions, 'randomResizedCrop' | 'centerCrop' | 'colorJitter' | 'mixup' | 'cutmix'>;
}

/** mean or std per channel, checked as augmentBatch checks them (std divides, so it must be > 0). */
export function channelList(v: number | readonly number[] | undefined, channels: number, op: string, name: 'mean' | 'std', dflt: number): number[] {
  let list: unknown[];
  if (v === undefined) list = new Array<number>(channels).fill(dflt);
  else if (typeof v === 'number') list = new Array<number>(channels).fill(v);
  else if (!Array.isArray(v) || v.length !== channels) {
    throw new ResNetError('E_ARG', `${op}: ${name} must be a number or an array of ${channels} numbers (one per channel), got ${JSON.stringify(v)}`);
  } else list = [...v];
  const min = name === 'std' ? Number.MIN_VALUE : -3e38;
  return list.map((x, i) => validate.number(x, op, typeof v === 'object' ? `${name}[${i}]` : name, min, 3e38));
}

export interface Slot {
  /** Indices of this batch (a view of `indexBuffer` sized to the batch). */
  indices: Int32Array;
  src: Float32Array;
  labels: Int32Array;
  /** Mixup / cutmix: each example's second label (labels reversed) and the batch's λ (1: unmixed). */
  mixLabels: Int32Array;
  lambda: number;
  x: Tensor;
  /** The options object passed to augmentBatch, reused (only `step` and `count` change). */
  aug: AugmentOptions & { imageShape: [number, number, number] };
}

/**
 * Two preallocated slots (source floats, labels, destination tensor) for full batches, and
 * one for the short last batch when there is one. `load` fills a slot from the dataset and
 * runs augmentBatch into its tensor; the caller alternates slots so one is being loaded
 * while the model reads the other.
 */
export class BatchPipeline {
  readonly #dataset: Dataset;
  readonly #perImage: number;
  readonly #slots: Slot[] = [];
  #tail: Slot | undefined;
  readonly #shape: [number, number, number];
  readonly #template: Omit<Slot['aug'], 'count' | 'step'>;
  readonly #outShape: [number, number, number];

  /** `op` names the caller in errors (a batch too large to allocate is E_ALLOC). */
  constructor(
    dataset: Dataset,
    readonly batchSize: number,
    tailSize: number,
    aug: { padding: number; flip: boolean; mean: number[]; std: number[]; seed: number },
    readonly op: string,
    imagenet?: ImagenetAugment,
  ) {
    this.#dataset = dataset;
    this.#shape = [...dataset.imageShape] as [number, number, number];
    this.#perImage = this.#shape[0] * this.#shape[1] * this.#shape[2];
    this.#template = { imageShape: this.#shape, ...aug, ...imagenet?.options };
    const out = imagenet?.outputSize;
    this.#outShape = out ? [out[0], out[1], this.#shape[2]] : this.#shape;
    try {
      for (let i = 0; i < 2; i++) this.#slots.push(this.#makeSlot(batchSize));
      if (tailSize > 0 && tailSize !== batchSize) this.#tail = this.#makeSlot(tailSize);
    } catch (err) {
      this.dispose();
      throw err;
    }
  }

  #makeSlot(n: number): Slot {
    const op = this.op;
    return {
      indices: validate.allocate(Int32Array, n, op, `the indices of a batch of ${n}`),
      src: validate.allocate(Float32Array, n * this.#perImage, op, `a batch of ${n} images [${this.#shape.join(', ')}]`),
      labels: validate.allocate(Int32Array, n, op, `the labels of a batch of ${n}`),
      mixLabels: validate.allocate(Int32Array, n, op, `the labels of a batch of ${n}`),
      lambda: 1,
      x: Tensor.zeros([n, ...this.#outShape]),
      aug: { ...this.#template, count: n, step: 0 },
    };
  }

  /** The slot a batch of `count` examples uses: the tail slot for a short batch, else slot `parity`. */
  slot(parity: number, count: number): Slot {
    if (count === this.batchSize) return this.#slots[parity]!;
    if (!this.#tail || this.#tail.indices.length !== count) throw new ResNetError('E_INTERNAL', `BatchPipeline: no slot for a batch of ${count}`);
    return this.#tail;
  }

  /** Fills `slot` with examples order[start … start+n) and augments them with `step`'s draw. */
  async load(slot: Slot, order: Int32Array, start: number, step: number): Promise<void> {
    const n = slot.indices.length;
    for (let i = 0; i < n; i++) slot.indices[i] = order[start + i]!;
    const filled = this.#dataset.fill(slot.indices, slot.src, slot.labels);
    this.#dataset.prefetch?.(order.subarray(start + n), this.batchSize); // the batches after this one
    await filled;
    slot.aug.step = step;
    const { lambda } = await augmentBatch(slot.src, slot.x, slot.aug);
    slot.lambda = lambda;
    for (let i = 0; i < n; i++) slot.mixLabels[i] = slot.labels[n - 1 - i]!; // image i was mixed with image n − 1 − i
  }

  /**
   * `load`, resolving to the tensor a model on `device` reads: the slot's own on the CPU; on
   * a GPU a copy there, made as soon as the batch is ready, so that it crosses on the GPU's
   * copy stream while the step before it still runs. Pass it to `release` once its step
   * has settled (or to `discard` if it may not have been used).
   */
  async stage(slot: Slot, order: Int32Array, start: number, step: number, device: string): Promise<Tensor> {
    await this.load(slot, order, start, step);
    return device === 'cpu' ? slot.x : slot.x.to(device);
  }

  dispose(): void {
    this.#dataset.prefetch?.(new Int32Array(0), this.batchSize); // the run is over: stop decoding ahead
    for (const s of this.#slots) s.x.dispose();
    this.#tail?.x.dispose();
  }
}

/** Frees a batch that BatchPipeline.stage copied to a GPU (a CPU batch is the pipeline's own slot tensor). */
export function release(x: Tensor): void {
  if (x.device !== 'cpu') x.dispose();
}

/** Awaits a staged batch that may still be loading, ignoring its outcome, and releases it (used before freeing what it writes to). */
export async function discard(p: Promise<Tensor> | undefined): Promise<void> {
  const x = await p?.catch(() => undefined);
  if (x) release(x);
}

/** One batch as `eachBatch` hands it over: its index, its slot, the tensor the model reads, and the call that starts loading the next. */
export interface StagedBatch {
  k: number;
  slot: Slot;
  x: Tensor;
  /** Starts staging batch k+1 (if there is one): call it once the work on `x` has been started, so the two overlap. */
  stageNext(): void;
}

/**
 * Batches 0 … steps−1 of `order` (batch k from position k × batchSize, `size(k)` examples,
 * augmented with draw `augmentStep(k)`) through `pipeline`, double-buffered: `run` starts its
 * work on batch k, calls stageNext() so that batch k+1 loads meanwhile, and settles; batch k's
 * tensor is then released and `after` (if given) sees `run`'s result. A batch staged but not
 * used (an error) is awaited and released before this settles.
 */
export async function eachBatch<R>(
  pipeline: BatchPipeline,
  order: Int32Array,
  steps: number,
  size: (k: number) => number,
  augmentStep: (k: number) => number,
  device: string,
  run: (batch: StagedBatch) => Promise<R>,
  after?: (k: number, slot: Slot, result: R) => Promise<void>,
): Promise<void> {
  const stage = (k: number) => pipeline.stage(pipeline.slot(k & 1, size(k)), order, k * pipeline.batchSize, augmentStep(k), device);
  let next: Promise<Tensor> | undefined = stage(0);
  try {
    for (let k = 0; k < steps; k++) {
      const slot = pipeline.slot(k & 1, size(k));
      const x = await next!; // batch k: `slot`'s tensor, or its copy on the model's GPU
      next = undefined;
      const stageNext = () => {
        if (k + 1 < steps) {
          next = stage(k + 1);
          next.catch(() => undefined);
        }
      };
      let result: R;
      try {
        result = await run({ k, slot, x, stageNext });
      } finally {
        release(x);
      }
      await after?.(k, slot, result);
    }
  } finally {
    await discard(next);
  }
}

/** Most examples a dataset may have: they are numbered in Int32Arrays (the shuffled order, the batch indices). */
const MAX_EXAMPLES = 2 ** 31 - 1;

export function checkDataset(d: unknown, op: string, name: string, model: Model): Dataset {
  const ds = d as Dataset;
  if (typeof ds !== 'object' || ds === null || typeof ds.fill !== 'function' || !Number.isInteger(ds.length) || !Array.isArray(ds.imageShape)) {
    throw new ResNetError('E_ARG', `${op}: ${name} must be a Dataset ({ length, imageShape, classes, fill })`);
  }
  if (ds.imageShape.length !== 3 || !ds.imageShape.every((v) => Number.isInteger(v) && v >= 1)) {
    throw new ResNetError('E_SHAPE', `${op}: ${name}.imageShape must be [height, width, channels], got ${JSON.stringify(ds.imageShape)}`);
  }
  const channels = model.inputShape[model.inputShape.length - 1];
  if (ds.imageShape[2] !== channels) {
    throw new ResNetError(
      'E_SHAPE',
      `${op}: ${name} has ${ds.imageShape[2]}-channel images [${ds.imageShape.join(', ')}] but model '${model.name}' takes ${channels} channels (inputShape [${model.inputShape.join(', ')}])`,
    );
  }
  if (!Number.isInteger(ds.classes) || ds.classes < 1 || ds.classes > model.classes) {
    throw new ResNetError('E_SHAPE', `${op}: ${name} has ${ds.classes} classes but model '${model.name}' has ${model.classes} outputs`);
  }
  if (ds.length < 1) throw new ResNetError('E_ARG', `${op}: ${name} is empty`);
  if (ds.length > MAX_EXAMPLES) throw new ResNetError('E_ARG', `${op}: ${name}.length is ${ds.length}, above the limit of ${MAX_EXAMPLES} examples`);
  return ds;
}
