// Mixup / cutmix targets for Model.trainStep and computeGradients: each example's target is
// λ·onehot(labels[i]) + (1 − λ)·onehot(mix.labels[i]), so the loss is λ·CE(labels) +
// (1 − λ)·CE(mix.labels) (label smoothing applies to both) and the gradient the same blend.
import { ResNetError } from '../errors.js';
import * as validate from '../validate.js';

export interface LabelMix {
  /** The second label of every example (Int32Array, as many as the labels). */
  labels: Int32Array;
  /** The weight of the first labels, in [0, 1]. Accuracy counts the dominant label (the first when λ ≥ 1/2). */
  lambda: number;
}

/** `mix` checked against `count` labels; undefined when absent. */
export function labelMix(mix: unknown, count: number, op: string): LabelMix | undefined {
  if (mix === undefined) return undefined;
  if (!validate.isPlainObject(mix)) validate.invalid(mix, op, 'mix', 'an object { labels, lambda }');
  validate.keys(mix, `${op} mix`, ['labels', 'lambda']);
  const labels = mix.labels;
  if (!(labels instanceof Int32Array)) throw new ResNetError('E_DTYPE', `${op}: mix.labels must be an Int32Array`);
  if (labels.length !== count) throw new ResNetError('E_SHAPE', `${op}: mix.labels has ${labels.length} labels for ${count} examples`);
  return { labels, lambda: validate.number(mix.lambda, op, 'mix.lambda', 0, 1) };
}
