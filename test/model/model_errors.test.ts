// Bad input to the Model API, the builders and Model.fromSpec: a ResNetError with the right
// code and a message that names what was wrong — and a model that still trains afterwards.
import { describe, expect, it } from 'vitest';

import { Model, type ModelSpec, models, Tensor } from '../../lib/index.js';
import { Rng } from '../support/random.js';
import { expectCode, rejection } from '../support/expect_error.js';

const rng = new Rng(404);
const images = (n: number, h = 8, w = 8, c = 3) => Tensor.fromArray(rng.array(n * h * w * c), [n, h, w, c]);
const labels = (...v: number[]) => Int32Array.from(v);

describe('one model through every kind of bad call', () => {
  // resnetCifar depth 8 on 8×8: stem, three stages (8 → 4 → 2), AveragePooling2D(2), flatten, dense 'fc' (64 → 10).
  const model = models.resnetCifar({ depth: 8, inputShape: [8, 8, 3], seed: 5 });
  const x = images(4);
  const y = labels(1, 2, 3, 4);
  let trainable: Map<string, Float32Array>;

  it('trainStep before compile: E_ARG asking for compile (setLearningRate too)', async () => {
    await expectCode(() => model.trainStep(x, y), 'E_ARG', 'trainStep', 'compile');
    await expectCode(() => model.setLearningRate(0.1), 'E_ARG', 'compile');
    // Nothing that needs no optimizer is blocked.
    expect((await model.predict(x)).shape).toEqual([4, 10]);
    expect(Number.isFinite((await model.computeGradients(x, y)).loss)).toBe(true);
  });

  it('compile: unknown optimizer type, bad lr, unknown keys, bad values: E_ARG naming them', async () => {
    const c = (o: unknown) => () => model.compile(o as never);
    await expectCode(c({ optimizer: { type: 'rmsprop', lr: 0.1 } }), 'E_ARG', 'optimizer.type', 'rmsprop');
    await expectCode(c({ optimizer: { lr: 0.1 } }), 'E_ARG', 'optimizer.type');
    await expectCode(c({}), 'E_ARG', 'optimizer');
    for (const lr of [-1, Number.NaN, Number.POSITIVE_INFINITY, '0.1', undefined]) {
      await expectCode(c({ optimizer: { type: 'sgd', lr } }), 'E_ARG', 'lr');
    }
    await expectCode(c({ optimizer: { type: 'sgd', lr: 0.1 }, learningRate: 0.1 }), 'E_ARG', "'learningRate'");
    await expectCode(c({ optimizer: { type: 'sgd', lr: 0.1, beta1: 0.9 } }), 'E_ARG', "'beta1'");
    await expectCode(c({ optimizer: { type: 'adamw', lr: 0.1, momentum: 0.9 } }), 'E_ARG', "'momentum'");
    await expectCode(c({ optimizer: { type: 'sgd', lr: 0.1, momentum: 1.5 } }), 'E_ARG', 'momentum');
    await expectCode(c({ optimizer: { type: 'sgd', lr: 0.1, nesterov: true } }), 'E_ARG', 'momentum');
    await expectCode(c({ optimizer: { type: 'sgd', lr: 0.1, weightDecay: -1 } }), 'E_ARG', 'weightDecay');
    await expectCode(c({ optimizer: { type: 'adamw', lr: 0.1, beta2: 1 } }), 'E_ARG', 'beta');
    await expectCode(c({ optimizer: { type: 'sgd', lr: 0.1 }, loss: 'mse' }), 'E_ARG', 'loss');
    await expectCode(c({ optimizer: { type: 'sgd', lr: 0.1 }, labelSmoothing: 1 }), 'E_ARG', 'labelSmoothing');
    await expectCode(c({ optimizer: { type: 'sgd', lr: 0.1 }, clipGradNorm: 0 }), 'E_ARG', 'clipGradNorm');
    await expectCode(c({ optimizer: { type: 'sgd', lr: 0.1 }, paramGroups: [{ match: 'fc' }] }), 'E_ARG', 'paramGroups[0].match');
    await expectCode(c({ optimizer: { type: 'sgd', lr: 0.1 }, paramGroups: [{ match: /fc/, lrScale: -1 }] }), 'E_ARG', 'lrScale');
    await expectCode(c({ optimizer: { type: 'sgd', lr: 0.1 }, paramGroups: [{ match: /fc/, decay: 0 }] }), 'E_ARG', "'decay'");
    // None of these compiled the model.
    await expectCode(() => model.trainStep(x, y), 'E_ARG', 'compile');
  });

  it('compile succeeds with valid options; trainStep / predict reject unknown option keys', async () => {
    model.compile({ optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 } });
    await expectCode(() => model.trainStep(x, y, { learningRate: 0.1 } as never), 'E_ARG', "'learningRate'");
    await expectCode(() => model.trainStep(x, y, { lr: -0.1 }), 'E_ARG', 'lr');
    await expectCode(() => model.setLearningRate(Number.NaN), 'E_ARG', 'lr');
    await expectCode(() => model.predict(x, { probabilities: true } as never), 'E_ARG', "'probabilities'");
    await expectCode(() => model.predict(x, { softmax: 'yes' } as never), 'E_ARG', 'softmax');
    await expectCode(() => model.computeGradients(x, y, { labelSmoothing: 2 }), 'E_ARG', 'labelSmoothing');
    await expectCode(() => model.computeGradients(x, y, { smoothing: 0.1 } as never), 'E_ARG', "'smoothing'");
    trainable = new Map(
      model
        .parameterInfo()
        .filter((p) => p.trainable)
        .map((p) => [p.name, model.getParameter(p.name)]),
    );
  });

  it('images of the wrong rank or channel count: E_SHAPE with the shape, for every entry point', async () => {
    const rank3 = Tensor.fromArray(rng.array(8 * 8 * 3), [8, 8, 3]);
    const rank2 = Tensor.fromArray(rng.array(4 * 192), [4, 192]);
    const channels4 = images(4, 8, 8, 4);
    const grey = images(4, 8, 8, 1);
    for (const [bad, shape] of [
      [rank3, '[8, 8, 3]'],
      [rank2, '[4, 192]'],
      [channels4, '[4, 8, 8, 4]'],
      [grey, '[4, 8, 8, 1]'],
    ] as const) {
      await expectCode(() => model.trainStep(bad, y), 'E_SHAPE', 'trainStep', shape);
      await expectCode(() => model.predict(bad), 'E_SHAPE', 'predict', shape);
      await expectCode(() => model.evaluate(bad, y), 'E_SHAPE', 'evaluate', shape);
      await expectCode(() => model.computeGradients(bad, y), 'E_SHAPE', 'computeGradients', shape);
    }
    // The expected layout is named too.
    await expectCode(() => model.predict(channels4), 'E_SHAPE', '3]');
  });

  it('images that are not tensors: E_ARG', async () => {
    for (const bad of [null, undefined, new Float32Array(192), [[1, 2, 3]], {}]) {
      await expectCode(() => model.trainStep(bad as never, y), 'E_ARG', 'trainStep', 'images');
      await expectCode(() => model.predict(bad as never), 'E_ARG', 'predict', 'images');
    }
  });

  it('a label count different from the batch: E_SHAPE with both numbers', async () => {
    await expectCode(() => model.trainStep(x, labels(1, 2, 3)), 'E_SHAPE', 'trainStep', '3 labels', 'batch of 4');
    await expectCode(() => model.evaluate(x, labels(1, 2, 3, 4, 5)), 'E_SHAPE', 'evaluate', '5 labels', 'batch of 4');
    await expectCode(() => model.computeGradients(x, new Int32Array(0)), 'E_SHAPE', '0 labels');
  });

  it('labels that are not an Int32Array: E_DTYPE naming the type (Float32Array, plain array, Uint8Array)', async () => {
    await expectCode(() => model.trainStep(x, Float32Array.from([1, 2, 3, 4]) as never), 'E_DTYPE', 'Int32Array', 'Float32Array');
    await expectCode(() => model.trainStep(x, [1, 2, 3, 4] as never), 'E_DTYPE', 'Int32Array', 'Array');
    await expectCode(() => model.evaluate(x, Uint8Array.from([1, 2, 3, 4]) as never), 'E_DTYPE', 'Int32Array', 'Uint8Array');
    await expectCode(() => model.computeGradients(x, null as never), 'E_DTYPE', 'labels');
  });

  it('a label outside [0, classes): E_ARG naming the label, its index and the range', async () => {
    await expectCode(() => model.trainStep(x, labels(1, 2, 3, 10)), 'E_ARG', 'label 10', 'index 3', '[0, 10)');
    await expectCode(() => model.evaluate(x, labels(-1, 2, 3, 4)), 'E_ARG', 'label -1', 'index 0');
    await expectCode(() => model.computeGradients(x, labels(0, 2 ** 31 - 1, 0, 0)), 'E_ARG', 'index 1');
  });

  it('an image too small for the architecture: E_SHAPE naming the layer', async () => {
    // 2×2 → stages 2, 1, 1 → the head's 2×2 average pool has a 1×1 map.
    await expectCode(() => model.predict(images(1, 2, 2)), 'E_SHAPE', "'avgpool'");
    await expectCode(() => model.trainStep(images(2, 2, 2), labels(0, 1)), 'E_SHAPE', "'avgpool'");
    // A 7×7 'valid' stem convolution needs 7 pixels.
    const valid = models.resnet({
      classes: 3,
      inputShape: [16, 16, 3],
      stem: [{ type: 'conv2d', filters: 4, kernelSize: 7 }, { type: 'batchNorm' }, { type: 'relu' }],
      stages: [{ blocks: 1, width: 4 }],
      block: 'basic',
      seed: 1,
    });
    expect((await valid.predict(images(1, 7, 7))).shape).toEqual([1, 3]);
    await expectCode(() => valid.predict(images(1, 6, 9)), 'E_SHAPE', "'conv1'");
  });

  it('another spatial size for a flatten + dense head: E_SHAPE naming the dense layer and the feature counts', async () => {
    // Built for 8×8: the head flattens a 1×1×64 map into 'fc'; at 16×16 it would be 2×2×64 = 256.
    await expectCode(() => model.predict(images(2, 16, 16)), 'E_SHAPE', "'fc'", '64', '256');
    await expectCode(() => model.trainStep(images(2, 16, 16), labels(0, 1)), 'E_SHAPE', "'fc'", '256');
    await expectCode(() => model.evaluate(images(2, 24, 24), labels(0, 1)), 'E_SHAPE', "'fc'", '576');
    // A size whose final map pools to 1×1 again (12 → 6 → 3 → pool 2 → 1) feeds 'fc' its 64 features: fine.
    expect((await model.predict(images(2, 12, 12))).shape).toEqual([2, 10]);
  });

  it('unknown parameter names: E_ARG naming them; running statistics have no gradient', async () => {
    await expectCode(() => model.getParameter('conv9.weight'), 'E_ARG', "'conv9.weight'");
    await expectCode(() => model.setParameter('fc.kernel', new Float32Array(640)), 'E_ARG', "'fc.kernel'");
    await expectCode(() => model.getGradient('layer9.0.conv1.weight'), 'E_ARG', "'layer9.0.conv1.weight'");
    await expectCode(() => model.getGradient('bn1.running_var'), 'E_ARG', "'bn1.running_var'", 'trainable');
    await expectCode(() => model.getParameter(42 as never), 'E_ARG', 'name');
  });

  it('setParameter with the wrong length (E_SHAPE), dtype (E_DTYPE) or non-finite values (E_ARG) changes nothing', async () => {
    const name = 'conv1.weight'; // [3, 3, 3, 16] = 432 values
    const before = model.getParameter(name);
    await expectCode(() => model.setParameter(name, new Float32Array(431)), 'E_SHAPE', "'conv1.weight'", '432', '431', '[3, 3, 3, 16]');
    await expectCode(() => model.setParameter(name, [1, 2, 3]), 'E_SHAPE', '432', '3');
    await expectCode(() => model.setParameter(name, new Float64Array(432) as never), 'E_DTYPE', 'Float32Array');
    await expectCode(() => model.setParameter(name, new Int32Array(432) as never), 'E_DTYPE', 'Float32Array');
    await expectCode(() => model.setParameter(name, 'zeros' as never), 'E_DTYPE', 'Float32Array');
    for (const v of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const values = before.slice();
      values[17] = v;
      await expectCode(() => model.setParameter(name, values), 'E_ARG', "'conv1.weight'", 'index 17', 'not finite');
    }
    const array = Array.from(before);
    array[3] = Number.NaN;
    await expectCode(() => model.setParameter(name, array), 'E_ARG', 'index 3');
    await expectCode(() => model.setParameter('bn1.running_var', new Float32Array(16).fill(-1)), 'E_ARG', 'variance');
    expect(model.getParameter(name)).toEqual(before);
    expect(model.getParameter('bn1.running_var').every((v) => v >= 0)).toBe(true);
  });

  it('a disposed image tensor: E_DISPOSED for every entry point', async () => {
    const d = images(4);
    d.dispose();
    await expectCode(() => model.trainStep(d, y), 'E_DISPOSED', 'trainStep', 'images');
    await expectCode(() => model.predict(d), 'E_DISPOSED', 'predict');
    await expectCode(() => model.evaluate(d, y), 'E_DISPOSED', 'evaluate');
    await expectCode(() => model.computeGradients(d, y), 'E_DISPOSED', 'computeGradients');
  });

  it('after all of that the weights are as compiled, and the model trains: finite loss, weights move, loss falls', async () => {
    for (const [name, values] of trainable) expect(model.getParameter(name), name).toEqual(values);
    const first = await model.trainStep(x, y);
    expect(Number.isFinite(first.loss)).toBe(true);
    expect(first.gradNorm).toBeGreaterThan(0);
    expect(model.getParameter('fc.weight')).not.toEqual(trainable.get('fc.weight'));
    let last = first;
    for (let s = 0; s < 15; s++) last = await model.trainStep(x, y);
    expect(last.loss).toBeLessThan(first.loss);
  });
});

describe('builders reject bad options with E_ARG naming the option', () => {
  const cases: Array<[string, () => unknown, string[]]> = [
    ['resnetCifar depth 21 (not 6n+2)', () => models.resnetCifar({ depth: 21 }), ['depth', '6n+2', '21']],
    ['resnetCifar depth 32, version 2 (not 9n+2)', () => models.resnetCifar({ depth: 32, version: 2 }), ['depth', '9n+2', '32']],
    ['resnetCifar depth 2 (n = 0)', () => models.resnetCifar({ depth: 2 }), ['depth']],
    ['resnetCifar depth 20.5', () => models.resnetCifar({ depth: 20.5 }), ['depth']],
    ['resnetCifar version 3', () => models.resnetCifar({ depth: 20, version: 3 as never }), ['version']],
    ['resnetCifar without options', () => models.resnetCifar(undefined as never), ['options']],
    ['resnet18 with stages', () => models.resnet18({ stages: [{ blocks: 1, width: 4 }] } as never), ['stages']],
    ['resnet18 with an unknown option', () => models.resnet18({ dropout: 0.5 } as never), ['dropout']],
    ['resnet50 variant v2', () => models.resnet50({ variant: 'v2' as never }), ['variant', 'v2']],
    ['resnet18 classes 0', () => models.resnet18({ classes: 0 }), ['classes']],
    ['resnet18 inputShape [0, 224, 3]', () => models.resnet18({ inputShape: [0, 224, 3] }), ['inputShape']],
    ['resnet18 inputShape of rank 2', () => models.resnet18({ inputShape: [224, 224] as never }), ['inputShape']],
    ['resnet18 with groups 32 (basic blocks)', () => models.resnet18({ groups: 32 }), ['groups']],
    ['resnet50 with se.reduction 0', () => models.resnet50({ se: { reduction: 0 } }), ['se.reduction']],
    ['resnet50 with bnMomentum 2', () => models.resnet50({ bnMomentum: 2 }), ['bnMomentum']],
    ['resnet50 with bnEpsilon 0', () => models.resnet50({ bnEpsilon: 0 }), ['bnEpsilon']],
    ['resnet18 with convPadding "valid"', () => models.resnet18({ convPadding: 'valid' as never }), ['convPadding']],
    ['resnet18 with head.pool "max"', () => models.resnet18({ head: { pool: 'max' as never } }), ['head.pool']],
    ['resnet18 with seed -1', () => models.resnet18({ seed: -1 }), ['seed']],
    ['resnet18 with zeroInitResidual "yes"', () => models.resnet18({ zeroInitResidual: 'yes' as never }), ['zeroInitResidual']],
    ['resnet with block "dense"', () => models.resnet({ classes: 2, stages: [{ blocks: 1, width: 4 }], block: 'dense' as never }), ['block']],
    ['resnet with no stages', () => models.resnet({ classes: 2, stages: [], block: 'basic' }), ['stages']],
    ['resnet with stages[0].blocks 0', () => models.resnet({ classes: 2, stages: [{ blocks: 0, width: 4 }], block: 'basic' }), ['stages[0].blocks']],
    [
      'resnet with a stem layer of unknown type',
      () => models.resnet({ classes: 2, stem: [{ type: 'dropout' } as never], stages: [{ blocks: 1, width: 4 }], block: 'basic' }),
      ['stem[0].type'],
    ],
    [
      'resnet too small for its input (7×7 valid conv on 4×4)',
      () =>
        models.resnet({
          classes: 2,
          inputShape: [4, 4, 3],
          stem: [{ type: 'conv2d', filters: 4, kernelSize: 7 }],
          stages: [{ blocks: 1, width: 4 }],
          block: 'basic',
        }),
      ['too small', 'conv1'],
    ],
    [
      'a zero-pad shortcut that would reduce channels',
      () =>
        models.resnet({
          classes: 2,
          inputShape: [8, 8, 3],
          stem: [{ type: 'conv2d', filters: 8, kernelSize: 3, padding: 1 }],
          stages: [{ blocks: 1, width: 4 }],
          block: 'basic',
          shortcut: 'zeroPad',
        }),
      ['zeroPad', 'channels'],
    ],
  ];
  it.each(cases)('%s', async (_label, build, mentions) => {
    await expectCode(build, 'E_ARG', ...mentions);
  });
});

describe('Model.fromSpec rejects malformed specs with E_ARG naming the problem', () => {
  const good = (): ModelSpec => models.specs.resnetCifar({ depth: 8, inputShape: [8, 8, 3] });

  it('a good spec builds (the baseline of the cases below)', () => {
    expect(Model.fromSpec(good(), { seed: 1 }).paramCount()).toBe(models.resnetCifar({ depth: 8, inputShape: [8, 8, 3] }).paramCount());
  });

  it('not a spec at all / another format', async () => {
    await expectCode(() => Model.fromSpec(null as never), 'E_ARG', 'ModelSpec');
    await expectCode(() => Model.fromSpec({ ...good(), format: 'keras' } as never), 'E_ARG', 'format');
    await expectCode(() => Model.fromSpec(good(), { seed: 1, init: 'he' } as never), 'E_ARG', "'init'");
  });

  it('an unknown layer type, naming the layer and the type', async () => {
    const spec = good();
    const name = spec.layers[3]!.name;
    spec.layers[3] = { ...spec.layers[3]!, type: 'dropout' } as never;
    await expectCode(() => Model.fromSpec(spec), 'E_ARG', 'dropout', `'${name}'`);
  });

  it('an input that refers to a later layer', async () => {
    const spec = good();
    const first = spec.layers[0]!;
    spec.layers[0] = { ...first, inputs: [spec.layers[2]!.name] };
    await expectCode(() => Model.fromSpec(spec), 'E_ARG', `'${first.name}'`, `'${spec.layers[2]!.name}'`);
  });

  it('an input naming no layer at all', async () => {
    const spec = good();
    spec.layers[1] = { ...spec.layers[1]!, inputs: ['nowhere'] };
    await expectCode(() => Model.fromSpec(spec), 'E_ARG', "'nowhere'");
  });

  it('duplicate layer names', async () => {
    const spec = good();
    // A second layer named 'relu' right after the first, reading the same input.
    const relu = spec.layers.findIndex((l) => l.name === 'relu');
    spec.layers.splice(relu + 1, 0, { ...spec.layers[relu]! });
    const err = await rejection(() => Model.fromSpec(spec));
    expect(err.code, err.message).toBe('E_ARG');
    expect(err.message).toContain("'relu'");
    expect(err.message).toMatch(/duplicate|twice|unique/i);
  });

  it('an add with one input, and an output that names no layer', async () => {
    const spec = good();
    const add = spec.layers.findIndex((l) => l.type === 'add');
    spec.layers[add] = { ...spec.layers[add]!, inputs: [spec.layers[add]!.inputs[0]!] };
    await expectCode(() => Model.fromSpec(spec), 'E_ARG', `'${spec.layers[add]!.name}'`);
    await expectCode(() => Model.fromSpec({ ...good(), output: 'logits' }), 'E_ARG', 'logits');
  });

  it('logits of the wrong width for the declared classes', async () => {
    const err = await rejection(() => Model.fromSpec({ ...good(), classes: 7 }));
    expect(['E_ARG', 'E_SHAPE']).toContain(err.code);
    expect(err.message).toContain("'fc'");
    expect(err.message).toContain('7');
  });
});

describe('a NaN image', () => {
  async function poisoned() {
    const model = models.resnetCifar({ depth: 8, inputShape: [8, 8, 3], seed: 9 });
    model.compile({ optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 } });
    const good = images(4);
    const y = labels(0, 1, 2, 3);
    await model.trainStep(good, y);
    const data = rng.array(4 * 8 * 8 * 3);
    data[100] = Number.NaN;
    const bad = Tensor.fromArray(data, [4, 8, 8, 3]);
    const before = new Map(model.parameterInfo().map((p) => [p.name, model.getParameter(p.name)]));
    const err = await rejection(() => model.trainStep(bad, y));
    return { model, good, y, before, err };
  }

  it('makes trainStep reject with E_NAN and leaves the trainable weights unchanged; training goes on', async () => {
    const { model, good, y, before, err } = await poisoned();
    expect(err.code, err.message).toBe('E_NAN');
    expect(err.message).toContain('trainStep');
    expect(err.message).toMatch(/not finite|NaN/i);
    for (const p of model.parameterInfo()) {
      if (p.trainable) expect(model.getParameter(p.name), p.name).toEqual(before.get(p.name));
    }
    const r = await model.trainStep(good, y);
    expect(Number.isFinite(r.loss)).toBe(true);
  });

  it('leaves the batch-norm running statistics unchanged too, so inference still works', async () => {
    // The step was rejected, so nothing of it may stick: otherwise one bad image silently turns
    // every later predict() into NaN (running_mean = 0.9 · old + 0.1 · NaN stays NaN forever).
    const { model, good, before } = await poisoned();
    const poisonedStats = model
      .parameterInfo()
      .filter((p) => !p.trainable && !model.getParameter(p.name).every(Number.isFinite))
      .map((p) => p.name);
    expect(poisonedStats).toEqual([]);
    for (const p of model.parameterInfo()) {
      if (!p.trainable) expect(model.getParameter(p.name), p.name).toEqual(before.get(p.name));
    }
    const logits = (await model.predict(good)).toFloat32Array();
    expect(logits.every(Number.isFinite)).toBe(true);
  });

  it('in predict does not affect the other images of the batch (inference is per image)', async () => {
    const model = models.resnetCifar({ depth: 8, inputShape: [8, 8, 3], seed: 10 });
    const data = rng.array(2 * 8 * 8 * 3);
    const clean = (await model.predict(Tensor.fromArray(data, [2, 8, 8, 3]))).toFloat32Array();
    data[5] = Number.NaN; // image 0
    const out = (await model.predict(Tensor.fromArray(data, [2, 8, 8, 3]))).toFloat32Array();
    expect(out.subarray(10)).toEqual(clean.subarray(10));
  });
});
