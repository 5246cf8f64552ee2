// An optimizer update is all or nothing: when finite gradients would still make a weight or its
// optimizer state non-finite (an update that overflows, AdamW's eps = 0 over a zero second
// moment), trainStep fails with E_NAN naming the parameter, and the weights, the optimizer
// state, the batch-norm running statistics and the step count are bitwise what they were
// (native/core/optimizer.cpp, Backend::sgd_update_all). Never a success report over NaN weights.
import { describe, expect, it } from 'vitest';

import { type Model, models, Tensor } from '../../lib/index.js';
import { resolveCompileOptions } from '../../lib/train/optimizers.js';
import { expectCode } from '../support/expect_error.js';

const images = () =>
  Tensor.fromArray(
    Float32Array.from({ length: 2 * 8 * 8 * 3 }, (_, i) => ((i * 7) % 13) / 13 - 0.5),
    [2, 8, 8, 3],
  );
const labels = Int32Array.from([1, 3]);

// Everything a refused step must leave as it was: parameters (running statistics included),
// every optimizer slot, and the step count.
function state(model: Model): { params: Map<string, Float32Array>; slots: Map<string, Float32Array>; steps: number } {
  const info = model.network.optimizerStateInfo();
  const params = new Map<string, Float32Array>();
  const slots = new Map<string, Float32Array>();
  for (const p of model.parameters()) {
    params.set(p.name, p.values);
    if (!p.trainable) continue;
    for (let s = 0; s < info.slots; s++) slots.set(`${s}.${p.name}`, model.network.getOptimizerState(p.name, s));
  }
  return { params, slots, steps: info.steps };
}

function expectUnchanged(model: Model, before: ReturnType<typeof state>): void {
  const after = state(model);
  expect(after.steps).toBe(before.steps);
  // Bitwise: compare the bytes, so -0 / +0 and NaN payloads count too.
  const bytes = (m: Map<string, Float32Array>) => [...m].map(([k, v]) => [k, Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')]);
  expect(bytes(after.params)).toEqual(bytes(before.params));
  expect(bytes(after.slots)).toEqual(bytes(before.slots));
}

const allFinite = (model: Model) => model.parameters().every((p) => p.values.every(Number.isFinite));

describe('an update that would make weights non-finite is refused, writing nothing', () => {
  it('AdamW with eps = 0 (reaching the native side directly): E_NAN naming the parameter, weights, moments and step count unchanged, twice', async () => {
    // zeroInitResidual: each residual branch's last batch-norm scale is 0, so the convolution
    // before it gets exactly zero gradients, and eps = 0 makes its update 0 / 0.
    const model = models.resnetCifar({ depth: 8, inputShape: [8, 8, 3], classes: 4, seed: 3, zeroInitResidual: true });
    model.compile({ optimizer: { type: 'adamw', lr: 1e-3 } });
    // lib refuses eps = 0; the native optimizer must not trust that.
    const { config } = resolveCompileOptions({ optimizer: { type: 'adamw', lr: 1e-3 } }, model.network.parameterTable());
    model.network.setOptimizer({ ...config, eps: 0 }, 0);
    const x = images();
    const before = state(model);
    for (let attempt = 0; attempt < 2; attempt++) {
      const err = await expectCode(
        () => model.trainStep(x, labels),
        'E_NAN',
        'the AdamW update of',
        'non-finite',
        'the weights were left unchanged',
        'eps',
      );
      expect(err.message).toMatch(/update of 'layer\d\.\d\.conv\d\.weight'/);
      expectUnchanged(model, before);
    }
    expect(allFinite(model)).toBe(true);
    // Sane settings train on from the same weights.
    model.compile({ optimizer: { type: 'adamw', lr: 1e-3 } });
    const m = await model.trainStep(x, labels);
    expect(Number.isFinite(m.loss)).toBe(true);
    expect(allFinite(model)).toBe(true);
    x.dispose();
    model.dispose();
  });

  it('SGD whose update overflows float32 from finite gradients (lr 1e6 · weight decay 1e6 · a bias of 1e30): E_NAN naming it; weights, momentum, running statistics and step count unchanged', async () => {
    const model = models.resnetCifar({ depth: 8, inputShape: [8, 8, 3], classes: 4, seed: 5 });
    const x = images();
    // One ordinary step first (a learning rate too small for the decay to matter), so the
    // momentum buffers, the running statistics and the step count hold values.
    model.compile({ optimizer: { type: 'sgd', lr: 1e-9, momentum: 0.9, weightDecay: 1e6 }, decayNormAndBias: true });
    await model.trainStep(x, labels);
    // Equal biases of 1e30 leave the softmax (hence the loss and the gradients) finite, while
    // the L2-decayed update lr · wd · p = 1e6 · 1e6 · 1e30 overflows.
    model.setParameter('fc.bias', new Float32Array(4).fill(1e30));
    model.setLearningRate(1e6);
    const before = state(model);
    expect(before.steps).toBe(1);
    const err = await expectCode(() => model.trainStep(x, labels), 'E_NAN', "the SGD update of 'fc.bias'", 'the weights were left unchanged');
    expect(err.message).toContain('Lower the learning rate');
    expectUnchanged(model, before);
    expect(allFinite(model)).toBe(true);
    x.dispose();
    model.dispose();
  });
});

describe('batch statistics that overflow are refused before anything is updated', () => {
  // Inputs of ±1e20: the first convolution's outputs are finite, their batch variance (~1e40) is
  // not; batch-norm then normalises the channel to 0, so the loss stays finite and only the
  // running variance would show it (inf, quietly, on today's code).
  const huge = () =>
    Tensor.fromArray(
      Float32Array.from({ length: 2 * 8 * 8 * 3 }, (_, i) => (i % 2 ? 1e20 : -1e20)),
      [2, 8, 8, 3],
    );

  it('trainStep: E_NAN naming the batch-norm; weights, running statistics, momentum and step count unchanged', async () => {
    const model = models.resnetCifar({ depth: 8, inputShape: [8, 8, 3], classes: 4, seed: 5 });
    model.compile({ optimizer: { type: 'sgd', lr: 0.01, momentum: 0.9 } });
    const ok = images();
    await model.trainStep(ok, labels);
    const before = state(model);
    const x = huge();
    await expectCode(() => model.trainStep(x, labels), 'E_NAN', "batch-norm 'bn1'", 'not finite', 'left unchanged');
    expectUnchanged(model, before);
    expect(allFinite(model)).toBe(true);
    // The same model trains on from there.
    expect(Number.isFinite((await model.trainStep(ok, labels)).loss)).toBe(true);
    for (const t of [x, ok]) t.dispose();
    model.dispose();
  });

  it('computeGradients: E_NAN, running statistics unchanged', async () => {
    const model = models.resnetCifar({ depth: 8, inputShape: [8, 8, 3], classes: 4, seed: 5 });
    const values = () => new Map(model.parameters().map((p) => [p.name, p.values]));
    const before = values();
    const x = huge();
    await expectCode(() => model.computeGradients(x, labels), 'E_NAN', 'batch-norm', 'not finite');
    expect(values()).toEqual(before);
    x.dispose();
    model.dispose();
  });
});
