// Fuzzing the dataset readers: CIFAR-10 / CIFAR-100 binary files (lib/data/cifar.ts) and image
// decoding in datasets.imageFolder (lib/data/image_folder.ts, sharp). Valid files are
// truncated, bit-flipped and spliced, seeded; opening the dataset and filling every example
// must succeed or throw a ResNetError — never another error, a crash or a hang.
// The hostile families, seeded, every run: special files (FIFO, symlink to /dev/zero,
// directory, symlink loop) among a class folder's images and as CIFAR's files, and image
// files over the size cap.
import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

import sharp from 'sharp';
import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { datasets, type Dataset, ResNetError } from '../../lib/index.js';
import {
  describeUnexpected,
  expectPromptAnswer,
  largestAllocation,
  makeSpecialFile,
  mutateBytes,
  releaseFifos,
  SPECIAL_KINDS,
} from '../support/fuzz.js';
import { Rng } from '../support/random.js';

const root = mkdtempSync(join(tmpdir(), 'rn-fuzz-data-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(releaseFifos);

async function fillAll(ds: Dataset): Promise<void> {
  const [h, w, c] = ds.imageShape;
  const indices = Int32Array.from({ length: ds.length }, (_, i) => i);
  await ds.fill(indices, new Float32Array(ds.length * h * w * c), new Int32Array(ds.length));
}

function tally(outcomes: Map<string, number>, error: unknown, where: string): void {
  if (error === undefined) {
    outcomes.set('loaded', (outcomes.get('loaded') ?? 0) + 1);
    return;
  }
  expect(error instanceof ResNetError, `${where}: ${describeUnexpected(error)}`).toBe(true);
  const code = (error as ResNetError).code;
  expect(['E_FORMAT', 'E_IO'], `${where}: ${describeUnexpected(error)}`).toContain(code);
  outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
}

describe('fuzzed CIFAR binaries', () => {
  it('CIFAR-10 and CIFAR-100 files, mutated, load or throw ResNetError; buffers stay within the file', async () => {
    const rng = new Rng(31337);
    const records = 5;
    // CIFAR-10: 1 label byte + 3072 pixel bytes per record; CIFAR-100: coarse + fine label bytes.
    const make = (labelBytes: number, classes: number[]) => {
      const out = new Uint8Array(records * (labelBytes + 3072));
      for (let r = 0; r < records; r++) {
        const at = r * (labelBytes + 3072);
        for (let b = 0; b < labelBytes; b++) out[at + b] = rng.int(0, classes[b]! - 1);
        for (let p = labelBytes; p < labelBytes + 3072; p++) out[at + p] = rng.int(0, 255);
      }
      return out;
    };
    const c10 = join(root, 'c10');
    const c100 = join(root, 'c100');
    mkdirSync(c10);
    mkdirSync(c100);
    const batch10 = make(1, [10]);
    const batch100 = make(2, [20, 100]);
    const names = new TextEncoder().encode('airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n');
    writeFileSync(join(c100, 'test.bin'), batch100);
    await fillAll(await datasets.cifar100(c100, { split: 'test' })); // the unmutated files load

    const runs = 2000;
    const outcomes = new Map<string, number>();
    for (let i = 0; i < runs; i++) {
      const which = rng.int(0, 2);
      let where: string;
      let fileBytes: number;
      let open: () => Promise<Dataset>;
      if (which === 0) {
        const { data, how } = mutateBytes(batch10, rng, { start: 0, end: 3073 * 2 });
        writeFileSync(join(c10, 'test_batch.bin'), data);
        writeFileSync(join(c10, 'batches.meta.txt'), names);
        where = `cifar10 test_batch.bin ${how}`;
        fileBytes = data.length + names.length;
        open = () => datasets.cifar10(c10, { split: 'test' });
      } else if (which === 1) {
        const { data, how } = mutateBytes(names, rng);
        writeFileSync(join(c10, 'test_batch.bin'), batch10);
        writeFileSync(join(c10, 'batches.meta.txt'), data);
        where = `cifar10 batches.meta.txt ${how}`;
        fileBytes = batch10.length + data.length;
        open = () => datasets.cifar10(c10, { split: 'test' });
      } else {
        const { data, how } = mutateBytes(batch100, rng, { start: 0, end: 3074 * 2 });
        writeFileSync(join(c100, 'test.bin'), data);
        where = `cifar100 test.bin ${how}`;
        fileBytes = data.length;
        open = () => datasets.cifar100(c100, { split: 'test', labels: rng.next() < 0.5 ? 'fine' : 'coarse' });
      }
      const { error, largest } = await largestAllocation(async () => fillAll(await open()));
      tally(outcomes, error, `input ${i} (${where})`);
      // fill's float32 images are 4 bytes per stored pixel byte.
      expect(largest, `input ${i} (${where}): largest buffer`).toBeLessThanOrEqual(4 * fileBytes + 64 * 1024);
    }
    console.log(`fuzzed CIFAR files: ${runs} inputs → ${JSON.stringify(Object.fromEntries(outcomes))}`);
    expect(outcomes.get('E_FORMAT') ?? 0).toBeGreaterThan(runs / 5);
  });
});

describe('fuzzed image decoding', () => {
  it('mutated PNG and JPEG files decode or throw ResNetError', async () => {
    const rng = new Rng(2718);
    const raw = Buffer.from(Uint8Array.from({ length: 20 * 24 * 3 }, () => rng.int(0, 255)));
    const image = sharp(raw, { raw: { width: 24, height: 20, channels: 3 } });
    const png = new Uint8Array(await image.clone().png().toBuffer());
    const jpeg = new Uint8Array(await image.clone().jpeg({ quality: 80 }).toBuffer());
    const dir = join(root, 'images');
    mkdirSync(join(dir, 'a'), { recursive: true });
    mkdirSync(join(dir, 'b'), { recursive: true });
    writeFileSync(join(dir, 'a', '1.png'), png);
    writeFileSync(join(dir, 'b', '1.jpg'), jpeg);
    await fillAll(await datasets.imageFolder(dir, { size: 8 })); // the unmutated files decode

    const runs = 1000;
    const outcomes = new Map<string, number>();
    for (let i = 0; i < runs; i++) {
      const isPng = rng.next() < 0.5;
      const { data, how } = mutateBytes(isPng ? png : jpeg, rng, { start: 0, end: 64 });
      writeFileSync(join(dir, 'a', '1.png'), isPng ? data : png);
      writeFileSync(join(dir, 'b', '1.jpg'), isPng ? jpeg : data);
      const channels = rng.next() < 0.5 ? 3 : 1;
      let error: unknown;
      try {
        await fillAll(await datasets.imageFolder(dir, { size: [8, 6], channels }));
      } catch (err) {
        error = err;
      }
      tally(outcomes, error, `input ${i} (${isPng ? 'PNG' : 'JPEG'} ${how})`);
    }
    console.log(`fuzzed images: ${runs} inputs → ${JSON.stringify(Object.fromEntries(outcomes))}`);
    expect(outcomes.get('E_FORMAT') ?? 0).toBeGreaterThan(runs / 10);
  });

  it('a small PNG declaring a huge image is refused before it is decoded (E_FORMAT, the pixel limit)', async () => {
    const raw = Buffer.alloc(4 * 4 * 3, 128);
    const png = new Uint8Array(
      await sharp(raw, { raw: { width: 4, height: 4, channels: 3 } })
        .png()
        .toBuffer(),
    );
    // IHDR: 8-byte signature, length, 'IHDR', width, height, …, CRC over type + data.
    const view = new DataView(png.buffer, png.byteOffset);
    expect(new TextDecoder().decode(png.subarray(12, 16))).toBe('IHDR');
    view.setUint32(16, 30000);
    view.setUint32(20, 30000);
    view.setUint32(29, crc32(png.subarray(12, 29)));
    const dir = join(root, 'bomb');
    mkdirSync(join(dir, 'a'), { recursive: true });
    writeFileSync(join(dir, 'a', 'bomb.png'), png);
    const ds = await datasets.imageFolder(dir, { size: 8 });
    const err = await fillAll(ds).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err instanceof ResNetError, describeUnexpected(err)).toBe(true);
    expect((err as ResNetError).code).toBe('E_FORMAT');
    expect((err as ResNetError).message).toContain('bomb.png');
    expect((err as ResNetError).message).toMatch(/pixel limit|exceeds/i);
  });
});

describe('hostile families, seeded, every run', () => {
  it('special files among the images and as CIFAR files, images over the cap: E_IO / E_FORMAT naming the file, at once', async () => {
    const rng = new Rng(1616);
    const png = new Uint8Array(
      await sharp(Buffer.alloc(4 * 4 * 3, 90), { raw: { width: 4, height: 4, channels: 3 } })
        .png()
        .toBuffer(),
    );
    const record = new Uint8Array(3073);
    const runs = 60;
    const seen = new Map<string, number>();
    for (let i = 0; i < runs; i++) {
      const dir = join(root, `family${i}`);
      mkdirSync(dir);
      const family = rng.pick(['special image', 'special CIFAR file', 'oversized image'] as const);
      let call: () => Promise<unknown>;
      let code: string | undefined = 'E_IO';
      let path: string;
      let how: string;
      if (family === 'special CIFAR file') {
        writeFileSync(join(dir, 'test_batch.bin'), record);
        writeFileSync(join(dir, 'batches.meta.txt'), 'a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n');
        // test_batch.bin is how the folder is recognised: a special one leaves a folder without it.
        path = join(dir, rng.pick(['test_batch.bin', 'batches.meta.txt']));
        rmSync(path);
        const kind = rng.pick(SPECIAL_KINDS);
        makeSpecialFile(kind, path);
        how = `${kind} as ${path}`;
        if (path.endsWith('test_batch.bin')) path = dir;
        call = () => datasets.cifar10(dir, { split: 'test' });
      } else {
        // A class folder of good images, one of them (in sorted order: the one filled) replaced.
        mkdirSync(join(dir, 'cat'));
        const count = rng.int(1, 5);
        const which = rng.int(0, count - 1);
        for (let k = 0; k < count; k++) writeFileSync(join(dir, 'cat', `${k}.png`), png);
        path = join(dir, 'cat', `${which}.png`);
        rmSync(path);
        if (family === 'special image') {
          const kind = rng.pick(SPECIAL_KINDS);
          makeSpecialFile(kind, path);
          how = kind;
          if (kind === 'directory') code = undefined; // not an image file: skipped when listing
        } else {
          writeFileSync(path, '');
          truncateSync(path, rng.int(256 << 20, 1 << 30) + 1); // sparse: free to make
          code = 'E_FORMAT';
          how = 'sparse';
        }
        call = async () => {
          const ds = await datasets.imageFolder(dir, { size: 4 });
          const indices = Int32Array.from({ length: ds.length }, (_, k) => k);
          await ds.fill(indices, new Float32Array(ds.length * 48), new Int32Array(ds.length));
        };
      }
      await expectPromptAnswer(`run ${i}: ${family} (${how})`, call, {
        ...(code === undefined ? {} : { code, mentions: [path] }),
        limitMs: 5000,
        timeoutMs: 5000,
      });
      seen.set(family, (seen.get(family) ?? 0) + 1);
    }
    console.log(`hostile data families: ${JSON.stringify(Object.fromEntries(seen))}`);
    expect(seen.size).toBe(3);
  });
});
