// The optimized CPU's max pooling and global average pooling (native/cpu/pool_kernels.cpp, what
// predict runs) against the reference kernels (native/cpu/reference/pool.cpp, what ops.maxPool
// and ops.globalAvgPool run), value for value. The model is the pool → (flatten →) dense with
// identity weights and no bias, so its logits are the pooled image exactly (x·1 plus zeros). Odd
// channel counts exercise the vector tails; a batch of 64 rows splits the rows over the pool's
// threads, 200 channels make blocks of 64 and a tail of 8.
import { describe, expect, it } from 'vitest';

import { Model, type ModelSpec, ops, Tensor } from '../../lib/index.js';
import { Rng } from '../support/random.js';

interface PoolCase {
  label: string;
  n: number;
  input: [number, number, number];
  size: number;
  stride: number;
  padding: 'same' | 'valid' | number | [number, number, number, number];
  /** Output height and width (checked against ops.maxPool's). */
  out: [number, number];
}

const CASES: PoolCase[] = [
  { label: 'ResNet stem 3×3/2 pad 1, 5 channels', n: 2, input: [13, 15, 5], size: 3, stride: 2, padding: 1, out: [7, 8] },
  { label: '2×2/2 valid, 8 channels, batch 64 (several chunks)', n: 64, input: [16, 16, 8], size: 2, stride: 2, padding: 'valid', out: [8, 8] },
  { label: '3×3/1 same, 17 channels', n: 3, input: [7, 9, 17], size: 3, stride: 1, padding: 'same', out: [7, 9] },
  { label: '3×3/2 asymmetric pads, 3 channels', n: 1, input: [9, 8, 3], size: 3, stride: 2, padding: [0, 2, 1, 0], out: [5, 4] },
];

/** pool → dense with identity weights: the logits are the pooled values. */
function identityHead(input: [number, number, number], features: number, pool: ModelSpec['layers']): Model {
  const spec: ModelSpec = {
    format: 'resnet-native/model',
    version: 1,
    name: 'pool_only',
    inputShape: input,
    classes: features,
    layers: [...pool, { name: 'fc', type: 'dense', inputs: [pool[pool.length - 1]!.name], units: features, useBias: false }],
    output: 'fc',
  };
  const model = Model.fromSpec(spec, { seed: 1 });
  const identity = new Float32Array(features * features);
  for (let i = 0; i < features; i++) identity[i * features + i] = 1;
  model.setParameter('fc.weight', identity);
  return model.eval();
}

function poolModel(c: PoolCase): Model {
  return identityHead(c.input, c.out[0] * c.out[1] * c.input[2], [
    { name: 'pool', type: 'maxPool', inputs: ['input'], poolSize: [c.size, c.size], strides: [c.stride, c.stride], padding: c.padding },
    { name: 'flat', type: 'flatten', inputs: ['pool'] },
  ]);
}

function images(n: number, input: readonly number[]): Tensor {
  const rng = new Rng(7);
  const data = new Float32Array(n * input[0]! * input[1]! * input[2]!);
  for (let i = 0; i < data.length; i++) data[i] = rng.next() * 2 - 1;
  return Tensor.fromArray(data, [n, ...input]);
}

describe('native max pool equals the reference kernel', () => {
  for (const c of CASES) {
    it(c.label, async () => {
      const x = images(c.n, c.input);
      const model = poolModel(c);
      const logits = await model.predict(x);
      const expected = await ops.maxPool(x, { size: c.size, strides: c.stride, padding: c.padding });
      expect(expected.shape).toEqual([c.n, c.out[0], c.out[1], c.input[2]]);
      expect(Array.from(logits.toFloat32Array())).toEqual(Array.from(expected.toFloat32Array()));
      for (const t of [x, logits, expected]) t.dispose();
      model.dispose();
    });
  }
});

describe('native global average pool equals the reference kernel', () => {
  const cases: { label: string; n: number; input: [number, number, number] }[] = [
    { label: '7×5 pixels, 200 channels (blocks of 64 and a tail)', n: 3, input: [7, 5, 200] },
    { label: '1×1 pixel, 5 channels', n: 2, input: [1, 1, 5] },
    { label: '8×8 pixels, 64 channels, batch 1', n: 1, input: [8, 8, 64] },
  ];
  for (const c of cases) {
    it(c.label, async () => {
      const x = images(c.n, c.input);
      const model = identityHead(c.input, c.input[2], [{ name: 'gap', type: 'globalAvgPool', inputs: ['input'] }]);
      const logits = await model.predict(x);
      const expected = await ops.globalAvgPool(x);
      expect(expected.shape).toEqual([c.n, c.input[2]]);
      expect(Array.from(logits.toFloat32Array())).toEqual(Array.from(expected.toFloat32Array()));
      for (const t of [x, logits, expected]) t.dispose();
      model.dispose();
    });
  }
});
