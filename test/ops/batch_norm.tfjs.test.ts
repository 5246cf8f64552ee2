// batchNorm, batchNormAddRelu and their gradients against tfjs (tf.moments + tf.batchNorm),
// in training and inference mode, plus the running-statistics update.
import { describe, expect, it } from 'vitest';

import { ops, Tensor } from '../../lib/index.js';
import { expectClose, reportWorstRatios } from '../support/compare.js';
import { Rng } from '../support/random.js';
import { tf } from '../support/tf.js';

reportWorstRatios(import.meta.url);

interface Case {
  name: string;
  /** [n, c] or [n, h, w, c]; statistics are over every axis but the last. */
  shape: number[];
  /** undefined: the op's default (1e-5). */
  epsilon?: number;
  /** undefined: the op's default (0.1). */
  momentum?: number;
}

const DEFAULT_EPSILON = 1e-5;
const DEFAULT_MOMENTUM = 0.1;

const rng = new Rng(20261126);

function randomCase(i: number, rank: 2 | 4): Case {
  const c = rng.pick([3, 5, 7]);
  const shape = rank === 4 ? [rng.int(1, 3), rng.int(2, 6), rng.int(2, 6), c] : [rng.int(3, 12), c];
  return { name: `random rank ${rank} #${i}`, shape, epsilon: rng.pick([1e-5, 1e-3, 0.01]), momentum: rng.pick([0.1, 0.25, 0.9]) };
}

const trainingCases: Case[] = [
  { name: 'batch 1 with 5x7 spatial, 3 channels, defaults', shape: [1, 5, 7, 3] },
  { name: 'odd sizes, 5 channels, epsilon 1e-3, momentum 0.3', shape: [3, 3, 5, 5], epsilon: 1e-3, momentum: 0.3 },
  { name: 'rank 2 [n, c], 7 channels, epsilon 0.01', shape: [9, 7], epsilon: 0.01, momentum: 0.5 },
  randomCase(0, 4),
  randomCase(1, 2),
];

const optsOf = (c: Case, training: boolean) => ({
  training,
  ...(c.epsilon === undefined ? {} : { epsilon: c.epsilon }),
  ...(c.momentum === undefined ? {} : { momentum: c.momentum }),
});

const describeCase = (c: Case) =>
  `${c.name} ([${c.shape.join(', ')}], eps ${c.epsilon ?? DEFAULT_EPSILON}, momentum ${c.momentum ?? DEFAULT_MOMENTUM})`;

interface Data {
  channels: number;
  /** Rows per channel: the reduction length of the batch statistics. */
  rows: number;
  x: Float32Array;
  gamma: Float32Array;
  beta: Float32Array;
  runningMean: Float32Array;
  runningVar: Float32Array;
}

function makeData(shape: number[]): Data {
  const channels = shape[shape.length - 1]!;
  const size = shape.reduce((a, b) => a * b, 1);
  const rows = size / channels;
  // Per-channel offsets and scales so the statistics are far from 0 / 1.
  const offset = rng.array(channels, 2);
  const scale = Float32Array.from({ length: channels }, () => 0.5 + 2 * rng.next());
  const x = rng.array(size);
  for (let i = 0; i < size; i++) x[i] = x[i]! * scale[i % channels]! + offset[i % channels]!;
  return {
    channels,
    rows,
    x,
    gamma: Float32Array.from({ length: channels }, () => 0.5 + rng.next()),
    beta: rng.array(channels),
    runningMean: rng.array(channels),
    runningVar: Float32Array.from({ length: channels }, () => 0.5 + rng.next()),
  };
}

/** Fresh native params (the running statistics are updated in place). */
function params(d: Data) {
  return {
    gamma: Tensor.fromArray(d.gamma, [d.channels]),
    beta: Tensor.fromArray(d.beta, [d.channels]),
    runningMean: Tensor.fromArray(d.runningMean, [d.channels]),
    runningVar: Tensor.fromArray(d.runningVar, [d.channels]),
  };
}

/** Batch mean and unbiased batch variance per channel, in float64. */
function batchStats(d: Data): { mean: Float64Array; unbiasedVar: Float64Array } {
  const mean = new Float64Array(d.channels);
  const sq = new Float64Array(d.channels);
  for (let i = 0; i < d.x.length; i++) mean[i % d.channels] += d.x[i]!;
  for (let c = 0; c < d.channels; c++) mean[c] /= d.rows;
  for (let i = 0; i < d.x.length; i++) sq[i % d.channels] += (d.x[i]! - mean[i % d.channels]!) ** 2;
  const unbiasedVar = sq.map((s) => s / (d.rows - 1));
  return { mean, unbiasedVar };
}

/** tfjs is only happy with rank-4 batch-norm gradients: view [n, c] as [n, 1, 1, c]. */
const as4d = (shape: number[]): [number, number, number, number] =>
  shape.length === 4 ? (shape as [number, number, number, number]) : [shape[0]!, 1, 1, shape[1]!];

/** tfjs reference of batch norm on a 4-D x; batch statistics when running stats are not given. */
function tfBatchNorm(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  epsilon: number,
  running?: { mean: tf.Tensor; variance: tf.Tensor },
): tf.Tensor {
  const x4 = x as tf.Tensor4D;
  const { mean, variance } = running ?? tf.moments(x4, [0, 1, 2]);
  return tf.batchNorm(x4, mean as tf.Tensor1D, variance as tf.Tensor1D, beta as tf.Tensor1D, gamma as tf.Tensor1D, epsilon);
}

function tfInputs(d: Data, shape: number[]) {
  return {
    x: tf.tensor4d(d.x, as4d(shape)),
    gamma: tf.tensor1d(d.gamma),
    beta: tf.tensor1d(d.beta),
    running: { mean: tf.tensor1d(d.runningMean), variance: tf.tensor1d(d.runningVar) },
  };
}

function expectRunningUnchanged(p: ReturnType<typeof params>, d: Data): void {
  expect(Array.from(p.runningMean.toFloat32Array())).toEqual(Array.from(d.runningMean));
  expect(Array.from(p.runningVar.toFloat32Array())).toEqual(Array.from(d.runningVar));
}

function expectRunningUpdated(op: string, p: ReturnType<typeof params>, d: Data, c: Case): void {
  const m = c.momentum ?? DEFAULT_MOMENTUM;
  const { mean, unbiasedVar } = batchStats(d);
  const expMean = d.runningMean.map((r, i) => (1 - m) * r + m * mean[i]!);
  const expVar = d.runningVar.map((r, i) => (1 - m) * r + m * unbiasedVar[i]!);
  expect(p.runningMean.shape).toEqual([d.channels]);
  expect(p.runningVar.shape).toEqual([d.channels]);
  expectClose(`${op} runningMean`, p.runningMean.toFloat32Array(), expMean, d.rows);
  expectClose(`${op} runningVar`, p.runningVar.toFloat32Array(), expVar, d.rows);
}

describe('batchNorm training mode matches tfjs', () => {
  for (const c of trainingCases) {
    it(`forward and running-statistics update: ${describeCase(c)}`, async () => {
      const d = makeData(c.shape);
      const p = params(d);
      const x = Tensor.fromArray(d.x, c.shape);
      const y = await ops.batchNorm(x, p, optsOf(c, true));
      expect(y.shape).toEqual(c.shape);

      const t = tfInputs(d, c.shape);
      const ty = tfBatchNorm(t.x, t.gamma, t.beta, c.epsilon ?? DEFAULT_EPSILON);
      expectClose('batchNorm (training)', y.toFloat32Array(), ty.dataSync(), d.rows);
      expectRunningUpdated('batchNorm', p, d, c);
    });
  }

  for (const c of trainingCases) {
    it(`backward (dx, dgamma, dbeta through the batch statistics): ${describeCase(c)}`, async () => {
      const d = makeData(c.shape);
      const p = params(d);
      const x = Tensor.fromArray(d.x, c.shape);
      const dyData = rng.array(d.x.length);
      const dy = Tensor.fromArray(dyData, c.shape);
      const g = await ops.batchNormBackward(x, dy, p, optsOf(c, true));
      expect(g.dx.shape).toEqual(c.shape);
      expect(g.dgamma.shape).toEqual([d.channels]);
      expect(g.dbeta.shape).toEqual([d.channels]);
      expectRunningUnchanged(p, d);

      const t = tfInputs(d, c.shape);
      const eps = c.epsilon ?? DEFAULT_EPSILON;
      const f = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => tfBatchNorm(xx, gg, bb, eps);
      const [gx, gg, gb] = tf.grads(f)([t.x, t.gamma, t.beta], tf.tensor(dyData, as4d(c.shape)));
      expectClose('batchNormBackward dx (training)', g.dx.toFloat32Array(), gx!.dataSync(), d.rows);
      expectClose('batchNormBackward dgamma (training)', g.dgamma.toFloat32Array(), gg!.dataSync(), d.rows);
      expectClose('batchNormBackward dbeta (training)', g.dbeta.toFloat32Array(), gb!.dataSync(), d.rows);
    });
  }
});

const inferenceCases: Case[] = [
  { name: 'rank 4, odd sizes, 5 channels, epsilon 1e-3', shape: [2, 3, 5, 5], epsilon: 1e-3, momentum: 0.3 },
  { name: 'rank 2 [n, c], 3 channels, defaults', shape: [6, 3] },
];

describe('batchNorm inference mode matches tfjs', () => {
  for (const c of inferenceCases) {
    it(`forward uses the running statistics and leaves them unchanged: ${describeCase(c)}`, async () => {
      const d = makeData(c.shape);
      const p = params(d);
      const y = await ops.batchNorm(Tensor.fromArray(d.x, c.shape), p, optsOf(c, false));
      expect(y.shape).toEqual(c.shape);
      const t = tfInputs(d, c.shape);
      const ty = tfBatchNorm(t.x, t.gamma, t.beta, c.epsilon ?? DEFAULT_EPSILON, t.running);
      expectClose('batchNorm (inference)', y.toFloat32Array(), ty.dataSync(), 1);
      expectRunningUnchanged(p, d);
    });

    it(`backward (dx, dgamma, dbeta with constant running statistics): ${describeCase(c)}`, async () => {
      const d = makeData(c.shape);
      const p = params(d);
      const dyData = rng.array(d.x.length);
      const g = await ops.batchNormBackward(Tensor.fromArray(d.x, c.shape), Tensor.fromArray(dyData, c.shape), p, optsOf(c, false));
      expect(g.dx.shape).toEqual(c.shape);
      expect(g.dgamma.shape).toEqual([d.channels]);
      expect(g.dbeta.shape).toEqual([d.channels]);
      expectRunningUnchanged(p, d);

      const t = tfInputs(d, c.shape);
      const eps = c.epsilon ?? DEFAULT_EPSILON;
      const f = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => tfBatchNorm(xx, gg, bb, eps, t.running);
      const [gx, gg, gb] = tf.grads(f)([t.x, t.gamma, t.beta], tf.tensor(dyData, as4d(c.shape)));
      expectClose('batchNormBackward dx (inference)', g.dx.toFloat32Array(), gx!.dataSync(), 1);
      expectClose('batchNormBackward dgamma (inference)', g.dgamma.toFloat32Array(), gg!.dataSync(), d.rows);
      expectClose('batchNormBackward dbeta (inference)', g.dbeta.toFloat32Array(), gb!.dataSync(), d.rows);
    });
  }
});

const addReluCases: { c: Case; training: boolean }[] = [
  { c: { name: 'batch 1 with 4x6 spatial, 7 channels', shape: [1, 4, 6, 7], epsilon: 1e-3, momentum: 0.2 }, training: true },
  { c: { name: 'odd sizes, 3 channels, defaults', shape: [3, 5, 3, 3] }, training: true },
  { c: { name: 'rank 2 [n, c], 5 channels', shape: [8, 5], epsilon: 1e-4 }, training: true },
  { c: { name: 'odd sizes, 5 channels, epsilon 0.01', shape: [2, 3, 5, 5], epsilon: 0.01 }, training: false },
  { c: { name: 'rank 2 [n, c], 7 channels', shape: [5, 7] }, training: false },
];

describe('batchNormAddRelu matches tfjs relu(batchNorm(x) + skip)', () => {
  for (const { c, training } of addReluCases) {
    const mode = training ? 'training' : 'inference';
    it(`${mode}: forward, running statistics, and backward (dx, dskip, dgamma, dbeta): ${describeCase(c)}`, async () => {
      const d = makeData(c.shape);
      const skipData = rng.array(d.x.length);
      const dyData = rng.array(d.x.length);
      const x = Tensor.fromArray(d.x, c.shape);
      const skip = Tensor.fromArray(skipData, c.shape);
      const eps = c.epsilon ?? DEFAULT_EPSILON;
      const t = tfInputs(d, c.shape);
      const tSkip = tf.tensor4d(skipData, as4d(c.shape));
      const running = training ? undefined : t.running;
      const f = (xx: tf.Tensor, ss: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => tf.relu(tf.add(tfBatchNorm(xx, gg, bb, eps, running), ss));
      // Batch-statistics outputs depend on all rows of the channel; inference ones on one element.
      const fwdLength = training ? d.rows : 1;

      // Forward.
      const pf = params(d);
      const y = await ops.batchNormAddRelu(x, skip, pf, optsOf(c, training));
      expect(y.shape).toEqual(c.shape);
      const ty = f(t.x, tSkip, t.gamma, t.beta);
      expectClose(`batchNormAddRelu (${mode})`, y.toFloat32Array(), ty.dataSync(), fwdLength);
      const yData = y.toFloat32Array();
      expect(yData.some((v) => v === 0)).toBe(true); // the relu clips something
      expect(yData.some((v) => v > 0)).toBe(true);
      if (training) expectRunningUpdated('batchNormAddRelu', pf, d, c);
      else expectRunningUnchanged(pf, d);

      // Backward.
      const pb = params(d);
      const g = await ops.batchNormAddReluBackward(x, skip, Tensor.fromArray(dyData, c.shape), pb, optsOf(c, training));
      expect(g.dx.shape).toEqual(c.shape);
      expect(g.dskip.shape).toEqual(c.shape);
      expect(g.dgamma.shape).toEqual([d.channels]);
      expect(g.dbeta.shape).toEqual([d.channels]);
      expectRunningUnchanged(pb, d);
      const [gx, gs, gg, gb] = tf.grads(f)([t.x, tSkip, t.gamma, t.beta], tf.tensor(dyData, as4d(c.shape)));
      expectClose(`batchNormAddReluBackward dx (${mode})`, g.dx.toFloat32Array(), gx!.dataSync(), fwdLength);
      expectClose(`batchNormAddReluBackward dskip (${mode})`, g.dskip.toFloat32Array(), gs!.dataSync(), 1);
      expectClose(`batchNormAddReluBackward dgamma (${mode})`, g.dgamma.toFloat32Array(), gg!.dataSync(), d.rows);
      expectClose(`batchNormAddReluBackward dbeta (${mode})`, g.dbeta.toFloat32Array(), gb!.dataSync(), d.rows);
    });
  }
});
