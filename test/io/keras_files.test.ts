// Keras' own files: io.loadKerasModel builds the model from a .keras / .h5 file's config and
// loads its weights; io.loadKeras loads the same files into a model built here.
//
// test/fixtures/keras/ (scripts/make-keras-fixtures.py made them with TensorFlow 2.21 / Keras
// 3.15; cases.json describes each): the keras.io CIFAR ResNet-20 v1 and v2, keras.applications'
// ResNet (v1 and v2 code paths, reduced widths), and a model with the rest of the supported
// layers, each saved as .keras and .h5 (ResNet-20 v1 also in Keras 2's .h5 layout), with an
// input batch, the logits from Keras' own features and Dense weights, and Keras' predict
// output. Our logits must match: max |ours − Keras| ≤ 1e-4 · max |Keras|, and softmax(ours)
// Keras' probabilities where the model ends in a softmax.
//
// Also: what the conversion records (preprocessing from keras.applications or a Rescaling
// layer, the softmax left out), a layer outside the supported set (E_FORMAT naming it),
// and files of other formats given to the Keras and checkpoint loaders (E_FORMAT saying what
// the file is and what to call).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { strToU8, zipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { io, models, Tensor } from '../../lib/index.js';
import { describeBytes, describeFile, wrongFormatError } from '../../lib/io/file_kind.js';
import { loadKeras } from '../../lib/io/keras.js';
import { loadKerasModel, loadKerasModelWithInfo } from '../../lib/io/keras_model.js';
import { Model } from '../../lib/model/model.js';
import type { ModelSpec } from '../../lib/model/spec.js';
import { expectCode } from '../support/expect_error.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'keras');

interface Case {
  files: string[];
  inputShape: [number, number, number];
  batch: number;
  classes: number;
  outputActivation: string | null;
}

const cases = JSON.parse(await readFile(join(FIXTURES, 'cases.json'), 'utf8')) as Record<string, Case>;
delete cases._;

async function io_(name: string, c: Case): Promise<{ input: Float32Array; logits: Float32Array; predicted: Float32Array }> {
  const bytes = await readFile(join(FIXTURES, `${name}.io.bin`));
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const n = c.batch * c.inputShape.reduce((a, b) => a * b, 1);
  const k = c.batch * c.classes;
  return { input: all.slice(0, n), logits: all.slice(n, n + k), predicted: all.slice(n + k, n + 2 * k) };
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  expect(actual.length).toBe(expected.length);
  let err = 0;
  for (let i = 0; i < actual.length; i++) err = Math.max(err, Math.abs(actual[i]! - expected[i]!));
  expect(err, `${what}: max |diff| ${err} vs max |expected| ${maxAbs(expected)}`).toBeLessThanOrEqual(1e-4 * Math.max(maxAbs(expected), 1e-6));
}

function softmaxRows(logits: Float32Array, classes: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let r = 0; r < logits.length / classes; r++) {
    const row = logits.subarray(r * classes, (r + 1) * classes);
    const m = Math.max(...row);
    let sum = 0;
    for (let j = 0; j < classes; j++) sum += Math.exp(row[j]! - m);
    for (let j = 0; j < classes; j++) out[r * classes + j] = Math.exp(row[j]! - m) / sum;
  }
  return out;
}

describe('loadKerasModel: Keras files against Keras predict', () => {
  for (const [name, c] of Object.entries(cases)) {
    for (const file of c.files) {
      it(`${file}`, async () => {
        const { model, info } = await loadKerasModelWithInfo(join(FIXTURES, file));
        try {
          const { input, logits, predicted } = await io_(name, c);
          expect(model.inputShape).toEqual(c.inputShape);
          expect(model.classes).toBe(c.classes);
          // An input Rescaling became preprocessing: Keras' input x is 255·p, ours (p − mean) / std.
          const pre = info.preprocessingFrom === 'Rescaling layer' ? model.preprocessing : undefined;
          const channels = c.inputShape[2];
          const x = pre ? input.map((v, i) => (v / 255 - pre.mean[i % channels]!) / pre.std[i % channels]!) : input;
          const out = await model.predict(Tensor.fromArray(x, [c.batch, ...c.inputShape]));
          const ours = out.toFloat32Array();
          expectClose(ours, logits, `${file} logits`);
          if (c.outputActivation === 'softmax') {
            expect(info.outputActivation).toBe('softmax');
            expectClose(softmaxRows(ours, c.classes), predicted, `${file} probabilities`);
          } else {
            expect(info.outputActivation).toBe('linear');
            expectClose(ours, predicted, `${file} predict`);
          }
        } finally {
          model.dispose();
        }
      });
    }
  }
});

describe('loadKerasModel: what the file says besides the layers', () => {
  it("keras.applications' ResNet v1 gets caffe preprocessing (BGR, ImageNet means, 0–255 scale)", async () => {
    const { model, info } = await loadKerasModelWithInfo(join(FIXTURES, 'applications_resnet_v1_small.keras'));
    expect(info.preprocessingFrom).toBe('keras.applications');
    expect(model.preprocessing?.channelOrder).toBe('bgr');
    expect(model.preprocessing?.mean.map((m) => m * 255)).toEqual([103.939, 116.779, 123.68].map((m) => expect.closeTo(m, 9)));
    expect(model.preprocessing?.std).toEqual([1 / 255, 1 / 255, 1 / 255]);
    expect(model.preprocessing?.imageSize).toEqual([32, 32]);
    // Keras applications' bottleneck blocks: biased convolutions, epsilon 1.001e-5.
    const bn = model.spec.layers.find((l) => l.name === 'conv1_bn');
    expect(bn).toMatchObject({ type: 'batchNorm', epsilon: 1.001e-5 });
    expect(model.spec.layers.find((l) => l.name === 'conv1_conv')).toMatchObject({ type: 'conv2d', useBias: true, strides: [2, 2] });
    model.dispose();
  });

  it("transfer learning: keras.applications' ResNet nested as a layer still gives its preprocessing", async () => {
    for (const f of ['nested_functional.keras', 'nested_sequential.keras']) {
      const { model, info } = await loadKerasModelWithInfo(join(FIXTURES, f));
      expect(info.preprocessingFrom, f).toBe('keras.applications');
      expect(model.preprocessing?.channelOrder).toBe('bgr');
      expect(model.spec.layers.some((l) => l.name === 'conv2_block1_0_conv')).toBe(true);
      model.dispose();
    }
  });

  it("keras.applications' ResNet v2 gets 'tf' preprocessing (x / 127.5 − 1)", async () => {
    const { model, info } = await loadKerasModelWithInfo(join(FIXTURES, 'applications_resnet_v2_small.h5'));
    expect(info.preprocessingFrom).toBe('keras.applications');
    expect(model.preprocessing).toMatchObject({ channelOrder: 'rgb', mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
    model.dispose();
  });

  it('an input Rescaling becomes preprocessing; the model takes the rescaled tensor', async () => {
    const { model, info } = await loadKerasModelWithInfo(join(FIXTURES, 'features.keras'));
    expect(info.preprocessingFrom).toBe('Rescaling layer');
    // Rescaling(1 / 127.5, offset −1) on 0–255 pixels p·255: (p − 0.5) / 0.5.
    expect(model.preprocessing?.mean.map((m) => Number(m.toFixed(6)))).toEqual([0.5, 0.5, 0.5]);
    expect(model.preprocessing?.std.map((m) => Number(m.toFixed(6)))).toEqual([0.5, 0.5, 0.5]);
    expect(info.skipped).toContain('drop');
    model.dispose();
  });

  it('the CIFAR example has no preprocessing in its file: undefined', async () => {
    const { model, info } = await loadKerasModelWithInfo(join(FIXTURES, 'cifar_resnet20_v1.keras'));
    expect(model.preprocessing).toBeUndefined();
    expect(info.preprocessingFrom).toBeUndefined();
    expect(info.kerasVersion).toMatch(/^3\./);
    model.dispose();
  });
});

describe('loadKeras: the same files into a model built here', () => {
  it('a .keras and a Keras 2 .h5 load into the same architecture by name', async () => {
    const built = await loadKerasModel(join(FIXTURES, 'cifar_resnet20_v1.keras'));
    const other = Model.fromSpec(built.spec, { seed: 3 });
    const result = await loadKeras(other, join(FIXTURES, 'cifar_resnet20_v1.keras2.h5'));
    expect(result.mapping).toBe('name');
    for (const p of built.parameters()) expect(other.getParameter(p.name)).toEqual(p.values);
    built.dispose();
    other.dispose();
  });

  it('a model of ours with other layer names loads the keras.applications .h5 by structure', async () => {
    const built = await loadKerasModel(join(FIXTURES, 'applications_resnet_v1_small.h5'));
    const rename = (n: string) => (n === 'input' ? n : `ours.${n.length}.${n}`);
    const spec = structuredClone(built.spec) as ModelSpec;
    for (const l of spec.layers) {
      l.name = rename(l.name);
      l.inputs = l.inputs.map(rename);
    }
    spec.output = rename(spec.output);
    built.dispose();
    const model = Model.fromSpec(spec, { seed: 1 });
    try {
      const result = await loadKeras(model, join(FIXTURES, 'applications_resnet_v1_small.h5'));
      expect(result.mapping).toBe('structure');
      const c = cases.applications_resnet_v1_small!;
      const { input, logits } = await io_('applications_resnet_v1_small', c);
      const out = await model.predict(Tensor.fromArray(input, [c.batch, ...c.inputShape]));
      expectClose(out.toFloat32Array(), logits, 'renamed model + loadKeras');
    } finally {
      model.dispose();
    }
  });
});

describe('loadKerasModel: what it does not build', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'keras-files-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A .keras whose config is features.keras' with `edit` applied (weights unchanged). */
  async function editedKeras(name: string, edit: (layers: Record<string, unknown>[]) => void): Promise<string> {
    const { unzipSync } = await import('fflate');
    const entries = unzipSync(await readFile(join(FIXTURES, 'features.keras')));
    const config = JSON.parse(new TextDecoder().decode(entries['config.json'])) as { config: { layers: Record<string, unknown>[] } };
    edit(config.config.layers);
    entries['config.json'] = strToU8(JSON.stringify(config));
    const path = join(dir, name);
    await writeFile(path, zipSync(entries));
    return path;
  }

  it('a layer outside the supported set is E_FORMAT naming the layer and its class', async () => {
    const path = await editedKeras('lrelu.keras', (layers) => {
      const l = layers.find((x) => x.name === 'stem_relu')!;
      l.class_name = 'LeakyReLU';
    });
    await expectCode(() => loadKerasModel(path), 'E_FORMAT', "layer 'stem_relu' (LeakyReLU)", 'Conv2D');
  });

  it('an activation other than relu / linear / softmax-at-the-output is E_FORMAT', async () => {
    const path = await editedKeras('tanh.keras', (layers) => {
      (layers.find((x) => x.name === 'hidden')!.config as Record<string, unknown>).activation = 'tanh';
    });
    await expectCode(() => loadKerasModel(path), 'E_FORMAT', "layer 'hidden' (Dense)", "'tanh'");
  });

  it('channels_first is E_FORMAT', async () => {
    const path = await editedKeras('cf.keras', (layers) => {
      (layers.find((x) => x.name === 'stem')!.config as Record<string, unknown>).data_format = 'channels_first';
    });
    await expectCode(() => loadKerasModel(path), 'E_FORMAT', "layer 'stem' (Conv2D)", 'channels_last');
  });

  it('an open input size needs options.inputShape', async () => {
    const path = await editedKeras('open.keras', (layers) => {
      (layers[0]!.config as Record<string, unknown>).batch_shape = [null, null, null, 3];
    });
    await expectCode(() => loadKerasModel(path), 'E_FORMAT', 'inputShape');
    const model = await loadKerasModel(path, { inputShape: [20, 20, 3] });
    expect(model.inputShape).toEqual([20, 20, 3]);
    model.dispose();
  });
});

describe('errors that say what a file is', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'file-kind-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a .keras or .h5 given to loadModel names itself and points to loadKerasModel', async () => {
    for (const f of ['cifar_resnet20_v1.keras', 'cifar_resnet20_v1.h5']) {
      const err = await expectCode(() => io.loadModel(join(FIXTURES, f)), 'E_FORMAT', 'Keras', 'io.loadKerasModel');
      expect(err.message).not.toMatch(/PK|\\x|HDF\r/);
    }
  });

  it('a resnet-native checkpoint given to loadKeras says so and points to loadModel', async () => {
    const model = models.resnetCifar({ depth: 8, classes: 10 } as never);
    const path = join(dir, 'ckpt.safetensors');
    await io.saveModel(model, path);
    await expectCode(() => loadKeras(model, path), 'E_FORMAT', 'resnet-native checkpoint', 'io.loadModel');
    await expectCode(() => loadKerasModel(path), 'E_FORMAT', 'resnet-native checkpoint');
    model.dispose();
  });

  it('PyTorch, TorchScript, TFLite, ONNX, SavedModel, NumPy: what they are and what to do', async () => {
    const write = async (name: string, bytes: Uint8Array) => {
      const p = join(dir, name);
      await writeFile(p, bytes);
      return p;
    };
    const torch = await write(
      'w.pth',
      zipSync({ 'archive/data.pkl': new Uint8Array([0x80, 2]), 'archive/data/0': new Uint8Array(8), 'archive/version': strToU8('3\n') }),
    );
    const script = await write(
      'm.pt',
      zipSync({
        'archive/data.pkl': new Uint8Array([0x80, 2]),
        'archive/constants.pkl': new Uint8Array([0x80, 2]),
        'archive/code/__torch__.py': strToU8('x'),
      }),
    );
    const tflite = await write('m.tflite', new Uint8Array([0x1c, 0, 0, 0, 0x54, 0x46, 0x4c, 0x33, 0, 0, 0, 0]));
    const onnx = await write('m.onnx', new Uint8Array([0x08, 0x07, 0x12, 0x07, ...strToU8('pytorch'), 0x1a, 0x03, ...strToU8('2.0')]));
    const npy = await write('w.npy', new Uint8Array([0x93, ...strToU8('NUMPY'), 1, 0]));
    const saved = join(dir, 'saved');
    await (await import('node:fs/promises')).mkdir(saved);
    await write('saved/saved_model.pb', new Uint8Array([0x08, 0x01]));
    await expectCode(() => loadKerasModel(torch), 'E_FORMAT', 'PyTorch torch.save file', 'io.loadTorchvision');
    await expectCode(() => loadKerasModel(script), 'E_FORMAT', 'TorchScript', 'state_dict');
    await expectCode(() => loadKerasModel(tflite), 'E_FORMAT', 'TensorFlow Lite');
    await expectCode(() => loadKerasModel(onnx), 'E_FORMAT', 'ONNX');
    await expectCode(() => loadKerasModel(npy), 'E_FORMAT', 'NumPy');
    await expectCode(() => loadKerasModel(saved), 'E_FORMAT', 'SavedModel', "model.save('m.keras')");
    await expectCode(() => io.loadModel(torch), 'E_FORMAT', 'PyTorch torch.save file');
    await expectCode(() => io.loadModel(saved), 'E_FORMAT', 'SavedModel');
    await expectCode(() => io.loadModel(tflite), 'E_FORMAT', 'TensorFlow Lite');
    const small = models.resnetCifar({ depth: 8, classes: 10 } as never);
    await expectCode(() => io.loadWeightsInto(small, script), 'E_FORMAT', 'TorchScript');
    small.dispose();
    expect((await describeFile(script)).kind).toBe('torchscript');
    // The helper other loaders call (loadTorchvision at merge time).
    const err = await wrongFormatError('loadTorchvision', join(FIXTURES, 'features.keras'), undefined, 'a torchvision state_dict');
    expect(err.code).toBe('E_FORMAT');
    expect(err.message).toContain('is a Keras 3 .keras model, not a torchvision state_dict; build the model from it with io.loadKerasModel(path)');
    expect(describeBytes(new Uint8Array(0)).kind).toBe('empty');
    expect((await describeFile(join(FIXTURES, 'features.keras'))).kind).toBe('keras');
  });
});
