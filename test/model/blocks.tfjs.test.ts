// ResNet residual blocks built from the native ops, in training mode, against the same blocks
// written in tfjs: forward output, running statistics, dx and every parameter gradient (the
// native gradients are chained by hand through the backward ops).
//
// Reduction lengths for expectClose. Every value here comes out of a chain of reductions, and
// rounding errors entering early are carried (and rescaled by gamma / sigma) through every
// later batch norm. We use, per block, the largest conv reduction along the chain times the
// largest batch-norm row count (the total number of products behind a normalised value):
//  * forward output and running statistics: max forward conv reduction (kh * kw * cin) x rows;
//  * gradients: the backward also reduces over n * outH * outW for every dw (and dgamma,
//    dbeta), so the largest conv reduction includes those: max(kh*kw*cin, kh*kw*cout,
//    n*outH*outW) x rows.
// The inputs are scaled so that every conv output has variance ~1 (|values| = O(1)), which is
// what the absolute part of the project tolerance assumes.
import { describe, expect, it } from 'vitest';

import { ops, Tensor } from '../../lib/index.js';
import type { BatchNormOptions, BatchNormParams } from '../../lib/ops.js';
import { expectClose, reportWorstRatios } from '../support/compare.js';
import { type BatchNormData, batchNormTensors, randomBatchNormData } from '../support/fixtures.js';
import { Rng } from '../support/random.js';
import { tf } from '../support/tf.js';

reportWorstRatios(import.meta.url);

/** HWIO filter with entries uniform in ±3/sqrt(kh*kw*cin): conv outputs of unit-variance-ish inputs have variance ~1. */
function randomFilter(rng: Rng, shape: [number, number, number, number]): Float32Array {
  const fanIn = shape[0] * shape[1] * shape[2];
  return rng.array(
    shape.reduce((a, b) => a * b),
    3 / Math.sqrt(fanIn),
  );
}

/** tfjs batch norm with batch statistics (biased variance), differentiable through them. */
function tfBatchNorm(x: tf.Tensor4D, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number): tf.Tensor4D {
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  return tf.batchNorm(x, mean, variance, beta as tf.Tensor1D, gamma as tf.Tensor1D, epsilon) as tf.Tensor4D;
}

/** Expected running statistics after one training step: momentum weights the new batch; the running variance is unbiased. */
function expectRunningStats(
  op: string,
  params: BatchNormParams,
  before: BatchNormData,
  batchInput: tf.Tensor4D,
  momentum: number,
  reduction: number,
): void {
  const { mean, variance } = tf.moments(batchInput, [0, 1, 2]);
  const rows = batchInput.size / batchInput.shape[3];
  const m = mean.dataSync();
  const v = variance.dataSync();
  const c = before.gamma.length;
  const expectedMean = new Float64Array(c);
  const expectedVar = new Float64Array(c);
  for (let i = 0; i < c; i++) {
    expectedMean[i] = (1 - momentum) * before.runningMean[i]! + momentum * m[i]!;
    expectedVar[i] = (1 - momentum) * before.runningVar[i]! + (momentum * v[i]! * rows) / (rows - 1);
  }
  expectClose(`${op} runningMean`, params.runningMean.toFloat32Array(), expectedMean, reduction);
  expectClose(`${op} runningVar`, params.runningVar.toFloat32Array(), expectedVar, reduction);
}

describe('basic residual block matches tfjs (training mode)', () => {
  // conv3x3 -> bn -> relu -> conv3x3 -> batchNormAddRelu(skip = x); default momentum and epsilon.
  const cases = [
    { n: 2, h: 6, w: 6, c: 4 },
    { n: 2, h: 7, w: 5, c: 6 },
  ];
  const rng = new Rng(0xb10c1);
  for (const { n, h, w, c } of cases) {
    it(`x [${n}, ${h}, ${w}, ${c}]: forward, running stats, dx, dw1, dgamma1, dbeta1, dw2, dgamma2, dbeta2`, async () => {
      const eps = 1e-5;
      const momentum = 0.1;
      const xShape = [n, h, w, c];
      const fShape: [number, number, number, number] = [3, 3, c, c];
      const xData = rng.array(n * h * w * c);
      const w1 = randomFilter(rng, fShape);
      const w2 = randomFilter(rng, fShape);
      const bn1 = randomBatchNormData(rng, c);
      const bn2 = randomBatchNormData(rng, c);
      const dyData = rng.array(n * h * w * c);

      // Native forward.
      const x = Tensor.fromArray(xData, xShape);
      const W1 = Tensor.fromArray(w1, fShape);
      const W2 = Tensor.fromArray(w2, fShape);
      const p1 = batchNormTensors(bn1);
      const p2 = batchNormTensors(bn2);
      const conv = { padding: 'same' as const };
      const a1 = await ops.conv2d(x, W1, conv);
      const b1 = await ops.batchNorm(a1, p1); // defaults: training, momentum 0.1, epsilon 1e-5
      const r1 = await ops.relu(b1);
      const a2 = await ops.conv2d(r1, W2, conv);
      const y = await ops.batchNormAddRelu(a2, x, p2);
      const statsAfterForward = [p1.runningMean, p1.runningVar, p2.runningMean, p2.runningVar].map((t) => t.toFloat32Array());

      // Native backward, chained by hand.
      const dy = Tensor.fromArray(dyData, xShape);
      const g2 = await ops.batchNormAddReluBackward(a2, x, dy, p2);
      const c2 = await ops.conv2dBackward(r1, W2, g2.dx, conv);
      const dr1 = await ops.reluBackward(b1, c2.dx);
      const g1 = await ops.batchNormBackward(a1, dr1, p1);
      const c1 = await ops.conv2dBackward(x, W1, g1.dx, conv);
      const dx = await ops.add(c1.dx, g2.dskip); // the identity skip receives dy through the add
      // The backward ops leave the running statistics alone.
      expect([p1.runningMean, p1.runningVar, p2.runningMean, p2.runningVar].map((t) => t.toFloat32Array())).toEqual(statsAfterForward);

      // tfjs reference.
      const block = (...args: tf.Tensor[]): tf.Tensor => {
        const [tx, tw1, tg1, tb1, tw2, tg2, tb2] = args as [tf.Tensor4D, tf.Tensor4D, tf.Tensor, tf.Tensor, tf.Tensor4D, tf.Tensor, tf.Tensor];
        const ta1 = tf.conv2d(tx, tw1, 1, 'same');
        const tr1 = tf.relu(tfBatchNorm(ta1, tg1, tb1, eps));
        const ta2 = tf.conv2d(tr1, tw2, 1, 'same');
        return tf.relu(tf.add(tfBatchNorm(ta2, tg2, tb2, eps), tx));
      };
      const inputs = [
        tf.tensor4d(xData, [n, h, w, c]),
        tf.tensor4d(w1, fShape),
        tf.tensor1d(bn1.gamma),
        tf.tensor1d(bn1.beta),
        tf.tensor4d(w2, fShape),
        tf.tensor1d(bn2.gamma),
        tf.tensor1d(bn2.beta),
      ];
      const ty = block(...inputs);
      const tgrads = tf.grads(block)(inputs, tf.tensor4d(dyData, [n, h, w, c]));
      // Batch statistics of each batch norm's input, for the running statistics.
      const ta1 = tf.conv2d(inputs[0] as tf.Tensor4D, inputs[1] as tf.Tensor4D, 1, 'same');
      const ta2 = tf.conv2d(tf.relu(tfBatchNorm(ta1, inputs[2]!, inputs[3]!, eps)), inputs[4] as tf.Tensor4D, 1, 'same');

      const rows = n * h * w;
      const convReduction = 9 * c;
      const forwardL = convReduction * rows;
      const gradL = Math.max(convReduction, rows) * rows;

      expect(y.shape).toEqual(ty.shape);
      expectClose('basic block forward', y.toFloat32Array(), ty.dataSync(), forwardL);
      expectRunningStats('basic block bn1', p1, bn1, ta1, momentum, forwardL);
      expectRunningStats('basic block bn2', p2, bn2, ta2, momentum, forwardL);

      const native = [dx, c1.dw, g1.dgamma, g1.dbeta, c2.dw, g2.dgamma, g2.dbeta];
      const names = ['dx', 'dw1', 'dgamma1', 'dbeta1', 'dw2', 'dgamma2', 'dbeta2'];
      for (let i = 0; i < names.length; i++) {
        expect(native[i]!.shape, names[i]).toEqual(tgrads[i]!.shape);
        expectClose(`basic block ${names[i]}`, native[i]!.toFloat32Array(), tgrads[i]!.dataSync(), gradL);
      }
    });
  }
});

describe('bottleneck block with projection shortcut matches tfjs (training mode)', () => {
  // main: conv1x1 -> bn -> relu -> conv3x3 stride 2 'same' -> bn -> relu -> conv1x1
  // skip: bn(conv1x1 stride 2 (x)); out: batchNormAddRelu(main, skip).
  // momentum 0.9 (large, so that both the weighting convention and the unbiased running
  // variance are well above the tolerance) and epsilon 1e-3.
  const cases = [
    { n: 2, h: 7, w: 7, cin: 6, mid: 4, cout: 8 },
    { n: 2, h: 6, w: 7, cin: 4, mid: 4, cout: 6 },
  ];
  const rng = new Rng(0xb077);
  for (const { n, h, w, cin, mid, cout } of cases) {
    it(`x [${n}, ${h}, ${w}, ${cin}] -> ${mid} -> ${cout}, stride 2: forward, running stats, dx and all 12 parameter gradients`, async () => {
      const opts: BatchNormOptions = { training: true, momentum: 0.9, epsilon: 1e-3 };
      const eps = opts.epsilon!;
      const oh = Math.ceil(h / 2);
      const ow = Math.ceil(w / 2);
      const xShape = [n, h, w, cin];
      const s1: [number, number, number, number] = [1, 1, cin, mid];
      const s2: [number, number, number, number] = [3, 3, mid, mid];
      const s3: [number, number, number, number] = [1, 1, mid, cout];
      const sS: [number, number, number, number] = [1, 1, cin, cout];
      const xData = rng.array(n * h * w * cin);
      const w1 = randomFilter(rng, s1);
      const w2 = randomFilter(rng, s2);
      const w3 = randomFilter(rng, s3);
      const wS = randomFilter(rng, sS);
      const bn1 = randomBatchNormData(rng, mid);
      const bn2 = randomBatchNormData(rng, mid);
      const bn3 = randomBatchNormData(rng, cout);
      const bnS = randomBatchNormData(rng, cout);
      const dyData = rng.array(n * oh * ow * cout);

      // Native forward.
      const x = Tensor.fromArray(xData, xShape);
      const [W1, W2, W3, WS] = [Tensor.fromArray(w1, s1), Tensor.fromArray(w2, s2), Tensor.fromArray(w3, s3), Tensor.fromArray(wS, sS)];
      const [p1, p2, p3, pS] = [batchNormTensors(bn1), batchNormTensors(bn2), batchNormTensors(bn3), batchNormTensors(bnS)];
      const conv2Opts = { strides: 2, padding: 'same' as const };
      const shortcutOpts = { strides: 2, padding: 'valid' as const };
      const a1 = await ops.conv2d(x, W1);
      const b1 = await ops.batchNorm(a1, p1, opts);
      const r1 = await ops.relu(b1);
      const a2 = await ops.conv2d(r1, W2, conv2Opts);
      const b2 = await ops.batchNorm(a2, p2, opts);
      const r2 = await ops.relu(b2);
      const a3 = await ops.conv2d(r2, W3);
      const aS = await ops.conv2d(x, WS, shortcutOpts);
      const skip = await ops.batchNorm(aS, pS, opts);
      const y = await ops.batchNormAddRelu(a3, skip, p3, opts);

      // Native backward, chained by hand.
      const dy = Tensor.fromArray(dyData, [n, oh, ow, cout]);
      const g3 = await ops.batchNormAddReluBackward(a3, skip, dy, p3, opts);
      const gS = await ops.batchNormBackward(aS, g3.dskip, pS, opts);
      const cS = await ops.conv2dBackward(x, WS, gS.dx, shortcutOpts);
      const c3 = await ops.conv2dBackward(r2, W3, g3.dx);
      const g2 = await ops.batchNormBackward(a2, await ops.reluBackward(b2, c3.dx), p2, opts);
      const c2 = await ops.conv2dBackward(r1, W2, g2.dx, conv2Opts);
      const g1 = await ops.batchNormBackward(a1, await ops.reluBackward(b1, c2.dx), p1, opts);
      const c1 = await ops.conv2dBackward(x, W1, g1.dx);
      const dx = await ops.add(c1.dx, cS.dx); // x feeds both the main path and the shortcut

      // tfjs reference.
      const block = (...args: tf.Tensor[]): tf.Tensor => {
        const [tx, tw1, tg1, tb1, tw2, tg2, tb2, tw3, tg3, tb3, twS, tgS, tbS] = args as [
          tf.Tensor4D,
          tf.Tensor4D,
          tf.Tensor,
          tf.Tensor,
          tf.Tensor4D,
          tf.Tensor,
          tf.Tensor,
          tf.Tensor4D,
          tf.Tensor,
          tf.Tensor,
          tf.Tensor4D,
          tf.Tensor,
          tf.Tensor,
        ];
        const tr1 = tf.relu(tfBatchNorm(tf.conv2d(tx, tw1, 1, 'valid'), tg1, tb1, eps));
        const tr2 = tf.relu(tfBatchNorm(tf.conv2d(tr1, tw2, 2, 'same'), tg2, tb2, eps));
        const main = tfBatchNorm(tf.conv2d(tr2, tw3, 1, 'valid'), tg3, tb3, eps);
        const shortcut = tfBatchNorm(tf.conv2d(tx, twS, 2, 'valid'), tgS, tbS, eps);
        return tf.relu(tf.add(main, shortcut));
      };
      const inputs = [
        tf.tensor4d(xData, [n, h, w, cin]),
        tf.tensor4d(w1, s1),
        tf.tensor1d(bn1.gamma),
        tf.tensor1d(bn1.beta),
        tf.tensor4d(w2, s2),
        tf.tensor1d(bn2.gamma),
        tf.tensor1d(bn2.beta),
        tf.tensor4d(w3, s3),
        tf.tensor1d(bn3.gamma),
        tf.tensor1d(bn3.beta),
        tf.tensor4d(wS, sS),
        tf.tensor1d(bnS.gamma),
        tf.tensor1d(bnS.beta),
      ] as const;
      const [tx, tw1, tg1, tb1, tw2, tg2, tb2, tw3] = inputs as unknown as tf.Tensor4D[];
      const ty = block(...inputs);
      const tgrads = tf.grads(block)([...inputs], tf.tensor4d(dyData, [n, oh, ow, cout]));
      // Batch statistics of each batch norm's input, for the running statistics.
      const ta1 = tf.conv2d(tx!, tw1!, 1, 'valid');
      const ta2 = tf.conv2d(tf.relu(tfBatchNorm(ta1, tg1!, tb1!, eps)), tw2!, 2, 'same');
      const ta3 = tf.conv2d(tf.relu(tfBatchNorm(ta2, tg2!, tb2!, eps)), tw3!, 1, 'valid');
      const taS = tf.conv2d(tx!, inputs[10], 2, 'valid');

      const rows1 = n * h * w;
      const rows2 = n * oh * ow;
      const forwardConv = Math.max(cin, 9 * mid, mid); // conv1, conv2, conv3 / shortcut
      const backwardConv = Math.max(forwardConv, 9 * mid, cout, rows1, rows2); // + dx and dw reductions
      const bnRows = Math.max(rows1, rows2);
      const forwardL = forwardConv * bnRows;
      const gradL = backwardConv * bnRows;

      expect(y.shape).toEqual([n, oh, ow, cout]);
      expect(y.shape).toEqual(ty.shape);
      expectClose('bottleneck forward', y.toFloat32Array(), ty.dataSync(), forwardL);
      expectRunningStats('bottleneck bn1', p1, bn1, ta1, 0.9, forwardL);
      expectRunningStats('bottleneck bn2', p2, bn2, ta2, 0.9, forwardL);
      expectRunningStats('bottleneck bn3', p3, bn3, ta3, 0.9, forwardL);
      expectRunningStats('bottleneck bnShortcut', pS, bnS, taS, 0.9, forwardL);

      const native = [dx, c1.dw, g1.dgamma, g1.dbeta, c2.dw, g2.dgamma, g2.dbeta, c3.dw, g3.dgamma, g3.dbeta, cS.dw, gS.dgamma, gS.dbeta];
      const names = [
        'dx',
        'dw1',
        'dgamma1',
        'dbeta1',
        'dw2',
        'dgamma2',
        'dbeta2',
        'dw3',
        'dgamma3',
        'dbeta3',
        'dwShortcut',
        'dgammaShortcut',
        'dbetaShortcut',
      ];
      for (let i = 0; i < names.length; i++) {
        expect(native[i]!.shape, names[i]).toEqual(tgrads[i]!.shape);
        expectClose(`bottleneck ${names[i]}`, native[i]!.toFloat32Array(), tgrads[i]!.dataSync(), gradL);
      }
    });
  }
});
