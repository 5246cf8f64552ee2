// csvLogger and tensorBoard while Trainer.fit trains: the CSV file's columns (Keras'
// CSVLogger: epoch, then the sorted log keys) and values against History; the TensorBoard
// event files decoded by an independent reader (test/support/tfevents.ts: bitwise CRC-32C,
// generic protobuf wire decoding) against the BatchLogs and History; histograms against the
// parameters; resume (append, SessionLog START); files closed when fit fails; E_IO for paths
// that cannot be written.
import { mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Dataset } from '../../lib/data/dataset.js';
import { csvLogger, tensorBoard } from '../../lib/index.js';
import { type BatchLog, type Callback, checkpoint, type History } from '../../lib/train/callbacks.js';
import { Trainer } from '../../lib/train/trainer.js';
import { expectCode, thrown } from '../support/expect_error.js';
import { tinyModel } from '../support/models.js';
import { Rng } from '../support/random.js';
import { type DecodedEvent, readEvents, readRecords, scalars } from '../support/tfevents.js';

const SIDE = 8;
const CLASSES = 6;
const SGD = { optimizer: { type: 'sgd' as const, lr: 0.05, momentum: 0.9 } };

function randomDataset(n: number, seed: number): Dataset {
  const rng = new Rng(seed);
  const per = SIDE * SIDE * 3;
  const images = new Float32Array(n * per).map(() => rng.next());
  const labels = Int32Array.from({ length: n }, (_, i) => i % CLASSES);
  return {
    length: n,
    imageShape: [SIDE, SIDE, 3] as const,
    classes: CLASSES,
    fill(indices, out, outLabels) {
      for (let i = 0; i < indices.length; i++) {
        const k = indices[i]!;
        out.set(images.subarray(k * per, (k + 1) * per), i * per);
        outLabels[i] = labels[k]!;
      }
    },
  };
}

/** Records every BatchLog. */
function batchRecorder(into: BatchLog[]): Callback {
  return { onBatchEnd: (b) => void into.push({ ...b }) };
}

async function eventsIn(dir: string): Promise<{ files: string[]; events: DecodedEvent[] }> {
  const files = (await readdir(dir)).filter((f) => f.includes('tfevents')).sort();
  const events: DecodedEvent[] = [];
  for (const f of files) events.push(...readEvents(new Uint8Array(await readFile(join(dir, f)))));
  return { files, events };
}

const f32 = (v: number) => Math.fround(v);

/** Paths this process has open (Linux), to check that fit closed its files. */
async function openFiles(): Promise<string[]> {
  if (!existsSync('/proc/self/fd')) return [];
  const out: string[] = [];
  for (const fd of await readdir('/proc/self/fd')) out.push(await readlink(`/proc/self/fd/${fd}`).catch(() => ''));
  return out;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rn-logs-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('tensorBoard', () => {
  let history: History;
  const batches: BatchLog[] = [];
  let logDir: string;
  let params: Map<string, Float32Array>;
  beforeAll(async () => {
    logDir = join(dir, 'tb');
    const model = tinyModel(1, { classes: CLASSES, side: SIDE });
    history = await new Trainer(model, { compile: SGD, progress: 'none' }).fit(randomDataset(48, 1), {
      epochs: 2,
      batchSize: 16,
      validation: randomDataset(20, 2),
      seed: 3,
      callbacks: [batchRecorder(batches), tensorBoard({ logDir, histograms: true })],
    });
    params = new Map(model.parameterInfo().map((p) => [p.name, model.getParameter(p.name)]));
    model.dispose();
  });

  it('writes train/ and validation/ event files named and started as TensorBoard writes them', async () => {
    for (const sub of ['train', 'validation']) {
      const { files, events } = await eventsIn(join(logDir, sub));
      expect(files).toHaveLength(1);
      expect(files[0]).toMatch(new RegExp(`^events\\.out\\.tfevents\\.\\d{10}\\.[^.].*\\.${process.pid}\\.\\d+$`));
      expect(events[0]).toMatchObject({ fileVersion: 'brain.Event:2', writer: 'resnet-native' });
      expect(Math.abs(events[0]!.wallTime - Date.now() / 1000)).toBeLessThan(600);
    }
  });

  it('holds every step’s loss, accuracy, lr, images/s and loss scale at its global step', async () => {
    const s = scalars((await eventsIn(join(logDir, 'train'))).events);
    expect(batches).toHaveLength(6);
    const at = (tag: string) => s.get(tag)!;
    expect(at('batch_loss')).toEqual(batches.map((b) => [b.globalStep, f32(b.loss)]));
    expect(at('batch_accuracy')).toEqual(batches.map((b) => [b.globalStep, f32(b.accuracy)]));
    expect(at('batch_learning_rate')).toEqual(batches.map((b) => [b.globalStep, f32(b.lr)]));
    expect(at('batch_loss_scale')).toEqual(batches.map((b) => [b.globalStep, 1]));
    expect(at('batch_images_per_second').map(([step]) => step)).toEqual([1, 2, 3, 4, 5, 6]);
    for (const [, v] of at('batch_images_per_second')) expect(v).toBeGreaterThan(0);
  });

  it('holds every epoch’s metrics, train in train/ and validation under the same tags in validation/', async () => {
    const train = scalars((await eventsIn(join(logDir, 'train'))).events);
    const val = scalars((await eventsIn(join(logDir, 'validation'))).events);
    // At the global step that ended each epoch (3 steps per epoch).
    const per = (k: keyof (typeof history)[number]) => history.map((h) => [3 * h.epoch, f32(h[k] as number)]);
    expect(train.get('epoch')).toEqual(per('epoch'));
    expect(train.get('epoch_loss')).toEqual(per('loss'));
    expect(train.get('epoch_accuracy')).toEqual(per('accuracy'));
    expect(train.get('epoch_top5')).toEqual(per('top5'));
    expect(train.get('epoch_learning_rate')).toEqual(per('lr'));
    expect(train.get('epoch_images_per_second')).toEqual(per('imagesPerSecond'));
    expect(val.get('epoch_loss')).toEqual(per('valLoss'));
    expect(val.get('epoch_accuracy')).toEqual(per('valAccuracy'));
    expect(val.get('epoch_top5')).toEqual(per('valTop5'));
    expect([...val.keys()].sort()).toEqual(['epoch_accuracy', 'epoch_loss', 'epoch_top5']);
  });

  it('writes a histogram of every parameter per epoch (histograms: true)', async () => {
    const { events } = await eventsIn(join(logDir, 'train'));
    const last = events.filter((e) => e.step === 6).flatMap((e) => e.values.filter((v) => v.histo));
    expect(last.map((v) => v.tag).sort()).toEqual([...params.keys()].map((n) => `${n}/histogram`).sort());
    for (const v of last) {
      const values = params.get(v.tag.replace(/\/histogram$/, ''))!;
      const h = v.histo!;
      expect(h.num).toBe(values.length);
      expect(h.min).toBe(Math.min(...values));
      expect(h.max).toBe(Math.max(...values));
      expect(h.sum).toBeCloseTo(
        values.reduce((a, b) => a + b, 0),
        6,
      );
      expect(h.bucket.reduce((a, b) => a + b, 0)).toBe(values.length);
      expect(h.bucketLimit).toHaveLength(h.bucket.length);
      expect(h.bucketLimit[h.bucketLimit.length - 1]).toBe(h.max);
      // Each bucket counts the values in (previous limit, limit] (the first from min).
      const lower = [h.min, ...h.bucketLimit.slice(0, -1)];
      h.bucket.forEach((count, k) => {
        const inside = values.filter((x) => (k === 0 ? x >= lower[k]! : x > lower[k]! - 1e-12) && x <= h.bucketLimit[k]! + 1e-12).length;
        expect(Math.abs(inside - count)).toBeLessThanOrEqual(values.length * 0.02 + 2); // edges rounded either way
      });
    }
  });

  it('updateFreq: "epoch" writes no per-step scalars; a number writes every n-th step', async () => {
    for (const [updateFreq, steps] of [
      ['epoch', []],
      [2, [2, 4, 6]],
    ] as const) {
      const logs = join(dir, `tb-freq-${updateFreq}`);
      const model = tinyModel(1, { classes: CLASSES, side: SIDE });
      await new Trainer(model, { compile: SGD, progress: 'none' }).fit(randomDataset(48, 1), {
        epochs: 2,
        batchSize: 16,
        seed: 3,
        callbacks: [tensorBoard({ logDir: logs, updateFreq })],
      });
      model.dispose();
      const s = scalars((await eventsIn(join(logs, 'train'))).events);
      expect((s.get('batch_loss') ?? []).map(([step]) => step)).toEqual(steps);
      expect(s.get('epoch_loss')).toHaveLength(2);
      expect(existsSync(join(logs, 'validation'))).toBe(false); // no validation set
    }
  });

  it('on resume starts a new file with SessionLog START at the first new step', async () => {
    const logs = join(dir, 'tb-resume');
    const ckpt = join(dir, 'tb-resume-ckpt');
    const train = randomDataset(48, 1);
    const opts = { epochs: 1, batchSize: 16, validation: randomDataset(20, 2), seed: 3 };
    const a = tinyModel(1, { classes: CLASSES, side: SIDE });
    await new Trainer(a, { compile: SGD, progress: 'none' }).fit(train, {
      ...opts,
      callbacks: [checkpoint({ dir: ckpt }), tensorBoard({ logDir: logs })],
    });
    a.dispose();
    const b = tinyModel(1, { classes: CLASSES, side: SIDE });
    await new Trainer(b, { compile: SGD, progress: 'none' }).fit(train, {
      ...opts,
      epochs: 2,
      resumeFrom: join(ckpt, 'model.safetensors'),
      callbacks: [tensorBoard({ logDir: logs })],
    });
    b.dispose();
    const { files, events } = await eventsIn(join(logs, 'train'));
    expect(files).toHaveLength(2);
    const second = readEvents(new Uint8Array(await readFile(join(logs, 'train', files[1]!))));
    expect(second[1]).toMatchObject({ step: 4, sessionLogStatus: 1 });
    expect(
      scalars(events)
        .get('epoch_loss')!
        .map(([step]) => step),
    ).toEqual([3, 6]);
    const val = readEvents(new Uint8Array(await readFile(join(logs, 'validation', (await eventsIn(join(logs, 'validation'))).files[1]!))));
    expect(val[1]).toMatchObject({ step: 4, sessionLogStatus: 1 });
  });
});

describe('csvLogger', () => {
  it('writes Keras CSVLogger columns: epoch, then the sorted log keys; values as History holds them', async () => {
    const path = join(dir, 'csv', 'log.csv');
    const model = tinyModel(1, { classes: CLASSES, side: SIDE });
    const history = await new Trainer(model, { compile: SGD, progress: 'none' }).fit(randomDataset(48, 1), {
      epochs: 3,
      batchSize: 16,
      validation: randomDataset(20, 2),
      seed: 3,
      callbacks: [csvLogger({ path })],
    });
    model.dispose();
    const lines = (await readFile(path, 'utf8')).split('\n');
    expect(lines.pop()).toBe('');
    // Python's sorted(): by code point, so capitals first within a prefix.
    expect(lines[0]).toBe('epoch,accuracy,imagesPerSecond,loss,lr,seconds,top5,valAccuracy,valLoss,valTop5');
    const header = lines[0]!.split(',');
    expect(lines).toHaveLength(4);
    lines.slice(1).forEach((line, i) => {
      const cells = line.split(',');
      header.forEach((key, c) => expect(Number(cells[c])).toBe((history[i] as unknown as Record<string, number>)[key]));
    });
  });

  it('takes a separator; append keeps what is there; on resume it drops the rows after the checkpoint', async () => {
    const path = join(dir, 'csv-append.tsv');
    const ckpt = join(dir, 'csv-ckpt');
    const train = randomDataset(48, 1);
    const opts = { batchSize: 16, seed: 3 };
    const a = tinyModel(1, { classes: CLASSES, side: SIDE });
    // Three epochs logged, but the checkpoint kept is that of epoch 1 (as if the run died after it).
    await new Trainer(a, { compile: SGD, progress: 'none' }).fit(train, {
      ...opts,
      epochs: 3,
      callbacks: [checkpoint({ dir: ckpt, everyEpoch: true }), csvLogger({ path, separator: '\t' })],
    });
    a.dispose();
    const before = (await readFile(path, 'utf8')).split('\n');
    expect(before[0]).toBe('epoch\taccuracy\timagesPerSecond\tloss\tlr\tseconds\ttop5');
    expect(before).toHaveLength(5);
    const b = tinyModel(1, { classes: CLASSES, side: SIDE });
    const history = await new Trainer(b, { compile: SGD, progress: 'none' }).fit(train, {
      ...opts,
      epochs: 3,
      resumeFrom: join(ckpt, 'epoch-1.safetensors'),
      callbacks: [csvLogger({ path, separator: '\t', append: true })],
    });
    b.dispose();
    const after = (await readFile(path, 'utf8')).split('\n');
    expect(after.slice(0, 2)).toEqual(before.slice(0, 2)); // header and epoch 1 kept
    expect(after.slice(2, 4).map((l) => l.split('\t')[0])).toEqual(['2', '3']);
    expect(Number(after[3]!.split('\t')[4])).toBe(history[2]!.lr);
    expect(after).toHaveLength(5);

    // A fresh run with append: true adds rows, as Keras does (no second header).
    const c = tinyModel(1, { classes: CLASSES, side: SIDE });
    await new Trainer(c, { compile: SGD, progress: 'none' }).fit(train, {
      ...opts,
      epochs: 1,
      callbacks: [csvLogger({ path, separator: '\t', append: true })],
    });
    c.dispose();
    const more = (await readFile(path, 'utf8')).split('\n');
    expect(more).toHaveLength(6);
    expect(more.filter((l) => l.startsWith('epoch'))).toHaveLength(1);
  });

  it('checks its options', () => {
    expect(thrown(() => csvLogger({ path: '' })).code).toBe('E_ARG');
    expect(thrown(() => csvLogger({ path: 'x.csv', separator: '"' })).message).toContain('separator');
    expect(thrown(() => csvLogger({ path: 'x.csv', separator: '.' })).code).toBe('E_ARG');
    expect(thrown(() => csvLogger({ path: 'x.csv', bogus: 1 } as never)).message).toContain('bogus');
    expect(thrown(() => tensorBoard({ logDir: 'x', updateFreq: 0 })).message).toContain('updateFreq');
    expect(thrown(() => tensorBoard({ logDir: 'x', histograms: 'yes' as never })).message).toContain('histograms');
  });
});

describe('writes that fail', () => {
  it('an unwritable path is E_IO when fit starts, naming it; nothing trains', async () => {
    const file = join(dir, 'a-file');
    await writeFile(file, 'x');
    expect(thrown(() => tensorBoard({ logDir: file })).code).toBe('E_IO');
    let steps = 0;
    const counter: Callback = { onBatchEnd: () => void steps++ };
    for (const cb of [tensorBoard({ logDir: join(file, 'tb') }), csvLogger({ path: join(file, 'log.csv') }), csvLogger({ path: dir })]) {
      const model = tinyModel(1, { classes: CLASSES, side: SIDE });
      await expectCode(
        () =>
          new Trainer(model, { compile: SGD, progress: 'none' }).fit(randomDataset(16, 1), { epochs: 1, batchSize: 16, callbacks: [cb, counter] }),
        'E_IO',
        dir,
      );
      model.dispose();
    }
    expect(steps).toBe(0);
  });

  it('a FIFO or a device at the CSV path is E_IO, not a hang; a garbled file to append to is not a crash', async () => {
    const fit = (cb: Callback) => {
      const model = tinyModel(1, { classes: CLASSES, side: SIDE });
      return new Trainer(model, { compile: SGD, progress: 'none' })
        .fit(randomDataset(16, 1), { epochs: 1, batchSize: 16, seed: 1, callbacks: [cb] })
        .finally(() => model.dispose());
    };
    if (process.platform !== 'win32') {
      const fifo = join(dir, 'log.fifo');
      execFileSync('mkfifo', [fifo]);
      for (const append of [false, true]) await expectCode(() => fit(csvLogger({ path: fifo, append })), 'E_IO', fifo);
      await expectCode(() => fit(csvLogger({ path: '/dev/null' })), 'E_IO', '/dev/null', 'not a regular file');
    }
    const garbled = join(dir, 'garbled.csv');
    await writeFile(garbled, Buffer.from([0xff, 0xfe, 0x00, 0x0a, 0x2c, 0x2c, 0x0a, 0x80]));
    const history = await fit(csvLogger({ path: garbled, append: true }));
    expect((await readFile(garbled, 'utf8')).trim().split('\n').pop()!.split(',')[0]).toBe(String(history[0]!.epoch));
  });

  it('closes its files when fit fails, keeping what was logged before the error', async () => {
    const logs = join(dir, 'tb-fail');
    const path = join(dir, 'fail.csv');
    const boom: Callback = {
      onEpochEnd: (log) => {
        if (log.epoch === 2) throw new Error('boom');
      },
    };
    const model = tinyModel(1, { classes: CLASSES, side: SIDE });
    await expect(
      new Trainer(model, { compile: SGD, progress: 'none' }).fit(randomDataset(32, 1), {
        epochs: 3,
        batchSize: 16,
        seed: 1,
        callbacks: [tensorBoard({ logDir: logs }), csvLogger({ path }), boom],
      }),
    ).rejects.toThrow('boom');
    model.dispose();
    const open = await openFiles();
    expect(open.filter((p) => p.startsWith(logs) || p === path)).toEqual([]);
    const s = scalars((await eventsIn(join(logs, 'train'))).events);
    expect(s.get('epoch_loss')!.map(([step]) => step)).toEqual([2, 4]); // epoch 2 was written before `boom` ran
    expect(s.get('batch_loss')).toHaveLength(4);
    expect((await readFile(path, 'utf8')).trim().split('\n')).toHaveLength(3);
  });

  it('every record of every file has valid CRCs (checked independently)', async () => {
    for (const sub of ['tb/train', 'tb/validation', 'tb-fail/train']) {
      const d = join(dir, sub);
      for (const f of await readdir(d)) expect(readRecords(new Uint8Array(await readFile(join(d, f)))).length).toBeGreaterThan(0);
    }
  });
});
