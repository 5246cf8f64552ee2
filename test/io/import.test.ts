// Weight import: loadTorchvision (lib/io/torchvision.ts) and loadKeras (lib/io/keras.ts).
//
// torchvision: test/fixtures/torchvision/ holds small real torchvision ResNets (BasicBlock;
// Bottleneck with groups, ResNeXt-like; Bottleneck with width_per_group 128, Wide-ResNet-like),
// their state_dicts as F32, F16 and BF16 safetensors, an input batch and PyTorch's eval-mode
// logits (scripts/make-torchvision-fixture.py made them; cases.json describes each). The
// same architecture is built here with models.resnet, loaded, and its logits compared:
// max |ours − torch| ≤ 1e-4 · max |torch| over the batch (error / tolerance is written to
// build/test-report/import.test.ts.json as `import torchvision <case>`).
//
// Keras: a small model of ours gets random parameters, its tfjs-layers twin
// (test/support/tfjs_from_spec.mjs) gets them too, and the twin is saved in the tfjs layers
// format (model.json + weight shards cut mid-tensor, as tensorflowjs_converter cuts its 4 MB
// shards). A fresh model loads it; its logits are compared with the tfjs model's (same
// bound). Once with our layer names (mapping by name), once nested in a functional and a
// sequential model, and once with Keras applications' names and layer order (mapping by
// structure), on an architecture where a bottleneck's shortcut and last branch convolution
// have the same shape.
//
// Also: full-size torchvision resnet18 / resnet50 / resnext50_32x4d / wide_resnet50_2
// state_dicts (keys and shapes from architectures.json, BF16 pattern values) against the named
// builders, and the error cases of both loaders (E_IO, E_FORMAT with names and shapes, E_ARG;
// the model unchanged after a failed load).
import { mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type Model, models, Tensor } from '../../lib/index.js';
import { loadKeras } from '../../lib/io/keras.js';
import { encodeSafetensors, readSafetensors, type SafetensorsTensorInput } from '../../lib/io/safetensors.js';
import { loadTorchvision } from '../../lib/io/torchvision.js';
import type { ResNetOptions } from '../../lib/model/builders.js';
import type { ModelSpec } from '../../lib/model/spec.js';
import { Rng } from '../support/random.js';
import { tf } from '../support/tf.js';
import { copyWeightsToTfjs, type ParameterValues, type TfWithLayers, tfjsModelFromSpec } from '../support/tfjs_from_spec.mjs';
import { expectCode } from '../support/expect_error.js';

const tfx = { ...tf, ...tfl } as unknown as TfWithLayers;
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'torchvision');

const worst = new Map<string, number>();
afterAll(async () => {
  if (worst.size === 0) return;
  const dir = join(process.cwd(), 'build', 'test-report');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'import.test.ts.json'), JSON.stringify(Object.fromEntries(worst), null, 2));
});

/**
 * Asserts max |a − e| ≤ 1e-4 · max |e| (over the whole batch) and returns max |a − e| / max |e|;
 * records error/tolerance (that value / 1e-4, as scripts/test-summary.mjs reads) under `label`.
 */
function expectLogitsClose(label: string, actual: Float32Array, expected: ArrayLike<number>): number {
  expect(actual.length).toBe(expected.length);
  let maxErr = 0;
  let maxRef = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    maxErr = Math.max(maxErr, Number.isFinite(a) ? Math.abs(a - e) : Infinity);
    maxRef = Math.max(maxRef, Math.abs(e));
  }
  const rel = maxErr / maxRef;
  worst.set(label, Math.max(worst.get(label) ?? 0, rel / 1e-4));
  expect(maxRef).toBeGreaterThan(0.05);
  expect(rel, `${label}: max |error| ${maxErr} vs max |logit| ${maxRef}`).toBeLessThanOrEqual(1e-4);
  return rel;
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'resnet-native-import-'));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------
// torchvision

interface TorchCase {
  name: string;
  block: 'basic' | 'bottleneck';
  layers: number[];
  widths: number[];
  groups: number;
  widthPerGroup: number;
  dtype: 'F32' | 'F16' | 'BF16';
  classes: number;
  input: [number, number, number, number];
}

const cases = JSON.parse(await readFile(join(FIXTURES, 'cases.json'), 'utf8')).cases as TorchCase[];
const io = (await readSafetensors(join(FIXTURES, 'cases.safetensors'))).tensors;
/** Full-size torchvision architectures: [key, torch shape, torch dtype] of each state_dict entry. */
const architectures = JSON.parse(await readFile(join(FIXTURES, 'architectures.json'), 'utf8')) as Record<string, [string, number[], string][]>;

/** The torchvision architecture of a case: torchvision's stem at width widths[0], four stages. */
function torchModel(c: TorchCase, overrides: { classes?: number } = {}): Model {
  const [, h, w, ch] = c.input;
  return models.resnet({
    name: c.name,
    seed: 7,
    classes: overrides.classes ?? c.classes,
    inputShape: [h, w, ch],
    block: c.block,
    ...(c.block === 'bottleneck' ? { groups: c.groups, widthPerGroup: c.widthPerGroup } : {}),
    stem: [
      { type: 'conv2d', filters: c.widths[0]!, kernelSize: 7, strides: 2, padding: 3 },
      { type: 'batchNorm' },
      { type: 'relu' },
      { type: 'maxPool', poolSize: 3, strides: 2, padding: 1 },
    ],
    stages: c.layers.map((blocks, i) => ({ blocks, width: c.widths[i]!, stride: i === 0 ? 1 : 2 })),
  });
}

const caseFile = (c: TorchCase) => join(FIXTURES, `${c.name}.safetensors`);

/** Writes a copy of a case's state_dict with `edit` applied to its tensor list. */
async function editedCopy(c: TorchCase, file: string, edit: (tensors: SafetensorsTensorInput[]) => SafetensorsTensorInput[]): Promise<string> {
  const { tensors } = await readSafetensors(caseFile(c));
  const list: SafetensorsTensorInput[] = [...tensors].map(([name, t]) => ({ name, shape: t.shape, dtype: t.dtype, data: t.data }));
  const path = join(tmp, file);
  await writeFile(path, encodeSafetensors(edit(list)));
  return path;
}

describe('loadTorchvision', () => {
  it('the fixtures cover F32, F16 and BF16, basic and grouped / wide bottleneck blocks', () => {
    expect(cases.map((c) => c.dtype).sort()).toEqual(['BF16', 'F16', 'F32']);
    expect(cases.some((c) => c.block === 'bottleneck' && c.groups > 1)).toBe(true);
    expect(cases.some((c) => c.block === 'bottleneck' && c.widthPerGroup === 128)).toBe(true);
  });

  for (const c of cases) {
    it(`${c.name} (${c.block}, groups ${c.groups}, ${c.dtype}): logits equal PyTorch's`, async () => {
      const model = torchModel(c);
      const { tensors } = await readSafetensors(caseFile(c));
      const result = await loadTorchvision(model, caseFile(c));
      const counters = [...tensors.keys()].filter((k) => k.endsWith('num_batches_tracked'));
      expect(counters.length).toBeGreaterThan(0);
      expect(result.ignored.sort()).toEqual(counters.sort());
      expect(result.loaded.length).toBe(model.parameterInfo().length);
      expect(result.loaded.length + counters.length).toBe(tensors.size);
      expect(result.missing).toEqual([]);
      expect(result.unexpected).toEqual([]);

      const x = io.get(`${c.name}.input`)!;
      const expected = io.get(`${c.name}.logits`)!;
      expect(x.shape).toEqual(c.input);
      const input = Tensor.fromArray(x.data as Float32Array, x.shape);
      const logits = await model.predict(input);
      expect(logits.shape).toEqual([c.input[0], c.classes]);
      const rel = expectLogitsClose(`import torchvision ${c.name}`, logits.toFloat32Array(), expected.data as Float32Array);
      console.log(`torchvision ${c.name} (${c.dtype}): max |ours - torch| / max |torch| = ${rel.toExponential(2)}`);
      input.dispose();
      logits.dispose();
      model.dispose();
    });
  }

  // Full-size torchvision state_dicts (keys, shapes and dtypes from torchvision's constructors,
  // values a BF16 pattern made here): every name and layout of the named builders fits.
  const builders: Record<string, () => Model> = {
    resnet18: () => models.resnet18({ seed: 1 }),
    resnet50: () => models.resnet50({ seed: 1 }),
    resnext50_32x4d: () => models.resnext50_32x4d({ seed: 1 }),
    wide_resnet50_2: () => models.wideResnet50_2({ seed: 1 }),
  };
  for (const [arch, entries] of Object.entries(architectures)) {
    it(`fits torchvision's full-size ${arch} state_dict`, async () => {
      // BF16 bit pattern 0x3f80 + (i mod 128): values in [1, 2), distinct along the last torch axis.
      const pattern = (numel: number) => {
        const bits = new Uint16Array(numel);
        for (let i = 0; i < numel; i++) bits[i] = 0x3f80 + (i & 127);
        return bits;
      };
      const tensors: SafetensorsTensorInput[] = entries.map(([name, shape, dtype]) => {
        const numel = shape.reduce((a, b) => a * b, 1);
        return dtype === 'int64'
          ? { name, shape, dtype: 'I64' as const, data: new BigInt64Array(numel) }
          : { name, shape, dtype: 'BF16' as const, data: () => pattern(numel) };
      });
      const path = join(tmp, `${arch}.safetensors`);
      await writeFile(path, encodeSafetensors(tensors));
      const model = builders[arch]!();
      try {
        const result = await loadTorchvision(model, path);
        expect(result.loaded.length).toBe(entries.filter((e) => e[2] !== 'int64').length);
        expect(result.ignored.length).toBe(entries.filter((e) => e[2] === 'int64').length);
        // conv1 [64, 3, 7, 7] (OIHW) at torch index (o, i, y, x) → ours (y, x, i, o).
        const ours = model.getParameter('conv1.weight');
        const bf16 = (i: number) => new Float32Array(new Uint32Array([(0x3f80 + (i % 128)) << 16]).buffer)[0]!;
        for (const [o, i, y, x] of [
          [0, 0, 0, 0],
          [63, 2, 6, 6],
          [17, 1, 3, 5],
        ] as const) {
          expect(ours[((y * 7 + x) * 3 + i) * 64 + o]).toBe(bf16(((o * 3 + i) * 7 + y) * 7 + x));
        }
      } finally {
        model.dispose();
        await unlink(path);
      }
    });
  }

  it('converts OIHW conv and [out, in] linear weights to HWIO and [in, out]', async () => {
    const c = cases[0]!;
    const model = torchModel(c);
    await loadTorchvision(model, caseFile(c));
    const { tensors } = await readSafetensors(caseFile(c));
    const conv = tensors.get('layer1.0.conv1.weight')!;
    const [o, i, kh, kw] = conv.shape as [number, number, number, number];
    const ours = model.getParameter('layer1.0.conv1.weight');
    const src = conv.data as Float32Array;
    for (const [oc, ic, y, xx] of [
      [0, 0, 0, 0],
      [o - 1, 1, 2, 0],
      [3, i - 1, 1, 2],
    ] as const) {
      expect(ours[((y * kw + xx) * i + ic) * o + oc]).toBe(src[((oc * i + ic) * kh + y) * kw + xx]);
    }
    const fc = tensors.get('fc.weight')!;
    const [out, inF] = fc.shape as [number, number];
    const fcOurs = model.getParameter('fc.weight');
    expect(fcOurs[7 * out + 3]).toBe((fc.data as Float32Array)[3 * inF + 7]);
    expect(model.getParameter('layer2.0.bn1.running_var')).toEqual(tensors.get('layer2.0.bn1.running_var')!.data);
    model.dispose();
  });

  it("accepts a 'module.' prefix on every key (DataParallel checkpoints)", async () => {
    const c = cases[0]!;
    const path = await editedCopy(c, 'module.safetensors', (list) => list.map((t) => ({ ...t, name: `module.${t.name}` })));
    const model = torchModel(c);
    const result = await loadTorchvision(model, path);
    expect(result.loaded).toContain('fc.weight');
    model.dispose();
  });

  it('rejects a missing file with E_IO', async () => {
    const model = torchModel(cases[0]!);
    await expectCode(() => loadTorchvision(model, join(tmp, 'nope.safetensors')), 'E_IO', 'nope.safetensors');
    model.dispose();
  });

  it('rejects a model of another architecture with E_FORMAT naming tensors and shapes, leaving the model as it was', async () => {
    const c = cases[0]!;
    const model = torchModel(c, { classes: c.classes + 1 });
    const before = model.getParameter('conv1.weight');
    const err = await expectCode(
      () => loadTorchvision(model, caseFile(c)),
      'E_FORMAT',
      "'fc.weight'",
      `[${c.classes}, 32]`,
      `[${c.classes + 1}, 32]`,
    );
    expect(err.message).toContain("'fc.bias'");
    expect(model.getParameter('conv1.weight')).toEqual(before);
    model.dispose();
  });

  it('rejects a basic-block checkpoint loaded into a bottleneck model', async () => {
    const model = torchModel(cases[1]!);
    await expectCode(() => loadTorchvision(model, caseFile(cases[0]!)), 'E_FORMAT', 'missing from the file', 'layer1.0.conv3.weight');
    model.dispose();
  });

  it('rejects a missing tensor, and loads it with strict: false', async () => {
    const c = cases[0]!;
    const path = await editedCopy(c, 'missing.safetensors', (list) => list.filter((t) => t.name !== 'layer1.0.bn1.running_var'));
    const model = torchModel(c);
    await expectCode(() => loadTorchvision(model, path), 'E_FORMAT', '1 parameter(s) of the model missing', 'layer1.0.bn1.running_var');
    const result = await loadTorchvision(model, path, { strict: false });
    expect(result.missing).toEqual(['layer1.0.bn1.running_var']);
    model.dispose();
  });

  it('rejects an unexpected tensor, and skips it with strict: false', async () => {
    const c = cases[0]!;
    const extra = { name: 'head.extra.weight', shape: [2, 3], dtype: 'F32' as const, data: new Float32Array(6) };
    const path = await editedCopy(c, 'extra.safetensors', (list) => [...list, extra]);
    const model = torchModel(c);
    await expectCode(() => loadTorchvision(model, path), 'E_FORMAT', 'unexpected', "'head.extra.weight' [2, 3]");
    const result = await loadTorchvision(model, path, { strict: false });
    expect(result.unexpected).toEqual(['head.extra.weight']);
    model.dispose();
  });

  it('rejects a transposed conv weight, naming both layouts', async () => {
    const c = cases[0]!;
    const path = await editedCopy(c, 'hwio.safetensors', (list) => list.map((t) => (t.name === 'conv1.weight' ? { ...t, shape: [7, 7, 3, 8] } : t)));
    const model = torchModel(c);
    await expectCode(() => loadTorchvision(model, path), 'E_FORMAT', "'conv1.weight' is [7, 7, 3, 8]", 'needs [8, 3, 7, 7]', 'OIHW');
    model.dispose();
  });

  it('rejects an integer tensor where a parameter belongs', async () => {
    const c = cases[0]!;
    const path = await editedCopy(c, 'int.safetensors', (list) =>
      list.map((t) => (t.name === 'fc.bias' ? { name: t.name, shape: t.shape, dtype: 'I32' as const, data: new Int32Array(c.classes) } : t)),
    );
    const model = torchModel(c);
    await expectCode(() => loadTorchvision(model, path), 'E_FORMAT', "'fc.bias' is I32");
    model.dispose();
  });

  it('rejects a malformed file with E_FORMAT and bad arguments with E_ARG', async () => {
    const path = join(tmp, 'garbage.safetensors');
    await writeFile(path, Buffer.from('not a safetensors file at all'));
    const model = torchModel(cases[0]!);
    await expectCode(() => loadTorchvision(model, path), 'E_FORMAT');
    await expectCode(() => loadTorchvision({} as Model, caseFile(cases[0]!)), 'E_ARG');
    await expectCode(() => loadTorchvision(model, caseFile(cases[0]!), { strikt: true } as never), 'E_ARG', 'strikt');
    model.dispose();
  });
});

// ---------------------------------------------------------------------------------------
// Keras / tfjs layers format

/** Random parameters at O(1) activations: He-uniform kernels, BN statistics and affine in ±0.5 around 0 / 1, biases ±0.2. */
function randomize(model: Model, rng: Rng): void {
  for (const p of model.parameterInfo()) {
    const size = p.shape.reduce((a, b) => a * b, 1);
    const suffix = p.name.slice(p.layer.length + 1);
    const layer = model.spec.layers.find((l) => l.name === p.layer)!;
    let v: Float32Array;
    if (layer.type === 'batchNorm') {
      v = suffix === 'weight' || suffix === 'running_var' ? Float32Array.from(rng.array(size, 0.5), (x) => 1 + x) : rng.array(size, 0.5);
    } else if (p.shape.length === 1) {
      v = rng.array(size, 0.2);
    } else {
      const fanIn = size / p.shape[p.shape.length - 1]!;
      v = rng.array(size, Math.sqrt(6 / fanIn));
    }
    model.setParameter(p.name, v);
  }
}

/** Saves a tfjs-layers model as tfjs' file IO does (model.json + shards), cutting the weights into `shards` files. */
async function saveTfjs(net: tfl.LayersModel, dir: string, shards = 2): Promise<string> {
  await mkdir(dir, { recursive: true });
  let artifacts: tf.io.ModelArtifacts | undefined;
  await net.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  const a = artifacts!;
  const data = new Uint8Array(a.weightData as ArrayBuffer);
  const paths: string[] = [];
  for (let k = 0; k < shards; k++) {
    const name = `group1-shard${k + 1}of${shards}.bin`;
    // Cut at odd byte offsets: shards split tensors (and float32 values) anywhere.
    const from = k === 0 ? 0 : Math.floor((data.length * k) / shards) | 1;
    const to = k === shards - 1 ? data.length : Math.floor((data.length * (k + 1)) / shards) | 1;
    await writeFile(join(dir, name), data.subarray(from, to));
    paths.push(name);
  }
  const modelJson = {
    modelTopology: a.modelTopology,
    format: a.format,
    generatedBy: a.generatedBy,
    convertedBy: a.convertedBy,
    weightsManifest: [{ paths, weights: a.weightSpecs }],
  };
  const path = join(dir, 'model.json');
  await writeFile(path, JSON.stringify(modelJson));
  return path;
}

async function tfjsPredict(net: tfl.LayersModel, x: Float32Array, shape: number[]): Promise<Float32Array> {
  const input = tf.tensor(x, shape, 'float32');
  const out = net.predict(input) as tf.Tensor;
  const data = (await out.data()) as Float32Array;
  input.dispose();
  out.dispose();
  return data;
}

async function ourPredict(model: Model, x: Float32Array, shape: number[]): Promise<Float32Array> {
  const input = Tensor.fromArray(x, shape);
  const out = await model.predict(input);
  const data = out.toFloat32Array();
  input.dispose();
  out.dispose();
  return data;
}

/** Bottleneck blocks with squeeze-excite, conv biases and Keras' batch-norm epsilon. */
function namedCase(seed: number, overrides: { bnEpsilon?: number; width?: number } = {}): Model {
  return models.resnet({
    name: 'keras_named',
    seed,
    classes: 4,
    inputShape: [12, 14, 3],
    block: 'bottleneck',
    convBias: true,
    bnEpsilon: overrides.bnEpsilon ?? 1e-3,
    se: { reduction: 4 },
    stem: [{ type: 'conv2d', filters: 8, kernelSize: 3, strides: 1, padding: 1 }, { type: 'batchNorm' }, { type: 'relu' }],
    stages: [
      { blocks: 2, width: overrides.width ?? 4 },
      { blocks: 1, width: 8, stride: 2 },
    ],
  });
}

/**
 * torchvision's stem (7×7/2 conv padding 3, BN, ReLU, 3×3/2 max-pool padding 1), then
 * bottlenecks. The stem's 8 filters equal stage 1's inner width, so in block layer1.0 the
 * shortcut conv (8 → 32) and the branch's conv3 (8 → 32) have the same kernel shape, and so
 * do their batch norms.
 */
function structureOptions(seed: number, stage2Blocks = 2): ResNetOptions & { seed: number } {
  return {
    name: 'keras_structure',
    seed,
    classes: 3,
    inputShape: [20, 18, 3],
    block: 'bottleneck',
    stem: [
      { type: 'conv2d', filters: 8, kernelSize: 7, strides: 2, padding: 3 },
      { type: 'batchNorm' },
      { type: 'relu' },
      { type: 'maxPool', poolSize: 3, strides: 2, padding: 1 },
    ],
    stages: [
      { blocks: 1, width: 8 },
      { blocks: stage2Blocks, width: 4, stride: 2 },
    ],
  };
}

function structureCase(seed: number, stage2Blocks = 2): Model {
  return models.resnet(structureOptions(seed, stage2Blocks));
}

/** Keras applications' ResNet names: conv1_conv, conv2_block1_1_conv, conv2_block1_0_conv (shortcut), predictions, … */
function kerasName(n: string): string {
  const fixed: Record<string, string> = {
    conv1: 'conv1_conv',
    bn1: 'conv1_bn',
    relu: 'conv1_relu',
    maxpool: 'pool1_pool',
    avgpool: 'avg_pool',
    fc: 'predictions',
  };
  if (fixed[n]) return fixed[n]!;
  const m = /^layer(\d+)\.(\d+)\.(.+)$/.exec(n);
  if (m) {
    const p = `conv${Number(m[1]) + 1}_block${Number(m[2]) + 1}`;
    const r = m[3]!;
    const k = /^(conv|bn|relu)(\d)$/.exec(r);
    if (k) return `${p}_${k[2]}_${k[1]}`;
    const named: Record<string, string> = { 'downsample.0': '0_conv', 'downsample.1': '0_bn', add: 'add', relu: 'out' };
    if (named[r]) return `${p}_${named[r]}`;
  }
  throw new Error(`kerasName: no rule for '${n}'`);
}

/** The spec with Keras applications' names, each block's shortcut listed before its branch (as Keras' source builds it). */
function kerasStyleSpec(spec: Readonly<ModelSpec>): ModelSpec {
  const rename = (n: string) => (n === 'input' ? n : kerasName(n));
  const blockOf = (n: string) => /^(layer\d+\.\d+)\./.exec(n)?.[1];
  const layers = spec.layers.map((l, i) => ({ l, i }));
  layers.sort((a, b) => {
    const ba = blockOf(a.l.name);
    if (ba === undefined || ba !== blockOf(b.l.name)) return a.i - b.i;
    const da = a.l.name.includes('.downsample.') ? 0 : 1;
    const db = b.l.name.includes('.downsample.') ? 0 : 1;
    return da - db || a.i - b.i;
  });
  return {
    ...structuredClone(spec),
    layers: layers.map(({ l }) => ({ ...structuredClone(l), name: rename(l.name), inputs: l.inputs.map(rename) })),
    output: rename(spec.output),
  } as ModelSpec;
}

/** f32 → IEEE half bits, round to nearest even (normal and zero values; enough for weights). */
function toHalfBits(v: number): number {
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer)[0]!;
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  const mant = u & 0x7fffff;
  if (exp <= 0) return sign;
  let h = sign | (exp << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++;
  return h;
}

describe('loadKeras', () => {
  const rng = new Rng(1234);
  let namedDir = '';
  let namedSource: Model;
  let namedNet: tfl.LayersModel;
  let structureDir = '';
  let structureSource: Model;
  let structureNet: tfl.LayersModel;

  beforeAll(async () => {
    namedSource = namedCase(1);
    randomize(namedSource, rng);
    namedNet = tfjsModelFromSpec(tfx, namedSource.spec);
    copyWeightsToTfjs(tf, namedSource, namedNet, namedSource.spec);
    namedDir = join(tmp, 'named');
    await saveTfjs(namedNet, namedDir);

    structureSource = structureCase(2);
    randomize(structureSource, rng);
    const kSpec = kerasStyleSpec(structureSource.spec);
    structureNet = tfjsModelFromSpec(tfx, kSpec);
    const renamed: ParameterValues[] = structureSource.parameters().map((p) => ({
      name: kerasName(p.layer) + p.name.slice(p.layer.length),
      shape: p.shape,
      values: p.values,
    }));
    copyWeightsToTfjs(tf, renamed, structureNet, kSpec);
    structureDir = join(tmp, 'structure');
    await saveTfjs(structureNet, structureDir, 3);
  });

  afterAll(() => {
    namedSource?.dispose();
    structureSource?.dispose();
    namedNet?.dispose();
    structureNet?.dispose();
  });

  it('maps by name: a model saved from its tfjs twin predicts as the tfjs model', async () => {
    const model = namedCase(99);
    const result = await loadKeras(model, join(namedDir, 'model.json'));
    expect(result.mapping).toBe('name');
    expect(result.layers.every((p) => p.layer === p.kerasLayer)).toBe(true);
    expect(result.layers.map((p) => p.layer)).toContain('layer1.0.se.fc2');
    expect(result.loaded.length).toBe(model.parameterInfo().length);
    expect(result.epsilonMismatches).toEqual([]);
    for (const p of namedSource.parameters()) expect(model.getParameter(p.name), p.name).toEqual(p.values);

    const n = 3;
    const shape = [n, ...model.inputShape];
    const x = rng.array(shape.reduce((a, b) => a * b, 1));
    const expected = await tfjsPredict(namedNet, x, shape);
    const rel = expectLogitsClose('import keras by name', await ourPredict(model, x, shape), expected);
    console.log(`keras by name: max |ours - tfjs| / max |tfjs| = ${rel.toExponential(2)}`);
    model.dispose();
  });

  it('accepts the folder holding model.json', async () => {
    const model = namedCase(98);
    expect((await loadKeras(model, namedDir)).mapping).toBe('name');
    model.dispose();
  });

  it('flattens a model nested in a functional or a sequential model (transfer-learning style)', async () => {
    const inner = tfjsModelFromSpec(tfx, namedSource.spec);
    copyWeightsToTfjs(tf, namedSource, inner, namedSource.spec);
    const input = tfl.input({ shape: [...namedSource.inputShape], name: 'outer_input' });
    const outer = tfl.model({ inputs: input, outputs: inner.apply(input) as tfl.SymbolicTensor, name: 'outer' });
    const sequential = tfl.sequential({ layers: [inner], name: 'outer_sequential' });
    const shape = [2, ...namedSource.inputShape];
    const x = rng.array(shape.reduce((a, b) => a * b, 1));
    const expected = await tfjsPredict(inner, x, shape);
    for (const [label, net] of [
      ['functional', outer],
      ['sequential', sequential],
    ] as const) {
      const path = await saveTfjs(net, join(tmp, `nested_${label}`));
      const json = JSON.parse(await readFile(path, 'utf8'));
      expect(json.modelTopology.config.layers.some((l: { class_name: string }) => l.class_name === 'Model' || l.class_name === 'Functional')).toBe(
        true,
      );
      const model = namedCase(13);
      const result = await loadKeras(model, path);
      expect(result.mapping, label).toBe('name');
      expectLogitsClose(`import keras nested ${label}`, await ourPredict(model, x, shape), expected);
      model.dispose();
    }
    inner.dispose();
  });

  it("maps by structure: Keras applications' names and layer order, equal-shaped shortcut and branch convs", async () => {
    const json = JSON.parse(await readFile(join(structureDir, 'model.json'), 'utf8'));
    const order: string[] = json.modelTopology.config.layers.map((l: { name: string }) => l.name);
    // Keras lists layers by depth: the shortcut conv comes after the branch's first convs.
    expect(order.indexOf('conv2_block1_0_conv')).toBeGreaterThan(order.indexOf('conv2_block1_1_conv'));

    const model = structureCase(77);
    const result = await loadKeras(model, join(structureDir, 'model.json'));
    expect(result.mapping).toBe('structure');
    const pairs = new Map(result.layers.map((p) => [p.layer, p.kerasLayer]));
    expect(pairs.get('layer1.0.downsample.0')).toBe('conv2_block1_0_conv');
    expect(pairs.get('layer1.0.conv3')).toBe('conv2_block1_3_conv');
    expect(pairs.get('layer1.0.downsample.1')).toBe('conv2_block1_0_bn');
    expect(pairs.get('layer1.0.bn3')).toBe('conv2_block1_3_bn');
    expect(pairs.get('fc')).toBe('predictions');
    for (const p of structureSource.parameters()) expect(model.getParameter(p.name), p.name).toEqual(p.values);

    const n = 2;
    const shape = [n, ...model.inputShape];
    const x = rng.array(shape.reduce((a, b) => a * b, 1));
    const expected = await tfjsPredict(structureNet, x, shape);
    const rel = expectLogitsClose('import keras by structure', await ourPredict(model, x, shape), expected);
    console.log(`keras by structure: max |ours - tfjs| / max |tfjs| = ${rel.toExponential(2)}`);
    model.dispose();
  });

  it('rejects convolutions whose strides differ (weights of the same shapes)', async () => {
    const model = models.resnet({ ...structureOptions(8), strideOn: '1x1' });
    await expectCode(
      () => loadKeras(model, structureDir),
      'E_FORMAT',
      "Keras 'conv3_block1_1_conv' has strides [1, 1] but ours 'layer2.0.conv1' [2, 2]",
      "strideOn: '1x1'",
    );
    model.dispose();
  });

  it("rejects mapping: 'name' when the names differ", async () => {
    const model = structureCase(5);
    await expectCode(() => loadKeras(model, structureDir, { mapping: 'name' }), 'E_FORMAT', 'mapping by name', "'layer1.0.conv1'");
    model.dispose();
  });

  it('rejects a batch-norm epsilon mismatch unless allowEpsilonMismatch', async () => {
    const model = namedCase(3, { bnEpsilon: 1e-5 });
    const before = model.getParameter('bn1.weight');
    await expectCode(
      () => loadKeras(model, namedDir),
      'E_FORMAT',
      'epsilon',
      "Keras 'bn1' 0.001 vs ours 'bn1' 0.00001",
      'bnEpsilon: 0.001',
      'allowEpsilonMismatch',
    );
    expect(model.getParameter('bn1.weight')).toEqual(before);
    const result = await loadKeras(model, namedDir, { allowEpsilonMismatch: true });
    const bns = model.spec.layers.filter((l) => l.type === 'batchNorm').length;
    expect(result.epsilonMismatches.length).toBe(bns);
    expect(result.epsilonMismatches[0]).toEqual({ layer: 'bn1', kerasLayer: 'bn1', epsilon: 1e-5, kerasEpsilon: 1e-3 });
    expect(model.getParameter('bn1.weight')).toEqual(namedSource.getParameter('bn1.weight'));
    model.dispose();
  });

  it('rejects a shape mismatch by name, naming the weight and both shapes, leaving the model as it was', async () => {
    const model = namedCase(4, { width: 8 });
    const before = model.getParameter('conv1.weight');
    await expectCode(() => loadKeras(model, namedDir), 'E_FORMAT', "'layer1.0.conv1/kernel' is [1, 1, 8, 4]", '[1, 1, 8, 8]');
    expect(model.getParameter('conv1.weight')).toEqual(before);
    model.dispose();
  });

  it('rejects a shape mismatch by structure, naming both layers', async () => {
    const model = namedCase(4, { width: 8 });
    await expectCode(() => loadKeras(model, structureDir), 'E_FORMAT', 'mapping by structure', "'conv1'", "'conv1_conv/kernel' is [7, 7, 3, 8]");
    model.dispose();
  });

  it('rejects a file with more weighted layers than the model (wrong tensor count)', async () => {
    const model = structureCase(6, 1);
    // The model's 'fc' meets the file's next block where the file goes on.
    await expectCode(
      () => loadKeras(model, structureDir),
      'E_FORMAT',
      'mapping by structure',
      "dense 'fc'",
      "Keras 'conv3_block2_1_conv' is a Conv2D",
    );
    model.dispose();
  });

  it('rejects Keras layers with weights that the model lacks (mapping by name)', async () => {
    // The named file has two blocks in stage 1; this model one. Every layer of ours is in the file.
    const model = models.resnet({
      name: 'keras_named_short',
      seed: 12,
      classes: 4,
      inputShape: [12, 14, 3],
      block: 'bottleneck',
      convBias: true,
      bnEpsilon: 1e-3,
      se: { reduction: 4 },
      stem: [{ type: 'conv2d', filters: 8, kernelSize: 3, strides: 1, padding: 1 }, { type: 'batchNorm' }, { type: 'relu' }],
      stages: [
        { blocks: 1, width: 4 },
        { blocks: 1, width: 8, stride: 2 },
      ],
    });
    await expectCode(
      () => loadKeras(model, namedDir),
      'E_FORMAT',
      'mapping by name',
      'Keras layer(s) with weights that the model does not have',
      "'layer1.1.conv1'",
    );
    model.dispose();
  });

  it('rejects a model with more weighted layers than the file', async () => {
    const model = structureCase(6, 3);
    await expectCode(() => loadKeras(model, structureDir), 'E_FORMAT', 'mapping by structure', "'layer2.2.conv1'");
    model.dispose();
  });

  it('rejects a manifest whose weights do not add up to the shards (a weight entry removed)', async () => {
    const dir = join(tmp, 'dropped');
    await saveTfjs(namedNet, dir);
    const path = join(dir, 'model.json');
    const json = JSON.parse(await readFile(path, 'utf8'));
    const weights = json.weightsManifest[0].weights as { name: string }[];
    json.weightsManifest[0].weights = weights.filter((w) => w.name !== 'bn1/moving_variance');
    await writeFile(path, JSON.stringify(json));
    const model = namedCase(8);
    await expectCode(() => loadKeras(model, path), 'E_FORMAT', 'hold', 'bytes', 'need');
    model.dispose();
  });

  it('rejects a missing weight shard and a missing model.json with E_IO', async () => {
    const dir = join(tmp, 'noshard');
    const path = await saveTfjs(namedNet, dir);
    await unlink(join(dir, 'group1-shard2of2.bin'));
    const model = namedCase(9);
    await expectCode(() => loadKeras(model, path), 'E_IO', 'group1-shard2of2.bin');
    await expectCode(() => loadKeras(model, join(tmp, 'nowhere', 'model.json')), 'E_IO', 'model.json');
    model.dispose();
  });

  it('rejects malformed JSON and a manifest without topology with E_FORMAT', async () => {
    const dir = join(tmp, 'bad');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'model.json'), '{ "modelTopology": ');
    const model = namedCase(10);
    await expectCode(() => loadKeras(model, join(dir, 'model.json')), 'E_FORMAT', 'not valid JSON');
    await writeFile(join(dir, 'model.json'), JSON.stringify({ weightsManifest: [] }));
    await expectCode(() => loadKeras(model, join(dir, 'model.json')), 'E_FORMAT', 'modelTopology');
    await expectCode(() => loadKeras(model, namedDir, { mapping: 'position' } as never), 'E_ARG', 'mapping');
    model.dispose();
  });

  it('dequantizes float16 and uint8 weights (tfjs quantization)', async () => {
    const dir = join(tmp, 'quantized');
    const src = await saveTfjs(namedNet, dir, 1);
    const json = JSON.parse(await readFile(src, 'utf8'));
    const raw = new Uint8Array(await readFile(join(dir, 'group1-shard1of1.bin')));
    const specs = json.weightsManifest[0].weights as { name: string; shape: number[]; dtype: string; quantization?: object }[];
    const parts: Uint8Array[] = [];
    const expected = new Map<string, Float32Array>();
    let offset = 0;
    specs.forEach((s, i) => {
      const numel = s.shape.reduce((a, b) => a * b, 1);
      const values = new Float32Array(raw.slice(offset, offset + numel * 4).buffer);
      offset += numel * 4;
      if (i % 2 === 0) {
        const bits = Uint16Array.from(values, toHalfBits);
        parts.push(new Uint8Array(bits.buffer));
        s.quantization = { dtype: 'float16', original_dtype: 'float32' };
        // Every float16 is a float32: the round trip through Math.fround of the half value.
        const back = new Float32Array(numel);
        for (let k = 0; k < numel; k++) {
          const h = bits[k]!;
          const e = (h >> 10) & 0x1f;
          back[k] = (h & 0x8000 ? -1 : 1) * (e === 0 ? (h & 0x3ff) * 2 ** -24 : (1 + (h & 0x3ff) / 1024) * 2 ** (e - 15));
        }
        expected.set(s.name, back);
      } else {
        let lo = Infinity;
        let hi = -Infinity;
        for (const v of values) {
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
        }
        const scale = hi > lo ? (hi - lo) / 255 : 1;
        const q = Uint8Array.from(values, (v) => Math.round((v - lo) / scale));
        parts.push(q);
        s.quantization = { dtype: 'uint8', scale, min: lo, original_dtype: 'float32' };
        expected.set(
          s.name,
          Float32Array.from(q, (v) => v * scale + lo),
        );
      }
    });
    const total = parts.reduce((a, p) => a + p.length, 0);
    const data = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      data.set(p, at);
      at += p.length;
    }
    await writeFile(join(dir, 'group1-shard1of1.bin'), data);
    await writeFile(src, JSON.stringify(json));

    const model = namedCase(11);
    await loadKeras(model, src);
    const short: Record<string, string> = {
      kernel: 'weight',
      bias: 'bias',
      gamma: 'weight',
      beta: 'bias',
      moving_mean: 'running_mean',
      moving_variance: 'running_var',
    };
    for (const [name, values] of expected) {
      const slash = name.lastIndexOf('/');
      const ours = `${name.slice(0, slash)}.${short[name.slice(slash + 1)]}`;
      expect(model.getParameter(ours), name).toEqual(values);
    }
    model.dispose();
  });
});
