// Metrics computed in TypeScript from logits: softmax cross-entropy, top-k accuracy, and a
// running accumulator for per-epoch means. Everything works on a flat row-major
// [n, classes] Float32Array (what `(await model.predict(x)).toFloat32Array()` gives) and
// sums in float64, so results do not depend on batch boundaries. The arguments are checked
// first (O(count)): a label outside the classes would read another row's logits, or NaN, quietly.
import * as validate from '../validate.js';

/** `count` rows of `classes` logits and `count` labels, each a class index: E_SHAPE / E_ARG otherwise. */
function checkRows(op: string, logits: ArrayLike<number>, classes: number, labels: ArrayLike<number>, count: number): void {
  validate.integer(classes, op, 'classes', 1);
  validate.integer(count, op, 'count', 0);
  if (logits.length < count * classes) {
    validate.fail('E_SHAPE', `${op}: logits hold ${logits.length} values but ${count} rows of ${classes} classes need ${count * classes}`);
  }
  if (labels.length < count) validate.fail('E_SHAPE', `${op}: ${labels.length} labels for ${count} rows`);
  for (let i = 0; i < count; i++) {
    const y = labels[i]!;
    if (!Number.isInteger(y) || y < 0 || y >= classes) validate.fail('E_ARG', `${op}: label ${y} at index ${i} is outside [0, ${classes})`);
  }
}

/**
 * Softmax cross-entropy summed over the first `count` rows of `logits` ([n, classes],
 * row-major): Σᵢ logsumexp(zᵢ) − zᵢ[yᵢ], in float64. Divide by `count` for the mean.
 */
export function crossEntropySum(logits: ArrayLike<number>, classes: number, labels: ArrayLike<number>, count: number): number {
  checkRows('crossEntropySum', logits, classes, labels, count);
  let total = 0;
  for (let i = 0; i < count; i++) {
    const base = i * classes;
    let max = -Infinity;
    for (let j = 0; j < classes; j++) {
      const v = logits[base + j]!;
      if (v > max) max = v;
    }
    let sum = 0;
    for (let j = 0; j < classes; j++) sum += Math.exp(logits[base + j]! - max);
    total += max + Math.log(sum) - logits[base + labels[i]!]!;
  }
  return total;
}

/**
 * How many of the first `count` rows have their label among the `k` largest logits.
 * Ties are broken by class index (the lower index ranks first, as a stable sort would), so a
 * row of equal logits counts as right exactly when its label is one of the first k classes.
 * A NaN logit never counts as right.
 */
export function topKCorrect(logits: ArrayLike<number>, classes: number, labels: ArrayLike<number>, count: number, k: number): number {
  checkRows('topKCorrect', logits, classes, labels, count);
  validate.integer(k, 'topKCorrect', 'k', 1);
  let correct = 0;
  for (let i = 0; i < count; i++) {
    const base = i * classes;
    const y = labels[i]!;
    const target = logits[base + y]!;
    if (Number.isNaN(target)) continue;
    // Rank of the label = classes ranked before it; stop as soon as k of them are found.
    let ahead = 0;
    for (let j = 0; j < classes && ahead < k; j++) {
      const v = logits[base + j]!;
      if (v > target || (v === target && j < y) || Number.isNaN(v)) ahead++;
    }
    if (ahead < k) correct++;
  }
  return correct;
}

/** Indices and values of the `k` largest entries of row `row` (descending; ties by lower index). */
export function topK(values: ArrayLike<number>, classes: number, row: number, k: number): { index: number; value: number }[] {
  validate.integer(classes, 'topK', 'classes', 1);
  validate.integer(row, 'topK', 'row', 0, Math.floor(values.length / classes) - 1);
  validate.integer(k, 'topK', 'k', 1);
  const base = row * classes;
  const out: { index: number; value: number }[] = [];
  for (let j = 0; j < classes; j++) out.push({ index: j, value: values[base + j]! });
  out.sort((a, b) => b.value - a.value || a.index - b.index);
  return out.slice(0, Math.min(k, classes));
}

/** Sums of loss, top-1 and top-5 hits over examples; `mean*` divide by the count. */
export class MetricAccumulator {
  count = 0;
  lossSum = 0;
  correct = 0;
  correctTop5 = 0;

  reset(): void {
    this.count = 0;
    this.lossSum = 0;
    this.correct = 0;
    this.correctTop5 = 0;
  }

  /** A batch of `n` examples with mean loss `loss` and top-1 accuracy `accuracy` (a trainStep result). */
  addBatchMeans(n: number, loss: number, accuracy: number, top5?: number): void {
    this.count += n;
    this.lossSum += loss * n;
    this.correct += accuracy * n;
    if (top5 !== undefined) this.correctTop5 += top5 * n;
  }

  /** A batch of logits [n, classes]: cross-entropy, top-1 and (with 5+ classes) top-5. */
  addLogits(logits: ArrayLike<number>, classes: number, labels: ArrayLike<number>, n: number): void {
    this.count += n;
    this.lossSum += crossEntropySum(logits, classes, labels, n);
    this.correct += topKCorrect(logits, classes, labels, n, 1);
    if (classes >= 5) this.correctTop5 += topKCorrect(logits, classes, labels, n, 5);
  }

  get loss(): number {
    return this.count > 0 ? this.lossSum / this.count : NaN;
  }

  get accuracy(): number {
    return this.count > 0 ? this.correct / this.count : NaN;
  }

  get top5(): number {
    return this.count > 0 ? this.correctTop5 / this.count : NaN;
  }
}

export {
  confusionMatrix,
  classificationReport,
  ConfusionAccumulator,
  type ConfusionMatrix,
  type ClassMetrics,
  type ClassificationReport,
  type Misclassified,
} from './confusion.js';
