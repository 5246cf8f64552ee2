// Reduction lengths for expectClose over whole models, and the comparisons that use them
// (the convention of test/model/model_vs_tfjs.test.ts's header). Rounding errors of successive
// layers add up along the network, so the length behind a value is the sum, along the
// longest path from the input, of each layer's own reduction: conv kh·kw·cin/groups, dense its
// input features, training-mode batch norm its n·h·w rows (inference mode: 1), average pools
// their window, global pooling its pixels, squeeze-excite its pooling and two dense layers.
// Gradients add the backward reductions along the whole path (conv dx kh·kw·cout and dw
// n·oh·ow, batch norm n·h·w, dense units + n, pools their window) to the full forward length
// plus the classes of the loss.
import type { Model } from '../../lib/index.js';
import type { ModelSpec } from '../../lib/model/spec.js';
import { expectClose } from './compare.js';

export interface ReductionLengths {
  /** To the logits. */
  forward: number;
  /** Forward + loss + backward: what every gradient depends on. */
  gradient: number;
  /** The forward length up to each layer's output (a running statistic carries its batch norm's). */
  at: Map<string, number>;
}

/** `shapeOf(name)`: the output shape of a layer ('input' for the model input) without the batch dimension. */
export function reductionLengths(
  spec: Readonly<ModelSpec>,
  shapeOf: (name: string) => readonly number[],
  n: number,
  training: boolean,
): ReductionLengths {
  const fwd = new Map<string, number>([['input', 0]]);
  const bwd = new Map<string, number>([['input', 0]]);
  for (const layer of spec.layers) {
    const inShape = shapeOf(layer.inputs[0]!);
    const outShape = shapeOf(layer.name);
    let f = 0;
    let b = 0;
    switch (layer.type) {
      case 'conv2d': {
        const k = layer.kernelSize[0] * layer.kernelSize[1];
        f = (k * inShape[2]!) / layer.groups;
        b = (k * layer.filters) / layer.groups + n * outShape[0]! * outShape[1]!;
        break;
      }
      case 'batchNorm': {
        const rows = n * inShape[0]! * inShape[1]!;
        f = training ? rows : 1;
        b = rows;
        break;
      }
      case 'dense':
        f = inShape[0]!;
        b = layer.units + n;
        break;
      case 'avgPool':
      case 'maxPool':
        f = layer.type === 'avgPool' ? layer.poolSize[0] * layer.poolSize[1] : 0;
        b = layer.poolSize[0] * layer.poolSize[1];
        break;
      case 'globalAvgPool':
        f = inShape[0]! * inShape[1]!;
        b = 1;
        break;
      case 'squeezeExcite':
        f = inShape[0]! * inShape[1]! + inShape[2]! + layer.hidden;
        b = f + n;
        break;
      default:
        break;
    }
    fwd.set(layer.name, Math.max(...layer.inputs.map((i) => fwd.get(i)!)) + f);
    bwd.set(layer.name, Math.max(...layer.inputs.map((i) => bwd.get(i)!)) + b);
  }
  const forward = fwd.get(spec.output)!;
  return { forward, gradient: forward + spec.classes + bwd.get(spec.output)!, at: fwd };
}

/** Layer output shapes of one of our models (from model.layers()), for reductionLengths. */
export function modelShapes(model: Model): (name: string) => readonly number[] {
  const shapes = new Map<string, readonly number[]>([['input', model.inputShape]]);
  for (const l of model.layers()) shapes.set(l.name, l.outputShape.slice(1));
  return (name) => shapes.get(name)!;
}

/** expectClose, with the compared value's name in the failure message. */
export function expectCloseNamed(op: string, name: string, actual: ArrayLike<number>, expected: ArrayLike<number>, reduction: number): void {
  try {
    expectClose(op, actual, expected, reduction);
  } catch (e) {
    throw new Error(`${name}: ${(e as Error).message}`);
  }
}

/**
 * expectCloseNamed on values divided by s = clamp(rms(expected), 1e-3, 1): a gradient whose RMS
 * is below 1 is compared at unit scale, so that the absolute part of the tolerance cannot
 * swallow an error that is large relative to the gradient itself; the 1e-3 floor keeps values
 * that vanish mathematically (rounding noise on both sides) from being magnified.
 */
export function expectCloseScaled(op: string, name: string, actual: ArrayLike<number>, expected: ArrayLike<number>, reduction: number): void {
  let sum = 0;
  for (let i = 0; i < expected.length; i++) sum += expected[i]! * expected[i]!;
  const s = Math.min(1, Math.max(1e-3, Math.sqrt(sum / Math.max(1, expected.length))));
  const scale = (v: ArrayLike<number>): Float64Array => Float64Array.from({ length: v.length }, (_, i) => v[i]! / s);
  expectCloseNamed(op, s < 1 ? `${name} (compared after dividing by ${s.toExponential(2)})` : name, scale(actual), scale(expected), reduction);
}
