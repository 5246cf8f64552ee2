// Memory a spec asks for is bounded: a layer whose output is absurd for its input (over 64x
// its elements beyond the channels its weights add — native/core/graph.hpp's
// kMaxActivationGrowth) is refused with E_ALLOC naming the layer and the bytes, before any
// arena exists; and a memoryBudget (Model.fromSpec, the builders, loadModel) bounds every
// plan's arena exactly, E_ALLOC naming the bytes needed and the budget.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { allocationStats, loadModel, Model, type ModelSpec, models, Tensor } from '../../lib/index.js';
import { native } from '../../lib/native.js';
import { expectCode } from '../support/expect_error.js';

const dir = mkdtempSync(join(tmpdir(), 'rn-memory-budget-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// A 4×4 grey image padded by `pad` on every side, pooled, classified: a few parameters, and
// (2·pad + 4)² activations per image.
function padSpec(pad: number): ModelSpec {
  return {
    format: 'resnet-native/model',
    version: 1,
    name: `pad${pad}`,
    inputShape: [4, 4, 1],
    classes: 2,
    layers: [
      { name: 'pad', type: 'zeroPad', inputs: ['input'], padding: [pad, pad, pad, pad] },
      { name: 'pool', type: 'globalAvgPool', inputs: ['pad'] },
      { name: 'fc', type: 'dense', inputs: ['pool'], units: 2, useBias: true },
    ],
    output: 'fc',
  };
}

const image4x4 = () => Tensor.fromArray(Float32Array.from({ length: 16 }, (_, i) => i / 16), [1, 4, 4, 1]);
const MB = 1 << 20;

// zeroPad 5000 around [1, 4, 4, 1]: [1, 10004, 10004, 1] floats from 16.
const PAD_5000_OUTPUT_BYTES = 10004 * 10004 * 4;

describe('activations absurd for their input are refused', () => {
  it('a zeroPad of 5000 around a 4×4 image: E_ALLOC when the model is built, naming the layer and both sizes, nothing allocated', async () => {
    const live = allocationStats().liveBytes;
    const err = await expectCode(() => Model.fromSpec(padSpec(5000), { seed: 1 }), 'E_ALLOC', "zeroPad layer 'pad'", `${PAD_5000_OUTPUT_BYTES} bytes`, 'of 64 bytes', 'memoryBudget');
    expect(err.message).toContain('[1, 10004, 10004, 1]');
    expect(allocationStats().liveBytes - live).toBeLessThan(MB);
  });

  // The other ways to grow without weights to pay for it (pools refuse padding beyond their
  // window already): channels a shortcut adds, a convolution's padding.
  it.each([
    ['zeroPadShortcut', { type: 'zeroPadShortcut', filters: 100_000, strides: [1, 1] }, '[1, 4, 4, 100000]'],
    ['conv2d', { type: 'conv2d', filters: 2, kernelSize: [1, 1], strides: [1, 1], padding: 500, dilations: [1, 1], groups: 1, useBias: false }, '[1, 1004, 1004, 2]'],
  ] as const)('a %s growing a 4×4×2 input to %s: E_ALLOC too', async (type, layer, shape) => {
    const spec = padSpec(0);
    spec.inputShape = [4, 4, 2];
    spec.layers[0] = { name: 'grow', inputs: ['input'], ...layer } as ModelSpec['layers'][number];
    spec.layers[1]!.inputs = ['grow'];
    await expectCode(() => Model.fromSpec(spec, { seed: 1 }), 'E_ALLOC', `${type} layer 'grow'`, shape, 'of 128 bytes');
  });

  it('loadModel of such a checkpoint (under 2 KB): E_ALLOC rather than a 400 MB arena, unless a memoryBudget bounds it', async () => {
    const path = join(dir, 'pad5000.safetensors');
    // A budget lets the spec build (it bounds the plans instead), so the file can be written.
    const writer = Model.fromSpec(padSpec(5000), { seed: 1, memoryBudget: MB });
    await writer.save(path);
    writer.dispose();
    expect(statSync(path).size).toBeLessThan(2048);

    await expectCode(() => loadModel(path), 'E_ALLOC', "zeroPad layer 'pad'", `${PAD_5000_OUTPUT_BYTES} bytes`);

    const model = await loadModel(path, { memoryBudget: MB });
    const x = image4x4();
    const live = allocationStats().liveBytes;
    await expectCode(() => model.predict(x), 'E_ALLOC', 'an inference plan for input [1, 4, 4, 1] needs', `over the memory budget of ${MB} bytes`);
    expect(allocationStats().liveBytes - live).toBeLessThan(MB);
    expect(model.stats().plans).toBe(0);
    x.dispose();
    model.dispose();
  });

  it('a model that means its padding runs within the budget it sets', async () => {
    const spec = padSpec(300);  // 604² floats from 16: 22,801x
    await expectCode(() => Model.fromSpec(spec, { seed: 1 }), 'E_ALLOC', "zeroPad layer 'pad'", '22801x');
    const model = Model.fromSpec(spec, { seed: 1, memoryBudget: 8 * MB });
    const x = image4x4();
    const y = await model.predict(x, { softmax: true });
    expect([...y.toFloat32Array()].every(Number.isFinite)).toBe(true);
    expect(model.stats().arenaBytes).toBeLessThanOrEqual(8 * MB);
    expect(model.stats().arenaBytes).toBeGreaterThan(604 * 604 * 4);
    y.dispose();
    x.dispose();
    model.dispose();
  });

  it('standard models pass the rule as built (it is per image, so at any batch): ResNet-18/50/152, wide, ResNeXt, SE, v2, CIFAR option A, a Keras stem', async () => {
    const builds: [string, () => Model][] = [
      ['resnet18', () => models.resnet18({ seed: 1 })],
      ['resnet50', () => models.resnet50({ seed: 1 })],
      ['resnet152', () => models.resnet152({ seed: 1 })],
      ['wideResnet50_2', () => models.wideResnet50_2({ seed: 1 })],
      ['resnext50_32x4d', () => models.resnext50_32x4d({ seed: 1 })],
      ['seResnet50', () => models.seResnet50({ seed: 1 })],
      ['resnet50v2', () => models.resnet50v2({ seed: 1 })],
      ['resnetCifar option A', () => models.resnetCifar({ depth: 20, shortcut: 'zeroPad', seed: 1 })],
    ];
    for (const [name, build] of builds) {
      const model = build();
      expect(model.paramCount(), name).toBeGreaterThan(0);
      model.dispose();
    }
    // The Keras ResNet-34 stem (zero padding 3, then a 'valid' 7×7/2 conv) at a small image runs:
    // its padding grows the input most, relative to the image (14² / 8²).
    const keras = models.resnet({
      stem: [
        { type: 'zeroPad', padding: 3 },
        { type: 'conv2d', filters: 8, kernelSize: 7, strides: 2, padding: 'valid', useBias: true },
        { type: 'batchNorm' },
        { type: 'relu' },
      ],
      stages: [{ blocks: 1, width: 8 }],
      block: 'basic',
      classes: 3,
      inputShape: [8, 8, 3],
      seed: 1,
    });
    const x = Tensor.fromArray(Float32Array.from({ length: 2 * 8 * 8 * 3 }, (_, i) => (i % 7) / 7), [2, 8, 8, 3]);
    (await keras.predict(x)).dispose();
    keras.compile({ optimizer: { type: 'sgd', lr: 0.01 } });
    await keras.trainStep(x, Int32Array.from([0, 2]));
    x.dispose();
    keras.dispose();
  });
});

describe('memoryBudget bounds every plan', () => {
  const build = (memoryBudget?: number) =>
    models.resnetCifar({ depth: 8, inputShape: [8, 8, 3], classes: 4, seed: 1, ...(memoryBudget === undefined ? {} : { memoryBudget }) });
  const images = () => Tensor.fromArray(Float32Array.from({ length: 2 * 8 * 8 * 3 }, (_, i) => (i % 11) / 11), [2, 8, 8, 3]);
  const labels = Int32Array.from([1, 3]);

  it('exactly: a budget equal to the arena plans, one byte less is E_ALLOC naming both; training plans too', async () => {
    // The arenas without a budget.
    const free = build();
    const x = images();
    (await free.predict(x)).dispose();
    const inference = free.stats().arenaBytes;
    free.compile({ optimizer: { type: 'sgd', lr: 0.01 } });
    await free.trainStep(x, labels);
    const training = free.stats().arenaBytes - inference;
    expect(training).toBeGreaterThan(inference);
    free.dispose();

    const tight = build(inference - 1);
    await expectCode(() => tight.predict(x), 'E_ALLOC', `needs ${inference} bytes`, `memory budget of ${inference - 1} bytes`, 'memoryBudget');
    tight.dispose();

    const exact = build(inference);
    (await exact.predict(x)).dispose();
    expect(exact.stats().arenaBytes).toBe(inference);
    exact.compile({ optimizer: { type: 'sgd', lr: 0.01 } });
    const before = exact.getParameter('conv1.weight');
    await expectCode(() => exact.trainStep(x, labels), 'E_ALLOC', `a training plan for input [2, 8, 8, 3] needs ${training} bytes`, `memory budget of ${inference} bytes`);
    expect(exact.getParameter('conv1.weight')).toEqual(before);
    // The model is still usable for what fits.
    (await exact.predict(x)).dispose();
    exact.dispose();

    const roomy = build(training);
    roomy.compile({ optimizer: { type: 'sgd', lr: 0.01 } });
    await roomy.trainStep(x, labels);
    roomy.dispose();
    x.dispose();
  });

  it('must be a positive whole number of bytes: E_ARG from Model.fromSpec, the builders, loadModel and the native constructor', async () => {
    const path = join(dir, 'cifar8.safetensors');
    const model = build();
    await model.save(path);
    for (const bad of [0, -1, 1.5, Number.NaN, Infinity, '1000000', 2 ** 60]) {
      await expectCode(() => Model.fromSpec(model.toJSON(), { memoryBudget: bad as number }), 'E_ARG', 'memoryBudget');
      await expectCode(() => build(bad as number), 'E_ARG', 'memoryBudget');
      await expectCode(() => loadModel(path, { memoryBudget: bad as number }), 'E_ARG', 'memoryBudget');
    }
    for (const bad of [0, -1, 1.5, '1000000']) {
      await expectCode(() => new native.NativeNetwork(model.toJSON(), { memoryBudget: bad as number }), 'E_ARG', 'memoryBudget');
    }
    model.dispose();
  });
});
