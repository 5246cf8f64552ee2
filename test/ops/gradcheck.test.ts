// Finite-difference checks of every backward op, independent of tfjs.
//
// Method: a scalar loss L = sum_i y_i * r_i with a fixed random r (float64 arithmetic here),
// where y is the native forward output. For a seeded sample of coordinates of each input
// we perturb a copy of the Float32Array by ±h, rerun the native forward and compare the
// central difference (L+ - L-) / (2h) against the analytic gradient the backward op returns
// for dy = r. (For softmaxCrossEntropy the forward is the loss itself, so L = dloss * loss.)
//
// Tolerance: |fd - analytic| <= 2e-3 * max(min(1, gmax), |analytic|) + noise, where gmax is
// the largest |analytic| over the whole gradient tensor (for gradients of order 1 or more this
// is the usual 2e-3 * max(1, |analytic|); for small-scale gradients such as the 1/n-scaled
// softmax or the 1/(h*w) global pool it keeps the absolute part at the gradient's own scale), and
//  * 2e-3 covers the float32 error of the analytic gradient itself (relative ~1e-6..1e-5 for
//    these short reductions) and the O(h^2 * L''') truncation error of the central
//    difference for the smooth ops (batch norm at h = 1e-2, softmax at h = 0.05: <= 1e-4).
//    For ops that are linear in the perturbed input (conv, dense, pools, batch norm in inference mode) and
//    for piecewise-linear ops evaluated away from their kinks the truncation error is zero.
//    Any structural bug (missing term, wrong index or padding offset, wrong scale such as
//    1/n vs 1/(n-1)) gives errors of 1e-2 .. 1e0 relative, far above it.
//  * noise bounds the float32 rounding of the forward outputs: each output carries at most
//    NOISE_ULPS units of roundoff relative to (|y| + 1) (the +1 covers cancellation inside a
//    reduction of O(1) terms). L+ - L- is evaluated in float64 as sum_i r_i (y+_i - y-_i),
//    which is exact up to 1e-16 for float32 inputs, and only outputs that actually changed
//    can contribute, so noise = NOISE_ULPS * 2^-24 * sum_{i changed} |r_i| (|y+_i| + |y-_i| + 1) / (2h).
import { describe, expect, it } from 'vitest';

import { ops, Tensor } from '../../lib/index.js';
import type { BatchNormOptions, Conv2dOptions, Padding, PoolOptions } from '../../lib/ops.js';
import { type BatchNormData, batchNormTensors, type ConvCase, randomBatchNormData } from '../support/fixtures.js';
import { Rng } from '../support/random.js';

const NOISE_ULPS = 16;
const UNIT_ROUNDOFF = 2 ** -24;
const REL_TOL = 2e-3;
/** Samples per gradient tensor (all coordinates when the tensor is smaller than this). */
const SAMPLES = 16;
/** Step for smooth and piecewise-linear ops. */
const H_SMOOTH = 1e-2;
/** Step for ops that are linear in the perturbed input: the central difference is exact for
 * any h there, and a larger h shrinks the rounding noise (which scales as 1/h). */
const H_LINEAR = 0.25;
/** Step for softmax cross-entropy. Per row, d^3 loss / d z_k^3 = p(1-p)(1-2p) / n, at most
 * 0.097 / n, so the truncation error h^2/6 * |L'''| is below 4e-5 * dloss / n at h = 0.05,
 * while the larger step keeps the rounding noise of the scalar loss five times smaller. */
const H_SOFTMAX = 0.05;

type Output = Float32Array | number;

interface Mismatch {
  index: number;
  fd: number;
  analytic: number;
  tol: number;
}

/** Picks `count` distinct entries of `candidates` (all of them when there are fewer). */
function sample(rng: Rng, candidates: readonly number[], count: number): number[] {
  const pool = [...candidates];
  if (pool.length <= count) return pool;
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(rng.next() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  return pool.slice(0, count);
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** (L+ - L-) / (2h) and its rounding-noise bound, in float64. */
function centralDifference(plus: Output, minus: Output, r: Float32Array | null, h: number): { fd: number; noise: number } {
  if (typeof plus === 'number' || typeof minus === 'number') {
    if (typeof plus !== 'number' || typeof minus !== 'number') throw new Error('forward changed its output kind');
    const fd = (plus - minus) / (2 * h);
    const noise = (NOISE_ULPS * UNIT_ROUNDOFF * (Math.abs(plus) + Math.abs(minus) + 1)) / (2 * h);
    return { fd, noise };
  }
  if (r === null || plus.length !== r.length || minus.length !== r.length) throw new Error('output/r size mismatch');
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < r.length; i++) {
    const p = plus[i]!;
    const m = minus[i]!;
    if (p === m) continue;
    diff += r[i]! * (p - m);
    scale += Math.abs(r[i]!) * (Math.abs(p) + Math.abs(m) + 1);
  }
  return { fd: diff / (2 * h), noise: (NOISE_ULPS * UNIT_ROUNDOFF * scale) / (2 * h) };
}

/**
 * Compares the analytic gradient of L with respect to `base` at the given coordinates against
 * central differences of `forward`, which must evaluate the native forward on a perturbed copy.
 */
async function gradCheck(
  label: string,
  base: Float32Array,
  analytic: Tensor,
  forward: (data: Float32Array) => Promise<Output>,
  r: Float32Array | null,
  h: number,
  indices: readonly number[],
): Promise<void> {
  expect(analytic.size, `${label}: gradient size`).toBe(base.length);
  expect(indices.length, `${label}: no coordinates to check`).toBeGreaterThan(0);
  const g = analytic.toFloat32Array();
  const floor = Math.min(
    1,
    g.reduce((m, v) => Math.max(m, Math.abs(v)), 0),
  );
  const bad: Mismatch[] = [];
  for (const index of indices) {
    const plus = base.slice();
    plus[index] = base[index]! + h;
    const minus = base.slice();
    minus[index] = base[index]! - h;
    // The step actually taken in float32 (h is exactly representable for the values used,
    // but be exact anyway).
    const step = (plus[index]! - minus[index]!) / 2;
    const { fd, noise } = centralDifference(await forward(plus), await forward(minus), r, step);
    const a = g[index]!;
    const tol = REL_TOL * Math.max(floor, Math.abs(a)) + noise;
    if (!(Math.abs(fd - a) <= tol)) bad.push({ index, fd, analytic: a, tol });
  }
  if (bad.length > 0) {
    const lines = bad
      .slice(0, 6)
      .map(
        (b) => `  [${b.index}] finite difference ${b.fd.toPrecision(7)} vs analytic ${b.analytic.toPrecision(7)} (tolerance ${b.tol.toPrecision(3)})`,
      );
    throw new Error(`${label}: ${bad.length} of ${indices.length} sampled coordinates disagree\n${lines.join('\n')}`);
  }
}

/** y (float32) -> its values, disposing the tensor. */
function take(t: Tensor): Float32Array {
  const v = t.toFloat32Array();
  t.dispose();
  return v;
}

// ---------------------------------------------------------------------------------------
// conv2d

const convCases: ConvCase[] = [
  {
    name: '3x3 same with bias',
    n: 2,
    h: 5,
    w: 5,
    cin: 3,
    cout: 4,
    k: [3, 3],
    strides: [1, 1],
    dilations: [1, 1],
    padding: 'same',
    groups: 1,
    bias: true,
  },
  {
    name: '3x3 stride 2 same, odd size',
    n: 2,
    h: 7,
    w: 7,
    cin: 3,
    cout: 4,
    k: [3, 3],
    strides: [2, 2],
    dilations: [1, 1],
    padding: 'same',
    groups: 1,
    bias: true,
  },
  {
    name: '3x3 dilation 2 same',
    n: 1,
    h: 7,
    w: 6,
    cin: 2,
    cout: 3,
    k: [3, 3],
    strides: [1, 1],
    dilations: [2, 2],
    padding: 'same',
    groups: 1,
    bias: false,
  },
  { name: '3x3 groups 2', n: 2, h: 5, w: 4, cin: 4, cout: 6, k: [3, 3], strides: [1, 1], dilations: [1, 1], padding: 'same', groups: 2, bias: true },
  {
    name: '2x3 explicit asymmetric padding [0, 2, 1, 0], stride [1, 2]',
    n: 2,
    h: 5,
    w: 7,
    cin: 2,
    cout: 3,
    k: [2, 3],
    strides: [1, 2],
    dilations: [1, 1],
    padding: [0, 2, 1, 0],
    groups: 1,
    bias: true,
  },
  {
    name: '3x3 stride 2, dilation 2, groups 2, asymmetric padding [2, 1, 0, 2]',
    n: 1,
    h: 8,
    w: 7,
    cin: 4,
    cout: 4,
    k: [3, 3],
    strides: [2, 2],
    dilations: [2, 2],
    padding: [2, 1, 0, 2],
    groups: 2,
    bias: false,
  },
];

describe('conv2dBackward matches finite differences', () => {
  const rng = new Rng(0x6c0de1);
  for (const c of convCases) {
    it(`${c.name} (${c.n}x${c.h}x${c.w}x${c.cin} -> ${c.cout}): dx, dw${c.bias ? ', db' : ''}`, async () => {
      const xShape = [c.n, c.h, c.w, c.cin];
      const wShape = [c.k[0], c.k[1], c.cin / c.groups, c.cout];
      const xData = rng.array(xShape.reduce((a, b) => a * b));
      const wData = rng.array(
        wShape.reduce((a, b) => a * b),
        0.5,
      );
      const bData = rng.array(c.cout);
      const opts = (b?: Float32Array): Conv2dOptions => ({
        strides: c.strides,
        dilations: c.dilations,
        padding: c.padding,
        groups: c.groups,
        bias: b ? Tensor.fromArray(b, [c.cout]) : undefined,
      });
      const run = async (x: Float32Array, w: Float32Array, b: Float32Array) =>
        take(await ops.conv2d(Tensor.fromArray(x, xShape), Tensor.fromArray(w, wShape), opts(c.bias ? b : undefined)));

      const y = await ops.conv2d(Tensor.fromArray(xData, xShape), Tensor.fromArray(wData, wShape), opts(c.bias ? bData : undefined));
      const r = rng.array(y.size);
      const grads = await ops.conv2dBackward(
        Tensor.fromArray(xData, xShape),
        Tensor.fromArray(wData, wShape),
        Tensor.fromArray(r, y.shape),
        opts(c.bias ? bData : undefined),
      );
      expect(grads.dx.shape).toEqual(xShape);
      expect(grads.dw.shape).toEqual(wShape);

      await gradCheck('conv2d dx', xData, grads.dx, (x) => run(x, wData, bData), r, H_LINEAR, sample(rng, range(xData.length), SAMPLES));
      await gradCheck('conv2d dw', wData, grads.dw, (w) => run(xData, w, bData), r, H_LINEAR, sample(rng, range(wData.length), SAMPLES));
      if (c.bias) {
        expect(grads.db!.shape).toEqual([c.cout]);
        await gradCheck('conv2d db', bData, grads.db!, (b) => run(xData, wData, b), r, H_LINEAR, range(c.cout));
      } else {
        expect(grads.db).toBeUndefined();
      }
    });
  }
});

// ---------------------------------------------------------------------------------------
// batch norm

/** Float64 pre-activation batchNorm(x) (+ skip) per element, for keeping inputs away from relu's kink. */
function bnReference(x: Float32Array, c: number, d: BatchNormData, opts: Required<Pick<BatchNormOptions, 'training' | 'epsilon'>>): Float64Array {
  const rows = x.length / c;
  const mean = new Float64Array(c);
  const variance = new Float64Array(c);
  if (opts.training) {
    for (let i = 0; i < x.length; i++) mean[i % c] += x[i]! / rows;
    for (let i = 0; i < x.length; i++) variance[i % c] += (x[i]! - mean[i % c]!) ** 2 / rows;
  } else {
    mean.set(d.runningMean);
    variance.set(d.runningVar);
  }
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const ch = i % c;
    out[i] = (d.gamma[ch]! * (x[i]! - mean[ch]!)) / Math.sqrt(variance[ch]! + opts.epsilon) + d.beta[ch]!;
  }
  return out;
}

interface BnCase {
  name: string;
  shape: number[];
  training: boolean;
  epsilon?: number;
  momentum?: number;
  /** Scale by 2.5 and give each channel a different mean (non-zero batch mean, variance ~2). */
  shifted?: boolean;
}

const bnCases: BnCase[] = [
  { name: 'training, NHWC', shape: [2, 4, 5, 3], training: true },
  { name: 'training, [n, c], epsilon 0.1, momentum 0.3', shape: [8, 5], training: true, epsilon: 0.1, momentum: 0.3 },
  { name: 'training, NHWC, scaled and shifted input', shape: [3, 3, 2, 4], training: true, shifted: true },
  { name: 'inference, NHWC', shape: [2, 3, 4, 3], training: false },
  { name: 'inference, [n, c], epsilon 0.1', shape: [6, 4], training: false, epsilon: 0.1 },
];

describe('batchNormBackward matches finite differences', () => {
  const rng = new Rng(0xb4_7c40);
  for (const c of bnCases) {
    it(`${c.name} ${JSON.stringify(c.shape)}: dx, dgamma, dbeta`, async () => {
      const ch = c.shape[c.shape.length - 1]!;
      const size = c.shape.reduce((a, b) => a * b);
      let xData = rng.array(size);
      if (c.shifted) xData = Float32Array.from(xData, (v, i) => 2.5 * v + (i % ch) - 1);
      const d = randomBatchNormData(rng, ch);
      const opts: BatchNormOptions = { training: c.training, epsilon: c.epsilon, momentum: c.momentum };
      const run = async (x: Float32Array, dd: BatchNormData) => take(await ops.batchNorm(Tensor.fromArray(x, c.shape), batchNormTensors(dd), opts));

      const r = rng.array(size);
      const grads = await ops.batchNormBackward(Tensor.fromArray(xData, c.shape), Tensor.fromArray(r, c.shape), batchNormTensors(d), opts);
      expect(grads.dx.shape).toEqual(c.shape);
      expect(grads.dgamma.shape).toEqual([ch]);
      expect(grads.dbeta.shape).toEqual([ch]);

      await gradCheck('batchNorm dx', xData, grads.dx, (x) => run(x, d), r, H_SMOOTH, sample(rng, range(size), SAMPLES));
      await gradCheck('batchNorm dgamma', d.gamma, grads.dgamma, (g) => run(xData, { ...d, gamma: g }), r, H_SMOOTH, range(ch));
      await gradCheck('batchNorm dbeta', d.beta, grads.dbeta, (b) => run(xData, { ...d, beta: b }), r, H_SMOOTH, range(ch));
    });
  }
});

describe('batchNormAddReluBackward matches finite differences', () => {
  const rng = new Rng(0xadd7e1);
  const cases: BnCase[] = [
    { name: 'training, NHWC', shape: [2, 4, 4, 3], training: true },
    { name: 'training, [n, c], epsilon 0.1', shape: [10, 4], training: true, epsilon: 0.1 },
    { name: 'inference, NHWC', shape: [2, 3, 3, 4], training: false },
  ];
  // Kink margin: every pre-activation batchNorm(x) + skip is moved to at least MARGIN from 0.
  // A ±h step (h = 1e-2) moves a pre-activation by at most h * max(gamma / sigma, |xhat|, 1)
  // ≈ 0.03 here, so no element crosses relu's kink during a finite difference.
  const MARGIN = 0.15;
  for (const c of cases) {
    it(`${c.name} ${JSON.stringify(c.shape)}: dx, dskip, dgamma, dbeta`, async () => {
      const ch = c.shape[c.shape.length - 1]!;
      const size = c.shape.reduce((a, b) => a * b);
      const xData = rng.array(size);
      const d = randomBatchNormData(rng, ch);
      const opts: BatchNormOptions = { training: c.training, epsilon: c.epsilon };
      const pre = bnReference(xData, ch, d, { training: c.training, epsilon: c.epsilon ?? 1e-5 });
      const skipData = rng.array(size);
      for (let i = 0; i < size; i++) {
        const p = pre[i]! + skipData[i]!;
        if (Math.abs(p) < MARGIN) skipData[i] = skipData[i]! + (p >= 0 ? 2 : -2) * MARGIN;
      }
      let active = 0;
      for (let i = 0; i < size; i++) if (pre[i]! + skipData[i]! > 0) active++;
      // Both sides of the kink must be exercised.
      expect(active).toBeGreaterThan(size / 5);
      expect(active).toBeLessThan((4 * size) / 5);

      const run = async (x: Float32Array, s: Float32Array, dd: BatchNormData) =>
        take(await ops.batchNormAddRelu(Tensor.fromArray(x, c.shape), Tensor.fromArray(s, c.shape), batchNormTensors(dd), opts));

      const r = rng.array(size);
      const grads = await ops.batchNormAddReluBackward(
        Tensor.fromArray(xData, c.shape),
        Tensor.fromArray(skipData, c.shape),
        Tensor.fromArray(r, c.shape),
        batchNormTensors(d),
        opts,
      );
      expect(grads.dx.shape).toEqual(c.shape);
      expect(grads.dskip.shape).toEqual(c.shape);

      await gradCheck('batchNormAddRelu dx', xData, grads.dx, (x) => run(x, skipData, d), r, H_SMOOTH, sample(rng, range(size), SAMPLES));
      await gradCheck('batchNormAddRelu dskip', skipData, grads.dskip, (s) => run(xData, s, d), r, H_SMOOTH, sample(rng, range(size), SAMPLES));
      await gradCheck('batchNormAddRelu dgamma', d.gamma, grads.dgamma, (g) => run(xData, skipData, { ...d, gamma: g }), r, H_SMOOTH, range(ch));
      await gradCheck('batchNormAddRelu dbeta', d.beta, grads.dbeta, (b) => run(xData, skipData, { ...d, beta: b }), r, H_SMOOTH, range(ch));
    });
  }
});

// ---------------------------------------------------------------------------------------
// relu

describe('reluBackward matches finite differences', () => {
  it('[2, 4, 4, 3], coordinates away from the kink', async () => {
    const rng = new Rng(0x4e1);
    const shape = [2, 4, 4, 3];
    const xData = rng.array(96);
    const r = rng.array(96);
    const dx = await ops.reluBackward(Tensor.fromArray(xData, shape), Tensor.fromArray(r, shape));
    expect(dx.shape).toEqual(shape);
    // A ±h step only moves x_j, so coordinates with |x_j| >= 2h never cross the kink.
    const positive = range(96).filter((i) => xData[i]! >= 2 * H_SMOOTH);
    const negative = range(96).filter((i) => xData[i]! <= -2 * H_SMOOTH);
    const run = async (x: Float32Array) => take(await ops.relu(Tensor.fromArray(x, shape)));
    await gradCheck('relu dx (x > 0)', xData, dx, run, r, H_SMOOTH, sample(rng, positive, SAMPLES / 2));
    await gradCheck('relu dx (x < 0)', xData, dx, run, r, H_SMOOTH, sample(rng, negative, SAMPLES / 2));
  });
});

// ---------------------------------------------------------------------------------------
// pooling

/** Window start offsets for one axis (TensorFlow's 'same' rule: the odd pixel goes bottom/right). */
function windowStarts(size: number, k: number, s: number, padding: Padding, axis: 0 | 1): number[] {
  let before: number;
  let out: number;
  if (padding === 'valid') {
    before = 0;
    out = Math.floor((size - k) / s) + 1;
  } else if (padding === 'same') {
    out = Math.ceil(size / s);
    before = Math.floor(Math.max((out - 1) * s + k - size, 0) / 2);
  } else {
    const [t, b, l, r] = typeof padding === 'number' ? [padding, padding, padding, padding] : padding;
    const [lo, hi] = axis === 0 ? [t, b] : [l, r];
    before = lo;
    out = Math.floor((size + lo + hi - k) / s) + 1;
  }
  return range(out).map((o) => o * s - before);
}

/** Indices (into NHWC x) of the maximum of every pooling window, padding ignored. */
function maxPoolArgmaxes(x: Float32Array, shape: number[], k: [number, number], s: [number, number], padding: Padding): Set<number> {
  const [n, h, w, c] = shape as [number, number, number, number];
  const rows = windowStarts(h, k[0], s[0], padding, 0);
  const cols = windowStarts(w, k[1], s[1], padding, 1);
  const out = new Set<number>();
  for (let b = 0; b < n; b++) {
    for (const y0 of rows) {
      for (const x0 of cols) {
        for (let ch = 0; ch < c; ch++) {
          let best = -1;
          for (let y = Math.max(0, y0); y < Math.min(h, y0 + k[0]); y++) {
            for (let xx = Math.max(0, x0); xx < Math.min(w, x0 + k[1]); xx++) {
              const i = ((b * h + y) * w + xx) * c + ch;
              if (best < 0 || x[i]! > x[best]!) best = i;
            }
          }
          out.add(best);
        }
      }
    }
  }
  return out;
}

interface PoolCase {
  name: string;
  shape: [number, number, number, number];
  options: PoolOptions & { size: [number, number]; strides: [number, number]; padding: Padding };
}

describe('maxPoolBackward matches finite differences', () => {
  const rng = new Rng(0x3a9f00);
  const cases: PoolCase[] = [
    { name: '2x2 stride 2 valid', shape: [2, 6, 6, 3], options: { size: [2, 2], strides: [2, 2], padding: 'valid' } },
    { name: '3x3 stride 2 same, odd size (overlapping windows)', shape: [2, 7, 7, 2], options: { size: [3, 3], strides: [2, 2], padding: 'same' } },
    {
      name: '3x2 stride [1, 2] explicit padding [1, 0, 0, 1]',
      shape: [1, 5, 6, 3],
      options: { size: [3, 2], strides: [1, 2], padding: [1, 0, 0, 1] },
    },
  ];
  // Values are a permutation of a grid with spacing 0.04 > 2h, so a ±h step never changes
  // which element of a window is the maximum.
  const SPACING = 0.04;
  for (const c of cases) {
    it(`${c.name} ${JSON.stringify(c.shape)}`, async () => {
      const size = c.shape.reduce((a, b) => a * b);
      const order = sample(rng, range(size), size);
      const xData = Float32Array.from(order, (v) => (v - size / 2) * SPACING);
      const run = async (x: Float32Array) => take(await ops.maxPool(Tensor.fromArray(x, c.shape), c.options));
      const y = await ops.maxPool(Tensor.fromArray(xData, c.shape), c.options);
      const r = rng.array(y.size);
      const dx = await ops.maxPoolBackward(Tensor.fromArray(xData, c.shape), Tensor.fromArray(r, y.shape), c.options);
      expect(dx.shape).toEqual(c.shape);
      // Half the samples on true window maxima (computed here, not by the op), half anywhere.
      const argmaxes = [...maxPoolArgmaxes(xData, c.shape, c.options.size, c.options.strides, c.options.padding)];
      expect(argmaxes.length).toBeGreaterThan(0);
      await gradCheck('maxPool dx (window maxima)', xData, dx, run, r, H_SMOOTH, sample(rng, argmaxes, SAMPLES / 2));
      await gradCheck('maxPool dx (any)', xData, dx, run, r, H_SMOOTH, sample(rng, range(size), SAMPLES / 2));
    });
  }
});

describe('avgPoolBackward matches finite differences', () => {
  const rng = new Rng(0xa7e900);
  const cases: PoolCase[] = [
    { name: '3x3 stride 2 same, odd size', shape: [2, 7, 7, 2], options: { size: [3, 3], strides: [2, 2], padding: 'same' } },
    { name: '2x2 stride 2 same (padding bottom only)', shape: [1, 5, 6, 3], options: { size: [2, 2], strides: [2, 2], padding: 'same' } },
    { name: '3x3 stride 1 same', shape: [2, 4, 5, 2], options: { size: [3, 3], strides: [1, 1], padding: 'same' } },
    { name: '2x2 stride 2 valid', shape: [2, 4, 4, 3], options: { size: [2, 2], strides: [2, 2], padding: 'valid' } },
  ];
  for (const c of cases) {
    it(`${c.name} ${JSON.stringify(c.shape)}`, async () => {
      const size = c.shape.reduce((a, b) => a * b);
      const xData = rng.array(size);
      const run = async (x: Float32Array) => take(await ops.avgPool(Tensor.fromArray(x, c.shape), c.options));
      const y = await ops.avgPool(Tensor.fromArray(xData, c.shape), c.options);
      const r = rng.array(y.size);
      const dx = await ops.avgPoolBackward(Tensor.fromArray(xData, c.shape), Tensor.fromArray(r, y.shape), c.options);
      expect(dx.shape).toEqual(c.shape);
      // Border pixels are where padding handling matters: sample half of them from the border.
      const [, h, w] = c.shape;
      const border = range(size).filter((i) => {
        const px = Math.floor(i / c.shape[3]);
        const yy = Math.floor(px / w) % h;
        const xx = px % w;
        return yy === 0 || xx === 0 || yy === h - 1 || xx === w - 1;
      });
      await gradCheck('avgPool dx (border)', xData, dx, run, r, H_LINEAR, sample(rng, border, SAMPLES / 2));
      await gradCheck('avgPool dx (any)', xData, dx, run, r, H_LINEAR, sample(rng, range(size), SAMPLES / 2));
    });
  }
});

describe('globalAvgPoolBackward matches finite differences', () => {
  it('[2, 3, 4, 5]', async () => {
    const rng = new Rng(0x9a9);
    const shape = [2, 3, 4, 5];
    const xData = rng.array(120);
    const r = rng.array(10);
    const dx = await ops.globalAvgPoolBackward(Tensor.fromArray(xData, shape), Tensor.fromArray(r, [2, 5]));
    expect(dx.shape).toEqual(shape);
    const run = async (x: Float32Array) => take(await ops.globalAvgPool(Tensor.fromArray(x, shape)));
    await gradCheck('globalAvgPool dx', xData, dx, run, r, H_LINEAR, sample(rng, range(120), SAMPLES));
  });
});

// ---------------------------------------------------------------------------------------
// dense

describe('denseBackward matches finite differences', () => {
  const rng = new Rng(0xde45e);
  for (const withBias of [true, false]) {
    it(`x [4, 6] · w [6, 5]${withBias ? ' + b [5]' : ''}: dx, dw${withBias ? ', db' : ''}`, async () => {
      const xData = rng.array(24);
      const wData = rng.array(30, 0.5);
      const bData = rng.array(5);
      const run = async (x: Float32Array, w: Float32Array, b: Float32Array) =>
        take(await ops.dense(Tensor.fromArray(x, [4, 6]), Tensor.fromArray(w, [6, 5]), withBias ? Tensor.fromArray(b, [5]) : undefined));
      const r = rng.array(20);
      const grads = await ops.denseBackward(
        Tensor.fromArray(xData, [4, 6]),
        Tensor.fromArray(wData, [6, 5]),
        Tensor.fromArray(r, [4, 5]),
        withBias ? Tensor.fromArray(bData, [5]) : undefined,
      );
      expect(grads.dx.shape).toEqual([4, 6]);
      expect(grads.dw.shape).toEqual([6, 5]);
      await gradCheck('dense dx', xData, grads.dx, (x) => run(x, wData, bData), r, H_LINEAR, sample(rng, range(24), SAMPLES));
      await gradCheck('dense dw', wData, grads.dw, (w) => run(xData, w, bData), r, H_LINEAR, sample(rng, range(30), SAMPLES));
      if (withBias) {
        expect(grads.db!.shape).toEqual([5]);
        await gradCheck('dense db', bData, grads.db!, (b) => run(xData, wData, b), r, H_LINEAR, range(5));
      } else {
        expect(grads.db).toBeUndefined();
      }
    });
  }
});

// ---------------------------------------------------------------------------------------
// softmax cross-entropy

describe('softmaxCrossEntropyBackward matches finite differences', () => {
  const rng = new Rng(0x5ce);
  const cases = [
    { name: 'label smoothing 0.1', n: 5, classes: 7, labelSmoothing: 0.1, dloss: 1 },
    { name: 'label smoothing 0.1, dloss 2.5', n: 4, classes: 6, labelSmoothing: 0.1, dloss: 2.5 },
    { name: 'no smoothing', n: 6, classes: 4, labelSmoothing: 0, dloss: 1 },
  ];
  for (const c of cases) {
    it(`${c.name}: logits [${c.n}, ${c.classes}]`, async () => {
      const shape = [c.n, c.classes];
      const logits = rng.array(c.n * c.classes, 2);
      const labels = rng.labels(c.n, c.classes);
      const dlogits = await ops.softmaxCrossEntropyBackward(Tensor.fromArray(logits, shape), labels, {
        labelSmoothing: c.labelSmoothing,
        dloss: c.dloss,
      });
      expect(dlogits.shape).toEqual(shape);
      // L = dloss * loss, so its gradient is the backward op's output for that dloss.
      const run = async (z: Float32Array) =>
        c.dloss * (await ops.softmaxCrossEntropy(Tensor.fromArray(z, shape), labels, { labelSmoothing: c.labelSmoothing }));
      // Some label coordinates (where the smoothed target differs most from the other classes).
      const labelCoords = range(c.n).map((i) => i * c.classes + labels[i]!);
      await gradCheck('softmaxCrossEntropy dlogits (labels)', logits, dlogits, run, null, H_SOFTMAX, sample(rng, labelCoords, SAMPLES / 4));
      await gradCheck('softmaxCrossEntropy dlogits (any)', logits, dlogits, run, null, H_SOFTMAX, sample(rng, range(logits.length), SAMPLES));
    });
  }
});
