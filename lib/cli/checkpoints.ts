// Checkpoints for eval and predict: the model, and the input normalisation and class names
// that train stored beside it (each only when it is well-formed).
import type { Model } from '../model/model.js';
import type { TrainerState } from '../train/callbacks.js';
import type { Placement } from './args.js';
import type { Normalisation } from './datasets.js';

export interface LoadedCheckpoint {
  model: Model;
  normalize: Normalisation | undefined;
  classNames: string[] | undefined;
}

export async function openCheckpoint(path: string, placement: Placement = {}): Promise<LoadedCheckpoint> {
  const { loadCheckpoint } = await import('../io/checkpoint.js');
  const { model, training } = await loadCheckpoint(path, { optimizer: false, ...placement });
  const t = training as Partial<TrainerState> | undefined;
  const c = model.inputShape[2]!;
  const okList = (a: unknown, positive: boolean): a is number[] =>
    Array.isArray(a) && a.length === c && a.every((x) => typeof x === 'number' && Number.isFinite(x) && (!positive || x > 0));
  const normalize =
    t?.normalize && okList(t.normalize.mean, false) && okList(t.normalize.std, true) ? { mean: t.normalize.mean, std: t.normalize.std } : undefined;
  const classNames =
    Array.isArray(t?.classNames) && t.classNames.length === model.classes && t.classNames.every((s) => typeof s === 'string')
      ? t.classNames
      : undefined;
  return { model, normalize, classNames };
}
