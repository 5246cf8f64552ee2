// API misuse not covered by test/native/errors.test.ts and test/model/model_errors.test.ts: absurd sizes
// whose arithmetic overflows, synchronous calls and dispose() while a step runs, concurrent
// trainStep calls on one model (queued, never interleaved: the weights equal a sequential
// run's bit for bit), tensors disposed under a queued step, and a disposed model.
import { describe, expect, it } from 'vitest';

import { type Dataset, metrics, Model, models, ops, Tensor, Trainer } from '../../lib/index.js';
import { codeOf, expectCode, messageOf } from '../support/expect_error.js';
import { tinySgd } from '../support/models.js';
import { Rng } from '../support/random.js';

describe('absurd sizes (size arithmetic that overflows)', () => {
  it('Tensor.fromArray: dimensions whose product passes 2^53, or each passing 2^31: E_SHAPE', async () => {
    for (const shape of [[2 ** 31, 2 ** 31, 2 ** 31], [2 ** 53, 2], [2 ** 32, 2 ** 32], [Number.MAX_SAFE_INTEGER]]) {
      expect(await codeOf(() => Tensor.fromArray(new Float32Array(4), shape))).toBe('E_SHAPE');
    }
  });

  it('builders: classes, input sizes and widths far too large: E_ARG naming the option', async () => {
    expect(await messageOf(() => models.resnetCifar({ depth: 8, classes: 2 ** 40 }))).toContain('classes');
    expect(await messageOf(() => models.resnetCifar({ depth: 8, inputShape: [2 ** 31, 2 ** 31, 3] }))).toContain('inputShape');
    expect(await messageOf(() => models.resnet18({ classes: Number.POSITIVE_INFINITY }))).toContain('classes');
    expect(
      await messageOf(() => models.resnet({ block: 'basic', stem: 'cifar', classes: 3, inputShape: [8, 8, 3], stages: [{ blocks: 1, width: 2 ** 30 }] })),
    ).toContain('width');
  });

  it('Model.fromSpec: a conv with 2^33 filters or a 2^20 × 2^20 kernel is refused before allocating (E_SHAPE naming the layer)', async () => {
    for (const edit of [
      (l: Record<string, unknown>) => (l.filters = 2 ** 33),
      (l: Record<string, unknown>) => (l.kernelSize = [2 ** 20, 2 ** 20]),
    ]) {
      const spec = structuredClone(models.specs.resnetCifar({ depth: 8 })) as unknown as { layers: Record<string, unknown>[] };
      edit(spec.layers[0]!);
      const message = await messageOf(() => Model.fromSpec(spec as never));
      expect(message).toContain("'conv1'");
      expect(message).toContain('too large');
    }
  });

  it('trainStep / predict with images the model cannot take: E_SHAPE, and the model still works', async () => {
    const model = tinySgd();
    const x = Tensor.fromArray(new Float32Array(1 * 1024 * 1024 * 3), [1, 1024, 1024, 3]);
    expect(await codeOf(() => model.predict(x))).toBe('E_SHAPE');
    x.dispose();
    const ok = Tensor.fromArray(new Float32Array(2 * 8 * 8 * 3).fill(0.5), [2, 8, 8, 3]);
    expect((await model.predict(ok)).shape).toEqual([2, 4]);
    ok.dispose();
    model.dispose();
  });
});

describe('concurrent use of one model', () => {
  it('trainStep calls issued together are queued: the weights equal a sequential run bit for bit', async () => {
    const rng = new Rng(3);
    const batches = Array.from({ length: 5 }, () => ({ x: Tensor.fromArray(rng.array(4 * 8 * 8 * 3), [4, 8, 8, 3]), y: rng.labels(4, 4) }));
    const together = tinySgd(7);
    const sequential = tinySgd(7);
    const concurrent = await Promise.all(batches.map((b) => together.trainStep(b.x, b.y)));
    const oneByOne = [];
    for (const b of batches) oneByOne.push(await sequential.trainStep(b.x, b.y));
    expect(concurrent.map((r) => r.loss)).toEqual(oneByOne.map((r) => r.loss));
    const a = together.parameters();
    const b = sequential.parameters();
    for (let i = 0; i < a.length; i++) expect(a[i]!.values, a[i]!.name).toEqual(b[i]!.values);
    for (const batch of batches) batch.x.dispose();
    together.dispose();
    sequential.dispose();
  });

  it('synchronous calls while a step runs: E_BUSY naming the call, nothing changed; the step completes', async () => {
    const model = tinySgd();
    const x = Tensor.fromArray(new Float32Array(2 * 8 * 8 * 3).fill(0.5), [2, 8, 8, 3]);
    const before = model.getParameter('conv1.weight');
    const step = model.trainStep(x, Int32Array.from([0, 1]));
    for (const [name, call] of [
      ['getParameter', () => model.getParameter('conv1.weight')],
      ['setParameter', () => model.setParameter('conv1.weight', new Float32Array(before.length))],
      ['setLearningRate', () => model.setLearningRate(1)],
      ['compile', () => model.compile({ optimizer: { type: 'adamw', lr: 1 } })],
    ] as const) {
      const err = await codeOf(call);
      expect(err, name).toBe('E_BUSY');
      expect(await messageOf(call)).toContain(name);
    }
    const r = await step;
    expect(Number.isFinite(r.loss)).toBe(true);
    expect(model.learningRate).toBe(0.05);
    expect(model.getParameter('conv1.weight')).not.toEqual(new Float32Array(before.length));
    x.dispose();
    model.dispose();
  });

  it('dispose() during a step: the step completes, later calls are E_DISPOSED', async () => {
    const model = tinySgd();
    const x = Tensor.fromArray(new Float32Array(2 * 8 * 8 * 3).fill(0.5), [2, 8, 8, 3]);
    const step = model.trainStep(x, Int32Array.from([0, 1]));
    model.dispose();
    expect(Number.isFinite((await step).loss)).toBe(true);
    expect(model.isDisposed).toBe(true);
    for (const call of [
      () => model.trainStep(x, Int32Array.from([0, 1])),
      () => model.predict(x),
      () => model.evaluate(x, Int32Array.from([0, 1])),
      () => model.computeGradients(x, Int32Array.from([0, 1])),
      () => model.getParameter('conv1.weight'),
      () => model.summary(),
      () => model.save('never-written.safetensors'),
    ]) {
      expect(await codeOf(call)).toBe('E_DISPOSED');
    }
    model.dispose(); // idempotent
    x.dispose();
  });

  it('images disposed while their step is in flight or queued: the running step completes, the queued one is E_DISPOSED', async () => {
    const model = tinySgd();
    const x = Tensor.fromArray(new Float32Array(2 * 8 * 8 * 3).fill(0.5), [2, 8, 8, 3]);
    const running = model.trainStep(x, Int32Array.from([0, 1]));
    const queued = model.trainStep(x, Int32Array.from([0, 1]));
    x.dispose();
    expect(Number.isFinite((await running).loss)).toBe(true);
    expect(await codeOf(() => queued)).toBe('E_DISPOSED');
    model.dispose();
  });
});

describe('values that went wrong quietly, or as a TypeError / RangeError', () => {
  const forged = () => Object.create(Tensor.prototype) as Tensor;
  const dataset = (length: number): Dataset => ({ length, imageShape: [8, 8, 3], classes: 4, fill: (_i, _x, y) => void y.fill(1) });

  it('Tensor.fromArray / setParameter with an element that is not a number: E_DTYPE naming its index (not NaN)', async () => {
    await expectCode(() => Tensor.fromArray(['a', null, true, '7'] as never, [4]), 'E_DTYPE', 'data[0]', 'string');
    await expectCode(() => Tensor.fromArray([1, 2, null, 4] as never, [4]), 'E_DTYPE', 'data[2]', 'null');
    // eslint-disable-next-line no-sparse-arrays
    await expectCode(() => Tensor.fromArray([1, , 3] as never, [3]), 'E_DTYPE', 'data[1]', 'undefined');
    expect(Array.from(Tensor.fromArray([1, Number.NaN, -0], [3]).toFloat32Array())).toEqual([1, Number.NaN, -0]); // numbers stay numbers
    const model = tinySgd();
    await expectCode(() => model.setParameter('fc.bias', ['0', 0, 0, 0] as never), 'E_DTYPE', 'values[0]');
    model.dispose();
  });

  it('sizes no typed array can hold: Tensor.fill is E_ALLOC, a Trainer.fit dataset or batch past the limits is E_ARG / E_ALLOC, naming the size', async () => {
    await expectCode(() => Tensor.fill([2 ** 33]), 'E_ALLOC', '8589934592');
    await expectCode(() => Tensor.zeros([2 ** 17, 2 ** 17]), 'E_ALLOC', '17179869184');
    const model = tinySgd();
    const trainer = new Trainer(model, { verbose: false });
    await expectCode(() => trainer.fit(dataset(1e12), { epochs: 1, batchSize: 2 }), 'E_ARG', 'train.length', '1000000000000');
    await expectCode(() => trainer.fit(dataset(2 ** 30), { epochs: 1, batchSize: 2 ** 30 }), 'E_ALLOC', 'batch of 1073741824');
    // A batch larger than the whole set (dropLast: false) is one batch of every example, not a huge buffer.
    expect((await trainer.fit(dataset(4), { epochs: 1, batchSize: 2 ** 30, dropLast: false })).length).toBe(1);
    model.dispose();
  });

  it('a forged tensor (Object.create(Tensor.prototype)) in every op, model call and Tensor member: E_ARG "not a real Tensor"', async () => {
    for (const [name, op] of Object.entries(ops)) {
      const f = forged();
      await expectCode(() => (op as (...a: unknown[]) => unknown)(f, f, f, f, f, f, f), 'E_ARG', 'not a real Tensor').catch((err: Error) => {
        throw new Error(`ops.${name}: ${err.message}`);
      });
    }
    const model = tinySgd();
    const y = Int32Array.from([0, 1]);
    for (const call of [() => model.predict(forged()), () => model.trainStep(forged(), y), () => model.evaluate(forged(), y), () => model.computeGradients(forged(), y)]) {
      await expectCode(call, 'E_ARG', 'images', 'not a real Tensor');
    }
    model.dispose();
    const t = forged();
    for (const member of ['shape', 'size', 'rank', 'device', 'dtype', 'isDisposed', 'handle'] as const) {
      await expectCode(() => t[member], 'E_ARG', `Tensor.${member}`, 'not a real Tensor');
    }
    await expectCode(() => t.to('cpu'), 'E_ARG', 'Tensor.to');
    await expectCode(() => t.toFloat32Array(), 'E_ARG', 'Tensor.toFloat32Array');
    await expectCode(() => t.dispose(), 'E_ARG', 'Tensor.dispose');
    expect(String(t)).toBe('Tensor(not a real tensor)');
    expect(Tensor.isTensor(t)).toBe(false);
    expect(Tensor.isTensor(Tensor.zeros([1]))).toBe(true);
  });

  it('labels given as numbers: past 2^31, negative, fractional or NaN is E_ARG naming the index and value (2^32 + 1 no longer wraps to 1)', async () => {
    const logits = Tensor.fromArray([1, 2, 3, 4, 4, 3, 2, 1], [2, 4]);
    for (const [bad, value] of [[2 ** 32 + 1, '4294967297'], [2 ** 31, '2147483648'], [-1, '-1'], [1.5, '1.5'], [Number.NaN, 'NaN']] as const) {
      await expectCode(() => ops.softmaxCrossEntropy(logits, [0, bad]), 'E_ARG', 'index 1', value);
      await expectCode(() => ops.softmaxCrossEntropyBackward(logits, [0, bad]), 'E_ARG', 'index 1', value);
    }
    logits.dispose();
  });

  it('metrics with a label outside the classes or too few logits: E_ARG / E_SHAPE (not NaN or another row\'s logits)', async () => {
    const logits = new Float32Array([1, 2, 3, 4, 4, 3, 2, 1]);
    await expectCode(() => metrics.crossEntropySum(logits, 4, [0, 7], 2), 'E_ARG', 'label 7 at index 1', '[0, 4)');
    await expectCode(() => metrics.topKCorrect(logits, 4, [0, -1], 2, 1), 'E_ARG', 'label -1 at index 1');
    await expectCode(() => metrics.crossEntropySum(logits, 4, [0, 1, 2], 3), 'E_SHAPE', '8 values', '12');
    await expectCode(() => metrics.topK(logits, 4, 5, 2), 'E_ARG', 'row');
    expect(metrics.topKCorrect(logits, 4, [3, 0], 2, 1)).toBe(2);
  });

  it('summary / layers for an input of the wrong channel count: E_SHAPE as predict (not a table)', async () => {
    const model = tinySgd();
    await expectCode(() => model.summary([8, 8, 4]), 'E_SHAPE', 'summary', '[height, width, 3]', '[8, 8, 4]');
    await expectCode(() => model.layers([8, 8]), 'E_SHAPE', 'layers', '[8, 8]');
    await expectCode(() => model.summary([8, 8, 0]), 'E_SHAPE');
    await expectCode(() => model.predict(Tensor.zeros([1, 8, 8, 4])), 'E_SHAPE', '[batch, height, width, 3]');
    expect(model.summary([8, 8, 3])).toContain('Total params');
    model.dispose();
  });
});
