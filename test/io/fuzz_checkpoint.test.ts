// Fuzzing the safetensors reader and checkpoints (lib/io/safetensors.ts, lib/io/checkpoint.ts):
// a real checkpoint (a small compiled ResNet after one SGD step, with training state) is
// truncated, bit-flipped, spliced and structurally rewritten (hostile header entries, hostile
// spec / optimizer / training metadata), seeded, a few thousand times. Every input must load
// or throw a ResNetError — never another error, a crash or a hang — and no reader may create a
// buffer much larger than the file (declared sizes are checked against the file first).
// The hostile families, seeded, every run: special files where the checkpoint should be,
// JSON nested past any stack (in the header, __metadata__ and the metadata's documents), huge
// headers, and bits flipped in the data section (which the checksum must catch).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { allocationStats, models, ResNetError, Tensor } from '../../lib/index.js';
import { loadCheckpoint, saveModel } from '../../lib/io/checkpoint.js';
import { decodeSafetensors, MAX_HEADER_BYTES } from '../../lib/io/safetensors.js';
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
} from '../support/fuzz.js';
import { Rng } from '../support/random.js';

const root = mkdtempSync(join(tmpdir(), 'rn-fuzz-ckpt-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(releaseFifos);

/** A buffer may exceed the file by F16→F32 widening and the one-time half-float table. */
const allowance = (fileBytes: number) => 2 * fileBytes + 512 * 1024;

let original: Uint8Array;
let headerEnd = 0;

beforeAll(async () => {
  const model = models.resnetCifar({ depth: 8, inputShape: [8, 8, 3], classes: 4, seed: 3 });
  model.compile({ optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 } });
  const rng = new Rng(5);
  const x = Tensor.fromArray(rng.array(2 * 8 * 8 * 3), [2, 8, 8, 3]);
  await model.trainStep(x, rng.labels(2, 4));
  x.dispose();
  const path = join(root, 'base.safetensors');
  await saveModel(model, path, { training: { epoch: 1, step: 1, rngState: [1, 2, 3, 4] } });
  model.dispose();
  const { readFileSync } = await import('node:fs');
  original = new Uint8Array(readFileSync(path));
  headerEnd = 8 + Number(new DataView(original.buffer, original.byteOffset).getBigUint64(0, true));
});

/** The header JSON of the original file. */
function header(): Record<string, unknown> {
  return JSON.parse(new TextDecoder().decode(original.subarray(8, headerEnd))) as Record<string, unknown>;
}

/** A file with `head` (or header text) as its header and the original data section. */
function withHeader(head: unknown): Uint8Array {
  const json = new TextEncoder().encode(typeof head === 'string' ? head : JSON.stringify(head));
  const data = original.subarray(headerEnd);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** Structural mutations: the header, or one of the JSON documents inside its metadata. */
function structural(rng: Rng): { data: Uint8Array; how: string } {
  const head = header();
  const meta = head.__metadata__ as Record<string, string>;
  const r = rng.next();
  if (r < 0.35) {
    const { value, path } = mutateJson(head, rng);
    return { data: withHeader(value), how: `header ${path}` };
  }
  const key = rng.pick(['spec', 'spec', 'spec', 'optimizer', 'training', 'optimizerSteps', 'learningRate', 'mode']);
  const doc = meta[key];
  let replaced: string;
  let how: string;
  try {
    const { value, path } = mutateJson(JSON.parse(doc ?? 'null'), rng);
    replaced = JSON.stringify(value) ?? 'null';
    how = `metadata ${key} ${path}`;
  } catch {
    replaced = rng.pick(['', '-1', '1e400', 'NaN', '{', '18446744073709551616']);
    how = `metadata ${key} = ${replaced}`;
  }
  return { data: withHeader({ ...head, __metadata__: { ...meta, [key]: replaced } }), how };
}

describe('fuzzed checkpoints', () => {
  it('every mutated checkpoint loads or throws ResNetError, and no buffer outgrows the file', async () => {
    const rng = new Rng(20260801);
    const runs = 2000;
    const outcomes = new Map<string, number>();
    const path = join(root, 'fuzzed.safetensors');
    const baseLive = allocationStats().liveBytes;
    for (let i = 0; i < runs; i++) {
      const { data, how } = rng.next() < 0.55 ? mutateBytes(original, rng, { start: 0, end: headerEnd }) : structural(rng);
      writeFileSync(path, data);
      const { result, error, largest } = await largestAllocation(() => loadCheckpoint(path));
      const where = `input ${i} (${how}, ${data.length} bytes)`;
      if (error !== undefined) {
        expect(error instanceof ResNetError, `${where}: ${describeUnexpected(error)}`).toBe(true);
        const code = (error as ResNetError).code;
        expect(['E_FORMAT', 'E_IO', 'E_DTYPE'], `${where}: ${describeUnexpected(error)}`).toContain(code);
        outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
      } else {
        // A loaded model holds its parameters, gradients and optimizer state natively: about
        // the file's size each; far more would mean the spec was trusted beyond the file.
        const grown = allocationStats().liveBytes - baseLive;
        expect(grown, `${where}: native memory after loading`).toBeLessThanOrEqual(4 * data.length + (1 << 20));
        result!.model.dispose();
        outcomes.set('loaded', (outcomes.get('loaded') ?? 0) + 1);
      }
      expect(largest, `${where}: largest buffer`).toBeLessThanOrEqual(allowance(data.length));
    }
    console.log(`fuzzed checkpoints: ${runs} inputs → ${JSON.stringify(Object.fromEntries(outcomes))}`);
    expect(outcomes.get('E_FORMAT') ?? 0).toBeGreaterThan(runs / 4);
    expect(allocationStats().liveBytes).toBe(baseLive);
  });

  it('in-memory decoding (decodeSafetensors) of mutated bytes decodes or throws E_FORMAT', async () => {
    const rng = new Rng(77);
    const runs = 2000;
    let rejected = 0;
    for (let i = 0; i < runs; i++) {
      const { data, how } = rng.next() < 0.6 ? mutateBytes(original, rng, { start: 0, end: headerEnd }) : structural(rng);
      const { error, largest } = await largestAllocation(async () => decodeSafetensors(data));
      if (error !== undefined) {
        expect(error instanceof ResNetError && error.code === 'E_FORMAT', `input ${i} (${how}): ${describeUnexpected(error)}`).toBe(true);
        rejected++;
      }
      expect(largest, `input ${i} (${how})`).toBeLessThanOrEqual(allowance(data.length));
    }
    console.log(`fuzzed safetensors (in memory): ${runs} inputs, ${rejected} rejected with E_FORMAT`);
    expect(rejected).toBeGreaterThan(runs / 4);
  });

  it('declared sizes far beyond the file are refused before anything is allocated', async () => {
    const head = header();
    const name = Object.keys(head).find((k) => k !== '__metadata__')!;
    for (const shape of [[2 ** 40], [65536, 65536, 65536], [2 ** 26, 2 ** 27]]) {
      const entry = head[name] as { data_offsets: number[] };
      const bytes = withHeader({ ...head, [name]: { dtype: 'F32', shape, data_offsets: [entry.data_offsets[0], 2 ** 50] } });
      const { error, largest } = await largestAllocation(async () => decodeSafetensors(bytes));
      expect((error as ResNetError).code).toBe('E_FORMAT');
      expect((error as ResNetError).message).toContain(name);
      expect(largest).toBeLessThanOrEqual(allowance(bytes.length));
    }
    // A header length of 2^63: refused from the first 8 bytes.
    const huge = original.slice();
    new DataView(huge.buffer).setBigUint64(0, 2n ** 63n, true);
    const { error } = await largestAllocation(async () => decodeSafetensors(huge));
    expect((error as ResNetError).message).toMatch(/header length \d+ is above the limit/);
  });
});

describe('hostile families, seeded, every run', () => {
  it('special files, nested JSON, huge headers and flipped data bits: a ResNetError at once, every time', async () => {
    const rng = new Rng(16_2026);
    const runs = 120;
    const seen = new Map<string, number>();
    for (let i = 0; i < runs; i++) {
      const dir = join(root, `family${i}`);
      mkdirSync(dir);
      const path = join(dir, 'model.safetensors');
      const family = rng.pick(['special file', 'nested JSON', 'huge header', 'flipped data bits'] as const);
      let how: string;
      let code = 'E_FORMAT';
      const mentions: string[] = [path];
      if (family === 'special file') {
        const kind = rng.pick(SPECIAL_KINDS);
        makeSpecialFile(kind, path);
        how = kind;
        code = 'E_IO';
      } else if (family === 'nested JSON') {
        const depth = rng.pick(NESTING_DEPTHS);
        const head = header();
        const meta = head.__metadata__ as Record<string, string>;
        const where = rng.pick(['a header entry', '__metadata__', 'spec', 'optimizer', 'training'] as const);
        const nested = nestJson('1', depth, rng);
        let text: string;
        if (where === 'a header entry') text = `${JSON.stringify(head).slice(0, -1)},"deep":${nested}}`;
        else if (where === '__metadata__')
          text = JSON.stringify({ ...head, __metadata__: 0 }).replace('"__metadata__":0', `"__metadata__":${nested}`);
        else
          text = JSON.stringify({
            ...head,
            __metadata__: { ...meta, [where]: `${meta[where] === undefined ? '{' : meta[where]!.slice(0, -1) + ','}"deep":${nested}}` },
          });
        writeFileSync(path, withHeader(text));
        how = `depth ${depth} in ${where}`;
        mentions.push('levels deep');
      } else if (family === 'huge header') {
        const head = header();
        const what = rng.pick(['a length past the file', 'many empty tensors', 'megabytes of metadata'] as const);
        let bytes: Uint8Array;
        if (what === 'a length past the file') {
          bytes = original.slice();
          new DataView(bytes.buffer).setBigUint64(0, BigInt(rng.int(original.length - 7, MAX_HEADER_BYTES)), true);
        } else if (what === 'many empty tensors') {
          const count = rng.int(5_000, 50_000);
          const extra: string[] = [];
          for (let k = 0; k < count; k++) extra.push(`"empty${k}":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`);
          bytes = withHeader(`${JSON.stringify(head).slice(0, -1)},${extra.join(',')}}`);
          mentions.push('unexpected tensor');
        } else {
          bytes = withHeader({ ...head, __metadata__: { ...(head.__metadata__ as object), padding: ' '.repeat(rng.int(1, 4) << 20) } });
          code = 'loaded';
          mentions.length = 0;
        }
        writeFileSync(path, bytes);
        how = what;
      } else {
        const bytes = original.slice();
        const flips = rng.int(1, 8);
        for (let k = 0; k < flips; k++) bytes[rng.int(headerEnd, bytes.length - 1)] ^= 1 << rng.int(0, 7);
        writeFileSync(path, bytes);
        how = `${flips} bits`;
        mentions.push('corrupt');
      }
      const loaded = await expectPromptAnswer(`run ${i}: ${family} (${how})`, () => loadCheckpoint(path), {
        ...(code === 'loaded' ? {} : { code, mentions }),
        limitMs: 10_000,
        timeoutMs: 20_000,
      });
      loaded?.model.dispose();
      seen.set(family, (seen.get(family) ?? 0) + 1);
    }
    console.log(`hostile checkpoint families: ${JSON.stringify(Object.fromEntries(seen))}`);
    expect(seen.size).toBe(4);
  });

  it('in-memory decoding of a header nested past the stack is E_FORMAT, not a RangeError', async () => {
    const rng = new Rng(7);
    for (const depth of NESTING_DEPTHS) {
      const head = header();
      const text = `${JSON.stringify(head).slice(0, -1)},"deep":${nestJson('[]', depth, rng)}}`;
      await expectCode(() => decodeSafetensors(withHeader(text)), 'E_FORMAT', 'levels deep');
    }
  });
});
