// Fuzzing the Keras file readers (lib/io/keras_files.ts over zip_archive.ts and hdf5.ts, and
// the converter of keras_model.ts): every input must load or be a ResNetError (E_FORMAT for a
// bad file), within a time bound, and the process must stay alive — the HDF5 C library runs in
// a worker thread whose traps and hangs are contained (lib/io/hdf5.ts).
//
// Hostile HDF5 files (test/fixtures/keras/hostile/, made by scripts/make-keras-fixtures.py from
// features.h5 with h5py): hard-link and soft-link cycles, an external link, a dataset of 2^40
// floats declared, a gzip bomb (64 MiB of zeros in 130 kB), int and string datasets where
// weights belong, a missing layer group, 100 nested groups, a NaN weight, a weight of the wrong
// shape, a model_config that is not JSON, and none. Hostile zips made here from features.keras:
// truncations, a CRC mismatch, a declared size above any model's, an entry that inflates past
// its declared size, two entries of one name. Then seeded byte mutations of features.keras and
// features.h5, and seeded structural mutations of the .keras' config.json.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { strToU8, unzipSync, zipSync } from 'fflate';
import { afterAll, describe, expect, it } from 'vitest';

import { ResNetError } from '../../lib/index.js';
import { readHdf5 } from '../../lib/io/hdf5.js';
import { loadKerasModel } from '../../lib/io/keras_model.js';
import { describeUnexpected, expectPromptAnswer, mutateBytes, mutateJson } from '../support/fuzz.js';
import { Rng } from '../support/random.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'keras');
const root = mkdtempSync(join(tmpdir(), 'rn-fuzz-keras-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const kerasBytes = new Uint8Array(readFileSync(join(FIXTURES, 'features.keras')));
const h5Bytes = new Uint8Array(readFileSync(join(FIXTURES, 'features.h5')));

let counter = 0;
function write(bytes: Uint8Array, ext: string): string {
  const p = join(root, `f${counter++}${ext}`);
  writeFileSync(p, bytes);
  return p;
}

/** Loads `path`; returns 'loaded' or the error code; anything but a ResNetError fails the test. */
async function outcome(where: string, path: string, limitMs: number): Promise<string> {
  const started = performance.now();
  let result: string;
  try {
    (await loadKerasModel(path)).dispose();
    result = 'loaded';
  } catch (err) {
    if (!(err instanceof ResNetError)) throw new Error(`${where}: ${describeUnexpected(err)}`, { cause: err });
    expect(err.message.length, `${where}: message length`).toBeLessThan(4000);
    const control = [...err.message].some((ch) => ch.charCodeAt(0) < 0x20 && ch !== '\n' && ch !== '\t');
    expect(control, `${where}: no raw bytes in the message: ${err.message}`).toBe(false);
    result = err.code;
  }
  expect(performance.now() - started, `${where}: time`).toBeLessThan(limitMs);
  return result;
}

describe('hostile HDF5 files', () => {
  const cases: [string, string[]][] = [
    ['cyclic_hard', ['deeper than']],
    ['cyclic_soft', ['HDF5']],
    ['huge_dims', ['bytes']],
    ['bomb', ['bytes']],
    ['int_kernel', ['int data, not floating point']],
    ['string_kernel', ['string data']],
    ['missing_group', ['no group for it']],
    ['deep', ['deeper than']],
    ['nan_weights', ["'stem"]],
    ['wrong_shape', ["'stem'"]],
    ['config_not_json', ['model_config']],
    ['no_config', ['model_config']],
  ];
  for (const [name, mentions] of cases) {
    it(`${name}.h5 → E_FORMAT`, async () => {
      await expectPromptAnswer(`${name}.h5`, () => loadKerasModel(join(FIXTURES, 'hostile', `${name}.h5`)), {
        code: 'E_FORMAT',
        mentions,
        limitMs: 15_000,
        timeoutMs: 20_000,
      });
    });
  }

  it('an external link is never followed (the reader sees only the file it was given)', async () => {
    // The link points at /etc/passwd; the in-memory file system has no such file.
    const tree = await readHdf5(readFileSync(join(FIXTURES, 'hostile', 'external.h5')), 'test:');
    expect(tree.get('/model_weights/stem/ext')?.kind).toBe('link');
    const model = await loadKerasModel(join(FIXTURES, 'hostile', 'external.h5'));
    model.dispose();
  });

  it('a bomb is refused before it is inflated: the budget counts declared sizes', async () => {
    const started = performance.now();
    const err = await readHdf5(readFileSync(join(FIXTURES, 'hostile', 'bomb.h5')), 'test:', { maxDataBytes: 1 << 20 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResNetError);
    expect((err as ResNetError).message).toContain('/model_weights/stem/stem/bomb');
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it('the reader is sound after hostile files: the valid file reads the same', async () => {
    const before = await readHdf5(h5Bytes, 'test:');
    for (const name of ['cyclic_hard', 'bomb', 'huge_dims', 'deep']) {
      await readHdf5(readFileSync(join(FIXTURES, 'hostile', `${name}.h5`)), 'test:').catch(() => undefined);
    }
    const after = await readHdf5(h5Bytes, 'test:');
    expect([...after.keys()]).toEqual([...before.keys()]);
    const kernel = '/model_weights/stem/stem/kernel';
    expect((after.get(kernel) as { data: Float32Array }).data).toEqual((before.get(kernel) as { data: Float32Array }).data);
  });

  it('a time-out abandons the read with E_FORMAT and the next read works', async () => {
    const err = await readHdf5(h5Bytes, 'test:', { timeoutMs: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResNetError);
    expect((err as ResNetError).message).toContain('took longer than');
    expect((await readHdf5(h5Bytes, 'test:')).has('/model_weights')).toBe(true);
  });
});

describe('hostile zips', () => {
  const entries = unzipSync(kerasBytes);

  it('truncated at many points → E_FORMAT', async () => {
    for (const at of [0, 3, 4, 30, 100, kerasBytes.length >> 2, kerasBytes.length >> 1, kerasBytes.length - 23, kerasBytes.length - 1]) {
      const code = await outcome(`truncated to ${at}`, write(kerasBytes.subarray(0, at), '.keras'), 10_000);
      expect(code, `truncated to ${at}`).toBe('E_FORMAT');
    }
  });

  it('a CRC mismatch → E_FORMAT naming the entry', async () => {
    const stored = zipSync(entries, { level: 0 });
    const text = new TextDecoder('latin1').decode(stored);
    const at = text.indexOf('"Functional"');
    const bad = stored.slice();
    bad[at + 1] ^= 0x20; // "functional": still JSON, but not what the CRC covers
    await expectPromptAnswer('crc', () => loadKerasModel(write(bad, '.keras')), {
      code: 'E_FORMAT',
      mentions: ["'config.json'", 'CRC'],
      limitMs: 10_000,
      timeoutMs: 20_000,
    });
  });

  it('a declared size above any model → E_FORMAT before inflating', async () => {
    const zip = zipSync(entries, { level: 0 });
    const view = new DataView(zip.buffer);
    // Find model.weights.h5's central directory record and declare 3.5 GB uncompressed.
    const name = strToU8('model.weights.h5');
    for (let p = zip.length - 22; p >= 0; p--) {
      if (view.getUint32(p, true) === 0x02014b50 && name.every((b, i) => zip[p + 46 + i] === b)) {
        view.setUint32(p + 24, 3_500_000_000, true);
        break;
      }
    }
    await expectPromptAnswer('huge size', () => loadKerasModel(write(zip, '.keras')), {
      code: 'E_FORMAT',
      mentions: ['model.weights.h5', 'declares'],
      limitMs: 10_000,
      timeoutMs: 20_000,
    });
  });

  it('an entry that inflates past its declared size (a deflate bomb) → E_FORMAT', async () => {
    // A valid archive whose config.json is 32 MiB of spaces, then its declared size cut to 100 bytes.
    const bomb = new Uint8Array(32 << 20).fill(0x20);
    const zip = zipSync({ ...entries, 'config.json': bomb }, { level: 9 });
    expect(zip.length).toBeLessThan(2 << 20);
    const view = new DataView(zip.buffer);
    const name = strToU8('config.json');
    for (let p = zip.length - 22; p >= 0; p--) {
      if (view.getUint32(p, true) === 0x02014b50 && name.every((b, i) => zip[p + 46 + i] === b)) view.setUint32(p + 24, 100, true);
    }
    await expectPromptAnswer('bomb', () => loadKerasModel(write(zip, '.keras')), {
      code: 'E_FORMAT',
      mentions: ["'config.json'", 'more than the 100 bytes'],
      limitMs: 10_000,
      timeoutMs: 20_000,
    });
  });

  it('two entries of one name → E_FORMAT', async () => {
    const zip = zipSync({ 'config.jsoX': strToU8('{}'), ...entries }, { level: 0 });
    const text = new TextDecoder('latin1').decode(zip);
    const out = zip.slice();
    for (let at = text.indexOf('config.jsoX'); at >= 0; at = text.indexOf('config.jsoX', at + 1)) out[at + 10] = 0x6e; // 'n'
    await expectPromptAnswer('duplicate', () => loadKerasModel(write(out, '.keras')), {
      code: 'E_FORMAT',
      mentions: ["two entries named 'config.json'"],
      limitMs: 10_000,
      timeoutMs: 20_000,
    });
  });

  it('a zip without model.weights.h5, and one that is not a .keras → E_FORMAT saying so', async () => {
    const noWeights = { ...entries };
    delete noWeights['model.weights.h5'];
    await expectPromptAnswer('no weights', () => loadKerasModel(write(zipSync(noWeights), '.keras')), {
      code: 'E_FORMAT',
      mentions: ['model.weights.h5'],
      limitMs: 10_000,
      timeoutMs: 20_000,
    });
    await expectPromptAnswer('other zip', () => loadKerasModel(write(zipSync({ 'a.txt': strToU8('x') }), '.keras')), {
      code: 'E_FORMAT',
      mentions: ['zip archive without config.json'],
      limitMs: 10_000,
      timeoutMs: 20_000,
    });
  });
});

describe('seeded mutations', () => {
  it('byte mutations of a .h5 and a .keras: load or E_FORMAT, promptly', async () => {
    const rng = new Rng(19_05);
    const seen: Record<string, number> = {};
    for (let i = 0; i < 80; i++) {
      const h5 = i % 2 === 0;
      const { data, how } = mutateBytes(h5 ? h5Bytes : kerasBytes, rng);
      const code = await outcome(`mutation ${i} (${h5 ? '.h5' : '.keras'}: ${how})`, write(data, h5 ? '.h5' : '.keras'), 15_000);
      expect(['loaded', 'E_FORMAT'], `mutation ${i}: ${how}`).toContain(code);
      seen[code] = (seen[code] ?? 0) + 1;
    }
    console.log(`fuzzed Keras files: 80 inputs → ${JSON.stringify(seen)}`);
  });

  it("structural mutations of a .keras' config.json: load or a ResNetError, promptly", async () => {
    const rng = new Rng(19_06);
    const entries = unzipSync(kerasBytes);
    const config = JSON.parse(new TextDecoder().decode(entries['config.json'])) as unknown;
    const seen: Record<string, number> = {};
    for (let i = 0; i < 120; i++) {
      const { value, path } = mutateJson(config, rng);
      const bytes = zipSync({ ...entries, 'config.json': strToU8(JSON.stringify(value)) });
      const code = await outcome(`config mutation ${i} (${path})`, write(bytes, '.keras'), 15_000);
      expect(['loaded', 'E_FORMAT', 'E_ARG'], `config mutation ${i}: ${path}`).toContain(code);
      seen[code] = (seen[code] ?? 0) + 1;
    }
    console.log(`fuzzed Keras configs: 120 inputs → ${JSON.stringify(seen)}`);
  });
});
