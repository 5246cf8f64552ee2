// Fuzzing the dataset readers: CIFAR-10 / CIFAR-100 binary files (lib/data/cifar.ts) and image
// decoding in datasets.imageFolder (lib/data/image_folder.ts, sharp). Valid files are
// truncated, bit-flipped and spliced, seeded; opening the dataset and filling every example
// must succeed or throw a ResNetError — never another error, a crash or a hang.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';

import { datasets, type Dataset, ResNetError } from '../lib/index.js';
import { describeUnexpected, largestAllocation, mutateBytes } from './support/fuzz.js';
import { Rng } from './support/random.js';

const root = mkdtempSync(join(tmpdir(), 'rn-fuzz-data-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

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
    const png = new Uint8Array(await sharp(raw, { raw: { width: 4, height: 4, channels: 3 } }).png().toBuffer());
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
