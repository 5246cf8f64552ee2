// Checkpoints detect corruption and clean up after crashes (lib/io/safetensors.ts,
// lib/io/crc32.ts, lib/io/atomic_write.ts):
// * files we write record the CRC-32 of their data section, and any bit flipped in it is an
//   E_FORMAT naming the file when it is loaded (it used to load silently); files from
//   elsewhere carry no checksum and load as before;
// * a writer killed with SIGKILL mid-save leaves its temporary file; the next save into the
//   folder removes the temporaries of dead processes, and nothing else;
// * the checkpoint callback refuses a dir that is a file with an E_IO naming it.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as zlib from 'node:zlib';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { models } from '../../lib/index.js';
import { temporaryPath } from '../../lib/io/atomic_write.js';
import { loadModel, loadWeightsInto, saveModel } from '../../lib/io/checkpoint.js';
import { crc32, crc32Js } from '../../lib/io/crc32.js';
import { decodeSafetensors, encodeSafetensors, readSafetensors, SafetensorsReader, writeSafetensors } from '../../lib/io/safetensors.js';
import { checkpoint } from '../../lib/train/callbacks.js';
import { ensureDist, packageRoot } from '../support/dist.js';
import { expectCode } from '../support/expect_error.js';
import { Rng } from '../support/random.js';

const root = mkdtempSync(join(tmpdir(), 'rn-integrity-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let n = 0;
function fresh(): string {
  const dir = join(root, `case${n++}`);
  mkdirSync(dir);
  return dir;
}

function headerOf(bytes: Uint8Array): { json: Record<string, any>; dataStart: number } {
  const len = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { json: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + len))), dataStart: 8 + len };
}

describe('checksums', () => {
  let path: string;
  let bytes: Uint8Array;
  beforeAll(async () => {
    const model = models.resnetCifar({ depth: 8, inputShape: [8, 8, 3], classes: 4, seed: 3 });
    model.compile({ optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 } });
    path = join(fresh(), 'model.safetensors');
    await saveModel(model, path, { training: { epoch: 1, step: 1 } });
    model.dispose();
    bytes = new Uint8Array(readFileSync(path));
  });

  it('a checkpoint records the CRC-32 of its data section; readers verify it and keep it out of the metadata', async () => {
    const { json, dataStart } = headerOf(bytes);
    const expected = crc32Js(bytes.subarray(dataStart)).toString(16).padStart(8, '0');
    expect(json.__metadata__.dataCrc32).toBe(expected);
    const reader = await SafetensorsReader.open(path);
    try {
      expect(reader.header.dataCrc32).toBe(parseInt(expected, 16));
      expect(reader.metadata.dataCrc32).toBeUndefined();
    } finally {
      await reader.close();
    }
    expect(decodeSafetensors(bytes).metadata.dataCrc32).toBeUndefined();
    (await loadModel(path)).dispose();
  });

  it('every bit flipped in the data section of a checkpoint is E_FORMAT naming the file (seeded sample of 200 bits)', async () => {
    const { dataStart } = headerOf(bytes);
    const rng = new Rng(16);
    const flipped = join(fresh(), 'flipped.safetensors');
    const target = models.resnetCifar({ depth: 8, inputShape: [8, 8, 3], classes: 4, seed: 4 });
    for (let i = 0; i < 200; i++) {
      const at = rng.int(dataStart, bytes.length - 1);
      const bit = rng.int(0, 7);
      const copy = bytes.slice();
      copy[at] ^= 1 << bit;
      writeFileSync(flipped, copy);
      const where = `bit ${bit} of byte ${at}`;
      const reader = [
        () => loadModel(flipped),
        () => loadWeightsInto(target, flipped),
        () => readSafetensors(flipped),
        async () => decodeSafetensors(copy, flipped),
      ][i % 4]!;
      const err = await expectCode(reader, 'E_FORMAT', flipped, 'corrupt');
      expect(err.message, where).toMatch(/CRC-32 is [0-9a-f]{8} but the file records [0-9a-f]{8}/);
    }
    target.dispose();
  });

  it('files without a checksum (other writers, or checksum: false) load as before; a malformed one is E_FORMAT', async () => {
    const dir = fresh();
    const tensors = [{ name: 'w', shape: [2], data: Float32Array.from([1, 2]) }];
    const foreign = join(dir, 'foreign.safetensors');
    writeFileSync(foreign, encodeSafetensors(tensors, { format: 'pt' }));
    expect(headerOf(readFileSync(foreign)).json.__metadata__).toEqual({ format: 'pt' });
    expect([...(await readSafetensors(foreign)).tensors.get('w')!.data]).toEqual([1, 2]);
    const plain = join(dir, 'plain.safetensors');
    await writeSafetensors(plain, tensors, {}, { checksum: false });
    expect(headerOf(readFileSync(plain)).json.__metadata__).toBeUndefined();
    expect((await readSafetensors(plain)).metadata).toEqual({});
    // The key is the writer's own.
    await expectCode(() => writeSafetensors(plain, tensors, { dataCrc32: '00000000' }), 'E_ARG', 'dataCrc32');
    const bad = join(dir, 'bad.safetensors');
    writeFileSync(bad, encodeSafetensors(tensors, { dataCrc32: 'not hex' }));
    await expectCode(() => readSafetensors(bad), 'E_FORMAT', bad, 'dataCrc32', '8 lowercase hex digits');
  });

  it("crc32: the JavaScript fallback equals zlib's (and the check value), incrementally", () => {
    expect(crc32Js(new TextEncoder().encode('123456789')).toString(16)).toBe('cbf43926');
    expect(crc32(new TextEncoder().encode('123456789')).toString(16)).toBe('cbf43926');
    const rng = new Rng(32);
    const native = (zlib as { crc32?: (b: Uint8Array, v?: number) => number }).crc32;
    for (const len of [0, 1, 7, 8, 9, 63, 64, 1000, 65537]) {
      const b = Uint8Array.from({ length: len }, () => rng.int(0, 255));
      const cut = rng.int(0, len);
      const whole = crc32Js(b);
      expect(crc32Js(b.subarray(cut), crc32Js(b.subarray(0, cut))), `length ${len}`).toBe(whole);
      expect(crc32(b.subarray(cut), crc32(b.subarray(0, cut))), `length ${len}`).toBe(whole);
      if (native) expect(native(b) >>> 0, `length ${len}`).toBe(whole);
    }
  });
});

// ---------------------------------------------------------------------------------------------

// Writes a 4 MB file with writeSafetensors from the compiled package, and stops for good
// (Atomics.wait) while writing its last tensor: the temporary file is on disk, incomplete.
const CHILD = `
import { writeSafetensors } from ${JSON.stringify(pathToFileURL(join(packageRoot, 'dist', 'io', 'safetensors.js')).href)};
const big = new Float32Array(1 << 20);
await writeSafetensors(process.argv[2], [
  { name: 'big', shape: [big.length], data: big },
  { name: 'last', shape: [1], dtype: 'F32', data: () => {
    process.stdout.write('writing\\n');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
  } },
]);
`;

/** A child stopped in the middle of writing `path`. */
function stoppedWriter(path: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'writer.mjs'), path], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout!.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`the writer exited (${code}) before writing: ${stderr}`)));
  });
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

describe.skipIf(process.platform === 'win32')('temporary files of killed writers', () => {
  beforeAll(async () => {
    await ensureDist();
    writeFileSync(join(root, 'writer.mjs'), CHILD);
  }, 300_000);

  it("the next save into the folder removes a SIGKILLed writer's temporary file, and leaves a live writer's and everything else", async () => {
    const dir = fresh();
    const path = join(dir, 'model.safetensors');
    const killed = await stoppedWriter(path);
    const alive = await stoppedWriter(join(dir, 'other.safetensors'));
    try {
      await kill(killed);
      const temps = () => readdirSync(dir).filter((f) => f.includes('.tmp-'));
      const left = temps().filter((f) => f.startsWith(`model.safetensors.tmp-${killed.pid}-`));
      expect(left, 'SIGKILL mid-save leaves the temporary file').toHaveLength(1);
      const live = temps().filter((f) => f.startsWith(`other.safetensors.tmp-${alive.pid}-`));
      expect(live).toHaveLength(1);
      expect(existsSync(path)).toBe(false);

      // What must stay: files not named as ours, another host's temporaries (whose pids mean
      // nothing here), a symlink named like a dead writer's temporary.
      const ourName = basename(temporaryPath(path, killed.pid!));
      const otherHost = ourName.replace(
        /-([0-9a-f]{8})-([0-9a-f]{12})$/,
        (_, h: string, r: string) => `-${h === 'ffffffff' ? '00000000' : 'ffffffff'}-${r}`,
      );
      const keep = ['notes.txt', 'model.safetensors.tmp-backup', `model.safetensors.tmp-${killed.pid}-abc`, otherHost];
      for (const f of keep) writeFileSync(join(dir, f), 'x');
      const link = basename(temporaryPath(join(dir, 'link'), killed.pid!));
      symlinkSync(join(dir, 'notes.txt'), join(dir, link));
      keep.push(link);
      // What must go besides: a dead writer's temporary of another file, and one named for this
      // process's pid that no write of this process is using (a former process with the same pid).
      const stale = [basename(temporaryPath(join(dir, 'best.safetensors'), killed.pid!)), basename(temporaryPath(path))];
      for (const f of stale) writeFileSync(join(dir, f), 'x');

      const model = models.resnetCifar({ depth: 8, inputShape: [8, 8, 3], classes: 3, seed: 1 });
      await saveModel(model, path);
      model.dispose();
      const after = readdirSync(dir);
      for (const f of [...left, ...stale]) expect(after, `${f} should have been removed`).not.toContain(f);
      for (const f of [...live, ...keep]) expect(after, `${f} should have been kept`).toContain(f);
      (await loadModel(path)).dispose();
    } finally {
      await kill(killed);
      await kill(alive);
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('the checkpoint callback', () => {
  it('a dir that is a file is an E_IO naming it when the callback is made; one below a file, when training begins', async () => {
    const file = join(fresh(), 'taken');
    writeFileSync(file, 'x');
    await expectCode(() => checkpoint({ dir: file }), 'E_IO', file, 'not a folder');
    const below = join(file, 'sub');
    const cb = checkpoint({ dir: below });
    await expectCode(() => cb.onTrainBegin!({ history: [], hasValidation: false } as never), 'E_IO', below);
  });
});
