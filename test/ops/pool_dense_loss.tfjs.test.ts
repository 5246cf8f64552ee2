// Pooling, dense, softmax cross-entropy, relu and add (forward and gradients) against tfjs.
import { describe, expect, it } from 'vitest';

import { ops, Tensor } from '../../lib/index.js';
import { expectClose, reportWorstRatios } from '../support/compare.js';
import { Rng } from '../support/random.js';
import { tf } from '../support/tf.js';

reportWorstRatios(import.meta.url);

const rng = new Rng(20261127);

type Pad = 'same' | 'valid' | number | [number, number, number, number];

interface PoolCase {
  name: string;
  shape: [number, number, number, number];
  size: number;
  stride: number;
  padding: Pad;
}

// tfjs pools take 'same' / 'valid' / n / NHWC pairs. Checked against a plain loop: tfjs's
// forward max and average pools (and the max-pool gradient) skip padded pixels and floor
// the output size for numeric and explicit padding, which is this library's rule too.
function tfPad(p: Pad): 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]] {
  if (p === 'same' || p === 'valid' || typeof p === 'number') return p;
  const [t, b, l, r] = p;
  return [
    [0, 0],
    [t, b],
    [l, r],
    [0, 0],
  ];
}

const poolCases: PoolCase[] = [
  { name: '2x2 stride 2 valid, even input', shape: [2, 8, 8, 3], size: 2, stride: 2, padding: 'valid' },
  { name: '3x3 stride 2 valid, odd input', shape: [2, 9, 7, 4], size: 3, stride: 2, padding: 'valid' },
  { name: '2x2 stride 1 valid, odd input', shape: [1, 5, 7, 3], size: 2, stride: 1, padding: 'valid' },
  { name: '3x3 stride 1 same, even input', shape: [1, 6, 6, 5], size: 3, stride: 1, padding: 'same' },
  { name: '3x3 stride 2 same, odd input', shape: [2, 7, 9, 3], size: 3, stride: 2, padding: 'same' },
  { name: '2x2 stride 2 same, odd input (pads bottom/right only)', shape: [2, 7, 7, 2], size: 2, stride: 2, padding: 'same' },
  { name: '3x3 stride 2 padding 1 (torchvision stem), even input', shape: [2, 8, 8, 3], size: 3, stride: 2, padding: 1 },
  { name: '3x3 stride 1 explicit [0, 1, 2, 1], odd input', shape: [1, 5, 6, 3], size: 3, stride: 1, padding: [0, 1, 2, 1] },
];

const describePool = (c: PoolCase) => `${c.name} ([${c.shape.join(', ')}], k${c.size}, s${c.stride}, pad ${JSON.stringify(c.padding)})`;

describe('maxPool matches tfjs', () => {
  for (const c of poolCases) {
    it(`forward and backward: ${describePool(c)}`, async () => {
      const xData = rng.array(c.shape.reduce((a, b) => a * b, 1)); // distinct floats: unambiguous argmax
      const x = Tensor.fromArray(xData, c.shape);
      const opts = { size: c.size, strides: c.stride, padding: c.padding };
      const y = await ops.maxPool(x, opts);
      const tx = tf.tensor4d(xData, c.shape);
      const f = (xx: tf.Tensor) => tf.maxPool(xx as tf.Tensor4D, c.size, c.stride, tfPad(c.padding));
      const ty = f(tx);
      expect(y.shape).toEqual(ty.shape);
      expectClose('maxPool', y.toFloat32Array(), ty.dataSync(), c.size * c.size);

      const dyData = rng.array(y.size);
      const dx = await ops.maxPoolBackward(x, Tensor.fromArray(dyData, y.shape), opts);
      expect(dx.shape).toEqual(c.shape);
      const [gx] = tf.grads(f)([tx], tf.tensor(dyData, ty.shape));
      expectClose('maxPoolBackward', dx.toFloat32Array(), gx!.dataSync(), c.size * c.size);
    });
  }
});

describe('avgPool matches tfjs (padded pixels excluded)', () => {
  for (const c of poolCases) {
    it(`forward and backward: ${describePool(c)}`, async () => {
      const xData = rng.array(c.shape.reduce((a, b) => a * b, 1));
      const x = Tensor.fromArray(xData, c.shape);
      const opts = { size: c.size, strides: c.stride, padding: c.padding };
      const y = await ops.avgPool(x, opts);
      const tx = tf.tensor4d(xData, c.shape);
      const ty = tf.avgPool(tx, c.size, c.stride, tfPad(c.padding));
      expect(y.shape).toEqual(ty.shape);
      expectClose('avgPool', y.toFloat32Array(), ty.dataSync(), c.size * c.size);

      // tfjs's cpu AvgPoolGrad divides by the full window even where its forward pass divided
      // by the real pixels, so differentiate the same average written as a window sum
      // (depthwise conv with a ones filter) over a constant count of real pixels instead.
      const pad = tfPad(c.padding);
      const ones = tf.ones([c.size, c.size, c.shape[3], 1]) as tf.Tensor4D;
      const count = tf.depthwiseConv2d(tf.onesLike(tx), ones, c.stride, pad);
      const f = (xx: tf.Tensor) => tf.div(tf.depthwiseConv2d(xx as tf.Tensor4D, ones, c.stride, pad), count);
      expectClose('avgPool (sum/count reference)', f(tx).dataSync(), ty.dataSync(), c.size * c.size);

      const dyData = rng.array(y.size);
      const dx = await ops.avgPoolBackward(x, Tensor.fromArray(dyData, y.shape), opts);
      expect(dx.shape).toEqual(c.shape);
      const [gx] = tf.grads(f)([tx], tf.tensor(dyData, ty.shape));
      expectClose('avgPoolBackward', dx.toFloat32Array(), gx!.dataSync(), c.size * c.size);
    });
  }
});

describe('globalAvgPool matches tf.mean over [1, 2]', () => {
  for (const shape of [
    [2, 7, 5, 3],
    [1, 4, 4, 6],
  ] as [number, number, number, number][]) {
    it(`forward and backward [${shape.join(', ')}]`, async () => {
      const xData = rng.array(shape.reduce((a, b) => a * b, 1));
      const x = Tensor.fromArray(xData, shape);
      const y = await ops.globalAvgPool(x);
      const tx = tf.tensor4d(xData, shape);
      const f = (xx: tf.Tensor) => tf.mean(xx, [1, 2]);
      const ty = f(tx);
      expect(y.shape).toEqual([shape[0], shape[3]]);
      expectClose('globalAvgPool', y.toFloat32Array(), ty.dataSync(), shape[1] * shape[2]);

      const dyData = rng.array(y.size);
      const dx = await ops.globalAvgPoolBackward(x, Tensor.fromArray(dyData, y.shape));
      expect(dx.shape).toEqual(shape);
      const [gx] = tf.grads(f)([tx], tf.tensor(dyData, ty.shape));
      expectClose('globalAvgPoolBackward', dx.toFloat32Array(), gx!.dataSync(), 1);
    });
  }
});

describe('dense matches tf.matMul (+ bias)', () => {
  for (const { n, k, o, bias } of [
    { n: 5, k: 13, o: 7, bias: true },
    { n: 1, k: 9, o: 4, bias: false },
    { n: 6, k: 32, o: 10, bias: false },
  ]) {
    it(`forward and backward, x [${n}, ${k}] · w [${k}, ${o}]${bias ? ' + bias' : ', no bias'}`, async () => {
      const xData = rng.array(n * k);
      const wData = rng.array(k * o, 0.5);
      const bData = rng.array(o);
      const x = Tensor.fromArray(xData, [n, k]);
      const w = Tensor.fromArray(wData, [k, o]);
      const b = bias ? Tensor.fromArray(bData, [o]) : undefined;
      const y = await ops.dense(x, w, b);
      const tx = tf.tensor2d(xData, [n, k]);
      const tw = tf.tensor2d(wData, [k, o]);
      const tb = tf.tensor1d(bData);
      const f = (xx: tf.Tensor, ww: tf.Tensor, bb?: tf.Tensor) => {
        const m = tf.matMul(xx as tf.Tensor2D, ww as tf.Tensor2D);
        return bb ? tf.add(m, bb) : m;
      };
      const ty = bias ? f(tx, tw, tb) : f(tx, tw);
      expect(y.shape).toEqual([n, o]);
      expectClose('dense', y.toFloat32Array(), ty.dataSync(), k);

      const dyData = rng.array(n * o);
      const g = await ops.denseBackward(x, w, Tensor.fromArray(dyData, [n, o]), b);
      expect(g.dx.shape).toEqual([n, k]);
      expect(g.dw.shape).toEqual([k, o]);
      const [gx, gw, gb] = tf.grads(f)(bias ? [tx, tw, tb] : [tx, tw], tf.tensor2d(dyData, [n, o]));
      expectClose('denseBackward dx', g.dx.toFloat32Array(), gx!.dataSync(), o);
      expectClose('denseBackward dw', g.dw.toFloat32Array(), gw!.dataSync(), n);
      if (bias) {
        expect(g.db!.shape).toEqual([o]);
        expectClose('denseBackward db', g.db!.toFloat32Array(), gb!.dataSync(), n);
      } else {
        expect(g.db).toBeUndefined();
      }
    });
  }
});

describe('softmaxCrossEntropy matches tf.losses.softmaxCrossEntropy (mean over the batch)', () => {
  // tfjs smooths labels as (1 - s) * onehot + s / classes, like this library. Reduction.MEAN
  // without weights is the mean of the per-example losses, i.e. over the batch.
  for (const { n, classes, labelSmoothing, dloss } of [
    { n: 6, classes: 10, labelSmoothing: 0, dloss: undefined },
    { n: 5, classes: 7, labelSmoothing: 0.1, dloss: undefined },
    { n: 1, classes: 3, labelSmoothing: 0, dloss: undefined },
    { n: 4, classes: 9, labelSmoothing: 0.1, dloss: 0.25 },
    { n: 3, classes: 5, labelSmoothing: 0, dloss: -3 },
  ]) {
    it(`loss and gradient, logits [${n}, ${classes}], labelSmoothing ${labelSmoothing}${dloss === undefined ? '' : `, dloss ${dloss}`}`, async () => {
      const logitsData = rng.array(n * classes, 3);
      const labels = rng.labels(n, classes);
      const logits = Tensor.fromArray(logitsData, [n, classes]);
      const loss = await ops.softmaxCrossEntropy(logits, labels, { labelSmoothing });
      expect(typeof loss).toBe('number');

      const tLogits = tf.tensor2d(logitsData, [n, classes]);
      const onehot = tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), classes), 'float32');
      const f = (l: tf.Tensor) => tf.losses.softmaxCrossEntropy(onehot, l, undefined, labelSmoothing, tf.Reduction.MEAN);
      const tLoss = f(tLogits);
      expect(tLoss.shape).toEqual([]);
      expectClose('softmaxCrossEntropy', [loss], tLoss.dataSync(), classes);

      const opts = dloss === undefined ? { labelSmoothing } : { labelSmoothing, dloss };
      const d = await ops.softmaxCrossEntropyBackward(logits, labels, opts);
      expect(d.shape).toEqual([n, classes]);
      const [g] = tf.grads(f)([tLogits], tf.scalar(dloss ?? 1));
      expectClose('softmaxCrossEntropyBackward', d.toFloat32Array(), g!.dataSync(), classes);
    });
  }
});

describe('relu and add match tfjs', () => {
  it('relu forward and reluBackward vs tf.relu gradients', async () => {
    const shape = [2, 5, 3, 4];
    const xData = rng.array(2 * 5 * 3 * 4);
    const dyData = rng.array(xData.length);
    const x = Tensor.fromArray(xData, shape);
    const y = await ops.relu(x);
    const tx = tf.tensor(xData, shape);
    expect(y.shape).toEqual(shape);
    expectClose('relu', y.toFloat32Array(), tf.relu(tx).dataSync(), 1);
    const dx = await ops.reluBackward(x, Tensor.fromArray(dyData, shape));
    expect(dx.shape).toEqual(shape);
    const [gx] = tf.grads((xx: tf.Tensor) => tf.relu(xx))([tx], tf.tensor(dyData, shape));
    expectClose('reluBackward', dx.toFloat32Array(), gx!.dataSync(), 1);
  });

  it('add vs tf.add (rank 4 and rank 2)', async () => {
    for (const shape of [
      [2, 3, 5, 7],
      [9, 4],
    ]) {
      const size = shape.reduce((a, b) => a * b, 1);
      const aData = rng.array(size, 3);
      const bData = rng.array(size, 3);
      const y = await ops.add(Tensor.fromArray(aData, shape), Tensor.fromArray(bData, shape));
      expect(y.shape).toEqual(shape);
      expectClose('add', y.toFloat32Array(), tf.add(tf.tensor(aData, shape), tf.tensor(bData, shape)).dataSync(), 1);
    }
  });
});
