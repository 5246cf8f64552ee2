// Model.profilePredict: predict's time split over the plan's steps (native/core/plan_profile.cpp).
// The steps must cover the compiled plan, name real layers in order, have shares that sum to 1,
// and leave predict's logits exactly as they are.
import { describe, expect, it } from 'vitest';

import { Tensor } from '../../lib/index.js';
import { expectCode } from '../support/expect_error.js';
import { tinyModel } from '../support/models.js';
import { Rng } from '../support/random.js';

function batch(n: number, side: number, seed: number): Tensor {
  return Tensor.fromArray(new Rng(seed).array(n * side * side * 3), [n, side, side, 3]);
}

describe('profilePredict', () => {
  it('times every plan step once, in layer order, with shares summing to 1 and predict’s logits', async () => {
    const model = tinyModel(3).eval();
    const x = batch(2, 8, 5);
    const expected = await model.predict(x);
    const profile = await model.profilePredict(x, { runs: 3 });
    expect(profile.runs).toBe(3);
    // The steps cover the plan predict compiled for this shape (the most recently used one).
    expect(profile.layers.length).toBe(model.network.stats().planSteps);
    const order = new Map(model.spec.layers.map((l, i) => [l.name, i]));
    let previous = -1;
    for (const step of profile.layers) {
      const index = order.get(step.name);
      expect(index, step.name).toBeDefined();
      expect(index!).toBeGreaterThan(previous);
      previous = index!;
      // The op starts with the named layer's own type; fused ops follow it.
      expect(step.op.split('+')[0]).toBe(model.spec.layers[index!]!.type);
      expect(step.ms).toBeGreaterThanOrEqual(0);
      expect(step.share).toBeGreaterThanOrEqual(0);
    }
    // Every convolution, pool and dense layer runs as a step of its own (never fused away).
    for (const l of model.spec.layers) {
      if (['conv2d', 'dense', 'globalAvgPool', 'maxPool'].includes(l.type)) {
        expect(profile.layers.some((s) => s.name === l.name)).toBe(true);
      }
    }
    expect(profile.layers.find((s) => s.op.startsWith('conv2d'))!.detail).toMatch(/^3x3\/1 3->\d+, 8x8 out$/);
    const shares = profile.layers.reduce((sum, s) => sum + s.share, 0);
    expect(Math.abs(shares - 1)).toBeLessThan(1e-9);
    const stepsMs = profile.layers.reduce((sum, s) => sum + s.ms, 0);
    expect(stepsMs).toBeGreaterThan(0);
    expect(profile.totalMs).toBeGreaterThanOrEqual(stepsMs * (1 - 1e-9));
    expect(profile.logits.shape).toEqual(expected.shape);
    expect(Array.from(profile.logits.toFloat32Array())).toEqual(Array.from(expected.toFloat32Array()));
    // Profiling leaves predict as it was.
    const after = await model.predict(x);
    expect(Array.from(after.toFloat32Array())).toEqual(Array.from(expected.toFloat32Array()));
    for (const t of [x, expected, profile.logits, after]) t.dispose();
    model.dispose();
  });

  it('defaults to 10 runs and works at batch 1', async () => {
    const model = tinyModel(4).eval();
    const x = batch(1, 8, 6);
    const profile = await model.profilePredict(x);
    expect(profile.runs).toBe(10);
    expect(profile.logits.shape).toEqual([1, 10]);
    profile.logits.dispose();
    x.dispose();
    model.dispose();
  });

  it('rejects bad runs, unknown options and bad images with E_ARG / E_SHAPE', async () => {
    const model = tinyModel(5).eval();
    const x = batch(1, 8, 7);
    for (const runs of [0, 1.5, -1, 100001, Number.NaN, '3']) {
      await expectCode(() => model.profilePredict(x, { runs: runs as number }), 'E_ARG', 'profilePredict', 'runs');
    }
    await expectCode(() => model.profilePredict(x, { run: 3 } as never), 'E_ARG', 'profilePredict', 'run');
    await expectCode(() => model.profilePredict('x' as never), 'E_ARG', 'profilePredict');
    const wrong = Tensor.zeros([1, 8, 8, 4]);
    await expectCode(() => model.profilePredict(wrong), 'E_SHAPE', 'profilePredict');
    wrong.dispose();
    x.dispose();
    model.dispose();
  });
});
