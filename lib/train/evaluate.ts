// Evaluation: loss and top-1 / top-5 accuracy of a model over a whole Dataset, in inference
// mode, through the batch pipeline (the next batch loads while the current one is predicted).
import type { Dataset } from '../data/dataset.js';
import { ResNetError } from '../errors.js';
import type { Model } from '../model/model.js';
import * as validate from '../validate.js';
import { BatchPipeline, channelList, checkDataset, eachBatch, type ImagenetAugment, type NormalizeOptions, type Slot } from './batches.js';
import { ConfusionAccumulator, type ConfusionMatrix, type Misclassified } from './confusion.js';
import { MetricAccumulator } from './metrics.js';

export interface EvaluateOptions extends NormalizeOptions {
  /** Default 256. */
  batchSize?: number;
  /** Also count the confusion matrix (result.confusionMatrix). Default false. */
  confusionMatrix?: boolean;
  /** Also keep the k most confidently misclassified examples (result.misclassified; implies confusionMatrix). Default 0. */
  misclassified?: number;
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
  /** With options.confusionMatrix: rows are true classes, columns predicted ones (argmax; ties to the lower class). */
  confusionMatrix?: ConfusionMatrix;
  /** With options.misclassified = k: up to k wrong predictions, the most confident (softmax probability) first. */
  misclassified?: Misclassified[];
}

/**
 * Loss, top-1 and top-5 accuracy of `model` on every example of `dataset`, in inference mode
 * (model.predict on batches; the metrics are computed in TypeScript from the logits). Images
 * are normalised with `mean`/`std` as in training; without them, with model.preprocessing's
 * (none: as they are). The next batch is loaded while the
 * current one is predicted.
 */
export async function evaluateModel(model: Model, dataset: Dataset, options: EvaluateOptions = {}): Promise<EvaluationResult> {
  const op = 'evaluateModel';
  validate.keys(options, op, ['batchSize', 'mean', 'std', 'confusionMatrix', 'misclassified']);
  const ds = checkDataset(dataset, op, 'dataset', model);
  const batchSize = validate.integer(options.batchSize ?? 256, op, 'batchSize', 1);
  const c = ds.imageShape[2];
  // Without mean / std of its own, the call normalises as the model says (model.preprocessing).
  const described = options.mean === undefined && options.std === undefined ? model.preprocessing : undefined;
  const fromModel = described && described.mean.length === c ? described : undefined;
  const mean = channelList(options.mean ?? fromModel?.mean, c, op, 'mean', 0);
  const std = channelList(options.std ?? fromModel?.std, c, op, 'std', 1);
  const keep = validate.integer(options.misclassified ?? 0, op, 'misclassified', 0, 10_000);
  const withMatrix = validate.boolean(options.confusionMatrix ?? false, op, 'confusionMatrix') || keep > 0;
  const confusion = withMatrix ? new ConfusionAccumulator(model.classes, keep) : undefined;
  const pipeline = evaluationPipeline(ds, batchSize, mean, std, op);
  try {
    const acc = await runEvaluation(model, ds, pipeline, new MetricAccumulator(), confusion);
    return {
      loss: acc.loss,
      accuracy: acc.accuracy,
      ...(model.classes >= 5 ? { top5: acc.top5 } : {}),
      count: acc.count,
      ...(confusion ? { confusionMatrix: confusion.matrix() } : {}),
      ...(keep > 0 && confusion ? { misclassified: confusion.mistakes } : {}),
    };
  } finally {
    pipeline.dispose();
  }
}

/**
 * The pipeline evaluation reads `ds` through: batches of `batchSize` (one batch of every example
 * when the dataset is smaller), no augmentation (but `crop`'s resize + centre crop, when given), normalised with `mean` / `std`.
 */
export function evaluationPipeline(ds: Dataset, batchSize: number, mean: number[], std: number[], op: string, crop?: ImagenetAugment): BatchPipeline {
  const b = Math.min(batchSize, ds.length);
  return new BatchPipeline(ds, b, ds.length % b, { padding: 0, flip: false, mean, std, seed: 0 }, op, crop);
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

/** Adds the loss and accuracy of `model` on every example of `ds` (read through `pipeline`) to `acc` (and the predictions to `confusion`). */
export async function runEvaluation(
  model: Model,
  ds: Dataset,
  pipeline: BatchPipeline,
  acc = new MetricAccumulator(),
  confusion?: ConfusionAccumulator,
): Promise<MetricAccumulator> {
  const n = ds.length;
  const b = pipeline.batchSize;
  const steps = Math.ceil(n / b);
  const order = validate.allocate(Int32Array, n, pipeline.op, 'the order of the examples');
  for (let i = 0; i < n; i++) order[i] = i;
  const size = (k: number) => Math.min(b, n - k * b);
  await eachBatch(
    pipeline,
    order,
    steps,
    size,
    () => 0,
    model.device,
    async ({ k, slot, x, stageNext }) => {
      const logitsP = model.predict(x);
      stageNext();
      const logits = await logitsP;
      try {
        checkLabels(slot, model.classes, order, k * b);
        const values = logits.toFloat32Array();
        acc.addLogits(values, model.classes, slot.labels, slot.labels.length);
        confusion?.addLogits(values, slot.labels, slot.labels.length, k * b);
      } finally {
        logits.dispose();
      }
    },
  );
  return acc;
}
