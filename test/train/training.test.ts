// Training with the Model API: convergence on a fixed batch, allocation-free steps, plan
// caching, train/eval semantics of batch-norm, and the optimizer's update rules (SGD with
// momentum / Nesterov / L2 or decoupled weight decay, AdamW, gradient clipping, parameter
// groups, label smoothing). Expected updates are computed here in float64 from the
// parameters before the step and the gradients the step leaves (model.getGradient), so each
// rule is checked as written in its documentation, not against another run of the engine.
import { describe, expect, it } from 'vitest';

import { allocationStats, type Model, models, ResNetError, Tensor } from '../../lib/index.js';
import { tinyModel } from '../support/models.js';
import { Rng } from '../support/random.js';

const CLASSES = 10;

function batch(rng: Rng, n: number, size = 8): { x: Tensor; data: Float32Array; y: Int32Array } {
  const data = rng.array(n * size * size * 3);
  return { x: Tensor.fromArray(data, [n, size, size, 3]), data, y: rng.labels(n, CLASSES) };
}

type Snapshot = Map<string, Float32Array>;

function snapshot(model: Model, which: 'trainable' | 'running' | 'all' = 'all'): Snapshot {
  const out: Snapshot = new Map();
  for (const p of model.parameterInfo()) {
    if (which === 'all' || (which === 'trainable') === p.trainable) out.set(p.name, model.getParameter(p.name));
  }
  return out;
}

function gradients(model: Model): Snapshot {
  const out: Snapshot = new Map();
  for (const p of model.parameterInfo()) if (p.trainable) out.set(p.name, model.getGradient(p.name));
  return out;
}

function sameValues(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

/** Names of the parameters whose values differ between two snapshots. */
function changed(a: Snapshot, b: Snapshot): string[] {
  return [...a.keys()].filter((k) => !sameValues(a.get(k)!, b.get(k)!));
}

/**
 * Asserts actual ≈ expected element-wise. The engine computes each update in float32 with a
 * handful of roundings of values of size |scale|, so 1e-6 relative to `scale` (≈ 8 ulps) bounds
 * its error, while every rule checked below differs between its alternatives by far more.
 */
function expectUpdate(name: string, actual: Float32Array, expected: Float64Array, scale: Float64Array): void {
  let worst = 0;
  let at = -1;
  for (let i = 0; i < actual.length; i++) {
    const r = Math.abs(actual[i]! - expected[i]!) / (1e-6 * scale[i]! + 1e-30);
    if (!(r <= worst)) {
      worst = r;
      at = i;
    }
  }
  if (worst > 1) {
    throw new Error(`${name}[${at}] is ${actual[at]} but the update rule gives ${expected[at]} (error/tolerance ${worst.toFixed(2)})`);
  }
}

const map = (n: number, f: (i: number) => number) => Float64Array.from({ length: n }, (_, i) => f(i));

function logSumExp(row: ArrayLike<number>): number {
  let m = -Infinity;
  for (let j = 0; j < row.length; j++) m = Math.max(m, row[j]!);
  let s = 0;
  for (let j = 0; j < row.length; j++) s += Math.exp(row[j]! - m);
  return m + Math.log(s);
}

function argmax(row: ArrayLike<number>): number {
  let k = 0;
  for (let j = 1; j < row.length; j++) if (row[j]! > row[k]!) k = j;
  return k;
}

/**
 * Calls `call` synchronously in a loop until it throws (or 5 s pass) and returns what it
 * threw. Used right after starting a step: the step runs on a worker thread, and while this
 * loop holds the JS thread the step cannot resolve, so the loop sees it running.
 */
function busyError(call: () => unknown): ResNetError | undefined {
  const start = Date.now();
  while (Date.now() - start < 5000) {
    try {
      call();
    } catch (err) {
      return err as ResNetError;
    }
  }
  return undefined;
}

describe('convergence', () => {
  it('overfits a fixed batch of 64 random images with random labels: loss < 0.05 and accuracy 1 within 60 steps', async () => {
    const rng = new Rng(2024);
    const model = models.resnetCifar({ depth: 8, inputShape: [16, 16, 3], seed: 11 });
    model.compile({ optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 } });
    const { x, y } = batch(rng, 64, 16);
    const first = await model.trainStep(x, y);
    // At initialisation the loss is near ln(10) = 2.30 (random labels, no information yet).
    expect(first.loss).toBeGreaterThan(1.5);
    let last = first;
    let steps = 1;
    while (steps < 60 && !(last.loss < 0.05 && last.accuracy === 1)) {
      last = await model.trainStep(x, y);
      steps++;
    }
    expect(last.loss, `after ${steps} steps`).toBeLessThan(0.05);
    expect(last.accuracy).toBe(1);
  });
});

describe('memory and plans', () => {
  it('trainStep allocates nothing after its first run at a shape; evaluate and computeGradients neither', async () => {
    const rng = new Rng(1);
    const model = tinyModel(1).compile({ optimizer: { type: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 1e-4 } });
    const { x, y } = batch(rng, 8);
    await model.trainStep(x, y);
    const a0 = allocationStats().allocations;
    for (let s = 2; s <= 5; s++) {
      await model.trainStep(x, y);
      expect(allocationStats().allocations, `step ${s}`).toBe(a0);
    }
    await model.evaluate(x, y);
    await model.computeGradients(x, y);
    const a1 = allocationStats().allocations;
    for (let s = 0; s < 3; s++) {
      await model.evaluate(x, y);
      await model.computeGradients(x, y);
      await model.trainStep(x, y);
    }
    expect(allocationStats().allocations).toBe(a1);
  });

  it('predict reuses its plan: exactly one allocation per call (the output tensor), freed by dispose', async () => {
    const rng = new Rng(2);
    const model = tinyModel(2);
    const { x } = batch(rng, 4);
    (await model.predict(x)).dispose();
    for (let s = 0; s < 4; s++) {
      const before = allocationStats();
      const out = await model.predict(x);
      const during = allocationStats();
      expect(during.allocations - before.allocations).toBe(1);
      // Garbage collection may free other objects' memory at any time (it only ever lowers
      // liveBytes), so the output's bytes are checked by what dispose() gives back.
      const beforeDispose = allocationStats().liveBytes;
      out.dispose();
      expect(allocationStats().liveBytes).toBeLessThanOrEqual(beforeDispose - 4 * CLASSES * 4);
    }
  });

  it('caches one plan per input shape and mode (model.stats().plans)', async () => {
    const rng = new Rng(3);
    const model = tinyModel(3).compile({ optimizer: { type: 'sgd', lr: 0.01 } });
    const b4 = batch(rng, 4);
    const b3 = batch(rng, 3);
    expect(model.stats().plans).toBe(0);
    await model.trainStep(b4.x, b4.y);
    expect(model.stats().plans).toBe(1);
    const arena1 = model.stats().arenaBytes;
    expect(arena1).toBeGreaterThan(0);
    await model.trainStep(b4.x, b4.y);
    expect(model.stats().plans).toBe(1);
    await model.predict(b4.x);
    expect(model.stats().plans).toBe(2); // inference mode at [4, 8, 8, 3]
    await model.evaluate(b4.x, b4.y);
    await model.predict(b4.x);
    expect(model.stats().plans).toBe(2); // evaluate is inference mode too
    await model.trainStep(b3.x, b3.y);
    expect(model.stats().plans).toBe(3);
    await model.predict(b3.x);
    expect(model.stats().plans).toBe(4);
    await model.trainStep(b4.x, b4.y);
    await model.trainStep(b3.x, b3.y);
    expect(model.stats().plans).toBe(4);
    expect(model.stats().arenaBytes).toBeGreaterThan(arena1);
  });

  it('any batch size works: train on 3, then 5, predict 1 and 7', async () => {
    const rng = new Rng(4);
    const model = tinyModel(4).compile({ optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 } });
    for (const n of [3, 5, 3]) {
      const { x, y } = batch(rng, n);
      const r = await model.trainStep(x, y);
      expect(Number.isFinite(r.loss)).toBe(true);
      expect(r.gradNorm).toBeGreaterThan(0);
      expect(r.accuracy * n).toBe(Math.round(r.accuracy * n));
    }
    for (const n of [1, 7]) {
      const out = await model.predict(batch(rng, n).x);
      expect(out.shape).toEqual([n, CLASSES]);
      expect(out.toFloat32Array().every(Number.isFinite)).toBe(true);
    }
  });
});

describe('train() / eval() and batch-norm statistics', () => {
  it('in eval mode trainStep keeps the running statistics and uses them (its loss is evaluate()’s); weights still move', async () => {
    const rng = new Rng(5);
    const model = tinyModel(5).compile({ optimizer: { type: 'sgd', lr: 0.05 } });
    // Non-trivial running statistics first.
    for (let s = 0; s < 3; s++) {
      const b = batch(rng, 8);
      await model.trainStep(b.x, b.y);
    }
    expect(model.training).toBe(true);
    expect(model.eval()).toBe(model);
    expect(model.training).toBe(false);
    const { x, y } = batch(rng, 8);
    const expected = await model.evaluate(x, y);
    const running = snapshot(model, 'running');
    const trainable = snapshot(model, 'trainable');
    const r = await model.trainStep(x, y);
    expect(changed(running, snapshot(model, 'running'))).toEqual([]);
    expect(changed(trainable, snapshot(model, 'trainable')).length).toBeGreaterThan(0);
    expect(r.loss).toBeCloseTo(expected.loss, 5);
    expect(r.accuracy).toBe(expected.accuracy);
  });

  it('in train mode trainStep updates bn1’s running statistics by the PyTorch rule (momentum 0.1, unbiased variance)', async () => {
    const rng = new Rng(6);
    const model = tinyModel(6).compile({ optimizer: { type: 'sgd', lr: 0.05 } });
    model.eval();
    model.train();
    expect(model.training).toBe(true);
    const n = 8;
    const { x, data, y } = batch(rng, n);
    const w = model.getParameter('conv1.weight'); // [3, 3, 3, 16], stride 1, padding 1, no bias
    const rm0 = model.getParameter('bn1.running_mean');
    const rv0 = model.getParameter('bn1.running_var');
    await model.trainStep(x, y);
    // conv1's output (bn1's input) in float64.
    const C = 16;
    const sum = new Float64Array(C);
    const sq = new Float64Array(C);
    for (let b = 0; b < n; b++) {
      for (let i = 0; i < 8; i++) {
        for (let j = 0; j < 8; j++) {
          const acc = new Float64Array(C);
          for (let ki = 0; ki < 3; ki++) {
            for (let kj = 0; kj < 3; kj++) {
              const ii = i + ki - 1;
              const jj = j + kj - 1;
              if (ii < 0 || ii >= 8 || jj < 0 || jj >= 8) continue;
              for (let c = 0; c < 3; c++) {
                const v = data[((b * 8 + ii) * 8 + jj) * 3 + c]!;
                for (let o = 0; o < C; o++) acc[o] += v * w[((ki * 3 + kj) * 3 + c) * C + o]!;
              }
            }
          }
          for (let o = 0; o < C; o++) {
            sum[o] += acc[o]!;
            sq[o] += acc[o]! * acc[o]!;
          }
        }
      }
    }
    const count = n * 64;
    const mean = map(C, (o) => sum[o]! / count);
    const unbiased = map(C, (o) => (sq[o]! - count * mean[o]! ** 2) / (count - 1));
    const rm = model.getParameter('bn1.running_mean');
    const rv = model.getParameter('bn1.running_var');
    for (let o = 0; o < C; o++) {
      expect(rm[o]).toBeCloseTo(0.9 * rm0[o]! + 0.1 * mean[o]!, 5);
      expect(rv[o]).toBeCloseTo(0.9 * rv0[o]! + 0.1 * unbiased[o]!, 5);
    }
    // (The biased variance would differ by 0.1 · var / 511 — check the test can tell them apart.)
    expect(Math.max(...unbiased.map((v) => (0.1 * v) / count))).toBeGreaterThan(5e-6);
  });

  it('predict and evaluate never change running statistics, in either mode', async () => {
    const rng = new Rng(7);
    const model = tinyModel(7).compile({ optimizer: { type: 'sgd', lr: 0.05 } });
    const { x, y } = batch(rng, 8);
    await model.trainStep(x, y);
    const before = snapshot(model);
    await model.predict(x);
    await model.evaluate(x, y);
    model.eval();
    await model.predict(x, { softmax: true });
    await model.evaluate(x, y);
    expect(changed(before, snapshot(model))).toEqual([]);
  });
});

describe('learning rate', () => {
  it('setLearningRate(0): trainable weights stay, batch-norm statistics still update', async () => {
    const rng = new Rng(8);
    const model = tinyModel(8).compile({ optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 0.1 } });
    const { x, y } = batch(rng, 8);
    await model.trainStep(x, y);
    model.setLearningRate(0);
    expect(model.learningRate).toBe(0);
    const trainable = snapshot(model, 'trainable');
    const running = snapshot(model, 'running');
    const r = await model.trainStep(x, y);
    expect(r.gradNorm).toBeGreaterThan(0);
    expect(changed(trainable, snapshot(model, 'trainable'))).toEqual([]);
    expect(changed(running, snapshot(model, 'running')).length).toBe(running.size);
  });

  it('trainStep’s lr option sets the rate for that step and after: Δθ = −lr · g (plain SGD)', async () => {
    const rng = new Rng(9);
    const model = tinyModel(9).compile({ optimizer: { type: 'sgd', lr: 0.1 } });
    const { x, y } = batch(rng, 8);
    for (const lr of [0.03, 0]) {
      const p0 = snapshot(model, 'trainable');
      await model.trainStep(x, y, { lr });
      expect(model.learningRate).toBe(lr);
      const g = gradients(model);
      for (const [name, before] of p0) {
        const gi = g.get(name)!;
        expectUpdate(
          name,
          model.getParameter(name),
          map(before.length, (i) => before[i]! - lr * gi[i]!),
          map(before.length, (i) => Math.abs(before[i]!) + lr * Math.abs(gi[i]!)),
        );
      }
    }
  });
});

describe('gradient norm and clipping', () => {
  it('gradNorm is the global L2 norm of the gradients', async () => {
    const rng = new Rng(10);
    const model = tinyModel(10).compile({ optimizer: { type: 'sgd', lr: 0.01 } });
    const { x, y } = batch(rng, 8);
    const r = await model.trainStep(x, y);
    let sq = 0;
    for (const g of gradients(model).values()) for (const v of g) sq += v * v;
    expect(r.gradNorm / Math.sqrt(sq)).toBeCloseTo(1, 5);
  });

  it('clipGradNorm: with a tiny clip, plain SGD moves the weights by exactly lr·clip in global norm', async () => {
    const rng = new Rng(11);
    const lr = 1;
    const clip = 1e-2;
    const model = tinyModel(11).compile({ optimizer: { type: 'sgd', lr }, clipGradNorm: clip });
    const { x, y } = batch(rng, 8);
    const p0 = snapshot(model, 'trainable');
    const r = await model.trainStep(x, y);
    expect(r.gradNorm).toBeGreaterThan(10 * clip); // the reported norm is the one before clipping
    let sq = 0;
    for (const [name, before] of p0) {
      const after = model.getParameter(name);
      for (let i = 0; i < after.length; i++) sq += (after[i]! - before[i]!) ** 2;
    }
    expect(Math.abs(Math.sqrt(sq) / (lr * clip) - 1)).toBeLessThan(1e-3);
    // A clip above the norm changes nothing: ‖Δθ‖ = lr · gradNorm.
    const loose = tinyModel(11).compile({ optimizer: { type: 'sgd', lr: 0.01 }, clipGradNorm: 1e6 });
    const q0 = snapshot(loose, 'trainable');
    const r2 = await loose.trainStep(x, y);
    let sq2 = 0;
    for (const [name, before] of q0) {
      const after = loose.getParameter(name);
      for (let i = 0; i < after.length; i++) sq2 += (after[i]! - before[i]!) ** 2;
    }
    expect(Math.abs(Math.sqrt(sq2) / (0.01 * r2.gradNorm) - 1)).toBeLessThan(1e-3);
  });
});

describe('weight decay and parameter groups', () => {
  it('two identical models, weightDecay 0 vs 0.5 (L2, no momentum): 1-D parameters identical, the others differ by lr·wd·p', async () => {
    const rng = new Rng(12);
    const lr = 0.1;
    const wd = 0.5;
    const a = tinyModel(12).compile({ optimizer: { type: 'sgd', lr, weightDecay: 0 } });
    const b = tinyModel(12).compile({ optimizer: { type: 'sgd', lr, weightDecay: wd } });
    const p0 = snapshot(a, 'trainable');
    const { x, y } = batch(rng, 8);
    await a.trainStep(x, y);
    await b.trainStep(x, y);
    let multi = 0;
    for (const p of a.parameterInfo()) {
      if (!p.trainable) continue;
      const va = a.getParameter(p.name);
      const vb = b.getParameter(p.name);
      if (p.shape.length === 1) {
        expect(sameValues(va, vb), p.name).toBe(true);
      } else {
        multi++;
        const before = p0.get(p.name)!;
        expectUpdate(
          p.name,
          Float32Array.from(va, (v, i) => v - vb[i]!),
          map(va.length, (i) => lr * wd * before[i]!),
          map(va.length, (i) => Math.abs(before[i]!) + Math.abs(va[i]!)),
        );
      }
    }
    expect(multi).toBe(10); // 9 convolutions and the dense layer
  });

  it('L2 decay follows p ← p − lr·(g + wd·p) with wd = 0 on biases and BN parameters', async () => {
    const rng = new Rng(13);
    const lr = 0.1;
    const wd = 0.3;
    const model = tinyModel(13).compile({ optimizer: { type: 'sgd', lr, weightDecay: wd } });
    const { x, y } = batch(rng, 8);
    const p0 = snapshot(model, 'trainable');
    await model.trainStep(x, y);
    const g = gradients(model);
    for (const p of model.parameterInfo()) {
      if (!p.trainable) continue;
      const before = p0.get(p.name)!;
      const gi = g.get(p.name)!;
      const d = p.shape.length === 1 ? 0 : wd;
      expectUpdate(
        p.name,
        model.getParameter(p.name),
        map(before.length, (i) => before[i]! - lr * (gi[i]! + d * before[i]!)),
        map(before.length, (i) => Math.abs(before[i]!) + lr * Math.abs(gi[i]!)),
      );
    }
  });

  it('decayNormAndBias: true decays 1-D parameters too; paramGroups override decay and scale the rate', async () => {
    const rng = new Rng(14);
    const lr = 0.1;
    const wd = 0.3;
    const { x, y } = batch(rng, 8);
    const model = tinyModel(14).compile({
      optimizer: { type: 'sgd', lr, weightDecay: wd },
      decayNormAndBias: true,
      paramGroups: [
        { match: /^fc\./, weightDecay: 0, lrScale: 0 },
        { match: ['conv1.weight'], weightDecay: 2 },
        { match: (p) => p.layer === 'bn1', lrScale: 0.5 },
      ],
    });
    const p0 = snapshot(model, 'trainable');
    await model.trainStep(x, y);
    const g = gradients(model);
    for (const p of model.parameterInfo()) {
      if (!p.trainable) continue;
      const before = p0.get(p.name)!;
      const gi = g.get(p.name)!;
      let d = wd;
      let scale = 1;
      if (p.name.startsWith('fc.')) [d, scale] = [0, 0];
      else if (p.name === 'conv1.weight') d = 2;
      else if (p.layer === 'bn1') scale = 0.5;
      expectUpdate(
        p.name,
        model.getParameter(p.name),
        map(before.length, (i) => before[i]! - lr * scale * (gi[i]! + d * before[i]!)),
        map(before.length, (i) => Math.abs(before[i]!) + lr * Math.abs(gi[i]!)),
      );
    }
    expect(sameValues(model.getParameter('fc.weight'), p0.get('fc.weight')!)).toBe(true);
  });

  it('SGD momentum: L2 decay enters the momentum buffer, decoupled decay shrinks the weights directly (two steps)', async () => {
    const lr = 0.1;
    const wd = 0.2;
    const mu = 0.9;
    const results: Snapshot[] = [];
    for (const decoupled of [false, true]) {
      const rng = new Rng(15);
      const model = tinyModel(15).compile({ optimizer: { type: 'sgd', lr, momentum: mu, weightDecay: wd, decoupledWeightDecay: decoupled } });
      const info = model.parameterInfo().filter((p) => p.trainable);
      const buf = new Map<string, Float64Array>();
      for (let step = 1; step <= 2; step++) {
        const { x, y } = batch(rng, 8);
        const p0 = snapshot(model, 'trainable');
        await model.trainStep(x, y);
        const g = gradients(model);
        for (const p of info) {
          const before = p0.get(p.name)!;
          const gi = g.get(p.name)!;
          const d = p.shape.length === 1 ? 0 : wd;
          const prev = buf.get(p.name);
          // PyTorch SGD: the buffer starts as the first (L2-augmented) gradient, no dampening.
          const b = map(before.length, (i) => (prev ? mu * prev[i]! : 0) + gi[i]! + (decoupled ? 0 : d * before[i]!));
          buf.set(p.name, b);
          const shrink = decoupled ? 1 - lr * d : 1;
          expectUpdate(
            `${decoupled ? 'decoupled' : 'L2'} step ${step} ${p.name}`,
            model.getParameter(p.name),
            map(before.length, (i) => before[i]! * shrink - lr * b[i]!),
            map(before.length, (i) => Math.abs(before[i]!) + lr * (Math.abs(b[i]!) + Math.abs(gi[i]!))),
          );
        }
      }
      results.push(snapshot(model, 'trainable'));
    }
    // Same data, same first step; the second steps differ by lr·μ·wd·p0 on decayed parameters.
    expect(changed(results[0]!, results[1]!)).toContain('conv1.weight');
  });

  it('Nesterov momentum: p ← p − lr·(g + μ·b)', async () => {
    const rng = new Rng(16);
    const lr = 0.05;
    const mu = 0.9;
    const model = tinyModel(16).compile({ optimizer: { type: 'sgd', lr, momentum: mu, nesterov: true } });
    const buf = new Map<string, Float64Array>();
    for (let step = 1; step <= 2; step++) {
      const { x, y } = batch(rng, 8);
      const p0 = snapshot(model, 'trainable');
      await model.trainStep(x, y);
      const g = gradients(model);
      for (const [name, before] of p0) {
        const gi = g.get(name)!;
        const prev = buf.get(name);
        const b = map(before.length, (i) => (prev ? mu * prev[i]! : 0) + gi[i]!);
        buf.set(name, b);
        expectUpdate(
          `step ${step} ${name}`,
          model.getParameter(name),
          map(before.length, (i) => before[i]! - lr * (gi[i]! + mu * b[i]!)),
          map(before.length, (i) => Math.abs(before[i]!) + lr * (Math.abs(b[i]!) + Math.abs(gi[i]!))),
        );
      }
    }
  });

  it('AdamW: bias-corrected moments and decoupled decay (default 0.01, none on 1-D parameters), two steps', async () => {
    const rng = new Rng(17);
    const lr = 1e-3;
    const [b1, b2, eps, wd] = [0.9, 0.999, 1e-8, 0.01];
    const model = tinyModel(17).compile({ optimizer: { type: 'adamw', lr } });
    const m = new Map<string, Float64Array>();
    const v = new Map<string, Float64Array>();
    const info = model.parameterInfo().filter((p) => p.trainable);
    for (let step = 1; step <= 2; step++) {
      const { x, y } = batch(rng, 8);
      const p0 = snapshot(model, 'trainable');
      await model.trainStep(x, y);
      const g = gradients(model);
      for (const p of info) {
        const before = p0.get(p.name)!;
        const gi = g.get(p.name)!;
        const d = p.shape.length === 1 ? 0 : wd;
        const mp = m.get(p.name);
        const vp = v.get(p.name);
        const mn = map(before.length, (i) => b1 * (mp ? mp[i]! : 0) + (1 - b1) * gi[i]!);
        const vn = map(before.length, (i) => b2 * (vp ? vp[i]! : 0) + (1 - b2) * gi[i]! ** 2);
        m.set(p.name, mn);
        v.set(p.name, vn);
        const c1 = 1 - b1 ** step;
        const c2 = 1 - b2 ** step;
        expectUpdate(
          `step ${step} ${p.name}`,
          model.getParameter(p.name),
          map(before.length, (i) => before[i]! * (1 - lr * d) - (lr * (mn[i]! / c1)) / (Math.sqrt(vn[i]! / c2) + eps)),
          // |m̂ / (√v̂ + eps)| ≤ ~3 here; its float32 evaluation is good to ~1e-6 relative.
          map(before.length, (i) => Math.abs(before[i]!) + 10 * lr),
        );
      }
    }
  });
});

describe('loss', () => {
  /** A model whose logits are exactly `bias` for every image: fc.weight = 0, fc.bias = bias. */
  function constantLogits(seed: number, bias: number[], compileOptions: Parameters<Model['compile']>[0]): Model {
    const model = tinyModel(seed).compile(compileOptions);
    const fcIn = model.parameterInfo().find((p) => p.name === 'fc.weight')!.shape[0]!;
    model.setParameter('fc.weight', new Float32Array(fcIn * CLASSES));
    model.setParameter('fc.bias', Float32Array.from(bias));
    return model;
  }

  const BIAS = [0.5, -1, 2, 0.3, -0.2, 1.1, 0, -2.5, 0.8, 1.9];

  /** Softmax cross-entropy against (1 − s)·onehot + s/K, and its gradient in the bias, averaged over labels. */
  function closedForm(bias: number[], labels: Int32Array, s: number): { loss: number; accuracy: number; dBias: number[] } {
    const K = bias.length;
    const lse = logSumExp(bias);
    const meanLogit = bias.reduce((a, b) => a + b, 0) / K;
    const p = bias.map((b) => Math.exp(b - lse));
    let loss = 0;
    let hits = 0;
    const dBias = new Array<number>(K).fill(0);
    for (const y of labels) {
      loss += lse - (1 - s) * bias[y]! - s * meanLogit;
      hits += argmax(bias) === y ? 1 : 0;
      for (let k = 0; k < K; k++) dBias[k] += (p[k]! - s / K - (k === y ? 1 - s : 0)) / labels.length;
    }
    return { loss: loss / labels.length, accuracy: hits / labels.length, dBias };
  }

  it('labelSmoothing: the loss and the bias gradient match the closed form; evaluate() ignores smoothing', async () => {
    const rng = new Rng(18);
    const { x } = batch(rng, 8);
    const y = Int32Array.from([2, 0, 9, 2, 7, 2, 5, 1]); // argmax of BIAS is 2: accuracy 3/8
    for (const s of [0, 0.1, 0.3]) {
      const model = constantLogits(18, BIAS, { optimizer: { type: 'sgd', lr: 0 }, labelSmoothing: s });
      const want = closedForm(BIAS, y, s);
      expect(want.accuracy).toBe(3 / 8);
      const r = await model.trainStep(x, y);
      expect(r.loss).toBeCloseTo(want.loss, 6);
      expect(r.accuracy).toBe(want.accuracy);
      const dBias = model.getGradient('fc.bias');
      want.dBias.forEach((d, k) => expect(dBias[k]).toBeCloseTo(d, 6));
      // computeGradients takes its own smoothing.
      const c = await model.computeGradients(x, y, { labelSmoothing: 0.2 });
      expect(c.loss).toBeCloseTo(closedForm(BIAS, y, 0.2).loss, 6);
      // evaluate is the plain cross-entropy.
      const e = await model.evaluate(x, y);
      expect(e.loss).toBeCloseTo(closedForm(BIAS, y, 0).loss, 6);
      expect(e.accuracy).toBe(3 / 8);
    }
    // Smoothing changes the loss by s·(mean over labels of logit_y − mean logit): not a no-op.
    expect(closedForm(BIAS, y, 0.1).loss - closedForm(BIAS, y, 0).loss).toBeGreaterThan(0.04);
  });

  it('evaluate() agrees with a softmax cross-entropy computed here from predict() logits; softmax: true is the softmax', async () => {
    const rng = new Rng(19);
    const model = tinyModel(19).compile({ optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 } });
    for (let s = 0; s < 3; s++) {
      const b = batch(rng, 16);
      await model.trainStep(b.x, b.y);
    }
    const { x, y } = batch(rng, 16);
    const logits = (await model.predict(x)).toFloat32Array();
    const probs = (await model.predict(x, { softmax: true })).toFloat32Array();
    let loss = 0;
    let hits = 0;
    let hits5 = 0;
    for (let i = 0; i < 16; i++) {
      const row = logits.subarray(i * CLASSES, (i + 1) * CLASSES);
      const lse = logSumExp(row);
      loss += lse - row[y[i]!]!;
      hits += argmax(row) === y[i] ? 1 : 0;
      // Top-5: the label's logit is below at most four others (by sorting here, not by counting).
      const sorted = Array.from(row).sort((a, b) => b - a);
      hits5 += row[y[i]!]! >= sorted[4]! ? 1 : 0;
      for (let k = 0; k < CLASSES; k++) expect(probs[i * CLASSES + k]).toBeCloseTo(Math.exp(row[k]! - lse), 6);
    }
    const e = await model.evaluate(x, y);
    expect(e.loss).toBeCloseTo(loss / 16, 5);
    expect(e.accuracy).toBe(hits / 16);
    expect(e.top5Accuracy).toBe(hits5 / 16);
    expect(hits5).toBeGreaterThan(hits); // the case is not trivial
  });
});

describe('concurrency', () => {
  it('trainStep calls made without await run one after another, in call order, and all resolve', async () => {
    const rng = new Rng(20);
    const batches = [batch(rng, 8), batch(rng, 8), batch(rng, 8)];
    const make = () => tinyModel(20).compile({ optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 } });
    const reference = make();
    const expected: number[] = [];
    for (const b of batches) expected.push((await reference.trainStep(b.x, b.y)).loss);
    const want = snapshot(reference, 'trainable');
    // The order of execution is not observable from one trial when it happens to be right, so
    // repeat: every trial must give the sequential losses and weights.
    const mismatches: string[] = [];
    for (let trial = 0; trial < 80; trial++) {
      const model = make();
      const pending = batches.map((b) => model.trainStep(b.x, b.y));
      const results = await Promise.all(pending);
      const losses = results.map((r) => r.loss);
      if (losses.some((l, i) => l !== expected[i]) || changed(want, snapshot(model, 'trainable')).length > 0) {
        mismatches.push(`trial ${trial}: losses ${losses.map((l) => l.toFixed(6)).join(', ')}`);
      }
    }
    expect(mismatches, `sequential losses ${expected.map((l) => l.toFixed(6)).join(', ')}`).toEqual([]);
  });

  it('setParameter while a step runs throws E_BUSY; after the step it works', async () => {
    const rng = new Rng(21);
    const model = models.resnetCifar({ depth: 8, inputShape: [32, 32, 3], seed: 21 });
    model.compile({ optimizer: { type: 'sgd', lr: 0.01 } });
    const { x, y } = batch(rng, 32, 32);
    await model.trainStep(x, y); // compile the plan, so the next step is only compute
    const values = model.getParameter('fc.bias');
    const step = model.trainStep(x, y);
    const error = busyError(() => model.setParameter('fc.bias', values));
    expect(error).toBeInstanceOf(ResNetError);
    expect(error!.code).toBe('E_BUSY');
    expect(error!.message).toContain('setParameter');
    const r = await step;
    expect(Number.isFinite(r.loss)).toBe(true);
    model.setParameter('fc.bias', values);
    expect(sameValues(model.getParameter('fc.bias'), values)).toBe(true);
    // getParameter too (it would read weights halfway through an update).
    const step2 = model.trainStep(x, y);
    const error2 = busyError(() => model.getParameter('fc.bias'));
    await step2;
    expect(error2?.code).toBe('E_BUSY');
  });
});
