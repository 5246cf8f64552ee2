// Classification metrics beyond accuracy: the confusion matrix and per-class precision,
// recall, F1 and support (scikit-learn's confusion_matrix and classification_report, with its
// zero_division=0 convention: a ratio with nothing to divide by is 0). Also an accumulator that
// evaluation feeds batch by batch with logits: it keeps the classes² counts and the k most
// confidently misclassified examples, never a per-example array.
import * as validate from '../validate.js';

/** Rows are true classes, columns predicted classes: matrix[t][p] = examples of class t predicted as p. */
export type ConfusionMatrix = number[][];

export interface ClassMetrics {
  precision: number;
  recall: number;
  f1: number;
  /** Examples whose true class this is (the row sum). */
  support: number;
}

export interface ClassificationReport {
  /** One entry per class, index = class. */
  perClass: ClassMetrics[];
  /** Correct / all (the trace over the total); NaN when the matrix is empty. */
  accuracy: number;
  /** The unweighted mean over classes of precision, recall and F1; support = all examples. */
  macroAvg: ClassMetrics;
  /** The mean weighted by each class's support. */
  weightedAvg: ClassMetrics;
}

/** The confusion matrix of `count` (true, predicted) pairs, each a class index in [0, classes). */
export function confusionMatrix(labels: ArrayLike<number>, predictions: ArrayLike<number>, classes: number, count = labels.length): ConfusionMatrix {
  const op = 'confusionMatrix';
  validate.integer(classes, op, 'classes', 1, 1 << 16);
  validate.integer(count, op, 'count', 0);
  if (labels.length < count || predictions.length < count) {
    validate.fail('E_SHAPE', `${op}: ${labels.length} labels and ${predictions.length} predictions for ${count} examples`);
  }
  const m: ConfusionMatrix = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < count; i++) {
    const t = labels[i]!;
    const p = predictions[i]!;
    if (!Number.isInteger(t) || t < 0 || t >= classes) validate.fail('E_ARG', `${op}: label ${t} at index ${i} is outside [0, ${classes})`);
    if (!Number.isInteger(p) || p < 0 || p >= classes) validate.fail('E_ARG', `${op}: prediction ${p} at index ${i} is outside [0, ${classes})`);
    m[t]![p]!++;
  }
  return m;
}

const ratio = (a: number, b: number) => (b > 0 ? a / b : 0);

/** Per-class precision / recall / F1 / support and their macro and weighted means, from a square matrix of counts. */
export function classificationReport(matrix: ConfusionMatrix): ClassificationReport {
  const op = 'classificationReport';
  const n = Array.isArray(matrix) ? matrix.length : 0;
  if (n === 0) validate.fail('E_ARG', `${op}: matrix must be a non-empty square array of counts`);
  for (const [t, row] of matrix.entries()) {
    if (!Array.isArray(row) || row.length !== n) validate.fail('E_SHAPE', `${op}: row ${t} must hold ${n} counts`);
    for (const v of row) if (!Number.isInteger(v) || v < 0) validate.fail('E_ARG', `${op}: row ${t} holds ${v}, not a count`);
  }
  const predicted = new Array<number>(n).fill(0);
  let total = 0;
  let correct = 0;
  for (let t = 0; t < n; t++) {
    for (let p = 0; p < n; p++) {
      predicted[p]! += matrix[t]![p]!;
      total += matrix[t]![p]!;
    }
    correct += matrix[t]![t]!;
  }
  const perClass = matrix.map((row, c) => {
    const support = row.reduce((a, b) => a + b, 0);
    const precision = ratio(row[c]!, predicted[c]!);
    const recall = ratio(row[c]!, support);
    return { precision, recall, f1: ratio(2 * precision * recall, precision + recall), support };
  });
  const mean = (weight: (m: ClassMetrics) => number, sum: number): ClassMetrics => {
    const avg = (key: 'precision' | 'recall' | 'f1') =>
      ratio(
        perClass.reduce((a, m) => a + m[key] * weight(m), 0),
        sum,
      );
    return { precision: avg('precision'), recall: avg('recall'), f1: avg('f1'), support: total };
  };
  return {
    perClass,
    accuracy: total > 0 ? correct / total : NaN,
    macroAvg: mean(() => 1, n),
    weightedAvg: mean((m) => m.support, total),
  };
}

/** An example the model got wrong, with the probability (softmax) it gave its wrong answer. */
export interface Misclassified {
  /** The example's index in the evaluated dataset. */
  index: number;
  label: number;
  predicted: number;
  probability: number;
}

/**
 * The predicted class of row `row` of `logits` and its softmax probability. The largest logit
 * wins, ties go to the lower class (as topK ranks them), and a NaN logit ranks first (as
 * topKCorrect counts it: never right), its probability NaN.
 */
export function argmaxWithProbability(logits: ArrayLike<number>, classes: number, row: number): { index: number; probability: number } {
  const base = row * classes;
  let best = 0;
  for (let j = 0; j < classes; j++) {
    const v = logits[base + j]!;
    if (Number.isNaN(v)) return { index: j, probability: NaN };
    if (v > logits[base + best]!) best = j;
  }
  const top = logits[base + best]!;
  let sum = 0;
  for (let j = 0; j < classes; j++) sum += Math.exp(logits[base + j]! - top);
  return { index: best, probability: 1 / sum };
}

/** Confusion counts and the `keep` most confident mistakes over batches of logits. */
export class ConfusionAccumulator {
  readonly counts: Float64Array;
  /** Sorted by probability, highest first (ties: lower index first); at most `keep`. */
  readonly mistakes: Misclassified[] = [];

  constructor(
    readonly classes: number,
    readonly keep = 0,
  ) {
    validate.integer(classes, 'ConfusionAccumulator', 'classes', 1, 1 << 14);
    validate.integer(keep, 'ConfusionAccumulator', 'keep', 0, 10_000);
    this.counts = new Float64Array(classes * classes);
  }

  /** `n` rows of logits [n, classes] with their labels; row i is example `start + i`. Labels must already be checked. */
  addLogits(logits: ArrayLike<number>, labels: ArrayLike<number>, n: number, start: number): void {
    const c = this.classes;
    for (let i = 0; i < n; i++) {
      const y = labels[i]!;
      const { index: p, probability } = argmaxWithProbability(logits, c, i);
      this.counts[y * c + p]!++;
      if (p !== y && this.keep > 0) this.#offer({ index: start + i, label: y, predicted: p, probability });
    }
  }

  #offer(m: Misclassified): void {
    const list = this.mistakes;
    const rank = (a: Misclassified) => (Number.isNaN(a.probability) ? -1 : a.probability);
    if (list.length === this.keep && rank(m) <= rank(list[list.length - 1]!)) return;
    let at = list.length;
    while (at > 0 && rank(list[at - 1]!) < rank(m)) at--;
    list.splice(at, 0, m);
    if (list.length > this.keep) list.pop();
  }

  /** The counts as rows (true class) of columns (predicted class). */
  matrix(): ConfusionMatrix {
    const c = this.classes;
    return Array.from({ length: c }, (_, t) => Array.from(this.counts.subarray(t * c, (t + 1) * c)));
  }
}
