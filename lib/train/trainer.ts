// Trainer: the training loop. Seeded shuffling, a two-slot batch pipeline (batch k+1 is
// filled, augmented and, for a model on a GPU, copied there while step k runs natively), per-step or per-epoch learning-rate
// schedules, validation every epoch, callbacks, progress, and exact resume from a checkpoint.
import { augmentBatch } from '../data/augment.js';
import type { Dataset } from '../data/dataset.js';
import { ResNetError } from '../errors.js';
import { loadCheckpoint } from '../io/checkpoint.js';
import type { Model } from '../model/model.js';
import { Tensor } from '../tensor.js';
import * as validate from '../validate.js';
import type { BatchLog, Callback, EpochLog, History, TrainContext, TrainerState } from './callbacks.js';
import { MetricAccumulator } from './metrics.js';
import { type CompileOptions, MAX_RATE } from './optimizers.js';
import { Progress, type ProgressMode, type ProgressStream } from './progress.js';
import type { LrSchedule } from './schedules.js';

// ---------------------------------------------------------------------------------------
// Seeded random numbers

/**
 * xoshiro128** (Blackman & Vigna), seeded through splitmix32: a small, fast generator whose
 * whole state is four 32-bit words, so it can be stored in a checkpoint and restored.
 * Shuffling uses it with unbiased bounded draws (rejection), so a seed gives the same order
 * on every platform.
 */
export class SeededRandom {
  #s = new Uint32Array(4);

  constructor(seed = 0) {
    let x = (validate.integer(seed, 'SeededRandom', 'seed', 0, Number.MAX_SAFE_INTEGER) ^ Math.floor(seed / 2 ** 32)) >>> 0;
    for (let i = 0; i < 4; i++) {
      // splitmix32
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.#s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if ((this.#s[0]! | this.#s[1]! | this.#s[2]! | this.#s[3]!) === 0) this.#s[0] = 1;
  }

  /** A generator in the given state (from state()). */
  static fromState(state: readonly number[]): SeededRandom {
    if (!Array.isArray(state) || state.length < 4 || !state.slice(0, 4).every((v) => Number.isInteger(v) && v >= 0 && v < 2 ** 32)) {
      throw new ResNetError('E_FORMAT', `SeededRandom.fromState: state must be four 32-bit unsigned integers, got ${JSON.stringify(state)}`);
    }
    if (state.slice(0, 4).every((v) => v === 0)) throw new ResNetError('E_FORMAT', 'SeededRandom.fromState: the all-zero state is invalid');
    const r = new SeededRandom(0);
    for (let i = 0; i < 4; i++) r.#s[i] = state[i]!;
    return r;
  }

  /** The state as four unsigned 32-bit integers (JSON-safe). */
  state(): number[] {
    return Array.from(this.#s);
  }

  /** A uniform unsigned 32-bit integer. */
  nextUint32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** A uniform float in [0, 1). */
  next(): number {
    return this.nextUint32() / 2 ** 32;
  }

  /** A uniform integer in [0, n), 1 ≤ n ≤ 2^32, without modulo bias. */
  nextInt(n: number): number {
    const limit = 2 ** 32 - (2 ** 32 % n);
    let x: number;
    do x = this.nextUint32();
    while (x >= limit);
    return x % n;
  }

  /** Fisher–Yates shuffle in place. */
  shuffle(a: { length: number; [i: number]: number }): void {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const t = a[i]!;
      a[i] = a[j]!;
      a[j] = t;
    }
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

// ---------------------------------------------------------------------------------------
// The batch pipeline

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
}

/** mean or std per channel, checked as augmentBatch checks them (std divides, so it must be > 0). */
function channelList(v: number | readonly number[] | undefined, channels: number, op: string, name: 'mean' | 'std', dflt: number): number[] {
  let list: unknown[];
  if (v === undefined) list = new Array<number>(channels).fill(dflt);
  else if (typeof v === 'number') list = new Array<number>(channels).fill(v);
  else if (!Array.isArray(v) || v.length !== channels) {
    throw new ResNetError('E_ARG', `${op}: ${name} must be a number or an array of ${channels} numbers (one per channel), got ${JSON.stringify(v)}`);
  } else list = [...v];
  const min = name === 'std' ? Number.MIN_VALUE : -3e38;
  return list.map((x, i) => validate.number(x, op, typeof v === 'object' ? `${name}[${i}]` : name, min, 3e38));
}

interface Slot {
  /** Indices of this batch (a view of `indexBuffer` sized to the batch). */
  indices: Int32Array;
  src: Float32Array;
  labels: Int32Array;
  x: Tensor;
  /** The options object passed to augmentBatch, reused (only `step` and `count` change). */
  aug: { count: number; imageShape: [number, number, number]; padding: number; flip: boolean; mean: number[]; std: number[]; seed: number; step: number };
}

/**
 * Two preallocated slots (source floats, labels, destination tensor) for full batches, and
 * one for the short last batch when there is one. `load` fills a slot from the dataset and
 * runs augmentBatch into its tensor; the caller alternates slots so one is being loaded
 * while the model reads the other.
 */
class BatchPipeline {
  readonly #dataset: Dataset;
  readonly #perImage: number;
  readonly #slots: Slot[] = [];
  #tail: Slot | undefined;
  readonly #shape: [number, number, number];
  readonly #template: Omit<Slot['aug'], 'count' | 'step'>;

  /** `op` names the caller in errors (a batch too large to allocate is E_ALLOC). */
  constructor(dataset: Dataset, readonly batchSize: number, tailSize: number, aug: { padding: number; flip: boolean; mean: number[]; std: number[]; seed: number }, readonly op: string) {
    this.#dataset = dataset;
    this.#shape = [...dataset.imageShape] as [number, number, number];
    this.#perImage = this.#shape[0] * this.#shape[1] * this.#shape[2];
    this.#template = { imageShape: this.#shape, ...aug };
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
      x: Tensor.zeros([n, ...this.#shape]),
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
    await this.#dataset.fill(slot.indices, slot.src, slot.labels);
    slot.aug.step = step;
    await augmentBatch(slot.src, slot.x, slot.aug);
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
    for (const s of this.#slots) s.x.dispose();
    this.#tail?.x.dispose();
  }
}

/** Frees a batch that BatchPipeline.stage copied to a GPU (a CPU batch is the pipeline's own slot tensor). */
function release(x: Tensor): void {
  if (x.device !== 'cpu') x.dispose();
}

/** Awaits a staged batch that may still be loading, ignoring its outcome, and releases it (used before freeing what it writes to). */
async function discard(p: Promise<Tensor> | undefined): Promise<void> {
  const x = await p?.catch(() => undefined);
  if (x) release(x);
}

/** Most examples a dataset may have: they are numbered in Int32Arrays (the shuffled order, the batch indices). */
const MAX_EXAMPLES = 2 ** 31 - 1;

function checkDataset(d: unknown, op: string, name: string, model: Model): Dataset {
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

// ---------------------------------------------------------------------------------------
// Evaluation

export interface EvaluateOptions extends NormalizeOptions {
  /** Default 256. */
  batchSize?: number;
}

export interface EvaluationResult {
  /** Mean softmax cross-entropy (no label smoothing). */
  loss: number;
  /** Top-1 accuracy. */
  accuracy: number;
  /** Top-5 accuracy, with 5 or more classes. */
  top5?: number;
  /** Examples evaluated (all of the dataset). */
  count: number;
}

/**
 * Loss, top-1 and top-5 accuracy of `model` on every example of `dataset`, in inference mode
 * (model.predict on batches; the metrics are computed in TypeScript from the logits). Images
 * are normalised with `mean`/`std` as in training. The next batch is loaded while the
 * current one is predicted.
 */
export async function evaluateModel(model: Model, dataset: Dataset, options: EvaluateOptions = {}): Promise<EvaluationResult> {
  const op = 'evaluateModel';
  validate.keys(options, op, ['batchSize', 'mean', 'std']);
  const ds = checkDataset(dataset, op, 'dataset', model);
  const batchSize = validate.integer(options.batchSize ?? 256, op, 'batchSize', 1);
  const c = ds.imageShape[2];
  const mean = channelList(options.mean, c, op, 'mean', 0);
  const std = channelList(options.std, c, op, 'std', 1);
  const pipeline = new BatchPipeline(ds, Math.min(batchSize, ds.length), ds.length % Math.min(batchSize, ds.length), { padding: 0, flip: false, mean, std, seed: 0 }, op);
  try {
    const acc = await runEvaluation(model, ds, pipeline);
    return { loss: acc.loss, accuracy: acc.accuracy, ...(model.classes >= 5 ? { top5: acc.top5 } : {}), count: acc.count };
  } finally {
    pipeline.dispose();
  }
}

function checkLabels(slot: Slot, classes: number, order: Int32Array, start: number): void {
  const labels = slot.labels;
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i]!;
    if (!(y >= 0 && y < classes)) {
      throw new ResNetError('E_ARG', `evaluation: the dataset wrote label ${y} of example ${order[start + i]}, which is outside [0, ${classes})`);
    }
  }
}

async function runEvaluation(model: Model, ds: Dataset, pipeline: BatchPipeline, acc = new MetricAccumulator()): Promise<MetricAccumulator> {
  const n = ds.length;
  const b = pipeline.batchSize;
  const steps = Math.ceil(n / b);
  const order = validate.allocate(Int32Array, n, pipeline.op, 'the order of the examples');
  for (let i = 0; i < n; i++) order[i] = i;
  const size = (k: number) => Math.min(b, n - k * b);
  const device = model.device;
  let next: Promise<Tensor> | undefined = pipeline.stage(pipeline.slot(0, size(0)), order, 0, 0, device);
  try {
    for (let k = 0; k < steps; k++) {
      const slot = pipeline.slot(k & 1, size(k));
      const x = await next!;
      next = undefined;
      try {
        const logitsP = model.predict(x);
        if (k + 1 < steps) {
          next = pipeline.stage(pipeline.slot((k + 1) & 1, size(k + 1)), order, (k + 1) * b, 0, device);
          next.catch(() => undefined);
        }
        const logits = await logitsP;
        try {
          checkLabels(slot, model.classes, order, k * b);
          acc.addLogits(logits.toFloat32Array(), model.classes, slot.labels, slot.labels.length);
        } finally {
          logits.dispose();
        }
      } finally {
        release(x);
      }
    }
  } finally {
    await discard(next);
  }
  return acc;
}

// ---------------------------------------------------------------------------------------
// Trainer

/** A per-epoch learning rate: called before each epoch with its 0-based index and the history so far. */
export type EpochSchedule = (epoch: number, history: readonly EpochLog[]) => number;

export interface FitOptions {
  epochs: number;
  batchSize: number;
  validation?: Dataset;
  /** Batch size of validation. Default: batchSize. */
  validationBatchSize?: number;
  callbacks?: readonly Callback[];
  /** A checkpoint written by the checkpoint callback (or saveModel with training state): continue that run. */
  resumeFrom?: string;
  /** Reshuffle the training set every epoch. Default true. */
  shuffle?: boolean;
  /** Seed of the shuffling and of the augmentation draws. Default: random (recorded in checkpoints). */
  seed?: number;
  /** Random crop / flip, and the normalisation. Default: no augmentation. */
  augment?: TrainAugmentOptions | false;
  /** Normalisation when `augment` does not give mean/std. Default mean 0, std 1. */
  normalize?: NormalizeOptions;
  /** Per step: an LrSchedule (`.at(globalStep)`, e.g. schedules.cosine). Per epoch: a function (epoch, history) → lr. Default: the compiled lr. */
  schedule?: LrSchedule | EpochSchedule;
  /** Skip the last, short batch of each epoch. Default true. */
  dropLast?: boolean;
  /** Overrides the Trainer's progress mode for this fit. */
  progress?: ProgressMode;
  /** false: no progress output (same as progress: 'none'). */
  verbose?: boolean;
}

export interface TrainerOptions {
  /** Compile the model with these options (otherwise it must already be compiled). */
  compile?: CompileOptions;
  /** 'auto' (default): a live bar on a TTY, plain log lines otherwise. */
  progress?: ProgressMode;
  /** Where progress goes. Default process.stderr. */
  progressStream?: ProgressStream;
  /** false: no progress output. */
  verbose?: boolean;
}

const FIT_KEYS = [
  'epochs',
  'batchSize',
  'validation',
  'validationBatchSize',
  'callbacks',
  'resumeFrom',
  'shuffle',
  'seed',
  'augment',
  'normalize',
  'schedule',
  'dropLast',
  'progress',
  'verbose',
];

function progressMode(v: unknown, op: string): ProgressMode {
  if (v !== 'auto' && v !== 'bar' && v !== 'log' && v !== 'none') {
    throw new ResNetError('E_ARG', `${op}: progress must be 'auto', 'bar', 'log' or 'none', got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Copies weights, running statistics and optimizer state from `from` into `to` (same architecture). */
function copyModelState(from: Model, to: Model, op: string): void {
  const a = from.parameterInfo();
  const b = to.parameterInfo();
  const same = a.length === b.length && a.every((p, i) => p.name === b[i]!.name && p.shape.join() === b[i]!.shape.join());
  if (!same) {
    throw new ResNetError('E_SHAPE', `${op}: the checkpoint holds model '${from.name}' (${from.paramCount()} parameters), which does not match the model being trained ('${to.name}', ${to.paramCount()} parameters)`);
  }
  // The optimizers must agree before anything is copied.
  let slots = 0;
  if (from.compileOptions) {
    if (!to.compileOptions) to.compile(from.compileOptions as CompileOptions);
    slots = from.network.optimizerStateInfo().slots;
    if (slots !== to.network.optimizerStateInfo().slots) {
      throw new ResNetError('E_ARG', `${op}: the checkpoint's optimizer (${from.compileOptions.optimizer.type}) differs from the model's (${to.compileOptions?.optimizer.type})`);
    }
  }
  for (const p of a) to.setParameter(p.name, from.getParameter(p.name));
  if (!from.compileOptions) return;
  const src = { slots, steps: from.network.optimizerStateInfo().steps };
  for (const p of a) {
    if (!p.trainable) continue;
    for (let s = 0; s < src.slots; s++) to.network.setOptimizerState(p.name, s, from.network.getOptimizerState(p.name, s));
  }
  to.network.setOptimizerState(null, -1, src.steps);
}

/**
 * Trains a compiled Model on a Dataset:
 *
 * ```ts
 * const trainer = new Trainer(model, { compile: { optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true } } });
 * const history = await trainer.fit(train, { epochs: 10, batchSize: 128, validation: test, seed: 1,
 *   augment: { padding: 4, flip: true, mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26] },
 *   schedule: schedules.cosine({ lr: 0.1, totalSteps: 10 * Math.floor(train.length / 128), warmupSteps: 100 }),
 *   callbacks: [checkpoint({ dir: 'runs/x', saveBest: 'valAccuracy' }), earlyStopping({ patience: 3 })] });
 * ```
 */
export class Trainer {
  readonly model: Model;
  readonly #progressMode: ProgressMode;
  readonly #stream: ProgressStream | undefined;
  #running = false;
  #stopReason: string | undefined;
  #history: History = [];

  constructor(model: Model, options: TrainerOptions = {}) {
    const op = 'Trainer';
    if (typeof model !== 'object' || model === null || typeof (model as Model).trainStep !== 'function') {
      throw new ResNetError('E_ARG', `${op}: model must be a Model`);
    }
    validate.keys(options, op, ['compile', 'progress', 'progressStream', 'verbose']);
    this.model = model;
    if (options.compile !== undefined) model.compile(options.compile);
    const verbose = validate.boolean(options.verbose ?? true, op, 'verbose');
    this.#progressMode = verbose ? progressMode(options.progress ?? 'auto', op) : 'none';
    const stream = options.progressStream as unknown;
    if (stream !== undefined && (typeof stream !== 'object' || stream === null || typeof (stream as ProgressStream).write !== 'function')) {
      throw new ResNetError('E_ARG', `${op}: progressStream must be an object with write(text) (a Writable such as process.stderr)`);
    }
    this.#stream = stream as ProgressStream | undefined;
  }

  /** Why the last fit stopped before its last epoch (a callback's reason), or undefined. */
  get stopReason(): string | undefined {
    return this.#stopReason;
  }

  /** The history of the last fit. */
  get history(): History {
    return this.#history;
  }

  async fit(train: Dataset, options: FitOptions): Promise<History> {
    const op = 'Trainer.fit';
    if (this.#running) throw new ResNetError('E_BUSY', `${op}: this trainer is already training`);
    validate.keys(options, op, FIT_KEYS);
    const model = this.model;
    const ds = checkDataset(train, op, 'train', model);
    const val = options.validation === undefined ? undefined : checkDataset(options.validation, op, 'validation', model);
    const epochs = validate.integer(options.epochs, op, 'epochs', 1);
    const batchSize = validate.integer(options.batchSize, op, 'batchSize', 1);
    const valBatchSize = validate.integer(options.validationBatchSize ?? batchSize, op, 'validationBatchSize', 1);
    const shuffle = validate.boolean(options.shuffle ?? true, op, 'shuffle');
    const dropLast = validate.boolean(options.dropLast ?? true, op, 'dropLast');
    if (!Array.isArray(options.callbacks ?? [])) throw new ResNetError('E_ARG', `${op}: callbacks must be an array of callbacks`);
    const callbacks = [...(options.callbacks ?? [])];
    callbacks.forEach((cb, i) => {
      if (typeof cb !== 'object' || cb === null) throw new ResNetError('E_ARG', `${op}: callbacks[${i}] must be an object with on… hooks`);
    });
    const verbose = validate.boolean(options.verbose ?? true, op, 'verbose');
    const mode = !verbose ? 'none' : options.progress !== undefined ? progressMode(options.progress, op) : this.#progressMode;

    const c = ds.imageShape[2];
    const augment = options.augment === false || options.augment === undefined ? {} : options.augment;
    if (typeof augment !== 'object' || augment === null) throw new ResNetError('E_ARG', `${op}: augment must be { padding, flip, mean, std } or false`);
    validate.keys(augment, `${op} augment`, ['padding', 'flip', 'mean', 'std']);
    const normalize = options.normalize ?? {};
    validate.keys(normalize, `${op} normalize`, ['mean', 'std']);
    const mean = channelList(augment.mean ?? normalize.mean, c, op, 'mean', 0);
    const std = channelList(augment.std ?? normalize.std, c, op, 'std', 1);
    const padding = validate.integer(augment.padding ?? 0, op, 'augment.padding', 0, 1 << 20);
    const flip = validate.boolean(augment.flip ?? false, op, 'augment.flip');

    const schedule = options.schedule;
    let stepSchedule: LrSchedule | undefined;
    let epochSchedule: EpochSchedule | undefined;
    if (typeof schedule === 'function') epochSchedule = schedule as EpochSchedule;
    else if (schedule !== undefined) {
      if (typeof schedule !== 'object' || schedule === null || typeof (schedule as LrSchedule).at !== 'function') {
        throw new ResNetError('E_ARG', `${op}: schedule must be an LrSchedule (with at(step)) or a function (epoch, history) → lr`);
      }
      stepSchedule = schedule as LrSchedule;
    }

    const n = ds.length;
    const stepsPerEpoch = dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
    if (stepsPerEpoch === 0) {
      throw new ResNetError('E_ARG', `${op}: the training set has ${n} examples, fewer than one batch of ${batchSize} (pass dropLast: false or a smaller batchSize)`);
    }
    const tail = dropLast ? 0 : n % batchSize;
    // A schedule is the caller's code: its learning rate is checked here, naming the call.
    const scheduled = (lr: unknown, call: string): number => validate.number(lr, op, `the learning rate from ${call}`, 0, MAX_RATE);

    // Where the run starts: fresh, or from a checkpoint's training state.
    let history: History = [];
    let startEpoch = 0;
    let globalStep = 0;
    let rng: SeededRandom;
    let augmentSeed: number;
    if (options.resumeFrom !== undefined) {
      const { model: saved, training } = await loadCheckpoint(validate.string(options.resumeFrom, op, 'resumeFrom (a checkpoint path)'));
      try {
        // Check the whole state before touching the model being trained.
        if (!training) throw new ResNetError('E_FORMAT', `${op}: ${options.resumeFrom} has no training state (save it with the checkpoint callback, or saveModel(…, { training }))`);
        const state = training as Partial<TrainerState>;
        const rs = state.rngState as Partial<TrainerState['rngState']> | undefined;
        if (typeof rs !== 'object' || rs === null || !Array.isArray(rs.shuffle)) {
          throw new ResNetError('E_FORMAT', `${op}: ${options.resumeFrom}'s training state was not written by Trainer (no rngState.shuffle)`);
        }
        rng = SeededRandom.fromState(rs.shuffle);
        augmentSeed = validate.integer(rs.augmentSeed, op, 'rngState.augmentSeed', 0, Number.MAX_SAFE_INTEGER);
        history = Array.isArray(state.history) ? structuredClone(state.history) : [];
        startEpoch = validate.integer(state.epoch, op, 'checkpoint epoch', 0);
        globalStep = validate.integer(state.step, op, 'checkpoint step', 0, Number.MAX_SAFE_INTEGER);
        if (startEpoch >= epochs) {
          throw new ResNetError('E_ARG', `${op}: ${options.resumeFrom} has already trained ${startEpoch} epochs; epochs (${epochs}) must be larger to continue`);
        }
        copyModelState(saved, model, op);
      } finally {
        saved.dispose();
      }
    } else {
      const seed = options.seed === undefined ? Math.floor(Math.random() * 2 ** 32) : validate.integer(options.seed, op, 'seed', 0, Number.MAX_SAFE_INTEGER);
      rng = new SeededRandom(seed);
      augmentSeed = seed;
    }
    if (!model.compileOptions) {
      throw new ResNetError('E_ARG', `${op}: compile the model first (model.compile or new Trainer(model, { compile }))`);
    }

    const progress = new Progress({ mode, ...(this.#stream ? { stream: this.#stream } : {}) });
    this.#running = true;
    this.#stopReason = undefined;
    this.#history = history;
    let stopReason: string | undefined;
    let epoch = startEpoch; // epochs completed
    const classNames = ds.classNames ? [...ds.classNames] : undefined;
    const trainingState = (): TrainerState => ({
      epoch,
      step: globalStep,
      rngState: { shuffle: rng.state(), augmentSeed },
      history: structuredClone(history),
      normalize: { mean: [...mean], std: [...std] },
      imageShape: [...ds.imageShape] as [number, number, number],
      ...(classNames ? { classNames } : {}),
    });
    const ctx: TrainContext = {
      model,
      epochs,
      stepsPerEpoch,
      batchSize,
      hasValidation: val !== undefined,
      history,
      get epoch() {
        return epoch;
      },
      get step() {
        return globalStep;
      },
      stop(reason = 'stopped by a callback') {
        stopReason ??= reason;
      },
      get stopRequested() {
        return stopReason !== undefined;
      },
      get stopReason() {
        return stopReason;
      },
      trainingState,
      log: (message: string) => progress.message(message),
    };

    let pipeline: BatchPipeline | undefined;
    let valPipeline: BatchPipeline | undefined;
    let next: Promise<Tensor> | undefined;
    const wantsBatch = callbacks.some((cb) => typeof cb.onBatchEnd === 'function');
    try {
      const device = model.device; // on a GPU, each batch is copied there while the step before it runs
      // A batch larger than the dataset (dropLast: false) is one batch of every example.
      pipeline = new BatchPipeline(ds, Math.min(batchSize, n), tail, { padding, flip, mean, std, seed: augmentSeed }, op);
      if (val) {
        const vb = Math.min(valBatchSize, val.length);
        valPipeline = new BatchPipeline(val, vb, val.length % vb, { padding: 0, flip: false, mean, std, seed: 0 }, op);
      }
      const order = validate.allocate(Int32Array, n, op, 'the order of the examples');
      const acc = new MetricAccumulator();
      const valAcc = new MetricAccumulator();
      const size = (k: number) => (k < stepsPerEpoch - 1 || tail === 0 ? batchSize : tail);

      for (const cb of callbacks) await cb.onTrainBegin?.(ctx);
      progress.trainBegin(epochs, stepsPerEpoch);
      model.train();

      while (epoch < epochs && stopReason === undefined) {
        const epochIndex = epoch; // 0-based index of the epoch being trained
        for (let i = 0; i < n; i++) order[i] = i;
        if (shuffle) rng.shuffle(order);
        let lr = model.learningRate;
        if (epochSchedule) {
          lr = scheduled(epochSchedule(epochIndex, history), `schedule(${epochIndex}, history)`);
          model.setLearningRate(lr);
        }
        for (const cb of callbacks) await cb.onEpochBegin?.(epochIndex + 1, ctx);
        progress.epochBegin(epochIndex + 1);
        acc.reset();
        const t0 = performance.now();

        next = pipeline.stage(pipeline.slot(0, size(0)), order, 0, globalStep, device);
        for (let k = 0; k < stepsPerEpoch; k++) {
          const slot = pipeline.slot(k & 1, size(k));
          const x = await next!; // batch k: `slot`'s tensor, or its copy on the model's GPU
          next = undefined;
          let r: Awaited<ReturnType<Model['trainStep']>>;
          try {
            if (stepSchedule) lr = scheduled(stepSchedule.at(globalStep), `schedule.at(${globalStep})`);
            const stepP = stepSchedule ? model.trainStep(x, slot.labels, { lr }) : model.trainStep(x, slot.labels);
            // Batch k+1 loads (fill + augment, then the copy to the GPU) while step k runs natively.
            if (k + 1 < stepsPerEpoch) {
              next = pipeline.stage(pipeline.slot((k + 1) & 1, size(k + 1)), order, (k + 1) * batchSize, globalStep + 1, device);
              next.catch(() => undefined);
            }
            r = await stepP;
          } catch (err) {
            // Training stops here; the native message names the layer, this adds where in the run.
            if (err instanceof ResNetError && err.code === 'E_NAN') {
              throw new ResNetError('E_NAN', `Trainer.fit: epoch ${epochIndex + 1}, step ${k + 1} of ${stepsPerEpoch} (global step ${globalStep + 1}): ${err.message}`);
            }
            throw err;
          } finally {
            release(x);
          }
          globalStep++;
          const count = slot.labels.length;
          acc.addBatchMeans(count, r.loss, r.accuracy, r.top5Accuracy);
          progress.batch(k + 1, acc.loss, acc.accuracy, acc.count);
          if (wantsBatch) {
            const log: BatchLog = { epoch: epochIndex + 1, step: k + 1, globalStep, loss: r.loss, accuracy: r.accuracy, gradNorm: r.gradNorm, lr, size: count, skipped: r.skipped, lossScale: r.lossScale };
            for (const cb of callbacks) await cb.onBatchEnd?.(log, ctx);
          }
        }
        const trainSeconds = (performance.now() - t0) / 1000;

        const entry: EpochLog = {
          epoch: epochIndex + 1,
          loss: acc.loss,
          accuracy: acc.accuracy,
          ...(model.classes >= 5 ? { top5: acc.top5 } : {}),
          imagesPerSecond: trainSeconds > 0 ? acc.count / trainSeconds : 0,
          seconds: 0,
          lr,
        };
        if (val && valPipeline) {
          progress.validating();
          valAcc.reset();
          await runEvaluation(model, val, valPipeline, valAcc);
          entry.valLoss = valAcc.loss;
          entry.valAccuracy = valAcc.accuracy;
          if (model.classes >= 5) entry.valTop5 = valAcc.top5;
        }
        entry.seconds = (performance.now() - t0) / 1000;
        epoch = epochIndex + 1;
        history.push(entry);
        progress.epochEnd(entry);
        for (const cb of callbacks) {
          if ((await cb.onEpochEnd?.(entry, ctx)) === false) ctx.stop('stopped by a callback');
        }
      }
      if (stopReason !== undefined && epoch < epochs) progress.message(stopReason);
      this.#stopReason = epoch < epochs ? stopReason : undefined;
      for (const cb of callbacks) await cb.onTrainEnd?.(history, ctx);
      return history;
    } finally {
      await discard(next);
      progress.trainEnd();
      pipeline?.dispose();
      valPipeline?.dispose();
      this.#running = false;
    }
  }
}
