// The benchmarked models: which builder, input size, batch, and the deterministic data.
import { models } from '../../dist/index.js';
import { SHAPES } from './shapes.mjs';

export const WORKLOADS = {
  resnet20: { ...SHAPES.resnet20, build: (o) => models.resnetCifar({ depth: 20, ...o }) },
  resnet18: { ...SHAPES.resnet18, build: (o) => models.resnet18(o) },
  resnet50: { ...SHAPES.resnet50, build: (o) => models.resnet50(o) },
};

/** mulberry32 uniform [0, 1) images and labels: the same bytes for every framework. */
export function makeBatch(n, inputShape, classes, seed) {
  let a = seed >>> 0;
  const r = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const x = new Float32Array(n * inputShape[0] * inputShape[1] * inputShape[2]);
  for (let i = 0; i < x.length; i++) x[i] = r();
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) y[i] = Math.floor(r() * classes);
  return { x, y };
}

/** Forward multiply-add FLOPs per image (convolutions and dense layers) from the model's layer table. */
export function forwardFlopsPerImage(model) {
  const byName = new Map(model.spec.layers.map((l) => [l.name, l]));
  const shapes = new Map([['input', [1, ...model.inputShape]]]);
  let flops = 0;
  for (const l of model.layers()) {
    shapes.set(l.name, l.outputShape);
    const spec = byName.get(l.name);
    const inShape = shapes.get(l.inputs[0]);
    if (!spec || !inShape) continue;
    const cin = inShape[inShape.length - 1];
    const out = l.outputShape;
    if (spec.type === 'conv2d') flops += 2 * out[1] * out[2] * out[3] * spec.kernelSize[0] * spec.kernelSize[1] * (cin / spec.groups);
    else if (spec.type === 'dense') flops += 2 * inShape.slice(1).reduce((p, q) => p * q, 1) * spec.units;
  }
  return flops;
}
