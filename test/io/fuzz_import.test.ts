// Fuzzing the weight importers: loadTorchvision (a real torchvision state_dict from
// test/fixtures/torchvision, mutated byte-wise and structurally) and loadKeras (a tfjs-layers
// model.json + weight shard saved by tfjs itself, its JSON and its shard mutated). Every input
// must load or throw a ResNetError; no buffer may outgrow the files it came from.
// The hostile families, seeded, every run: special files where model.json, a shard or the
// state_dict should be, shard paths leaving the model's folder (by '..', absolute, %-escaped
// or through a symlink), JSON nested past any stack, weight names of tens of thousands of
// segments (owner lookup in linear time), and a model.json over its size cap.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { type Model, models, ResNetError } from '../../lib/index.js';
import { loadKeras } from '../../lib/io/keras.js';
import { loadTorchvision } from '../../lib/io/torchvision.js';
import { expectCode } from '../support/expect_error.js';
import {
  describeUnexpected,
  expectPromptAnswer,
  largestAllocation,
  makeSpecialFile,
  mutateBytes,
  mutateJson,
  nestJson,
  NESTING_DEPTHS,
  releaseFifos,
  SPECIAL_KINDS,
  within,
} from '../support/fuzz.js';
import { Rng } from '../support/random.js';
import { tf } from '../support/tf.js';
import { copyWeightsToTfjs, type TfWithLayers, tfjsModelFromSpec } from '../support/tfjs_from_spec.mjs';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'torchvision');
const root = mkdtempSync(join(tmpdir(), 'rn-fuzz-import-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(releaseFifos);

/** Widening F16/BF16 → F32 doubles a tensor; the half-float table is 256 KiB once. */
const allowance = (fileBytes: number) => 2 * fileBytes + 512 * 1024;

function expectResNetError(error: unknown, where: string, codes: string[], outcomes: Map<string, number>): void {
  expect(error instanceof ResNetError, `${where}: ${describeUnexpected(error)}`).toBe(true);
  const code = (error as ResNetError).code;
  expect(codes, `${where}: ${describeUnexpected(error)}`).toContain(code);
  outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
}

describe('fuzzed torchvision imports', () => {
  it('every mutated state_dict loads or throws ResNetError, and no buffer outgrows the file', async () => {
    // resnet_basic: torchvision's stem at width 8, basic blocks [2, 1, 1, 1] at widths 8, 16, 24, 32, 5 classes.
    const model: Model = models.resnet({
      name: 'resnet_basic',
      seed: 1,
      classes: 5,
      inputShape: [40, 48, 3],
      block: 'basic',
      stem: [
        { type: 'conv2d', filters: 8, kernelSize: 7, strides: 2, padding: 3 },
        { type: 'batchNorm' },
        { type: 'relu' },
        { type: 'maxPool', poolSize: 3, strides: 2, padding: 1 },
      ],
      stages: [2, 1, 1, 1].map((blocks, i) => ({ blocks, width: [8, 16, 24, 32][i]!, stride: i === 0 ? 1 : 2 })),
    });
    const original = new Uint8Array(readFileSync(join(FIXTURES, 'resnet_basic.safetensors')));
    await loadTorchvision(model, join(FIXTURES, 'resnet_basic.safetensors')); // the unmutated file fits this model
    const headerEnd = 8 + Number(new DataView(original.buffer, original.byteOffset).getBigUint64(0, true));
    const head = JSON.parse(new TextDecoder().decode(original.subarray(8, headerEnd))) as unknown;
    const data = original.subarray(headerEnd);

    const rng = new Rng(4242);
    const runs = 2000;
    const outcomes = new Map<string, number>();
    const path = join(root, 'torch.safetensors');
    for (let i = 0; i < runs; i++) {
      let bytes: Uint8Array;
      let how: string;
      if (rng.next() < 0.6) {
        ({ data: bytes, how } = mutateBytes(original, rng, { start: 0, end: headerEnd }));
      } else {
        const { value, path: at } = mutateJson(head, rng);
        const json = new TextEncoder().encode(JSON.stringify(value));
        bytes = new Uint8Array(8 + json.length + data.length);
        new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
        bytes.set(json, 8);
        bytes.set(data, 8 + json.length);
        how = `header ${at}`;
      }
      writeFileSync(path, bytes);
      const { error, largest } = await largestAllocation(() => loadTorchvision(model, path, { strict: rng.next() < 0.7 }));
      const where = `input ${i} (${how}, ${bytes.length} bytes)`;
      if (error !== undefined) expectResNetError(error, where, ['E_FORMAT', 'E_IO', 'E_DTYPE', 'E_SHAPE'], outcomes);
      else outcomes.set('loaded', (outcomes.get('loaded') ?? 0) + 1);
      expect(largest, `${where}: largest buffer`).toBeLessThanOrEqual(allowance(bytes.length));
    }
    console.log(`fuzzed torchvision imports: ${runs} inputs → ${JSON.stringify(Object.fromEntries(outcomes))}`);
    expect(outcomes.get('E_FORMAT') ?? 0).toBeGreaterThan(runs / 4);

    // Hostile families: a special file instead of the state_dict, a header nested past the stack.
    for (let i = 0; i < 24; i++) {
      const dir = join(root, `torch-family${i}`);
      mkdirSync(dir);
      const p = join(dir, 'state_dict.safetensors');
      if (i % 2 === 0) {
        makeSpecialFile(SPECIAL_KINDS[(i / 2) % SPECIAL_KINDS.length]!, p);
        await expectCode(
          within(5000, () => loadTorchvision(model, p)),
          'E_IO',
          p,
        );
      } else {
        const json = new TextEncoder().encode(`${JSON.stringify(head).slice(0, -1)},"deep":${nestJson('0', rng.pick(NESTING_DEPTHS), rng)}}`);
        const bytes = new Uint8Array(8 + json.length + data.length);
        new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
        bytes.set(json, 8);
        bytes.set(data, 8 + json.length);
        writeFileSync(p, bytes);
        await expectCode(
          within(5000, () => loadTorchvision(model, p)),
          'E_FORMAT',
          p,
          'levels deep',
        );
      }
    }
    model.dispose();
  });
});

describe('fuzzed Keras / tfjs imports', () => {
  let model: Model;
  let modelJson: Record<string, unknown>;
  let shard: Uint8Array;

  beforeAll(async () => {
    model = models.resnetCifar({ depth: 8, inputShape: [8, 8, 3], classes: 3, seed: 2 });
    const net = tfjsModelFromSpec({ ...tf, ...tfl } as unknown as TfWithLayers, model.spec);
    copyWeightsToTfjs(tf, model, net, model.spec);
    let artifacts: tf.io.ModelArtifacts | undefined;
    await net.save(
      tf.io.withSaveHandler(async (a) => {
        artifacts = a;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    net.dispose();
    shard = new Uint8Array(artifacts!.weightData as ArrayBuffer);
    modelJson = {
      modelTopology: artifacts!.modelTopology,
      format: 'layers-model',
      weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: artifacts!.weightSpecs }],
    };
  });
  afterAll(() => model?.dispose());

  it('every mutated model.json / shard loads or throws ResNetError, and no buffer outgrows the files', async () => {
    const dir = join(root, 'keras');
    mkdirSync(dir, { recursive: true });
    const write = (json: Uint8Array, bin: Uint8Array) => {
      writeFileSync(join(dir, 'model.json'), json);
      writeFileSync(join(dir, 'group1-shard1of1.bin'), bin);
    };
    const jsonBytes = new TextEncoder().encode(JSON.stringify(modelJson));
    write(jsonBytes, shard);
    await loadKeras(model, join(dir, 'model.json')); // the unmutated files load

    const rng = new Rng(999);
    const runs = 1500;
    const outcomes = new Map<string, number>();
    for (let i = 0; i < runs; i++) {
      let json: Uint8Array = jsonBytes;
      let bin: Uint8Array = shard;
      let how: string;
      const r = rng.next();
      if (r < 0.45) {
        // Structure: the manifest is where sizes are declared, so it gets most of the attention.
        const target = rng.next() < 0.6 ? { weightsManifest: modelJson.weightsManifest } : { modelTopology: modelJson.modelTopology };
        const { value, path } = mutateJson(target, rng);
        json = new TextEncoder().encode(JSON.stringify({ ...modelJson, ...(value as object) }));
        how = `model.json ${path}`;
      } else if (r < 0.8) {
        ({ data: json, how } = mutateBytes(jsonBytes, rng));
        how = `model.json ${how}`;
      } else {
        ({ data: bin, how } = mutateBytes(shard, rng));
        how = `shard ${how}`;
      }
      write(json, bin);
      const { error, largest } = await largestAllocation(() => loadKeras(model, join(dir, 'model.json')));
      const where = `input ${i} (${how})`;
      if (error !== undefined) expectResNetError(error, where, ['E_FORMAT', 'E_IO', 'E_DTYPE', 'E_SHAPE'], outcomes);
      else outcomes.set('loaded', (outcomes.get('loaded') ?? 0) + 1);
      expect(largest, `${where}: largest buffer`).toBeLessThanOrEqual(allowance(json.length + bin.length));
    }
    console.log(`fuzzed Keras imports: ${runs} inputs → ${JSON.stringify(Object.fromEntries(outcomes))}`);
    expect(outcomes.get('E_FORMAT') ?? 0).toBeGreaterThan(runs / 4);
  });

  /** A folder holding `json` as model.json and the shard; returns model.json's path. */
  function kerasFolder(name: string, json: unknown): string {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'model.json'), typeof json === 'string' ? json : JSON.stringify(json));
    writeFileSync(join(dir, 'group1-shard1of1.bin'), shard);
    return join(dir, 'model.json');
  }

  /** modelJson with one more weight of no bytes, named `name`, in the manifest. */
  function withExtraWeight(name: string): Record<string, unknown> {
    const [group] = modelJson.weightsManifest as { paths: string[]; weights: unknown[] }[];
    return { ...modelJson, weightsManifest: [{ ...group!, weights: [...group!.weights, { name, shape: [0], dtype: 'float32' }] }] };
  }

  it('a weight name of tens of thousands of segments is refused in linear time (E_FORMAT), not after a minute', async () => {
    const time = async (segments: number) => {
      const path = kerasFolder(`segments${segments}`, withExtraWeight(`${'a/'.repeat(segments)}kernel`));
      const started = performance.now();
      await expectCode(() => loadKeras(model, path), 'E_FORMAT', 'belongs to no layer');
      return performance.now() - started;
    };
    await time(1000); // warm-up
    const small = await time(5_000);
    const large = await time(20_000);
    // The quadratic lookup took 0.7 s and 5 s here (69 s at 50,000 segments); the linear one, about 1 ms each.
    const largest = await time(50_000);
    console.log(`Keras owner lookup: 5,000 segments ${small.toFixed(1)} ms, 20,000 ${large.toFixed(1)} ms, 50,000 ${largest.toFixed(1)} ms`);
    expect(large).toBeLessThan(2000);
    expect(large / Math.max(small, 25), '4× the segments, about 4× the time (16× if quadratic)').toBeLessThan(6);
    expect(largest).toBeLessThan(3000);
  });

  it('hostile families, seeded: special files, shard paths leaving the folder, nesting, long names, oversized model.json', async () => {
    const rng = new Rng(16_16);
    const runs = 120;
    const seen = new Map<string, number>();
    const [group] = modelJson.weightsManifest as { paths: string[]; weights: unknown[] }[];
    const outside = join(root, 'outside.bin');
    writeFileSync(outside, shard);
    for (let i = 0; i < runs; i++) {
      const name = `family${i}`;
      const family = rng.pick(['special file', 'shard path', 'nested JSON', 'long weight name', 'oversized model.json'] as const);
      let path: string;
      let code = 'E_FORMAT';
      const mentions: string[] = [];
      let how: string;
      if (family === 'special file') {
        const kind = rng.pick(SPECIAL_KINDS);
        const onShard = rng.next() < 0.5;
        path = kerasFolder(name, modelJson);
        const special = onShard ? join(dirname(path), 'group1-shard1of1.bin') : path;
        rmSync(special);
        makeSpecialFile(kind, special);
        // /dev/zero is outside the model's folder: a shard linked to it is refused as such.
        code = onShard && kind === 'symlink to /dev/zero' ? 'E_FORMAT' : 'E_IO';
        mentions.push(special);
        how = `${kind} as ${onShard ? 'the shard' : 'model.json'}`;
      } else if (family === 'shard path') {
        const bad = rng.pick(['../outside.bin', outside, '%2e%2e/outside.bin', 'sub/../../outside.bin', 'link.bin', '.', '']);
        path = kerasFolder(name, { ...modelJson, weightsManifest: [{ ...group!, paths: [bad] }] });
        if (bad === 'link.bin') symlinkSync(outside, join(dirname(path), 'link.bin'));
        mentions.push(bad === '' ? 'paths must be file names' : bad);
        how = `'${bad}'`;
      } else if (family === 'nested JSON') {
        const depth = rng.pick(NESTING_DEPTHS);
        const text = JSON.stringify(modelJson);
        // Anywhere a value starts: a topology field, a layer's config, an inbound node, the manifest.
        // Each slot is just after a key's colon (a '"' escaped inside a string cannot end a key).
        const slots = [...text.matchAll(/(?<!\\)":(?=[[{"0-9tfn-])/g)].map((m) => m.index! + 2);
        const at = rng.pick(slots);
        path = kerasFolder(name, `${text.slice(0, at)}${nestJson('0', depth, rng)},"was":${text.slice(at)}`);
        mentions.push('levels deep');
        how = `depth ${depth} at character ${at}`;
      } else if (family === 'long weight name') {
        const segments = rng.int(1000, 50_000);
        path = kerasFolder(name, withExtraWeight(`${'x/'.repeat(segments)}kernel`));
        mentions.push('belongs to no layer');
        how = `${segments} segments`;
      } else {
        path = kerasFolder(name, modelJson);
        truncateSync(path, rng.int(64 << 20, 1 << 30) + 1); // sparse: free to make
        mentions.push(path, 'limit');
        how = 'sparse';
      }
      await expectPromptAnswer(`run ${i}: ${family} (${how})`, () => loadKeras(model, path), { code, mentions, limitMs: 5000, timeoutMs: 20_000 });
      seen.set(family, (seen.get(family) ?? 0) + 1);
    }
    console.log(`hostile Keras families: ${JSON.stringify(Object.fromEntries(seen))}`);
    expect(seen.size).toBe(5);
  });

  it('a manifest naming a shard outside the model folder, or not a regular file, is refused before reading it', async () => {
    const dir = join(root, 'keras-paths');
    mkdirSync(dir, { recursive: true });
    for (const bad of ['/dev/zero', '../../../../../../dev/zero', '.', '/proc/self/mem']) {
      const json = { ...modelJson, weightsManifest: [{ paths: [bad], weights: (modelJson.weightsManifest as { weights: unknown }[])[0]!.weights }] };
      writeFileSync(join(dir, 'model.json'), JSON.stringify(json));
      const { error, largest } = await largestAllocation(() => loadKeras(model, join(dir, 'model.json')));
      expect(error instanceof ResNetError, describeUnexpected(error)).toBe(true);
      expect((error as ResNetError).code).toBe('E_FORMAT');
      expect((error as ResNetError).message).toContain(bad);
      expect(largest).toBeLessThanOrEqual(allowance(JSON.stringify(json).length));
    }
  });
});
