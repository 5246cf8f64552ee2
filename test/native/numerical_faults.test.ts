// Numerical faults: a non-finite loss rejects trainStep with E_NAN naming where it began (the
// input, or the first layer whose output went non-finite, found by Plan::first_nonfinite_layer
// in native/core/plan_diagnose.cpp), leaves the weights unchanged, and stops Trainer.fit with
// E_NAN naming the epoch and step. Never silent training on garbage.
import { describe, expect, it } from 'vitest';

import { type Dataset, Tensor, Trainer } from '../../lib/index.js';
import { tinySgd } from '../support/models.js';
import { Rng } from '../support/random.js';
import { rejection } from '../support/expect_error.js';

const rng = new Rng(11);
const images = () => Tensor.fromArray(rng.array(2 * 8 * 8 * 3), [2, 8, 8, 3]);
const labels = Int32Array.from([0, 3]);

describe('a non-finite loss in trainStep', () => {
  it('from a non-finite input value: E_NAN saying the input already held one; weights unchanged', async () => {
    const model = tinySgd();
    const before = model.getParameter('conv1.weight');
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const data = rng.array(2 * 8 * 8 * 3);
      data[77] = bad;
      const x = Tensor.fromArray(data, [2, 8, 8, 3]);
      const err = await rejection(() => model.trainStep(x, labels));
      expect(err.code, err.message).toBe('E_NAN');
      expect(err.message).toContain('the input images already hold a non-finite value');
      x.dispose();
    }
    expect(model.getParameter('conv1.weight')).toEqual(before);
    model.dispose();
  });

  it.each(['layer1.0.conv2', 'layer2.0.conv1', 'conv1'])(
    'from weights that overflow in %s: E_NAN naming that layer (the first non-finite output), not a later one',
    async (layer) => {
      const model = tinySgd();
      const name = `${layer}.weight`;
      // Finite weights whose products overflow float32 (3e38 · a sum over the kernel).
      model.setParameter(name, model.getParameter(name).map((_, i) => (i % 2 ? 3e38 : -3e38)));
      const snapshot = model.parameters().map((p) => p.values);
      const x = images();
      const err = await rejection(() => model.trainStep(x, labels));
      expect(err.code, err.message).toBe('E_NAN');
      expect(err.message).toContain(`the first layer whose output went non-finite is '${layer}' (conv2d)`);
      expect(err.message).toContain('weights were left unchanged');
      expect(model.parameters().map((p) => p.values)).toEqual(snapshot);
      x.dispose();
      model.dispose();
    },
  );

  it('a finite run names no layer: the diagnosis is only made on failure, and training goes on after one', async () => {
    const model = tinySgd();
    const x = images();
    const bad = Tensor.fromArray(new Float32Array(2 * 8 * 8 * 3).fill(Number.NaN), [2, 8, 8, 3]);
    await rejection(() => model.trainStep(bad, labels));
    const r = await model.trainStep(x, labels);
    expect(Number.isFinite(r.loss)).toBe(true);
    x.dispose();
    bad.dispose();
    model.dispose();
  });
});

describe('Trainer.fit and a non-finite loss', () => {
  it('stops with E_NAN naming the epoch, the step and the first non-finite layer; no later step runs', async () => {
    const model = tinySgd();
    // 24 examples, batch 8: the poisoned example 19 is in the third batch of the first epoch
    // (no shuffling), so steps 1 and 2 train and step 3 fails.
    const dataset: Dataset = {
      length: 24,
      imageShape: [8, 8, 3],
      classes: 4,
      fill(indices, out, ys) {
        for (let i = 0; i < indices.length; i++) {
          const k = indices[i]!;
          for (let p = 0; p < 192; p++) out[i * 192 + p] = k === 19 ? Number.POSITIVE_INFINITY : ((k * 31 + p * 7) % 17) / 17;
          ys[i] = k % 4;
        }
      },
    };
    let batches = 0;
    const err = await rejection(() =>
      new Trainer(model).fit(dataset, {
        epochs: 3,
        batchSize: 8,
        shuffle: false,
        augment: false,
        progress: 'none',
        callbacks: [{ onBatchEnd: () => void batches++ }],
      }),
    );
    expect(err.code, err.message).toBe('E_NAN');
    expect(err.message).toContain('epoch 1, step 3 of 3');
    expect(err.message).toContain('the input images already hold a non-finite value');
    expect(batches).toBe(2);
    model.dispose();
  });

  it('names the layer when finite inputs overflow inside the network', async () => {
    const model = tinySgd();
    model.setParameter('layer1.0.conv1.weight', model.getParameter('layer1.0.conv1.weight').fill(3e38));
    const dataset: Dataset = {
      length: 8,
      imageShape: [8, 8, 3],
      classes: 4,
      fill(indices, out, ys) {
        for (let i = 0; i < indices.length; i++) {
          for (let p = 0; p < 192; p++) out[i * 192 + p] = 0.25 + (p % 5) / 10;
          ys[i] = indices[i]! % 4;
        }
      },
    };
    const err = await rejection(() => new Trainer(model).fit(dataset, { epochs: 1, batchSize: 4, augment: false, progress: 'none' }));
    expect(err.code, err.message).toBe('E_NAN');
    expect(err.message).toMatch(/epoch 1, step 1 of 2 \(global step 1\)/);
    expect(err.message).toContain("'layer1.0.conv1' (conv2d)");
    model.dispose();
  });
});
