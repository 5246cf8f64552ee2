// Argument checks shared by the built-in datasets' fill(): the training loop calls fill
// with its own buffers every step, so a wrong buffer or index must fail with a clear
// ResNetError before anything is written.
import { ResNetError } from '../errors.js';

/** Checks fill()'s arguments against a dataset of `length` examples of `perImage` floats. */
export function checkFill(op: string, length: number, perImage: number, indices: ArrayLike<number>, images: Float32Array, labels: Int32Array): void {
  if (indices === null || typeof indices !== 'object' || typeof indices.length !== 'number') {
    throw new ResNetError('E_ARG', `${op}: indices must be an array or typed array of example indices`);
  }
  if (!(images instanceof Float32Array)) throw new ResNetError('E_DTYPE', `${op}: images must be a Float32Array`);
  if (!(labels instanceof Int32Array)) throw new ResNetError('E_DTYPE', `${op}: labels must be an Int32Array`);
  const n = indices.length;
  if (images.length < n * perImage) {
    throw new ResNetError('E_SHAPE', `${op}: images holds ${images.length} floats but ${n} examples of ${perImage} floats need ${n * perImage}`);
  }
  if (labels.length < n) throw new ResNetError('E_SHAPE', `${op}: labels holds ${labels.length} entries but ${n} examples need ${n}`);
  for (let i = 0; i < n; i++) {
    const k = indices[i]!;
    if (!Number.isInteger(k) || k < 0 || k >= length) {
      throw new ResNetError('E_ARG', `${op}: index ${String(k)} (at position ${i}) is outside [0, ${length})`);
    }
  }
}
