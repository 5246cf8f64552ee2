// imageFolder's decode-ahead: the bounded DecodeQueue (workers at a time, a prefetch of the
// examples the trainer hints), the same pixels with and without prefetch, errors kept for
// the fill that needs the file, and a fit that stops early telling the dataset to stop.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Dataset } from '../../lib/data/dataset.js';
import { DecodeQueue } from '../../lib/data/image_folder.js';
import { datasets } from '../../lib/index.js';
import { Trainer } from '../../lib/train/trainer.js';
import { expectCode } from '../support/expect_error.js';
import { tinyModel } from '../support/models.js';

/** A decode that settles when the test says so. */
function manual() {
  const started: number[] = [];
  const settle = new Map<number, { ok: (v: number) => void; fail: (e: Error) => void }>();
  const decode = (k: number) =>
    new Promise<number>((ok, fail) => {
      started.push(k);
      settle.set(k, { ok, fail });
    });
  return { started, settle, decode };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('DecodeQueue', () => {
  it('runs at most `workers` decodes, the batch being filled first, then the hinted ones', async () => {
    const m = manual();
    const q = new DecodeQueue(m.decode, 2);
    q.ahead([10, 11, 12, 13]);
    expect(m.started).toEqual([10, 11]);
    const batch = q.take([5, 6]);
    expect(q.active).toBe(2);
    m.settle.get(10)!.ok(100);
    await tick();
    expect(m.started).toEqual([10, 11, 5]); // the batch being filled goes before the prefetch
    m.settle.get(11)!.ok(110);
    await tick();
    expect(m.started).toEqual([10, 11, 5, 6]);
    m.settle.get(5)!.ok(50);
    m.settle.get(6)!.ok(60);
    expect(await Promise.all(batch)).toEqual([50, 60]);
    await tick();
    expect(m.started).toEqual([10, 11, 5, 6, 12, 13]);
    // Prefetched results are handed out once, without decoding again.
    m.settle.get(12)!.ok(120);
    m.settle.get(13)!.ok(130);
    expect(await Promise.all(q.take([10, 11, 12, 13]))).toEqual([100, 110, 120, 130]);
    expect(m.started).toHaveLength(6);
    expect(q.held).toBe(0);
  });

  it('holds no more than the hint, and an empty hint stops the prefetch', async () => {
    const m = manual();
    const q = new DecodeQueue(m.decode, 3);
    q.ahead([1, 2, 3, 4, 5, 6, 7, 8]);
    for (const k of [1, 2, 3]) m.settle.get(k)!.ok(k);
    await tick();
    expect(m.started).toEqual([1, 2, 3, 4, 5, 6]);
    q.ahead([]); // the run is over
    expect(q.held).toBe(0); // all freed; 4, 5, 6 finish decoding and are dropped
    expect(q.active).toBe(3);
    for (const k of [4, 5, 6]) m.settle.get(k)!.ok(k);
    await tick();
    expect(m.started).toEqual([1, 2, 3, 4, 5, 6]); // 7 and 8 never start
    expect(q.active).toBe(0);
  });

  it('keeps a prefetch error for the fill that takes that example (no unhandled rejection)', async () => {
    const m = manual();
    const q = new DecodeQueue(m.decode, 2);
    q.ahead([1, 2]);
    m.settle.get(1)!.fail(new Error('bad file 1'));
    m.settle.get(2)!.ok(2);
    await tick();
    const [a, b] = q.take([1, 2]);
    await expect(a).rejects.toThrow('bad file 1');
    expect(await b).toBe(2);
  });
});

describe('imageFolder with prefetch', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'resnet-prefetch-'));
    for (let c = 0; c < 3; c++) {
      await mkdir(join(root, `class${c}`));
      for (let i = 0; i < 6; i++) {
        const pixels = Buffer.alloc(20 * 14 * 3);
        for (let p = 0; p < pixels.length; p++) pixels[p] = (p * (c + 3) + i * 17) & 255;
        await sharp(pixels, { raw: { width: 20, height: 14, channels: 3 } })
          .jpeg({ quality: 90 })
          .toFile(join(root, `class${c}`, `${i}.jpg`));
      }
    }
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  async function batches(ds: Dataset, order: Int32Array, batch: number): Promise<Float32Array> {
    const per = ds.imageShape[0] * ds.imageShape[1] * ds.imageShape[2];
    const out = new Float32Array(order.length * per);
    const labels = new Int32Array(batch);
    for (let s = 0; s < order.length; s += batch) {
      const images = new Float32Array(batch * per);
      const filled = ds.fill(order.subarray(s, s + batch), images, labels);
      ds.prefetch?.(order.subarray(s + batch), batch);
      await filled;
      out.set(images, s * per);
    }
    return out;
  }

  it('gives the same pixels with and without the prefetch, whatever the workers', async () => {
    const order = Int32Array.from([17, 3, 9, 0, 12, 5, 1, 14, 8, 2, 11, 6]);
    const plain = await batches(await datasets.imageFolder(root, { size: 8, prefetch: 0, workers: 1 }), order, 4);
    for (const workers of [1, 3]) {
      const ahead = await batches(await datasets.imageFolder(root, { size: 8, prefetch: 2, workers }), order, 4);
      expect(Buffer.from(ahead.buffer).equals(Buffer.from(plain.buffer))).toBe(true);
    }
  });

  it('reports a corrupt file decoded ahead as E_FORMAT naming it, when its batch is filled', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'resnet-prefetch-bad-'));
    try {
      await mkdir(join(dir, 'k'));
      const good = await sharp({ create: { width: 9, height: 9, channels: 3, background: { r: 1, g: 2, b: 3 } } })
        .png()
        .toBuffer();
      await writeFile(join(dir, 'k', 'a.png'), good);
      await writeFile(join(dir, 'k', 'b.png'), good.subarray(0, 30));
      await writeFile(join(dir, 'k', 'c.png'), good);
      const ds = await datasets.imageFolder(dir, { size: 4 });
      const images = new Float32Array(48);
      const labels = new Int32Array(1);
      const first = ds.fill([0], images, labels);
      ds.prefetch!(Int32Array.from([1, 2]), 1);
      await first;
      await tick();
      await expectCode(() => ds.fill([1], images, labels), 'E_FORMAT', join(dir, 'k', 'b.png'));
      await ds.fill([2], images, labels);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('bad options are E_ARG', async () => {
    await expectCode(() => datasets.imageFolder(root, { size: 8, workers: 0 }), 'E_ARG', 'workers');
    await expectCode(() => datasets.imageFolder(root, { size: 8, prefetch: -1 }), 'E_ARG', 'prefetch');
    await expectCode(() => datasets.imageFolder(root, { size: 8, prefetch: 1.5 }), 'E_ARG', 'prefetch');
  });

  it('a fit stopped early tells the dataset that nothing more comes', async () => {
    const ds = await datasets.imageFolder(root, { size: 8 });
    const hints: number[] = [];
    const spy: Dataset = { ...ds, fill: ds.fill, prefetch: (up, b) => (hints.push(up.length), ds.prefetch!(up, b)) };
    const model = tinyModel(1, { classes: 3, side: 8 });
    const trainer = new Trainer(model, { compile: { optimizer: { type: 'sgd', lr: 0.01 } }, progress: 'none' });
    const history = await trainer.fit(spy, {
      epochs: 3,
      batchSize: 4,
      seed: 1,
      callbacks: [{ onBatchEnd: (_log, ctx) => ctx.stop('enough') }],
    });
    expect(history).toHaveLength(1);
    expect(hints.length).toBeGreaterThan(1);
    expect(hints[hints.length - 1]).toBe(0);
    model.dispose();
  });
});
