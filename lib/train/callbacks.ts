// Training callbacks: the hooks Trainer.fit calls, the per-epoch log they see, and the two
// built-in callbacks: earlyStopping (stop when a metric stops improving) and checkpoint
// (save the last and the best model, with the training state needed to resume).
import { statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

import { ResNetError } from '../errors.js';
import { saveModel, type TrainingState } from '../io/checkpoint.js';
import type { Model } from '../model/model.js';
import * as validate from '../validate.js';

/** One epoch of training, as History holds it. Validation fields are present when fit() got a validation set. */
export interface EpochLog {
  /** 1-based: the number of epochs completed with this one. */
  epoch: number;
  /** Mean training loss over the epoch's steps (each batch's loss before its update). */
  loss: number;
  /** Training top-1 accuracy over the epoch (each batch before its update). */
  accuracy: number;
  /** Training top-5 accuracy over the epoch (each batch before its update); with 5 or more classes. (Validation top-5 is `valTop5`.) */
  top5?: number;
  valLoss?: number;
  valAccuracy?: number;
  /** With 5 or more classes. */
  valTop5?: number;
  /** Training images per second over the epoch's steps (validation excluded). */
  imagesPerSecond: number;
  /** Wall time of the epoch, validation included. */
  seconds: number;
  /** Learning rate of the epoch's last step. */
  lr: number;
}

/** What fit() returns: one entry per epoch, in order (a resumed run includes the epochs before the checkpoint). */
export type History = EpochLog[];

/** The metric names an EpochLog has, for `monitor` options. */
export type MonitorName = 'loss' | 'accuracy' | 'top5' | 'valLoss' | 'valAccuracy' | 'valTop5';

/**
 * Where a run stands, as Trainer stores it in checkpoints (saveModel's `training`), so that
 * `fit({ resumeFrom })` continues the run exactly and `eval` / `predict` know the input
 * normalisation and class names.
 */
export interface TrainerState extends TrainingState {
  /** Epochs completed. */
  epoch: number;
  /** Optimizer steps completed (the global step index of the next step). */
  step: number;
  /** The shuffling generator's state after the last completed epoch (SeededRandom.state()) and the augmentation seed. */
  rngState: { shuffle: number[]; augmentSeed: number };
  history: History;
  /** The normalisation applied to every input image: (x − mean[c]) / std[c]. */
  normalize: { mean: number[]; std: number[] };
  /** [height, width, channels] of the training images. */
  imageShape: [number, number, number];
  /** The training set's class names, when it has them. */
  classNames?: string[];
}

export interface BatchLog {
  /** 1-based epoch being trained. */
  epoch: number;
  /** 1-based step within the epoch. */
  step: number;
  /** Steps completed over the whole run, this one included. */
  globalStep: number;
  /** This batch's loss and top-1 accuracy (before the update), and the gradient norm. */
  loss: number;
  accuracy: number;
  gradNorm: number;
  lr: number;
  /** Examples in this batch. */
  size: number;
  /** fp16: the loss-scaled gradients overflowed, so this step changed nothing and the scale was halved. */
  skipped: boolean;
  /** The loss scale this step used (1 unless fp16). */
  lossScale: number;
}

/** What every hook receives: the run's fixed facts, its progress, and stop(). */
export interface TrainContext {
  readonly model: Model;
  readonly epochs: number;
  readonly stepsPerEpoch: number;
  readonly batchSize: number;
  readonly hasValidation: boolean;
  /** Epochs so far (entries before the checkpoint too, when resumed). Do not mutate. */
  readonly history: readonly EpochLog[];
  /** 1-based epoch being trained (or just finished, in onEpochEnd). */
  readonly epoch: number;
  /** Optimizer steps completed. */
  readonly step: number;
  /** Ends training after the current epoch (after this hook, when called from onEpochEnd). */
  stop(reason?: string): void;
  readonly stopRequested: boolean;
  readonly stopReason: string | undefined;
  /** The state to store in a checkpoint so that fit({ resumeFrom }) continues this run exactly. */
  trainingState(): TrainerState;
  /** Prints a line through the progress output (keeps the live bar intact). */
  log(message: string): void;
}

/**
 * Hooks called by Trainer.fit, in the order the callbacks are listed; each may be async
 * (fit awaits it). onEpochEnd may stop training by returning false or calling ctx.stop().
 */
export interface Callback {
  onTrainBegin?(ctx: TrainContext): void | Promise<void>;
  onEpochBegin?(epoch: number, ctx: TrainContext): void | Promise<void>;
  onBatchEnd?(batch: BatchLog, ctx: TrainContext): void | Promise<void>;
  onEpochEnd?(log: EpochLog, ctx: TrainContext): void | boolean | Promise<void | boolean>;
  onTrainEnd?(history: History, ctx: TrainContext): void | Promise<void>;
  /**
   * fit is failing (an error in a step, validation or another hook): release what
   * onTrainBegin opened (files, handles). Called instead of onTrainEnd; what it throws is
   * ignored, fit rethrows the original error.
   */
  onTrainAbort?(error: unknown, ctx: TrainContext): void | Promise<void>;
}

const MONITORS: readonly MonitorName[] = ['loss', 'accuracy', 'top5', 'valLoss', 'valAccuracy', 'valTop5'];

function monitorName(v: unknown, op: string): MonitorName {
  if (typeof v !== 'string' || !(MONITORS as readonly string[]).includes(v)) {
    throw new ResNetError('E_ARG', `${op}: monitor must be one of ${MONITORS.map((m) => `'${m}'`).join(', ')}, got ${JSON.stringify(v)}`);
  }
  return v as MonitorName;
}

function resolveMode(mode: unknown, monitor: MonitorName, op: string): 'min' | 'max' {
  if (mode === undefined || mode === 'auto') return monitor.toLowerCase().endsWith('loss') ? 'min' : 'max';
  if (mode !== 'min' && mode !== 'max') throw new ResNetError('E_ARG', `${op}: mode must be 'min', 'max' or 'auto', got ${JSON.stringify(mode)}`);
  return mode;
}

/** The monitored value of an epoch, or a clear error when the log does not have it (e.g. valLoss without validation). */
function monitored(log: EpochLog, monitor: MonitorName, op: string): number {
  const v = log[monitor];
  if (typeof v !== 'number') {
    const have = MONITORS.filter((m) => typeof log[m] === 'number');
    const hint = monitor.startsWith('val') ? ' (pass a validation dataset to fit)' : '';
    throw new ResNetError('E_ARG', `${op}: monitor '${monitor}' is not in the epoch log${hint}; available: ${have.join(', ')}`);
  }
  return v;
}

/** A tracker of the best value of a metric with a minimum improvement. */
class Best {
  value: number;
  constructor(
    readonly mode: 'min' | 'max',
    readonly minDelta: number,
  ) {
    this.value = mode === 'min' ? Infinity : -Infinity;
  }
  /** Whether `v` improves on the best (NaN never does); records it when it does. */
  offer(v: number): boolean {
    const better = this.mode === 'min' ? v < this.value - this.minDelta : v > this.value + this.minDelta;
    if (better) this.value = v;
    return better;
  }
}

export interface EarlyStoppingOptions {
  /** Default 'valLoss'. */
  monitor?: MonitorName;
  /** Epochs without improvement before stopping (Keras' rule: stop once `patience` epochs in a row did not improve). Default 0. */
  patience?: number;
  /** 'auto' (default): 'min' for losses, 'max' for accuracies. */
  mode?: 'min' | 'max' | 'auto';
  /** An improvement must exceed this (absolute). Default 0. */
  minDelta?: number;
  /** When training ends, put back the weights of the best epoch (if it was not the last). Default false. */
  restoreBestWeights?: boolean;
}

/**
 * Stops training when `monitor` has not improved (by more than `minDelta`) for `patience`
 * epochs, as Keras' EarlyStopping. On a resumed run its counters are rebuilt from the
 * history (restoreBestWeights only knows the epochs of this process).
 */
export function earlyStopping(options: EarlyStoppingOptions = {}): Callback {
  const op = 'earlyStopping';
  validate.keys(options, op, ['monitor', 'patience', 'mode', 'minDelta', 'restoreBestWeights']);
  const monitor = monitorName(options.monitor ?? 'valLoss', op);
  const patience = validate.integer(options.patience ?? 0, op, 'patience', 0);
  const mode = resolveMode(options.mode, monitor, op);
  const minDelta = validate.number(options.minDelta ?? 0, op, 'minDelta', 0, Number.MAX_VALUE);
  const restore = validate.boolean(options.restoreBestWeights ?? false, op, 'restoreBestWeights');
  let best = new Best(mode, minDelta);
  let wait = 0;
  let bestEpoch = 0;
  let bestWeights: Map<string, Float32Array> | undefined;

  const observe = (log: EpochLog): boolean => {
    const improved = best.offer(monitored(log, monitor, op));
    if (improved) {
      wait = 0;
      bestEpoch = log.epoch;
    } else {
      wait++;
    }
    return improved;
  };

  return {
    onTrainBegin(ctx) {
      best = new Best(mode, minDelta);
      wait = 0;
      bestEpoch = 0;
      bestWeights = undefined;
      for (const log of ctx.history) observe(log);
    },
    onEpochEnd(log, ctx) {
      if (observe(log)) {
        if (restore) {
          bestWeights = new Map();
          for (const p of ctx.model.parameterInfo()) bestWeights.set(p.name, ctx.model.getParameter(p.name));
        }
      } else if (wait >= patience && wait > 0) {
        ctx.stop(
          `early stopping: ${monitor} has not improved for ${wait} epoch${wait === 1 ? '' : 's'} (best ${best.value.toFixed(4)} at epoch ${bestEpoch})`,
        );
      }
    },
    onTrainEnd(history, ctx) {
      const last = history[history.length - 1];
      if (bestWeights && last && last.epoch !== bestEpoch) {
        for (const [name, values] of bestWeights) ctx.model.setParameter(name, values);
        ctx.log(`early stopping: restored the weights of epoch ${bestEpoch} (${monitor} ${best.value.toFixed(4)})`);
      }
      bestWeights = undefined;
    },
  };
}

export interface CheckpointOptions {
  /** Folder for the files (created if missing). */
  dir: string;
  /** Write `<dir>/model.safetensors` after every epoch. Default true. */
  saveLast?: boolean;
  /**
   * Write `<dir>/best.safetensors` whenever this metric improves; `true` picks 'valAccuracy'
   * with a validation set, else 'accuracy'. Default: off.
   */
  saveBest?: MonitorName | boolean;
  /** For saveBest. 'auto' (default): 'min' for losses, 'max' for accuracies. */
  mode?: 'min' | 'max' | 'auto';
  /** Also keep `<dir>/epoch-<n>.safetensors` for every epoch. Default false. */
  everyEpoch?: boolean;
  /** Store the optimizer state (momentum, Adam moments) so that a resumed run continues exactly. Default true. */
  optimizer?: boolean;
}

/** File names the checkpoint callback writes. */
export const CHECKPOINT_FILES = {
  last: 'model.safetensors',
  best: 'best.safetensors',
  epoch: (n: number) => `epoch-${n}.safetensors`,
} as const;

/** E_IO naming `dir` when it exists as something other than a folder (checked when the callback is made). */
function checkFolder(dir: string, op: string): void {
  let isDirectory: boolean;
  try {
    isDirectory = statSync(dir).isDirectory();
  } catch {
    return; // missing (created at the start of training) or unreadable (reported then)
  }
  if (!isDirectory) throw new ResNetError('E_IO', `${op}: dir '${dir}' exists and is not a folder`);
}

/** Creates `dir` (and the folders above it); E_IO naming it when that fails. */
async function createFolder(dir: string, op: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why =
      e?.code === 'EEXIST' || e?.code === 'ENOTDIR'
        ? 'it, or a folder above it, exists and is not a folder'
        : `${e?.code ?? ''} ${e?.message ?? String(err)}`;
    throw new ResNetError('E_IO', `${op}: cannot create dir '${dir}': ${why}`);
  }
}

/**
 * Saves the model after each epoch with the training state (epoch, step, shuffling RNG,
 * history), so `trainer.fit(data, { resumeFrom: '<dir>/model.safetensors', … })` continues
 * the run as if it had not stopped. Files are written atomically by saveModel. A `dir` that
 * exists as a file is an E_IO when the callback is made; one that cannot be created, at the
 * start of training.
 */
export function checkpoint(options: CheckpointOptions): Callback {
  const op = 'checkpoint';
  validate.keys(options, op, ['dir', 'saveLast', 'saveBest', 'mode', 'everyEpoch', 'optimizer']);
  if (typeof options.dir !== 'string' || options.dir.length === 0) throw new ResNetError('E_ARG', `${op}: dir must be a folder path`);
  const dir = options.dir;
  checkFolder(dir, op);
  const saveLast = validate.boolean(options.saveLast ?? true, op, 'saveLast');
  const everyEpoch = validate.boolean(options.everyEpoch ?? false, op, 'everyEpoch');
  const withOptimizer = validate.boolean(options.optimizer ?? true, op, 'optimizer');
  const saveBest = options.saveBest ?? false;
  const fixedMonitor = typeof saveBest === 'string' ? monitorName(saveBest, op) : undefined;
  if (typeof saveBest !== 'string' && typeof saveBest !== 'boolean') monitorName(saveBest, op);
  if (fixedMonitor !== undefined) resolveMode(options.mode, fixedMonitor, op);
  let monitor: MonitorName | undefined;
  let best: Best | undefined;

  return {
    async onTrainBegin(ctx) {
      monitor = saveBest === false ? undefined : (fixedMonitor ?? (ctx.hasValidation ? 'valAccuracy' : 'accuracy'));
      best = monitor === undefined ? undefined : new Best(resolveMode(options.mode, monitor, op), 0);
      if (best && monitor) for (const log of ctx.history) best.offer(monitored(log, monitor, op));
      await createFolder(dir, op);
    },
    async onEpochEnd(log, ctx) {
      const training = ctx.trainingState();
      const save = (file: string) => saveModel(ctx.model, join(dir, file), { optimizer: withOptimizer, training });
      if (saveLast) await save(CHECKPOINT_FILES.last);
      if (everyEpoch) await save(CHECKPOINT_FILES.epoch(log.epoch));
      if (best && monitor && best.offer(monitored(log, monitor, op))) await save(CHECKPOINT_FILES.best);
    },
  };
}
