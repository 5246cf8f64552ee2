// PyTorch .pth files (lib/io/torch_file.ts, lib/io/pytorch_pickle.ts) through io.loadTorchvision.
//
// test/fixtures/pytorch/ (scripts/make-pth-fixtures.py, torch.save of torch 2.13) holds the
// state_dicts of the test/fixtures/torchvision/ cases: F32, F16 (HalfStorage),
// BF16 (BFloat16Storage); one with non-contiguous views (a transposed fc.weight, a channels_last
// conv1.weight, batch-norm tensors as slices of one shared storage, a stride-2 view, an F64
// tensor); one nested in a training checkpoint; a malicious pickle; a TorchScript archive; the
// legacy format. A model loaded from a .pth must give PyTorch's logits (cases.safetensors, the
// same reference test/io/import.test.ts uses: max |ours − torch| ≤ 1e-4 · max |torch|), and its
// parameters must equal, bit for bit, those loaded from the case's safetensors file.
import { existsSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, describe, expect, it } from 'vitest';

import { type Model, models, Tensor } from '../../lib/index.js';
import { encodeSafetensors, readSafetensors } from '../../lib/io/safetensors.js';
import { TorchFile } from '../../lib/io/torch_file.js';
import { loadTorchvision } from '../../lib/io/torchvision.js';
import { expectCode } from '../support/expect_error.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const PTH = join(HERE, '..', 'fixtures', 'pytorch');
const TV = join(HERE, '..', 'fixtures', 'torchvision');
const tmp = mkdtempSync(join(tmpdir(), 'rn-pth-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface TorchCase {
  name: string;
  block: 'basic' | 'bottleneck';
  layers: number[];
  widths: number[];
  groups: number;
  widthPerGroup: number;
  dtype: string;
  classes: number;
  input: [number, number, number, number];
}
const cases = JSON.parse(await readFile(join(TV, 'cases.json'), 'utf8')).cases as TorchCase[];
const io = (await readSafetensors(join(TV, 'cases.safetensors'))).tensors;
const byName = (name: string) => cases.find((c) => c.name === name)!;

function torchModel(c: TorchCase, classes = c.classes): Model {
  const [, h, w, ch] = c.input;
  return models.resnet({
    name: c.name,
    seed: 7,
    classes,
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

async function expectTorchLogits(model: Model, c: TorchCase): Promise<number> {
  const x = io.get(`${c.name}.input`)!;
  const expected = io.get(`${c.name}.logits`)!.data as Float32Array;
  const input = Tensor.fromArray(x.data as Float32Array, x.shape);
  const logits = await model.predict(input);
  const actual = logits.toFloat32Array();
  input.dispose();
  logits.dispose();
  let maxErr = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    maxErr = Math.max(maxErr, Number.isFinite(actual[i]!) ? Math.abs(actual[i]! - expected[i]!) : Infinity);
    maxRef = Math.max(maxRef, Math.abs(expected[i]!));
  }
  expect(actual.length).toBe(expected.length);
  expect(maxRef).toBeGreaterThan(0.05);
  expect(maxErr / maxRef).toBeLessThanOrEqual(1e-4);
  return maxErr / maxRef;
}

/** Every parameter of `a` equals `b`'s bit for bit. */
function expectSameParameters(a: Model, b: Model, except: (name: string) => boolean = () => false): void {
  for (const p of a.parameterInfo()) {
    if (except(p.name)) continue;
    expect(a.getParameter(p.name), p.name).toEqual(b.getParameter(p.name));
  }
}

describe('loadTorchvision on torch.save files', () => {
  for (const [file, caseName, dtype] of [
    ['resnet_basic.pth', 'resnet_basic', 'F32'],
    ['resnext_bottleneck.pth', 'resnext_bottleneck', 'F16'],
    ['wide_bottleneck.pth', 'wide_bottleneck', 'BF16'],
  ] as const) {
    it(`${file} (${dtype}): the safetensors file's values, and PyTorch's logits`, async () => {
      const c = byName(caseName);
      const fromPth = torchModel(c);
      const fromSafetensors = torchModel(c);
      const result = await loadTorchvision(fromPth, join(PTH, file));
      await loadTorchvision(fromSafetensors, join(TV, `${caseName}.safetensors`));
      expect(result.loaded.length).toBe(fromPth.parameterInfo().length);
      expect(result.ignored.length).toBeGreaterThan(0);
      expect(result.ignored.every((k) => k.endsWith('num_batches_tracked'))).toBe(true);
      expect(result.excluded).toEqual([]);
      const file0 = await TorchFile.open(join(PTH, file), 'test');
      expect(file0.entry('conv1.weight').dtype).toBe(dtype);
      expect(file0.entry('bn1.num_batches_tracked')).toEqual({ shape: [], dtype: 'I64' });
      expectSameParameters(fromPth, fromSafetensors);
      const rel = await expectTorchLogits(fromPth, c);
      console.log(`${file}: max |ours - torch| / max |torch| = ${rel.toExponential(2)}`);
      fromPth.dispose();
      fromSafetensors.dispose();
    });
  }

  it('copies out non-contiguous views: transposed, channels_last, shared storage with offsets, strided, F64', async () => {
    const c = byName('resnet_basic');
    const views = await TorchFile.open(join(PTH, 'resnet_basic_views.pth'), 'test');
    expect(views.entry('fc.bias').dtype).toBe('F64');
    const model = torchModel(c);
    const reference = torchModel(c);
    await loadTorchvision(model, join(PTH, 'resnet_basic_views.pth'));
    await loadTorchvision(reference, join(TV, 'resnet_basic.safetensors'));
    expectSameParameters(model, reference);
    await expectTorchLogits(model, c);
    model.dispose();
    reference.dispose();
  });

  it("finds the state_dict nested in a training checkpoint under 'state_dict'", async () => {
    const c = byName('resnet_basic');
    const nested = await TorchFile.open(join(PTH, 'resnet_basic_nested.pth'), 'test');
    expect(nested.picked).toBe('state_dict');
    const model = torchModel(c);
    await loadTorchvision(model, join(PTH, 'resnet_basic_nested.pth'));
    await expectTorchLogits(model, c);
    model.dispose();
  });

  it('tells the formats apart by content, not by the file name', async () => {
    const c = byName('resnet_basic');
    const pthNamedSafetensors = join(tmp, 'weights.safetensors');
    const safetensorsNamedPth = join(tmp, 'weights.pth');
    await copyFile(join(PTH, 'resnet_basic.pth'), pthNamedSafetensors);
    await copyFile(join(TV, 'resnet_basic.safetensors'), safetensorsNamedPth);
    const a = torchModel(c);
    const b = torchModel(c);
    await loadTorchvision(a, pthNamedSafetensors);
    await loadTorchvision(b, safetensorsNamedPth);
    expectSameParameters(a, b);
    // A safetensors file whose header length starts with the byte 0x80 (a pickle's PROTO) is still safetensors.
    const { tensors } = await readSafetensors(join(TV, 'resnet_basic.safetensors'));
    const list = [...tensors].map(([name, t]) => ({ name, shape: t.shape, dtype: t.dtype, data: t.data }));
    let encoded = encodeSafetensors(list);
    for (let pad = 0; encoded[0] !== 0x80; pad++) encoded = encodeSafetensors(list, { pad: 'x'.repeat(pad) });
    const tricky = join(tmp, 'tricky.pth');
    await writeFile(tricky, encoded);
    const c2 = torchModel(c);
    await loadTorchvision(c2, tricky);
    expectSameParameters(c2, b);
    a.dispose();
    b.dispose();
    c2.dispose();
  });

  it('refuses a pickle that calls os.system, naming the file and the global, without running it', async () => {
    const marker = '/tmp/resnet-native-pwned';
    if (existsSync(marker)) unlinkSync(marker);
    const model = torchModel(byName('resnet_basic'));
    await expectCode(() => loadTorchvision(model, join(PTH, 'malicious.pth')), 'E_FORMAT', 'malicious.pth', 'system', 'allow-list');
    expect(existsSync(marker)).toBe(false);
    model.dispose();
  });

  it('refuses TorchScript archives and the legacy format, saying what to do', async () => {
    const model = torchModel(byName('resnet_basic'));
    await expectCode(() => loadTorchvision(model, join(PTH, 'torchscript.pt')), 'E_FORMAT', 'torchscript.pt', 'TorchScript', 'state_dict()');
    await expectCode(() => loadTorchvision(model, join(PTH, 'legacy.pth')), 'E_FORMAT', 'legacy.pth', '_use_new_zipfile_serialization=True');
    // A bare pickle (pickle.dump, not torch.save) named .pt.
    const bare = join(tmp, 'bare.pt');
    await writeFile(bare, Buffer.from([0x80, 0x04, 0x95, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0x7d, 0x94, 0x2e]));
    await expectCode(() => loadTorchvision(model, bare), 'E_FORMAT', 'bare.pt', 'neither a PyTorch file');
    model.dispose();
  });
});

describe('loadTorchvision exclude', () => {
  it('keeps the parameters it matches (a replaced head) and loads the rest, from .pth and safetensors', async () => {
    const c = byName('resnet_basic');
    const reference = torchModel(c);
    await loadTorchvision(reference, join(TV, 'resnet_basic.safetensors'));
    for (const file of [join(PTH, 'resnet_basic.pth'), join(TV, 'resnet_basic.safetensors')]) {
      const model = torchModel(c, c.classes + 4); // another head: fc is [32, 9]
      const fcBefore = model.getParameter('fc.weight');
      const biasBefore = model.getParameter('fc.bias');
      await expectCode(() => loadTorchvision(model, file), 'E_FORMAT', "'fc.weight'");
      const result = await loadTorchvision(model, file, { exclude: /^fc\./ });
      expect(result.excluded.sort()).toEqual(['fc.bias', 'fc.weight']);
      expect(result.loaded).not.toContain('fc.weight');
      expect(result.missing).toEqual([]);
      expect(model.getParameter('fc.weight')).toEqual(fcBefore);
      expect(model.getParameter('fc.bias')).toEqual(biasBefore);
      expectSameParameters(model, reference, (n) => n.startsWith('fc.'));
      model.dispose();
    }
    reference.dispose();
  });

  it('a global or sticky RegExp matches every name (no lastIndex state), and a non-RegExp is E_ARG', async () => {
    const c = byName('resnet_basic');
    const model = torchModel(c, 2);
    const result = await loadTorchvision(model, join(PTH, 'resnet_basic.pth'), { exclude: /^fc\./gy });
    expect(result.excluded.sort()).toEqual(['fc.bias', 'fc.weight']);
    await expectCode(() => loadTorchvision(model, join(PTH, 'resnet_basic.pth'), { exclude: '^fc' as never }), 'E_ARG', 'exclude');
    model.dispose();
  });
});
