// Trainer: the training loop. Seeded shuffling, a two-slot batch pipeline (batch k+1 is
// filled, augmented and, for a model on a GPU, copied there while step k runs natively), per-step or per-epoch learning-rate
// schedules, validation every epoch, callbacks, progress, and exact resume from a checkpoint.
//
// The parts live beside it: random.ts (SeededRandom), batches.ts (the batch pipeline),
// evaluate.ts (evaluateModel), fit_setup.ts (fit's options and resume) and fit_phases.ts
// (the run, phase by phase). What they export publicly is re-exported here, so imports from
// './train/trainer.js' keep working.
import { ResNetError } from '../errors.js';
import type { Model } from '../model/model.js';
import * as validate from '../validate.js';
import type { Dataset } from '../data/dataset.js';
import type { History } from './callbacks.js';
import { FitRun } from './fit_phases.js';
import { describeTrainingInputs } from './fit_description.js';
import { type FitOptions, planFit, progressMode, startPoint } from './fit_setup.js';
import type { CompileOptions } from './optimizers.js';
import { Progress, type ProgressMode, type ProgressStream } from './progress.js';

export { SeededRandom } from './random.js';
export type { NormalizeOptions, TrainAugmentOptions } from './batches.js';
export { evaluateModel, type EvaluateOptions, type EvaluationResult } from './evaluate.js';
export type { EpochSchedule, FitOptions } from './fit_setup.js';

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
    const model = this.model;
    // Setup: the options checked, then where the run starts (fresh, or from a checkpoint).
    const plan = planFit(model, train, options, this.#progressMode, op);
    const start = await startPoint(model, options, plan.epochs, op);
    if (!model.compileOptions) {
      throw new ResNetError('E_ARG', `${op}: compile the model first (model.compile or new Trainer(model, { compile }))`);
    }
    describeTrainingInputs(model, plan);

    const progress = new Progress({ mode: plan.mode, ...(this.#stream ? { stream: this.#stream } : {}) });
    this.#running = true;
    this.#stopReason = undefined;
    const run = new FitRun(model, plan, start, progress);
    this.#history = run.history;
    try {
      await run.begin();
      while (run.more) await run.runEpoch();
      const { epoch, stopReason, history, ctx } = run;
      if (stopReason !== undefined && epoch < plan.epochs) progress.message(stopReason);
      this.#stopReason = epoch < plan.epochs ? stopReason : undefined;
      for (const cb of plan.callbacks) await cb.onTrainEnd?.(history, ctx);
      return history;
    } catch (err) {
      // Callbacks close their files; their own failures here would hide the error that matters.
      for (const cb of plan.callbacks) {
        try {
          await cb.onTrainAbort?.(err, run.ctx);
        } catch {
          // ignored: fit throws `err`
        }
      }
      throw err;
    } finally {
      run.teardown();
      this.#running = false;
    }
  }
}
