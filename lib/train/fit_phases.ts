// Trainer.fit's run, phase by phase: begin (pipelines, onTrainBegin), one epoch (order,
// learning rate, its steps), one step (batch k trains while batch k+1 loads), the end of an
// epoch (validation, history, onEpochEnd) and teardown. FitRun holds what changes as the run
// goes (epoch, step, stop reason) and the TrainContext callbacks see.
import { ResNetError } from '../errors.js';
import type { LabelMix } from '../model/label_mix.js';
import type { Model } from '../model/model.js';
import * as validate from '../validate.js';
import { BatchPipeline, eachBatch, type StagedBatch } from './batches.js';
import type { BatchLog, EpochLog, History, TrainContext, TrainerState } from './callbacks.js';
import { evaluationPipeline, runEvaluation } from './evaluate.js';
import type { FitPlan, StartPoint } from './fit_setup.js';
import { MetricAccumulator } from './metrics.js';
import type { Progress } from './progress.js';
import type { SeededRandom } from './random.js';

type StepResult = Awaited<ReturnType<Model['trainStep']>>;

/** What begin() allocates for the epochs. */
interface Resources {
  device: string;
  pipeline: BatchPipeline;
  valPipeline: BatchPipeline | undefined;
  order: Int32Array;
  acc: MetricAccumulator;
  valAcc: MetricAccumulator;
}

export class FitRun {
  /** Epochs completed. */
  epoch: number;
  /** Optimizer steps completed. */
  globalStep: number;
  stopReason: string | undefined;
  readonly history: History;
  readonly ctx: TrainContext;
  readonly #model: Model;
  readonly #plan: FitPlan;
  readonly #progress: Progress;
  readonly #rng: SeededRandom;
  readonly #augmentSeed: number;
  readonly #classNames: string[] | undefined;
  readonly #wantsBatch: boolean;
  #pipeline: BatchPipeline | undefined;
  #valPipeline: BatchPipeline | undefined;
  #res: Resources | undefined;

  constructor(model: Model, plan: FitPlan, start: StartPoint, progress: Progress) {
    this.#model = model;
    this.#plan = plan;
    this.#progress = progress;
    this.#rng = start.rng;
    this.#augmentSeed = start.augmentSeed;
    this.history = start.history;
    this.epoch = start.startEpoch;
    this.globalStep = start.globalStep;
    this.#classNames = plan.ds.classNames ? [...plan.ds.classNames] : undefined;
    this.ctx = this.#context();
    this.#wantsBatch = plan.callbacks.some((cb) => typeof cb.onBatchEnd === 'function');
  }

  /** The state a checkpoint stores so that fit({ resumeFrom }) continues this run exactly. */
  trainingState(): TrainerState {
    const { mean, std, ds } = this.#plan;
    return {
      epoch: this.epoch,
      step: this.globalStep,
      rngState: { shuffle: this.#rng.state(), augmentSeed: this.#augmentSeed },
      history: structuredClone(this.history),
      normalize: { mean: [...mean], std: [...std] },
      imageShape: [...ds.imageShape] as [number, number, number],
      ...(this.#classNames ? { classNames: this.#classNames } : {}),
    };
  }

  #context(): TrainContext {
    const run = this; // the getters below read the run's live state (their own `this` is the context)
    const { epochs, stepsPerEpoch, batchSize, val } = this.#plan;
    return {
      model: this.#model,
      epochs,
      stepsPerEpoch,
      batchSize,
      hasValidation: val !== undefined,
      history: this.history,
      get epoch() {
        return run.epoch;
      },
      get step() {
        return run.globalStep;
      },
      stop(reason = 'stopped by a callback') {
        run.stopReason ??= reason;
      },
      get stopRequested() {
        return run.stopReason !== undefined;
      },
      get stopReason() {
        return run.stopReason;
      },
      trainingState: () => this.trainingState(),
      log: (message: string) => this.#progress.message(message),
    };
  }

  /** Whether another epoch is to be trained. */
  get more(): boolean {
    return this.epoch < this.#plan.epochs && this.stopReason === undefined;
  }

  /** Allocates the pipelines, calls onTrainBegin and puts the model in training mode. */
  async begin(): Promise<void> {
    const { op, ds, val, n, batchSize, valBatchSize, tail, padding, flip, mean, std, epochs, stepsPerEpoch, imagenet } = this.#plan;
    const device = this.#model.device; // on a GPU, each batch is copied there while the step before it runs
    // A batch larger than the dataset (dropLast: false) is one batch of every example.
    const pipeline = (this.#pipeline = new BatchPipeline(
      ds,
      Math.min(batchSize, n),
      tail,
      { padding, flip, mean, std, seed: this.#augmentSeed },
      op,
      imagenet.train,
    ));
    if (val) this.#valPipeline = evaluationPipeline(val, valBatchSize, mean, std, op, imagenet.validation);
    const order = validate.allocate(Int32Array, n, op, 'the order of the examples');
    this.#res = { device, pipeline, valPipeline: this.#valPipeline, order, acc: new MetricAccumulator(), valAcc: new MetricAccumulator() };

    const plateau = this.#plan.plateau;
    if (plateau) {
      // Its state is a function of the epochs so far: rebuilt from them (a resumed run continues exactly).
      plateau.reset();
      for (const log of this.history) plateau.step(this.#plateauMetric(log));
    }
    for (const cb of this.#plan.callbacks) await cb.onTrainBegin?.(this.ctx);
    this.#progress.trainBegin(epochs, stepsPerEpoch);
    this.#model.train();
  }

  /** Trains the next epoch, validates, and calls onEpochEnd. */
  async runEpoch(): Promise<void> {
    const res = this.#res!;
    const { n, shuffle, epochSchedule, plateau, scheduled, callbacks } = this.#plan;
    const epochIndex = this.epoch; // 0-based index of the epoch being trained
    for (let i = 0; i < n; i++) res.order[i] = i;
    if (shuffle) this.#rng.shuffle(res.order);
    let lr = this.#model.learningRate;
    if (epochSchedule) {
      lr = scheduled(epochSchedule(epochIndex, this.history), `schedule(${epochIndex}, history)`);
      this.#model.setLearningRate(lr);
    } else if (plateau) {
      lr = plateau.lr;
      this.#model.setLearningRate(lr);
    }
    for (const cb of callbacks) await cb.onEpochBegin?.(epochIndex + 1, this.ctx);
    this.#progress.epochBegin(epochIndex + 1);
    res.acc.reset();
    const t0 = performance.now();
    lr = await this.#steps(res, epochIndex, lr);
    const trainSeconds = (performance.now() - t0) / 1000;
    await this.#endEpoch(res, epochIndex, lr, t0, trainSeconds);
  }

  /** Size of batch k of an epoch. */
  #size(k: number): number {
    const { stepsPerEpoch, tail, batchSize } = this.#plan;
    return k < stepsPerEpoch - 1 || tail === 0 ? batchSize : tail;
  }

  /** The epoch's steps; resolves to the learning rate of the last one. */
  async #steps(res: Resources, epochIndex: number, lr: number): Promise<number> {
    const { pipeline, order, device, acc } = res;
    const { stepsPerEpoch, callbacks } = this.#plan;
    const first = this.globalStep; // batch k is augmented with draw first + k, the global step it trains
    await eachBatch(
      pipeline,
      order,
      stepsPerEpoch,
      (k) => this.#size(k),
      (k) => first + k,
      device,
      async (batch) => {
        const step = await this.#step(batch, epochIndex, lr);
        lr = step.lr;
        return step.r;
      },
      async (k, slot, r) => {
        this.globalStep++;
        const count = slot.labels.length;
        acc.addBatchMeans(count, r.loss, r.accuracy, r.top5Accuracy);
        this.#progress.batch(k + 1, acc.loss, acc.accuracy, acc.count);
        if (this.#wantsBatch) {
          const log: BatchLog = {
            epoch: epochIndex + 1,
            step: k + 1,
            globalStep: this.globalStep,
            loss: r.loss,
            accuracy: r.accuracy,
            gradNorm: r.gradNorm,
            lr,
            size: count,
            skipped: r.skipped,
            lossScale: r.lossScale,
          };
          for (const cb of callbacks) await cb.onBatchEnd?.(log, this.ctx);
        }
      },
    );
    return lr;
  }

  /** Step k on batch `x`, staging batch k+1 while it runs natively; E_NAN says where in the run. */
  async #step({ k, slot, x, stageNext }: StagedBatch, epochIndex: number, lr: number): Promise<{ r: StepResult; lr: number }> {
    const { stepSchedule, scheduled, stepsPerEpoch } = this.#plan;
    const model = this.#model;
    const globalStep = this.globalStep;
    try {
      if (stepSchedule) lr = scheduled(stepSchedule.at(globalStep), `schedule.at(${globalStep})`);
      // Mixup / cutmix: the loss of the mixed targets (λ·CE(labels) + (1 − λ)·CE(mixLabels)).
      const options: { lr?: number; mix?: LabelMix } = {};
      if (stepSchedule) options.lr = lr;
      if (this.#plan.imagenet.mixes) options.mix = { labels: slot.mixLabels, lambda: slot.lambda };
      const stepP = model.trainStep(x, slot.labels, options);
      // Batch k+1 loads (fill + augment, then the copy to the GPU) while step k runs natively.
      stageNext();
      return { r: await stepP, lr };
    } catch (err) {
      // Training stops here; the native message names the layer, this adds where in the run.
      if (err instanceof ResNetError && err.code === 'E_NAN') {
        throw new ResNetError(
          'E_NAN',
          `Trainer.fit: epoch ${epochIndex + 1}, step ${k + 1} of ${stepsPerEpoch} (global step ${globalStep + 1}): ${err.message}`,
        );
      }
      throw err;
    }
  }

  /** Validation, the epoch's history entry, progress and onEpochEnd. */
  async #endEpoch(res: Resources, epochIndex: number, lr: number, t0: number, trainSeconds: number): Promise<void> {
    const model = this.#model;
    const { acc, valAcc, valPipeline } = res;
    const { val, callbacks } = this.#plan;
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
      this.#progress.validating();
      valAcc.reset();
      await runEvaluation(model, val, valPipeline, valAcc);
      entry.valLoss = valAcc.loss;
      entry.valAccuracy = valAcc.accuracy;
      if (model.classes >= 5) entry.valTop5 = valAcc.top5;
    }
    entry.seconds = (performance.now() - t0) / 1000;
    this.epoch = epochIndex + 1;
    this.history.push(entry);
    this.#plan.plateau?.step(this.#plateauMetric(entry));
    this.#progress.epochEnd(entry);
    for (const cb of callbacks) {
      if ((await cb.onEpochEnd?.(entry, this.ctx)) === false) this.ctx.stop('stopped by a callback');
    }
  }

  /** The value a ReduceLROnPlateau schedule monitors (planFit checked that epochs have it; NaN is a bad epoch). */
  #plateauMetric(log: EpochLog): number {
    const v = log[this.#plan.plateau!.monitor];
    return typeof v === 'number' ? v : NaN;
  }

  /** Ends the progress output and frees the pipelines (eachBatch has waited for any batch still loading). */
  teardown(): void {
    this.#progress.trainEnd();
    this.#pipeline?.dispose();
    this.#valPipeline?.dispose();
  }
}
