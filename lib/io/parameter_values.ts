// The check every importer applies to parameter values read from a file before it sets any of
// them: finite, and batch-norm variances non-negative. Model.setParameter would refuse such a
// value too, but only once earlier parameters were already set; checking first keeps a failed
// load from leaving the model half-changed, and names the file (E_FORMAT, not E_ARG).
import { ResNetError } from '../errors.js';

/** Throws E_FORMAT `${op}: ${source}: …` naming the tensor and the index of the first bad value. */
export function checkParameterValues(op: string, source: string, name: string, values: Float32Array): void {
  const variance = name.endsWith('.running_var');
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) throw new ResNetError('E_FORMAT', `${op}: ${source}: parameter '${name}' has a non-finite value (${v}) at index ${i}`);
    if (variance && v < 0) {
      throw new ResNetError('E_FORMAT', `${op}: ${source}: parameter '${name}' has a negative variance (${v}) at index ${i}`);
    }
  }
}
