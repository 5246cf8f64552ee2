// Special files where a reader expects a file (lib/io/read_file.ts): a FIFO, a symlink to
// /dev/zero, a directory and a symlink loop, each under the name a reader is given or finds
// (a checkpoint, model.json, a weight shard, an image, a CIFAR batch, the CLI's image). Every
// reader must answer at once with a ResNetError naming the path — not block in open() (a FIFO
// held one of libuv's threads forever, so the process could not even exit), not read without
// end (/dev/zero), not fail with a bare errno. Also: Keras weight shards reached through a
// symlink that leaves the model's folder, and files over a format's size cap.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { datasets, type Model, models } from '../../lib/index.js';
import { loadModel, loadWeightsInto, saveModel } from '../../lib/io/checkpoint.js';
import { loadKeras } from '../../lib/io/keras.js';
import { readSafetensors } from '../../lib/io/safetensors.js';
import { loadTorchvision } from '../../lib/io/torchvision.js';
import { ensureDist, packageRoot } from '../support/dist.js';
import { expectCode } from '../support/expect_error.js';
import { makeSpecialFile, releaseFifos, SPECIAL_KINDS, type SpecialKind, within } from '../support/fuzz.js';

const root = mkdtempSync(join(tmpdir(), 'rn-special-'));
let model: Model;
let checkpoint: string;
beforeAll(async () => {
  model = models.resnetCifar({ depth: 8, inputShape: [8, 8, 3], classes: 3, seed: 2 });
  checkpoint = join(root, 'model.safetensors');
  await saveModel(model, checkpoint);
});
afterAll(() => {
  model?.dispose();
  rmSync(root, { recursive: true, force: true });
});

afterEach(releaseFifos);

let n = 0;
function fresh(): string {
  const dir = join(root, `case${n++}`);
  mkdirSync(dir);
  return dir;
}

// A Keras model.json whose manifest names one 4-byte shard; the topology is irrelevant here.
const MANIFEST = (shard: string) =>
  JSON.stringify({
    modelTopology: { class_name: 'Sequential', config: { layers: [] } },
    weightsManifest: [{ paths: [shard], weights: [{ name: 'conv/kernel', shape: [1], dtype: 'float32' }] }],
  });

/** Each reader, given the special file at the place it reads from: [the path to name, the call]. */
const READERS: Record<
  string,
  { skip?: SpecialKind[]; code?: Partial<Record<SpecialKind, string>>; setup: (dir: string, kind: SpecialKind) => [string, () => Promise<unknown>] }
> = {
  loadModel: {
    setup: (dir, kind) => {
      const p = join(dir, 'model.safetensors');
      makeSpecialFile(kind, p);
      return [p, () => loadModel(p)];
    },
  },
  loadWeightsInto: {
    setup: (dir, kind) => {
      const p = join(dir, 'weights.safetensors');
      makeSpecialFile(kind, p);
      return [p, () => loadWeightsInto(model, p)];
    },
  },
  loadTorchvision: {
    setup: (dir, kind) => {
      const p = join(dir, 'resnet.safetensors');
      makeSpecialFile(kind, p);
      return [p, () => loadTorchvision(model, p)];
    },
  },
  readSafetensors: {
    setup: (dir, kind) => {
      const p = join(dir, 'x.safetensors');
      makeSpecialFile(kind, p);
      return [p, () => readSafetensors(p)];
    },
  },
  'loadKeras (model.json)': {
    // A directory is where loadKeras looks for model.json inside; a folder named model.json in it is the special file.
    setup: (dir, kind) => {
      const p = join(dir, 'model.json');
      makeSpecialFile(kind, p);
      return [p, () => loadKeras(model, p)];
    },
  },
  'loadKeras (a weight shard)': {
    // /dev/zero is outside the model's folder: refused as such (E_FORMAT) before its type is looked at.
    code: { 'symlink to /dev/zero': 'E_FORMAT' },
    setup: (dir, kind) => {
      writeFileSync(join(dir, 'model.json'), MANIFEST('shard.bin'));
      const p = join(dir, 'shard.bin');
      makeSpecialFile(kind, p);
      return [p, () => loadKeras(model, join(dir, 'model.json'))];
    },
  },
  'datasets.imageFolder (fill)': {
    skip: ['directory'], // folders inside a class folder are not images: skipped when listing
    setup: (dir, kind) => {
      mkdirSync(join(dir, 'cat'));
      const p = join(dir, 'cat', 'x.png');
      makeSpecialFile(kind, p);
      return [
        p,
        async () => {
          const ds = await datasets.imageFolder(dir, { size: 4 });
          await ds.fill([0], new Float32Array(4 * 4 * 3), new Int32Array(1));
        },
      ];
    },
  },
  'datasets.cifar10': {
    setup: (dir, kind) => {
      const p = join(dir, 'test_batch.bin');
      makeSpecialFile(kind, p);
      return [p, () => datasets.cifar10(dir, { split: 'test' })];
    },
  },
};

describe.skipIf(process.platform === 'win32')('special files: an immediate E_IO naming the path', () => {
  for (const [reader, { skip = [], code = {}, setup }] of Object.entries(READERS)) {
    for (const kind of SPECIAL_KINDS) {
      if (skip.includes(kind)) continue;
      const expected = code[kind] ?? 'E_IO';
      it(`${reader}: ${kind} → ${expected}`, async () => {
        const [path, call] = setup(fresh(), kind);
        // cifar10 names the folder it looked in when the file is not a regular one.
        const named = reader === 'datasets.cifar10' ? path.slice(0, path.lastIndexOf('/')) : path;
        await expectCode(within(5000, call), expected, named);
      });
    }
  }
});

describe.skipIf(process.platform === 'win32')('the CLI predict command on special image files', () => {
  beforeAll(() => ensureDist(), 300_000);

  for (const kind of ['FIFO', 'symlink to /dev/zero', 'symlink loop'] as SpecialKind[]) {
    it(`predict: ${kind} → exit status 1 naming the file, at once`, async () => {
      const p = join(fresh(), 'x.png');
      makeSpecialFile(kind, p);
      const started = performance.now();
      const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = execFile(
          process.execPath,
          [join(packageRoot, 'dist', 'cli.js'), 'predict', '--checkpoint', checkpoint, p],
          { timeout: 30_000 },
          (err, _stdout, stderr) => resolve({ code: child.exitCode ?? (err ? -1 : 0), stderr }),
        );
      });
      expect(performance.now() - started, 'the command must not block').toBeLessThan(30_000);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(p);
      expect(r.stderr).toMatch(/cannot read/);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Where files may be, and how large

describe.skipIf(process.platform === 'win32')('files outside their folder, files over their cap', () => {
  it("a Keras weight shard that is a symlink leaving the model's folder is refused (E_FORMAT naming it), though the file is fine", async () => {
    const outside = join(fresh(), 'secret.bin');
    writeFileSync(outside, new Uint8Array(4)); // exactly the 4 bytes the manifest asks for
    const dir = fresh();
    writeFileSync(join(dir, 'model.json'), MANIFEST('shard.bin'));
    symlinkSync(outside, join(dir, 'shard.bin'));
    await expectCode(() => loadKeras(model, join(dir, 'model.json')), 'E_FORMAT', 'shard.bin', outside, "outside the model's folder");
    // A symlink that stays inside the folder is fine: it gets as far as the topology.
    const inside = fresh();
    writeFileSync(join(inside, 'model.json'), MANIFEST('link.bin'));
    writeFileSync(join(inside, 'real.bin'), new Uint8Array(4));
    symlinkSync(join(inside, 'real.bin'), join(inside, 'link.bin'));
    await expectCode(() => loadKeras(model, join(inside, 'model.json')), 'E_FORMAT', "weight 'conv/kernel' belongs to no layer");
    // The model's folder itself reached through a symlink is fine too.
    const linkedDir = join(root, `linked${n++}`);
    symlinkSync(inside, linkedDir);
    await expectCode(() => loadKeras(model, join(linkedDir, 'model.json')), 'E_FORMAT', "weight 'conv/kernel' belongs to no layer");
  });

  it('an image file over 256 MiB is refused before it is read (E_FORMAT naming it and the limit)', async () => {
    const dir = fresh();
    mkdirSync(join(dir, 'cat'));
    const p = join(dir, 'cat', 'huge.png');
    writeFileSync(p, '');
    truncateSync(p, 300 << 20); // sparse: no disk space, no time
    const ds = await datasets.imageFolder(dir, { size: 4 });
    await expectCode(() => ds.fill([0], new Float32Array(48), new Int32Array(1)), 'E_FORMAT', p, 'limit');
  });

  it('a model.json over 64 MiB is refused before it is read (E_FORMAT naming it and the limit)', async () => {
    const p = join(fresh(), 'model.json');
    writeFileSync(p, '');
    truncateSync(p, 65 << 20);
    await expectCode(() => loadKeras(model, p), 'E_FORMAT', p, 'limit');
  });
});
