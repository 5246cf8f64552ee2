// Crash safety of checkpoint writes (lib/io/safetensors.ts atomicWrite: temporary file, fsync,
// rename, fsync of the directory). A child process saves a model over an existing checkpoint
// again and again and is killed with SIGKILL at a random moment, many times. Afterwards the
// checkpoint must be byte for byte either the previous file or a complete new one — never a
// mixture or a truncated file — and must load.
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { models } from '../../lib/index.js';
import { loadCheckpoint, saveModel } from '../../lib/io/checkpoint.js';
import { ensureDist, packageRoot } from '../support/dist.js';
import { Rng } from '../support/random.js';

const root = mkdtempSync(join(tmpdir(), 'rn-crash-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// A checkpoint of about 1 MB (ResNet-20, CIFAR input), so a write takes a few milliseconds.
const build = (seed: number) => models.resnetCifar({ depth: 20, inputShape: [32, 32, 3], classes: 10, seed });

const CHILD = `
import { saveModel } from ${JSON.stringify(pathToFileURL(join(packageRoot, 'dist', 'io', 'checkpoint.js')).href)};
import { models } from ${JSON.stringify(pathToFileURL(join(packageRoot, 'dist', 'index.js')).href)};
const [path, seed] = process.argv.slice(2);
const model = models.resnetCifar({ depth: 20, inputShape: [32, 32, 3], classes: 10, seed: Number(seed) });
process.stdout.write('ready\\n');
for (;;) await saveModel(model, path);
`;

let previous: Uint8Array;
let next: Uint8Array;

beforeAll(async () => {
  await ensureDist();
  writeFileSync(join(root, 'child.mjs'), CHILD);
  const a = build(1);
  const b = build(2);
  await saveModel(a, join(root, 'previous.safetensors'));
  await saveModel(b, join(root, 'next.safetensors'));
  a.dispose();
  b.dispose();
  previous = new Uint8Array(readFileSync(join(root, 'previous.safetensors')));
  next = new Uint8Array(readFileSync(join(root, 'next.safetensors')));
}, 300_000);

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/** Starts the saving child; resolves once it is about to write, with the child. */
function startChild(dir: string, path: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'child.mjs'), path, '2'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout!.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`the child exited (${code}) before writing: ${stderr}`)));
  });
}

describe('crash safety', () => {
  it('SIGKILL at many points while a checkpoint is being replaced leaves the old or the new file, whole and loadable', async () => {
    const rng = new Rng(8);
    const kills = 24;
    const seen = { previous: 0, next: 0 };
    for (let k = 0; k < kills; k++) {
      const dir = join(root, `run${k}`);
      mkdirSync(dir);
      const path = join(dir, 'model.safetensors');
      copyFileSync(join(root, 'previous.safetensors'), path);
      const child = await startChild(dir, path);
      // From right at the first write to several writes in.
      await new Promise((r) => setTimeout(r, rng.int(0, 60)));
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;

      const bytes = new Uint8Array(readFileSync(path));
      const isPrevious = sameBytes(bytes, previous);
      const isNext = sameBytes(bytes, next);
      expect(isPrevious || isNext, `kill ${k}: the checkpoint is ${bytes.length} bytes, neither the old (${previous.length}) nor the new (${next.length}) file`).toBe(true);
      if (isPrevious) seen.previous++;
      else seen.next++;
      const loaded = await loadCheckpoint(path);
      loaded.model.dispose();
      // Only the checkpoint and possibly the interrupted write's temporary file are left.
      for (const name of readdirSync(dir)) expect(name === 'model.safetensors' || name.startsWith('model.safetensors.tmp-'), name).toBe(true);
    }
    console.log(`crash safety: ${kills} SIGKILLs → old file intact ${seen.previous}×, new file complete ${seen.next}×`);
  });
});
