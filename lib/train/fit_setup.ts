// Trainer.fit's setup phase: the options checked and resolved into a FitPlan, and the point
// the run starts from (a fresh seed, or a checkpoint's training state copied into the model).
import type { Dataset } from '../data/dataset.js';
import { ResNetError } from '../errors.js';
import { loadCheckpoint } from '../io/checkpoint.js';
import type { Model } from '../model/model.js';
import * as validate from '../validate.js';
import { channelList, checkDataset, type ImagenetAugment, type NormalizeOptions, type TrainAugmentOptions } from './batches.js';
import { fitImagenetAugment } from './fit_imagenet.js';
import type { Callback, EpochLog, History, TrainerState } from './callbacks.js';
import { type CompileOptions, MAX_RATE } from './optimizers.js';
import type { ProgressMode } from './progress.js';
import { SeededRandom } from './random.js';
import { type LrSchedule, ReduceLROnPlateau } from './schedules.js';

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
  /**
   * Per step: an LrSchedule (`.at(globalStep)`, e.g. schedules.cosine). Per epoch: a function
   * (epoch, history) → lr, or a schedules.ReduceLROnPlateau, stepped on its `monitor` after
   * every epoch. Default: the compiled lr.
   */
  schedule?: LrSchedule | EpochSchedule | ReduceLROnPlateau;
  /** Skip the last, short batch of each epoch. Default true. */
  dropLast?: boolean;
  /** Overrides the Trainer's progress mode for this fit. */
  progress?: ProgressMode;
  /** false: no progress output (same as progress: 'none'). */
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

export function progressMode(v: unknown, op: string): ProgressMode {
  if (v !== 'auto' && v !== 'bar' && v !== 'log' && v !== 'none') {
    throw new ResNetError('E_ARG', `${op}: progress must be 'auto', 'bar', 'log' or 'none', got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Everything fit needs from its options, checked (in the order the checks report errors). */
export interface FitPlan {
  op: string;
  ds: Dataset;
  val: Dataset | undefined;
  epochs: number;
  batchSize: number;
  valBatchSize: number;
  shuffle: boolean;
  callbacks: Callback[];
  /** The progress mode of this fit. */
  mode: ProgressMode;
  mean: number[];
  std: number[];
  /** Whether the caller gave mean / std (otherwise the model's preprocessing may supply them). */
  normalizeGiven: boolean;
  padding: number;
  flip: boolean;
  /** Random-resized-crop, colour jitter, mixup / cutmix of training batches, and validation's centre crop. */
  imagenet: { train: ImagenetAugment; validation: ImagenetAugment; mixes: boolean };
  stepSchedule: LrSchedule | undefined;
  epochSchedule: EpochSchedule | undefined;
  /** A ReduceLROnPlateau schedule: sets each epoch's lr, steps after each epoch. */
  plateau: ReduceLROnPlateau | undefined;
  /** Training examples. */
  n: number;
  stepsPerEpoch: number;
  /** Size of the short last batch of an epoch, 0 when every batch is full. */
  tail: number;
  /** Checks a learning rate from the caller's schedule (`call` names the call in the error). */
  scheduled: (lr: unknown, call: string) => number;
}

/** Checks fit's options against `model`; `defaultMode` is the Trainer's progress mode. */
export function planFit(model: Model, train: Dataset, options: FitOptions, defaultMode: ProgressMode, op: string): FitPlan {
  validate.keys(options, op, FIT_KEYS);
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
  const mode = !verbose ? 'none' : options.progress !== undefined ? progressMode(options.progress, op) : defaultMode;

  const c = ds.imageShape[2];
  const augment = options.augment === false || options.augment === undefined ? {} : options.augment;
  if (typeof augment !== 'object' || augment === null) throw new ResNetError('E_ARG', `${op}: augment must be { padding, flip, mean, std } or false`);
  validate.keys(augment, `${op} augment`, ['padding', 'flip', 'mean', 'std', 'randomResizedCrop', 'centerCrop', 'colorJitter', 'mixup', 'cutmix']);
  const normalize = options.normalize ?? {};
  validate.keys(normalize, `${op} normalize`, ['mean', 'std']);
  const mean = channelList(augment.mean ?? normalize.mean, c, op, 'mean', 0);
  const std = channelList(augment.std ?? normalize.std, c, op, 'std', 1);
  const normalizeGiven = (augment.mean ?? normalize.mean ?? augment.std ?? normalize.std) !== undefined;
  const padding = validate.integer(augment.padding ?? 0, op, 'augment.padding', 0, 1 << 20);
  const flip = validate.boolean(augment.flip ?? false, op, 'augment.flip');
  const imagenet = fitImagenetAugment(augment, padding, op);
  if (imagenet.mixes && model.device !== 'cpu') {
    throw new ResNetError('E_ARG', `${op}: augment.mixup / augment.cutmix train on the CPU only for now (the model is on ${model.device})`);
  }
  const { stepSchedule, epochSchedule, plateau } = splitSchedule(options.schedule, op);
  if (plateau) {
    const m = plateau.monitor;
    if (m.startsWith('val') && !val)
      throw new ResNetError('E_ARG', `${op}: the ReduceLROnPlateau schedule monitors '${m}': pass a validation dataset`);
    if (m.endsWith('op5') && model.classes < 5) {
      throw new ResNetError(
        'E_ARG',
        `${op}: the ReduceLROnPlateau schedule monitors '${m}', which needs 5 or more classes (the model has ${model.classes})`,
      );
    }
  }

  const n = ds.length;
  const stepsPerEpoch = dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
  if (stepsPerEpoch === 0) {
    throw new ResNetError(
      'E_ARG',
      `${op}: the training set has ${n} examples, fewer than one batch of ${batchSize} (pass dropLast: false or a smaller batchSize)`,
    );
  }
  const tail = dropLast ? 0 : n % batchSize;
  // A schedule is the caller's code: its learning rate is checked here, naming the call.
  const scheduled = (lr: unknown, call: string): number => validate.number(lr, op, `the learning rate from ${call}`, 0, MAX_RATE);
  return {
    op,
    ds,
    val,
    epochs,
    batchSize,
    valBatchSize,
    shuffle,
    callbacks,
    mode,
    mean,
    std,
    normalizeGiven,
    padding,
    flip,
    imagenet,
    stepSchedule,
    epochSchedule,
    plateau,
    n,
    stepsPerEpoch,
    tail,
    scheduled,
  };
}

/** fit's `schedule`: a function is per epoch, a ReduceLROnPlateau per epoch on its metric, an object with at(step) per step. */
function splitSchedule(
  schedule: FitOptions['schedule'],
  op: string,
): { stepSchedule?: LrSchedule; epochSchedule?: EpochSchedule; plateau?: ReduceLROnPlateau } {
  if (typeof schedule === 'function') return { epochSchedule: schedule as EpochSchedule };
  if (schedule === undefined) return {};
  if (schedule instanceof ReduceLROnPlateau) return { plateau: schedule };
  if (typeof schedule !== 'object' || schedule === null || typeof (schedule as LrSchedule).at !== 'function') {
    throw new ResNetError('E_ARG', `${op}: schedule must be an LrSchedule (with at(step)), a ReduceLROnPlateau or a function (epoch, history) → lr`);
  }
  return { stepSchedule: schedule as LrSchedule };
}

/** Where a run starts: epochs and steps already done, the shuffling generator and the augmentation seed. */
export interface StartPoint {
  history: History;
  startEpoch: number;
  globalStep: number;
  rng: SeededRandom;
  augmentSeed: number;
}

/**
 * A fresh start from `seed` (random when not given), or, with `resumeFrom`, the checkpoint's
 * training state, with its weights, running statistics and optimizer state copied into `model`
 * once the whole state has been checked.
 */
export async function startPoint(model: Model, options: FitOptions, epochs: number, op: string): Promise<StartPoint> {
  if (options.resumeFrom === undefined) {
    const seed =
      options.seed === undefined ? Math.floor(Math.random() * 2 ** 32) : validate.integer(options.seed, op, 'seed', 0, Number.MAX_SAFE_INTEGER);
    return { history: [], startEpoch: 0, globalStep: 0, rng: new SeededRandom(seed), augmentSeed: seed };
  }
  const { model: saved, training } = await loadCheckpoint(validate.string(options.resumeFrom, op, 'resumeFrom (a checkpoint path)'));
  try {
    // Check the whole state before touching the model being trained.
    if (!training)
      throw new ResNetError(
        'E_FORMAT',
        `${op}: ${options.resumeFrom} has no training state (save it with the checkpoint callback, or saveModel(…, { training }))`,
      );
    const state = training as Partial<TrainerState>;
    const rs = state.rngState as Partial<TrainerState['rngState']> | undefined;
    if (typeof rs !== 'object' || rs === null || !Array.isArray(rs.shuffle)) {
      throw new ResNetError('E_FORMAT', `${op}: ${options.resumeFrom}'s training state was not written by Trainer (no rngState.shuffle)`);
    }
    const rng = SeededRandom.fromState(rs.shuffle);
    const augmentSeed = validate.integer(rs.augmentSeed, op, 'rngState.augmentSeed', 0, Number.MAX_SAFE_INTEGER);
    const history = Array.isArray(state.history) ? structuredClone(state.history) : [];
    const startEpoch = validate.integer(state.epoch, op, 'checkpoint epoch', 0);
    const globalStep = validate.integer(state.step, op, 'checkpoint step', 0, Number.MAX_SAFE_INTEGER);
    if (startEpoch >= epochs) {
      throw new ResNetError(
        'E_ARG',
        `${op}: ${options.resumeFrom} has already trained ${startEpoch} epochs; epochs (${epochs}) must be larger to continue`,
      );
    }
    copyModelState(saved, model, op);
    return { history, startEpoch, globalStep, rng, augmentSeed };
  } finally {
    saved.dispose();
  }
}

/**
 * Copies weights, running statistics and optimizer state from `from` into `to` (same architecture),
 * through the Model's own state methods.
 */
function copyModelState(from: Model, to: Model, op: string): void {
  const a = from.parameterInfo();
  const b = to.parameterInfo();
  const same = a.length === b.length && a.every((p, i) => p.name === b[i]!.name && p.shape.join() === b[i]!.shape.join());
  if (!same) {
    throw new ResNetError(
      'E_SHAPE',
      `${op}: the checkpoint holds model '${from.name}' (${from.paramCount()} parameters), which does not match the model being trained ('${to.name}', ${to.paramCount()} parameters)`,
    );
  }
  // The optimizers must agree before anything is copied.
  let slots = 0;
  if (from.compileOptions) {
    if (!to.compileOptions) to.compile(from.compileOptions as CompileOptions);
    slots = from.optimizerStateInfo().slots;
    if (slots !== to.optimizerStateInfo().slots) {
      throw new ResNetError(
        'E_ARG',
        `${op}: the checkpoint's optimizer (${from.compileOptions.optimizer.type}) differs from the model's (${to.compileOptions?.optimizer.type})`,
      );
    }
  }
  for (const p of a) to.setParameter(p.name, from.getParameter(p.name));
  // The run's description of its inputs, unless the model being trained has its own.
  if (to.preprocessing === undefined && from.preprocessing !== undefined) to.preprocessing = from.preprocessing;
  if (to.classNames === undefined && from.classNames !== undefined) to.classNames = from.classNames;
  if (!from.compileOptions) return;
  const src = { slots, steps: from.optimizerStateInfo().steps };
  for (const p of a) {
    if (!p.trainable) continue;
    for (let s = 0; s < src.slots; s++) to.setOptimizerState(p.name, s, from.getOptimizerState(p.name, s));
  }
  to.setOptimizerSteps(src.steps);
}
