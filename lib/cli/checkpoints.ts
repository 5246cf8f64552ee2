// Checkpoints for eval and predict: the model, with the input preprocessing and class names
// it describes itself with (loadCheckpoint reads them from the file, or, in files written
// before they were stored there, from the trainer state where train kept them).
import type { Model } from '../model/model.js';
import type { Placement } from './args.js';
import type { Normalisation } from './datasets.js';
import { NAME } from './output.js';

export interface LoadedCheckpoint {
  model: Model;
  normalize: Normalisation | undefined;
  classNames: readonly string[] | undefined;
}

export async function openCheckpoint(path: string, placement: Placement = {}): Promise<LoadedCheckpoint> {
  const { loadCheckpoint } = await import('../io/checkpoint.js');
  const { model } = await loadCheckpoint(path, { optimizer: false, ...placement });
  const p = model.preprocessing;
  return { model, normalize: p ? { mean: [...p.mean], std: [...p.std] } : undefined, classNames: model.classNames };
}

/** The one warning a command prints for a checkpoint that does not say how its inputs were prepared. */
export function warnNoPreprocessing(path: string, consequence: string): void {
  process.stderr.write(`${NAME}: warning: ${path} stores no input preprocessing (normalisation); ${consequence}\n`);
}
