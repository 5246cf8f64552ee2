// The tensorBoard callback: scalars (and optionally weight histograms) in TensorBoard event
// files, laid out as Keras' TensorBoard callback lays them out, so `tensorboard --logdir <logDir>`
// shows train and validation curves on the same charts:
//
//   <logDir>/train/events.out.tfevents.…       per step: batch_loss, batch_accuracy,
//                                              batch_learning_rate, batch_images_per_second,
//                                              batch_loss_scale; per epoch: epoch_loss,
//                                              epoch_accuracy, epoch_top5, epoch_learning_rate,
//                                              epoch_images_per_second, epoch (its number);
//                                              <parameter>/histogram with `histograms: true`
//   <logDir>/validation/events.out.tfevents.…  per epoch: epoch_loss, epoch_accuracy, epoch_top5
//
// Every event's step is the global step (optimizer steps completed; for an epoch's values, the
// step that ended it), as PyTorch Lightning logs, not Keras' epoch index: one step axis per
// folder is what lets TensorBoard drop, on resume, what an interrupted run logged after its
// last checkpoint. Each fit writes new files (TensorBoard reads every file of a folder); a
// resumed run first writes SessionLog START at its first new step, upon which TensorBoard's
// reader purges the events at that step and after. Files are flushed and fsynced at every
// epoch end, closed when fit ends or fails.
import { statSync } from 'node:fs';
import { join } from 'node:path';

import { ResNetError } from '../errors.js';
import * as validate from '../validate.js';
import type { BatchLog, Callback, EpochLog, TrainContext } from './callbacks.js';
import { EventFileWriter, histogram, histogramEvent, scalarEvent, sessionStartEvent } from './tensorboard_events.js';

export interface TensorBoardOptions {
  /** The run's folder; train/ and validation/ are created in it. */
  logDir: string;
  /** Per-step scalars every `updateFreq` steps (an integer ≥ 1), or 'epoch' for none. Default 1. */
  updateFreq?: number | 'epoch';
  /** A histogram of every parameter (weights, biases, BN statistics) at each epoch end. Default false. */
  histograms?: boolean;
  /** Pending per-step events are written at least this often (seconds, as TensorBoard's flush_secs). Default 30. */
  flushSeconds?: number;
}

/** The sub-folders of logDir, as Keras names them. */
export const TENSORBOARD_DIRS = { train: 'train', validation: 'validation' } as const;

/** E_IO when `dir` exists as something other than a folder (checked when the callback is made). */
function checkFolder(dir: string, op: string): void {
  let isDirectory: boolean;
  try {
    isDirectory = statSync(dir).isDirectory();
  } catch {
    return; // missing (created at the start of training) or unreadable (reported then)
  }
  if (!isDirectory) throw new ResNetError('E_IO', `${op}: logDir '${dir}' exists and is not a folder`);
}

/**
 * Writes TensorBoard event files while fit trains: per-step and per-epoch scalars, and weight
 * histograms with `histograms: true`. An unwritable logDir is E_IO when fit starts.
 *
 * ```ts
 * await trainer.fit(train, { epochs: 10, batchSize: 128, validation: test,
 *   callbacks: [tensorBoard({ logDir: 'runs/cifar-resnet20/tensorboard' })] });
 * // then: tensorboard --logdir runs
 * ```
 */
export function tensorBoard(options: TensorBoardOptions): Callback {
  const op = 'tensorBoard';
  validate.keys(options, op, ['logDir', 'updateFreq', 'histograms', 'flushSeconds']);
  if (typeof options.logDir !== 'string' || options.logDir.length === 0) throw new ResNetError('E_ARG', `${op}: logDir must be a folder path`);
  const logDir = options.logDir;
  checkFolder(logDir, op);
  const updateFreq = options.updateFreq === 'epoch' ? 0 : validate.integer(options.updateFreq ?? 1, op, 'updateFreq', 1);
  const histograms = validate.boolean(options.histograms ?? false, op, 'histograms');
  const flushSeconds = validate.number(options.flushSeconds ?? 30, op, 'flushSeconds', 0, 1e9);

  let train: EventFileWriter | undefined;
  let validation: EventFileWriter | undefined;
  let lastBatchEnd = 0;

  const closeAll = async (): Promise<void> => {
    const writers = [train, validation];
    train = validation = undefined;
    const results = await Promise.allSettled(writers.map((w) => w?.close()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  };

  return {
    async onTrainBegin(ctx: TrainContext) {
      await closeAll().catch(() => undefined); // a fit that failed before its end may have left them open
      train = await EventFileWriter.create(join(logDir, TENSORBOARD_DIRS.train), op);
      if (ctx.hasValidation) {
        try {
          validation = await EventFileWriter.create(join(logDir, TENSORBOARD_DIRS.validation), op);
        } catch (err) {
          await closeAll().catch(() => undefined);
          throw err;
        }
      }
      if (ctx.step > 0) {
        // Resumed: drop what the interrupted run wrote after the checkpoint (see above).
        train.write(sessionStartEvent(ctx.step + 1));
        validation?.write(sessionStartEvent(ctx.step + 1));
      }
    },
    onEpochBegin() {
      lastBatchEnd = performance.now();
    },
    async onBatchEnd(batch: BatchLog) {
      const t = performance.now();
      const seconds = (t - lastBatchEnd) / 1000;
      lastBatchEnd = t;
      if (!train || updateFreq === 0 || batch.globalStep % updateFreq !== 0) return;
      const step = batch.globalStep;
      train.write(scalarEvent('batch_loss', batch.loss, step));
      train.write(scalarEvent('batch_accuracy', batch.accuracy, step));
      train.write(scalarEvent('batch_learning_rate', batch.lr, step));
      if (seconds > 0) train.write(scalarEvent('batch_images_per_second', batch.size / seconds, step));
      train.write(scalarEvent('batch_loss_scale', batch.lossScale, step));
      if (train.due(flushSeconds)) await train.flush();
    },
    async onEpochEnd(log: EpochLog, ctx: TrainContext) {
      if (!train) return;
      const step = ctx.step;
      train.write(scalarEvent('epoch', log.epoch, step));
      train.write(scalarEvent('epoch_loss', log.loss, step));
      train.write(scalarEvent('epoch_accuracy', log.accuracy, step));
      if (log.top5 !== undefined) train.write(scalarEvent('epoch_top5', log.top5, step));
      train.write(scalarEvent('epoch_learning_rate', log.lr, step));
      train.write(scalarEvent('epoch_images_per_second', log.imagesPerSecond, step));
      if (histograms) {
        for (const p of ctx.model.parameterInfo()) {
          const h = histogram(ctx.model.getParameter(p.name));
          if (h) train.write(histogramEvent(`${p.name}/histogram`, h, step));
        }
      }
      if (validation) {
        if (log.valLoss !== undefined) validation.write(scalarEvent('epoch_loss', log.valLoss, step));
        if (log.valAccuracy !== undefined) validation.write(scalarEvent('epoch_accuracy', log.valAccuracy, step));
        if (log.valTop5 !== undefined) validation.write(scalarEvent('epoch_top5', log.valTop5, step));
        await validation.flush(true);
      }
      await train.flush(true);
    },
    async onTrainEnd() {
      await closeAll();
    },
    async onTrainAbort() {
      await closeAll().catch(() => undefined);
    },
  };
}
