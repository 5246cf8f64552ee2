// model.replaceHead: a new model whose classifier has the requested classes, freshly initialised
// (the native initialiser's values for that seed), with every other parameter and batch-norm
// statistic bit-identical to the old model's, its preprocessing kept and the old model intact.
import { describe, expect, it } from 'vitest';

import { Model, models, type Preprocessing, Tensor } from '../../lib/index.js';
import { expectCodeSync } from '../support/expect_error.js';
import { tinyModel } from '../support/models.js';
import { Rng } from '../support/random.js';

const P: Preprocessing = { imageSize: [8, 8], resizeTo: 9, channelOrder: 'rgb', mean: [0.5, 0.5, 0.5], std: [0.2, 0.2, 0.2] };

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

/** A trained-looking model: one SGD step, so weights and running statistics are not the initial ones. */
async function stepped(model: Model): Promise<Model> {
  const rng = new Rng(5);
  model.compile({ optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 } });
  const x = Tensor.fromArray(rng.array(4 * 8 * 8 * 3), [4, 8, 8, 3]);
  await model.trainStep(x, rng.labels(4, model.classes));
  x.dispose();
  return model;
}

describe('model.replaceHead', () => {
  it('keeps every other parameter bit for bit and gives the head the requested classes', async () => {
    const old = await stepped(tinyModel(1, { classes: 10 }));
    old.preprocessing = P;
    old.classNames = Array.from({ length: 10 }, (_, i) => `c${i}`);
    const before = new Map(old.parameters().map((p) => [p.name, bits(p.values)]));
    const m = old.replaceHead({ classes: 3, classNames: ['x', 'y', 'z'], seed: 7 });

    expect(m).not.toBe(old);
    expect(m.classes).toBe(3);
    expect(m.spec.classes).toBe(3);
    expect(m.classNames).toEqual(['x', 'y', 'z']);
    expect(m.preprocessing).toEqual(P);
    const oldInfo = old.parameterInfo();
    const newInfo = m.parameterInfo();
    expect(newInfo.map((p) => p.name)).toEqual(oldInfo.map((p) => p.name));
    let copied = 0;
    for (const p of newInfo) {
      if (p.name.startsWith('fc.')) continue;
      expect(bits(m.getParameter(p.name)), p.name).toEqual(before.get(p.name));
      copied++;
    }
    expect(copied).toBeGreaterThan(10);
    expect(newInfo.some((p) => p.name.endsWith('.running_var'))).toBe(true);
    const fcIn = oldInfo.find((p) => p.name === 'fc.weight')!.shape[0]!;
    expect(newInfo.find((p) => p.name === 'fc.weight')!.shape).toEqual([fcIn, 3]);
    expect(newInfo.find((p) => p.name === 'fc.bias')!.shape).toEqual([3]);

    // The new head is what the initialiser makes for that seed (an independent model of the same spec).
    const reference = Model.fromSpec(m.spec as never, { seed: 7 });
    expect(bits(m.getParameter('fc.weight'))).toEqual(bits(reference.getParameter('fc.weight')));
    expect(bits(m.getParameter('fc.bias'))).toEqual(bits(reference.getParameter('fc.bias')));
    reference.dispose();
    // Deterministic with a seed; a different seed gives a different head.
    const again = old.replaceHead({ classes: 3, seed: 7 });
    expect(bits(again.getParameter('fc.weight'))).toEqual(bits(m.getParameter('fc.weight')));
    expect(again.classNames).toBeUndefined();
    const other = old.replaceHead({ classes: 3, seed: 8 });
    expect(bits(other.getParameter('fc.weight'))).not.toEqual(bits(m.getParameter('fc.weight')));

    // The old model is untouched and usable; the new one predicts 3 classes and trains.
    for (const p of old.parameters()) expect(bits(p.values), p.name).toEqual(before.get(p.name));
    const x = Tensor.fromArray(new Rng(9).array(2 * 8 * 8 * 3), [2, 8, 8, 3]);
    expect((await old.predict(x)).shape).toEqual([2, 10]);
    expect((await m.predict(x)).shape).toEqual([2, 3]);
    m.compile({ optimizer: { type: 'sgd', lr: 0.1 } });
    const r = await m.trainStep(x, new Int32Array([0, 2]));
    expect(Number.isFinite(r.loss)).toBe(true);
    x.dispose();
    for (const model of [old, m, again, other]) model.dispose();
  });

  it('keeps the mode (eval stays eval) and works on an ImageNet-style ResNet', () => {
    const old = models.resnet18({ inputShape: [32, 32, 3], classes: 1000, seed: 1 });
    old.eval();
    const m = old.replaceHead({ classes: 5, seed: 1 });
    expect(m.training).toBe(false);
    expect(m.parameterInfo().find((p) => p.name === 'fc.weight')!.shape).toEqual([512, 5]);
    expect(bits(m.getParameter('layer4.1.bn2.running_var'))).toEqual(bits(old.getParameter('layer4.1.bn2.running_var')));
    expect(bits(m.getParameter('conv1.weight'))).toEqual(bits(old.getParameter('conv1.weight')));
    old.dispose();
    m.dispose();
  });

  it('bad options: E_ARG; a disposed model: E_DISPOSED', () => {
    const old = tinyModel(1);
    expectCodeSync(() => old.replaceHead({ classes: 0 }), 'E_ARG', 'classes');
    expectCodeSync(() => old.replaceHead({ classes: 2.5 }), 'E_ARG', 'classes');
    expectCodeSync(() => old.replaceHead({ classes: 3, classNames: ['a'] }), 'E_ARG', 'classNames');
    expectCodeSync(() => old.replaceHead({ classes: 3, head: 1 } as never), 'E_ARG', "unknown option 'head'");
    expectCodeSync(() => old.replaceHead(undefined as never), 'E_ARG', 'options');
    old.dispose();
    expectCodeSync(() => old.replaceHead({ classes: 3 }), 'E_DISPOSED');
  });
});
