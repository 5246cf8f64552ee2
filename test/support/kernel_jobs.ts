// What the kernel-comparison tests (test/native/kernels_vs_reference.test.ts,
// winograd4_vs_reference.test.ts) send to test/support/kernels_child.mjs and read back: float
// arrays as base64, and the random batch-norm parameters / biases their models are given.
import type { Model } from '../../lib/index.js';
import type { Rng } from './random.js';

export type Encoded = string; // Float32Array bytes in base64

export const encode = (a: Float32Array): Encoded => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
export const decode = (b64: Encoded): Float32Array => new Float32Array(new Uint8Array(Buffer.from(b64, 'base64')).buffer);

/** Random batch-norm parameters and statistics, conv / dense biases (as test/model/model_vs_tfjs.test.ts). */
export function randomParameters(model: Model, rng: Rng): Record<string, Encoded> {
  const out: Record<string, Encoded> = {};
  for (const layer of model.spec.layers) {
    const n = layer.name;
    if (layer.type === 'batchNorm') {
      const c = model.getParameter(`${n}.weight`).length;
      out[`${n}.weight`] = encode(Float32Array.from(rng.array(c, 0.5), (v) => 1 + v));
      out[`${n}.bias`] = encode(rng.array(c, 0.5));
      out[`${n}.running_mean`] = encode(rng.array(c, 0.5));
      out[`${n}.running_var`] = encode(Float32Array.from(rng.array(c, 0.5), (v) => 1 + v));
    } else if ((layer.type === 'conv2d' || layer.type === 'dense') && layer.useBias) {
      out[`${n}.bias`] = encode(rng.array(model.getParameter(`${n}.bias`).length, 0.2));
    }
  }
  return out;
}
