// model.exportOnnx: every model family the builders make, exported and run in onnxruntime
// (onnxruntime-web's wasm backend, in Node, offline), against model.predict on the same images:
// |diff| ≤ 1e-4 · max|logit|. Batch-norm statistics are randomised first, so that folding them
// into the convolutions is really tested (fresh ones are the identity).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type * as Ort from 'onnxruntime-web';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { buildOnnxModel, checkOnnxOptions } from '../../lib/io/onnx_export.js';
import { Model, models, type OnnxExportOptions, Tensor } from '../../lib/index.js';
import type { ModelSpec } from '../../lib/model/spec.js';
import { expectCode, expectCodeSync } from '../support/expect_error.js';
import { Rng } from '../support/random.js';

let ort: typeof Ort;
let dir: string;
beforeAll(async () => {
  ort = await import('onnxruntime-web');
  ort.env.wasm.numThreads = 1;
  dir = await mkdtemp(join(tmpdir(), 'rn-onnx-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Random batch-norm statistics and affine parameters (a fresh model's are the identity). */
function randomiseBatchNorms(model: Model, seed: number): void {
  const rng = new Rng(seed);
  for (const layer of model.spec.layers) {
    if (layer.type !== 'batchNorm') continue;
    const c = model.getParameter(`${layer.name}.weight`).length;
    const positive = () => Float32Array.from({ length: c }, () => 0.5 + rng.next());
    model.setParameter(`${layer.name}.weight`, positive());
    model.setParameter(`${layer.name}.bias`, rng.array(c, 0.2));
    model.setParameter(`${layer.name}.running_mean`, rng.array(c, 0.2));
    model.setParameter(`${layer.name}.running_var`, positive());
  }
}

/** NHWC [n, h, w, c] → NCHW, by hand. */
function toNchw(x: Float32Array, [n, h, w, c]: number[]): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++)
    for (let y = 0; y < h; y++)
      for (let z = 0; z < w; z++) for (let k = 0; k < c; k++) out[((b * c + k) * h + y) * w + z] = x[((b * h + y) * w + z) * c + k]!;
  return out;
}

async function predict(model: Model, x: Float32Array, n: number): Promise<Float32Array> {
  const t = Tensor.fromArray(x, [n, ...model.inputShape]);
  try {
    const y = await model.predict(t);
    const out = y.toFloat32Array();
    y.dispose();
    return out;
  } finally {
    t.dispose();
  }
}

async function runOnnx(file: string, input: Float32Array, dims: number[]): Promise<{ logits: Float32Array; probabilities: Float32Array }> {
  const session = await ort.InferenceSession.create(file);
  try {
    const r = await session.run({ input: new ort.Tensor('float32', input, dims) });
    return { logits: r.logits!.data as Float32Array, probabilities: r.probabilities!.data as Float32Array };
  } finally {
    await session.release();
  }
}

function expectClose(actual: Float32Array, expected: Float32Array): void {
  expect(actual.length).toBe(expected.length);
  const scale = Math.max(...Array.from(expected, Math.abs));
  expect(scale).toBeGreaterThan(0);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  expect(worst).toBeLessThanOrEqual(1e-4 * scale);
}

/** The fields of one protobuf message (wire format read by hand): field number → raw values. */
function protoFields(bytes: Uint8Array): Map<number, (number | Uint8Array)[]> {
  const fields = new Map<number, (number | Uint8Array)[]>();
  let at = 0;
  const varint = (): number => {
    let v = 0;
    for (let shift = 1; ; shift *= 128) {
      const b = bytes[at++]!;
      v += (b & 0x7f) * shift;
      if (b < 0x80) return v;
    }
  };
  while (at < bytes.length) {
    const key = varint();
    const [field, wire] = [Math.floor(key / 8), key % 8];
    let value: number | Uint8Array;
    if (wire === 0) value = varint();
    else if (wire === 2) {
      const length = varint();
      value = bytes.subarray(at, at + length);
      at += length;
    } else if (wire === 5) {
      value = new DataView(bytes.buffer, bytes.byteOffset + at, 4).getFloat32(0, true);
      at += 4;
    } else throw new Error(`unexpected wire type ${wire}`);
    fields.set(field, [...(fields.get(field) ?? []), value]);
  }
  return fields;
}

const text = (v: number | Uint8Array | undefined): string => new TextDecoder().decode(v as Uint8Array);

/** What an exported file says of itself, read with protoFields (onnx.proto's field numbers). */
async function describeOnnx(file: string): Promise<{ irVersion: number; opset: number; metadata: Record<string, string>; opTypes: string[] }> {
  const model = protoFields(await readFile(file));
  const opsetImport = protoFields(model.get(8)![0] as Uint8Array);
  const metadata: Record<string, string> = {};
  for (const entry of model.get(14) ?? []) {
    const kv = protoFields(entry as Uint8Array);
    metadata[text(kv.get(1)![0])] = text(kv.get(2)![0]);
  }
  const graph = protoFields(model.get(7)![0] as Uint8Array);
  const opTypes = (graph.get(1) ?? []).map((n) => text(protoFields(n as Uint8Array).get(4)![0]));
  return { irVersion: model.get(1)![0] as number, opset: opsetImport.get(2)![0] as number, metadata, opTypes };
}

let fileCount = 0;
/** Exports `model`, runs `n` random images through onnxruntime and predict, and compares. */
async function checkExport(model: Model, options: OnnxExportOptions = {}, n = 2, seed = 7): Promise<{ probabilities: Float32Array; file: string }> {
  const file = join(dir, `m${fileCount++}.onnx`);
  await model.exportOnnx(file, options);
  const [h, w, c] = model.inputShape as [number, number, number];
  const x = new Rng(seed).array(n * h * w * c);
  const expected = await predict(model, x, n);
  const nchw = options.layout === 'NCHW';
  const got = await runOnnx(file, nchw ? toNchw(x, [n, h, w, c]) : x, nchw ? [n, c, h, w] : [n, h, w, c]);
  expectClose(got.logits, expected);
  return { probabilities: got.probabilities, file };
}

// Small instances of every family the builders make: each preset's own options on tiny stages.
const tinyStages = [
  { blocks: 1, width: 8 },
  { blocks: 2, width: 16, stride: 2 },
];
const FAMILIES: Record<string, () => Model> = {
  'resnet18/34 (basic blocks, ImageNet stem)': () =>
    models.resnet({ classes: 5, inputShape: [32, 32, 3], stages: tinyStages, block: 'basic', seed: 1 }),
  'resnet50/101/152 v1.5 (bottlenecks, stride on the 3×3)': () =>
    models.resnet({ classes: 5, inputShape: [32, 32, 3], stages: tinyStages, block: 'bottleneck', seed: 2 }),
  'resnet50 v1 (stride on the 1×1, conv biases, Keras epsilon)': () =>
    models.resnet({
      classes: 5,
      inputShape: [32, 32, 3],
      stages: tinyStages,
      block: 'bottleneck',
      strideOn: '1x1',
      convBias: true,
      bnEpsilon: 1.001e-5,
      seed: 3,
    }),
  // ZeroPadding2D → MaxPool 'valid' in the stem: onnxruntime's PadFusion would fold the zeros into
  // the pool's -∞ padding (see onnx_export.ts); this family failed before the -0 pad constant.
  'resnet50v2 (pre-activation, Keras ResNetV2 layout)': () =>
    models.resnet({
      classes: 5,
      inputShape: [32, 32, 3],
      stages: [
        { blocks: 2, width: 8, stride: 2 },
        { blocks: 2, width: 8, stride: 1 },
      ],
      block: 'preactBottleneck',
      stem: [
        { type: 'conv2d', filters: 16, kernelSize: 7, strides: 2, padding: 3 },
        { type: 'zeroPad', padding: 1 },
        { type: 'maxPool', poolSize: 3, strides: 2, padding: 'valid' },
      ],
      strideOn: '3x3',
      downsampleBlock: 'last',
      strideShortcut: 'subsample',
      preactShortcut: 'preactivated',
      projectionNorm: false,
      convBias: 'auto',
      bnEpsilon: 1.001e-5,
      seed: 4,
    }),
  'resnext (grouped 3×3 convolutions)': () =>
    models.resnet({ classes: 5, inputShape: [32, 32, 3], stages: tinyStages, block: 'bottleneck', groups: 4, widthPerGroup: 16, seed: 5 }),
  'wide resnet (widthPerGroup 128)': () =>
    models.resnet({ classes: 5, inputShape: [32, 32, 3], stages: tinyStages, block: 'bottleneck', widthPerGroup: 128, seed: 6 }),
  'se-resnet (squeeze-excite)': () =>
    models.resnet({ classes: 5, inputShape: [32, 32, 3], stages: tinyStages, block: 'bottleneck', se: { reduction: 4 }, seed: 7 }),
  'resnetCifar v1 (same padding, AveragePooling2D + Flatten head, conv biases)': () =>
    models.resnetCifar({ depth: 8, inputShape: [16, 16, 3], convBias: true, seed: 8 }),
  'resnetCifar v2 (pre-activation bottlenecks, post-norm)': () => models.resnetCifar({ depth: 11, version: 2, inputShape: [16, 16, 3], seed: 9 }),
  'resnetCifar option A (zero-pad shortcuts)': () => models.resnetCifar({ depth: 8, inputShape: [12, 12, 3], shortcut: 'zeroPad', seed: 10 }),
  'explicit stem, windowed pools, hidden dense layers (odd sizes)': () =>
    models.resnet({
      classes: 4,
      inputShape: [19, 23, 2],
      stages: [{ blocks: 1, width: 6 }],
      block: 'basic',
      convPadding: 'same',
      stem: [
        { type: 'zeroPad', padding: [1, 0, 2, 1] },
        { type: 'conv2d', filters: 6, kernelSize: [3, 5], strides: 2, padding: 'same', useBias: true },
        { type: 'batchNorm' },
        { type: 'relu' },
        { type: 'avgPool', poolSize: 3, strides: 1, padding: 'same' },
        { type: 'maxPool', poolSize: 2, strides: 2, padding: 'same' },
      ],
      head: { pool: { type: 'avgPool', poolSize: 2, strides: 2, padding: 'same' }, hidden: [7] },
      seed: 11,
    }),
};

describe('exportOnnx runs in onnxruntime as predict does', () => {
  for (const [family, make] of Object.entries(FAMILIES)) {
    it(family, async () => {
      const model = make();
      try {
        randomiseBatchNorms(model, 100);
        const { file } = await checkExport(model);
        // Only pre-activation batch-norms (after an add or a pool, not a conv) stay as nodes.
        const unfolded = (await describeOnnx(file)).opTypes.filter((t) => t === 'BatchNormalization').length;
        const preactivation = model.spec.layers.some((l) => l.name === 'post_bn' || (l.name.endsWith('.bn1') && l.inputs[0]!.endsWith('add')));
        expect(unfolded > 0).toBe(preactivation);
      } finally {
        model.dispose();
      }
    });
  }

  it('layers the builders do not make: dilated convs, explicit pads, an unfolded conv batch-norm, pools with padding, flatten of a map', async () => {
    const spec: ModelSpec = {
      format: 'resnet-native/model',
      version: 1,
      name: 'odd_layers',
      inputShape: [13, 11, 3],
      classes: 3,
      output: 'fc',
      layers: [
        {
          type: 'conv2d',
          name: 'c1',
          inputs: ['input'],
          filters: 4,
          kernelSize: [3, 3],
          strides: [1, 1],
          padding: [2, 1, 0, 3],
          dilations: [2, 1],
          groups: 1,
          useBias: false,
        },
        // A batch-norm on a conv whose output is also read elsewhere: not folded.
        { type: 'batchNorm', name: 'bn1', inputs: ['c1'], epsilon: 1e-3, momentum: 0.1 },
        { type: 'add', name: 'sum', inputs: ['bn1', 'c1'] },
        { type: 'maxPool', name: 'mp', inputs: ['sum'], poolSize: [3, 2], strides: [2, 2], padding: 1 },
        { type: 'avgPool', name: 'ap', inputs: ['mp'], poolSize: [3, 3], strides: [1, 2], padding: [1, 1, 0, 1] },
        {
          type: 'conv2d',
          name: 'c2',
          inputs: ['ap'],
          filters: 4,
          kernelSize: [2, 2],
          strides: [1, 1],
          padding: 'same',
          dilations: [1, 2],
          groups: 2,
          useBias: true,
        },
        { type: 'relu', name: 'r', inputs: ['c2'] },
        { type: 'squeezeExcite', name: 'se', inputs: ['r'], hidden: 2 },
        { type: 'zeroPadShortcut', name: 'zp', inputs: ['se'], filters: 7, strides: [2, 1] },
        { type: 'flatten', name: 'flat', inputs: ['zp'] },
        { type: 'dense', name: 'fc', inputs: ['flat'], units: 3, useBias: false },
      ],
    };
    const model = Model.fromSpec(spec, { seed: 3 });
    try {
      randomiseBatchNorms(model, 5);
      await checkExport(model, {}, 3);
      await checkExport(model, { layout: 'NCHW', batch: 3 }, 3);
    } finally {
      model.dispose();
    }
  });

  it('full-size resnet18 and resnet50 at 224×224', async () => {
    // torchvision's ResNet-18 has 20 convolutions and ResNet-50 53, each followed by a batch-norm.
    for (const [make, convs] of [
      [() => models.resnet18({ seed: 1 }), 20],
      [() => models.resnet50({ seed: 2 }), 53],
    ] as const) {
      const model = make();
      try {
        randomiseBatchNorms(model, 9);
        const { file } = await checkExport(model, {}, 1);
        // Every batch-norm of a post-activation ResNet follows a convolution: all folded.
        const { opTypes } = await describeOnnx(file);
        expect(opTypes.filter((t) => t === 'Conv')).toHaveLength(convs);
        expect(opTypes).not.toContain('BatchNormalization');
      } finally {
        model.dispose();
      }
    }
  }, 120_000);
});

describe('exportOnnx options', () => {
  let model: Model;
  beforeAll(() => {
    model = models.resnetCifar({ depth: 8, inputShape: [8, 8, 3], classes: 4, seed: 21 });
    randomiseBatchNorms(model, 22);
  });
  afterAll(() => model.dispose());

  it('NHWC and NCHW layouts, each at opsets 13, 17 and 21 (with their IR versions)', async () => {
    const irVersions: Record<number, number> = { 13: 7, 17: 8, 21: 10 };
    for (const layout of ['NHWC', 'NCHW'] as const) {
      for (const opset of [13, 17, 21]) {
        const { file } = await checkExport(model, { layout, opset });
        const d = await describeOnnx(file);
        expect([d.opset, d.irVersion]).toEqual([opset, irVersions[opset]]);
        expect(d.metadata.inputLayout).toBe(layout);
        expect(d.opTypes[0] === 'Transpose').toBe(layout === 'NHWC'); // NHWC → NCHW at the input
      }
    }
  });

  it('declares its input and outputs: names, layouts, a symbolic or fixed batch', async () => {
    const shapes = async (options: OnnxExportOptions) => {
      const file = join(dir, `meta${fileCount++}.onnx`);
      await model.exportOnnx(file, options);
      const session = await ort.InferenceSession.create(file);
      try {
        expect(session.inputNames).toEqual(['input']);
        expect(session.outputNames).toEqual(['logits', 'probabilities']);
        const shape = (m: Ort.InferenceSession.ValueMetadata) => (m.isTensor ? [...m.shape] : undefined);
        return { input: shape(session.inputMetadata[0]!), outputs: session.outputMetadata.map(shape) };
      } finally {
        await session.release();
      }
    };
    expect(await shapes({})).toEqual({
      input: ['batch', 8, 8, 3],
      outputs: [
        ['batch', 4],
        ['batch', 4],
      ],
    });
    expect(await shapes({ layout: 'NCHW', batch: 5 })).toEqual({
      input: [5, 3, 8, 8],
      outputs: [
        [5, 4],
        [5, 4],
      ],
    });
  });

  it('a dynamic batch runs 1 and 3 images; a fixed batch runs exactly its size', async () => {
    const file = join(dir, 'dynamic.onnx');
    await model.exportOnnx(file, { batch: 'dynamic' });
    for (const n of [1, 3]) {
      const x = new Rng(n).array(n * 8 * 8 * 3);
      expectClose((await runOnnx(file, x, [n, 8, 8, 3])).logits, await predict(model, x, n));
    }
    await checkExport(model, { batch: 2 }, 2);
    const fixed = join(dir, 'fixed.onnx');
    await model.exportOnnx(fixed, { batch: 2 });
    await expect(runOnnx(fixed, new Float32Array(3 * 8 * 8 * 3), [3, 8, 8, 3])).rejects.toThrow();
  });

  it("'probabilities' is the softmax of the logits", async () => {
    const { probabilities } = await checkExport(model, {}, 2);
    const x = new Rng(7).array(2 * 8 * 8 * 3);
    const t = Tensor.fromArray(x, [2, 8, 8, 3]);
    const p = await model.predict(t, { softmax: true });
    const expected = p.toFloat32Array();
    p.dispose();
    t.dispose();
    for (let i = 0; i < expected.length; i++) expect(Math.abs(probabilities[i]! - expected[i]!)).toBeLessThan(1e-6);
  });

  it('includePreprocessing: images in [0, 1], channel order and (x - mean) / std in the graph', async () => {
    const mean = [0.406, 0.456, 0.485];
    const std = [0.225, 0.224, 0.229];
    model.preprocessing = { imageSize: [8, 8], channelOrder: 'bgr', mean, std };
    model.classNames = ['cat', 'dog', 'ship', 'frog'];
    try {
      const n = 2;
      const raw = Float32Array.from(new Rng(3).array(n * 8 * 8 * 3), (v) => (v + 1) / 2);
      // By hand: RGB → BGR, then normalise in the model's channel order.
      const ready = new Float32Array(raw.length);
      for (let p = 0; p < raw.length; p += 3) for (let k = 0; k < 3; k++) ready[p + k] = (raw[p + 2 - k]! - mean[k]!) / std[k]!;
      const expected = await predict(model, ready, n);
      for (const layout of ['NHWC', 'NCHW'] as const) {
        const file = join(dir, `pre-${layout}.onnx`);
        await model.exportOnnx(file, { includePreprocessing: true, layout });
        const input = layout === 'NCHW' ? toNchw(raw, [n, 8, 8, 3]) : raw;
        expectClose((await runOnnx(file, input, layout === 'NCHW' ? [n, 3, 8, 8] : [n, 8, 8, 3])).logits, expected);
        // The class names and preprocessing ride along in metadata_props.
        const { metadata } = await describeOnnx(file);
        expect(JSON.parse(metadata.classNames!)).toEqual(['cat', 'dog', 'ship', 'frog']);
        expect(JSON.parse(metadata.preprocessing!)).toEqual({ imageSize: [8, 8], channelOrder: 'bgr', mean, std });
        expect(metadata.inputPreprocessing).toBe('included');
      }
    } finally {
      model.preprocessing = undefined;
      model.classNames = undefined;
    }
  });

  it('bad options are E_ARG naming the option; nothing is written', async () => {
    const file = join(dir, 'bad.onnx');
    const cases: [unknown, string][] = [
      [{ opset: 12 }, 'opset'],
      [{ opset: 22 }, 'opset'],
      [{ opset: '17' }, 'opset'],
      [{ batch: 0 }, 'batch'],
      [{ batch: 1.5 }, 'batch'],
      [{ batch: 'auto' }, 'batch'],
      [{ layout: 'nchw' }, 'layout'],
      [{ includePreprocessing: 'yes' }, 'includePreprocessing'],
      [{ includePreprocessing: true }, 'preprocessing'],
      [{ softmax: true }, 'softmax'],
      [null, 'options'],
    ];
    for (const [options, mention] of cases) {
      await expectCode(() => model.exportOnnx(file, options as OnnxExportOptions), 'E_ARG', mention);
    }
    await expectCode(() => model.exportOnnx('' as string), 'E_ARG', 'path');
    await expect(readFile(file)).rejects.toMatchObject({ code: 'ENOENT' });
    await expectCode(() => model.exportOnnx(join(dir, 'no', 'such', 'dir', 'm.onnx')), 'E_IO', 'm.onnx');
  });

  it('an existing file is replaced whole', async () => {
    const file = join(dir, 'replace.onnx');
    await writeFile(file, 'old contents');
    await model.exportOnnx(file);
    const bytes = await readFile(file);
    expect(bytes.includes(Buffer.from('old contents'))).toBe(false);
    expect(bytes.length).toBeGreaterThan(1000);
  });

  it('a disposed model is E_DISPOSED', async () => {
    const m = models.resnetCifar({ depth: 8, inputShape: [8, 8, 3], seed: 1 });
    m.dispose();
    await expectCode(() => m.exportOnnx(join(dir, 'disposed.onnx')), 'E_DISPOSED');
  });

  it('a layer type the exporter does not know is E_ARG naming it', () => {
    const spec = structuredClone(model.spec) as ModelSpec;
    const fc = spec.layers.find((l) => l.name === spec.output)!;
    const flatten = spec.layers.find((l) => l.name === fc.inputs[0])!;
    (flatten as { type: string }).type = 'dropout';
    const parameters = new Map(model.parameters().map((p) => [p.name, p.values]));
    expectCodeSync(() => buildOnnxModel({ spec, parameters }, checkOnnxOptions({}, 'test')), 'E_ARG', `'${flatten.name}'`, 'dropout');
  });
});
