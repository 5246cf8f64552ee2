// Trainer.fit on small synthetic datasets: it learns; History's shape; callbacks' order,
// stopping and early stopping; top-k metrics against an independent computation; seeded
// shuffling; the two-slot pipeline (batch k+1 requested before step k is reported, no native
// allocation per step); progress output; exact resume from a checkpoint; argument errors.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import type { Dataset } from '../../lib/data/dataset.js';
import { allocationStats, type Model, ResNetError, schedules, Tensor } from '../../lib/index.js';
import { type Callback, checkpoint, earlyStopping, type EpochLog, type History } from '../../lib/train/callbacks.js';
import { crossEntropySum, MetricAccumulator, topK, topKCorrect } from '../../lib/train/metrics.js';
import { formatDuration, Progress } from '../../lib/train/progress.js';
import { evaluateModel, SeededRandom, Trainer } from '../../lib/train/trainer.js';
import { tinyModel } from '../support/models.js';
import { Rng } from '../support/random.js';

const SIDE = 8;
const CLASSES = 6;

/**
 * 8×8×3 images of 6 classes: class = (bright channel 0–2) × (bright half: top or bottom),
 * on uniform noise in [0, 0.3). Easy to learn, hard to get right by chance (1/6).
 */
function patternDataset(n: number, seed: number, record?: number[][]): Dataset & { images: Float32Array; labels: Int32Array } {
  const rng = new Rng(seed);
  const per = SIDE * SIDE * 3;
  const images = new Float32Array(n * per);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % CLASSES;
    labels[i] = c;
    const channel = c % 3;
    const top = c < 3;
    for (let y = 0; y < SIDE; y++) {
      for (let x = 0; x < SIDE; x++) {
        for (let ch = 0; ch < 3; ch++) {
          const bright = ch === channel && y < SIDE / 2 === top;
          images[i * per + (y * SIDE + x) * 3 + ch] = rng.next() * 0.3 + (bright ? 0.7 : 0);
        }
      }
    }
  }
  return {
    length: n,
    imageShape: [SIDE, SIDE, 3] as const,
    classes: CLASSES,
    images,
    labels,
    fill(indices, out, outLabels) {
      record?.push(Array.from(indices));
      for (let i = 0; i < indices.length; i++) {
        const k = indices[i]!;
        out.set(images.subarray(k * per, (k + 1) * per), i * per);
        outLabels[i] = labels[k]!;
      }
    },
  };
}

const SGD = { optimizer: { type: 'sgd' as const, lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 } };

function params(model: Model): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const p of model.parameterInfo()) out.set(p.name, model.getParameter(p.name));
  return out;
}

function expectSameParams(a: Map<string, Float32Array>, b: Map<string, Float32Array>): void {
  expect([...a.keys()]).toEqual([...b.keys()]);
  for (const [name, v] of a) {
    const w = b.get(name)!;
    let diff = -1;
    for (let i = 0; i < v.length; i++) if (!Object.is(v[i], w[i])) ((diff = i), (i = v.length));
    if (diff >= 0) throw new Error(`${name}[${diff}]: ${v[diff]} vs ${w[diff]}`);
  }
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rn-trainer-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('Trainer.fit', () => {
  it('learns a simple pattern, with a History entry per epoch', async () => {
    const train = patternDataset(384, 1);
    const val = patternDataset(96, 2);
    const model = tinyModel(1, { classes: CLASSES, side: SIDE });
    const trainer = new Trainer(model, { compile: SGD, progress: 'none' });
    const history = await trainer.fit(train, {
      epochs: 3,
      batchSize: 32,
      validation: val,
      seed: 7,
      augment: { padding: 1, flip: true, mean: [0.3, 0.3, 0.3], std: [0.3, 0.3, 0.3] },
      schedule: schedules.cosine({ lr: 0.05, totalSteps: 3 * 12, warmupSteps: 3 }),
    });
    expect(history).toHaveLength(3);
    history.forEach((h, i) => {
      expect(h.epoch).toBe(i + 1);
      expect(Object.keys(h).sort()).toEqual(
        ['accuracy', 'epoch', 'imagesPerSecond', 'loss', 'lr', 'seconds', 'top5', 'valAccuracy', 'valLoss', 'valTop5'].sort(),
      );
      for (const k of ['loss', 'accuracy', 'valLoss', 'valAccuracy', 'valTop5', 'imagesPerSecond', 'seconds'] as const) {
        expect(Number.isFinite(h[k])).toBe(true);
      }
      expect(h.imagesPerSecond).toBeGreaterThan(0);
      expect(h.valTop5!).toBeGreaterThanOrEqual(h.valAccuracy!);
      expect(h.top5!).toBeGreaterThanOrEqual(h.accuracy);
    });
    // The lr of each epoch's last step (cosine over 36 steps, 12 per epoch).
    const sched = schedules.cosine({ lr: 0.05, totalSteps: 36, warmupSteps: 3 });
    expect(history.map((h) => h.lr)).toEqual([sched.at(11), sched.at(23), sched.at(35)]);
    expect(history[2]!.valAccuracy).toBeGreaterThanOrEqual(0.95);
    expect(history[2]!.loss).toBeLessThan(history[0]!.loss);
    expect(trainer.history).toBe(history);
    expect(trainer.stopReason).toBeUndefined();
    model.dispose();
  });

  it('calls callbacks in order, and onEpochEnd returning false stops training', async () => {
    const train = patternDataset(40, 3);
    const model = tinyModel(2, { classes: CLASSES, side: SIDE });
    const events: string[] = [];
    const recorder: Callback = {
      onTrainBegin: (ctx) => void events.push(`trainBegin ${ctx.epochs}x${ctx.stepsPerEpoch} val=${ctx.hasValidation}`),
      onEpochBegin: (e) => void events.push(`epochBegin ${e}`),
      onBatchEnd: (b, ctx) => void events.push(`batch ${b.epoch}.${b.step} g${b.globalStep}=${ctx.step} n${b.size}`),
      onEpochEnd: async (log, ctx) => {
        await new Promise((r) => setTimeout(r, 1));
        events.push(`epochEnd ${log.epoch} history=${ctx.history.length}`);
        return log.epoch < 2;
      },
      onTrainEnd: (h) => void events.push(`trainEnd ${h.length}`),
    };
    const second: Callback = { onEpochEnd: (log) => void events.push(`second ${log.epoch}`) };
    const trainer = new Trainer(model, { compile: SGD, progress: 'none' });
    const history = await trainer.fit(train, { epochs: 5, batchSize: 16, dropLast: false, seed: 1, callbacks: [recorder, second] });
    expect(history).toHaveLength(2);
    expect(events).toEqual([
      'trainBegin 5x3 val=false',
      'epochBegin 1',
      'batch 1.1 g1=1 n16',
      'batch 1.2 g2=2 n16',
      'batch 1.3 g3=3 n8',
      'epochEnd 1 history=1',
      'second 1',
      'epochBegin 2',
      'batch 2.1 g4=4 n16',
      'batch 2.2 g5=5 n16',
      'batch 2.3 g6=6 n8',
      'epochEnd 2 history=2',
      'second 2',
      'trainEnd 2',
    ]);
    expect(trainer.stopReason).toBe('stopped by a callback');
    model.dispose();
  });

  it('earlyStopping stops once the monitored metric has not improved for `patience` epochs', async () => {
    const train = patternDataset(64, 4);
    const val = patternDataset(24, 5);
    const model = tinyModel(3, { classes: CLASSES, side: SIDE });
    const trainer = new Trainer(model, { compile: SGD, progress: 'none' });
    // minDelta is so large that only the first epoch counts as an improvement.
    const history = await trainer.fit(train, {
      epochs: 10,
      batchSize: 32,
      validation: val,
      seed: 2,
      callbacks: [earlyStopping({ monitor: 'valLoss', patience: 2, minDelta: 1e9 })],
    });
    expect(history.map((h) => h.epoch)).toEqual([1, 2, 3]);
    expect(trainer.stopReason).toMatch(/early stopping: valLoss has not improved for 2 epochs \(best .* at epoch 1\)/);

    // The Keras rule with patience 0: stop at the first epoch that does not improve.
    const h2 = await trainer.fit(train, { epochs: 10, batchSize: 32, seed: 2, callbacks: [earlyStopping({ monitor: 'accuracy', minDelta: 2 })] });
    expect(h2).toHaveLength(2);

    // A metric the log does not have is a clear error.
    await expect(trainer.fit(train, { epochs: 2, batchSize: 32, callbacks: [earlyStopping({ monitor: 'valAccuracy' })] })).rejects.toThrow(
      /monitor 'valAccuracy' is not in the epoch log \(pass a validation dataset to fit\); available: loss, accuracy/,
    );
    expect(() => earlyStopping({ monitor: 'val_loss' as never })).toThrow(ResNetError);
    model.dispose();
  });

  it('earlyStopping restoreBestWeights puts back the best epoch', async () => {
    const train = patternDataset(64, 4);
    const model = tinyModel(3, { classes: CLASSES, side: SIDE });
    const trainer = new Trainer(model, { compile: SGD, progress: 'none' });
    let atBest: Map<string, Float32Array> | undefined;
    const snap: Callback = { onEpochEnd: (log, ctx) => void (log.epoch === 1 && (atBest = params(ctx.model))) };
    const h = await trainer.fit(train, {
      epochs: 3,
      batchSize: 32,
      seed: 2,
      callbacks: [snap, earlyStopping({ monitor: 'loss', patience: 5, minDelta: 1e9, restoreBestWeights: true })],
    });
    expect(h).toHaveLength(3);
    expectSameParams(params(model), atBest!);
    model.dispose();
  });

  it('shuffles with the seed: the same order for the same seed, a new one every epoch', async () => {
    const orders = async (seed: number, shuffle = true) => {
      const record: number[][] = [];
      const model = tinyModel(4, { classes: CLASSES, side: SIDE });
      await new Trainer(model, { compile: SGD, progress: 'none' }).fit(patternDataset(48, 6, record), { epochs: 2, batchSize: 16, seed, shuffle });
      model.dispose();
      return [record.slice(0, 3).flat(), record.slice(3, 6).flat()];
    };
    const [a1, a2] = await orders(11);
    const [b1, b2] = await orders(11);
    const [c1] = await orders(12);
    const [d1, d2] = await orders(11, false);
    const identity = Array.from({ length: 48 }, (_, i) => i);
    expect(a1).toEqual(b1);
    expect(a2).toEqual(b2);
    expect(a1).not.toEqual(a2);
    expect(a1).not.toEqual(c1);
    expect([...a1].sort((x, y) => x - y)).toEqual(identity);
    expect([...a2].sort((x, y) => x - y)).toEqual(identity);
    expect(d1).toEqual(identity);
    expect(d2).toEqual(identity);
  });

  it('loads batch k+1 while step k runs, without native allocations per step', async () => {
    const record: number[][] = [];
    const train = patternDataset(128, 7, record);
    const model = tinyModel(5, { classes: CLASSES, side: SIDE });
    const fillsAtBatchEnd: number[] = [];
    const allocations: number[] = [];
    const probe: Callback = {
      onBatchEnd: () => {
        fillsAtBatchEnd.push(record.length);
        allocations.push(allocationStats().allocations);
      },
    };
    await new Trainer(model, { compile: SGD, progress: 'none' }).fit(train, {
      epochs: 2,
      batchSize: 16,
      seed: 3,
      augment: { padding: 2, flip: true },
      callbacks: [probe],
    });
    // When step k (1-based) is reported, the fill of batch k+1 has already been issued.
    expect(fillsAtBatchEnd).toEqual([2, 3, 4, 5, 6, 7, 8, 8, 10, 11, 12, 13, 14, 15, 16, 16]);
    // After the first steps (plan compiled, optimizer state allocated) nothing is allocated.
    expect(new Set(allocations.slice(2)).size).toBe(1);
    model.dispose();
  });

  it('for a model on a GPU, passes each batch as a device copy and frees every copy, also when a step fails', async () => {
    // The GPU imitated on the CPU: the model reports 'cuda:0', and Tensor.to makes a host
    // copy that reports it too (test/gpu/cuda.test.ts runs the real thing).
    const copies: Tensor[] = [];
    const spy = vi.spyOn(Tensor.prototype, 'to').mockImplementation(function (this: Tensor, device: string) {
      const t = Tensor.fromArray(this.toFloat32Array(), this.shape);
      Object.defineProperty(t, 'device', { value: device });
      copies.push(t);
      return t;
    });
    const onGpu = (m: Model, failAtStep = Infinity): { model: Model; inputs: Tensor[] } => {
      const inputs: Tensor[] = [];
      const model = new Proxy(m, {
        get(target, key) {
          if (key === 'device') return 'cuda:0';
          if (key === 'trainStep') {
            return (x: Tensor, ...rest: [Int32Array]) => {
              inputs.push(x);
              if (inputs.length === failAtStep) return Promise.reject(new ResNetError('E_DEVICE', 'injected failure'));
              return target.trainStep(x, ...rest);
            };
          }
          const v: unknown = Reflect.get(target, key, target);
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
        // Setters (fit describes the model: preprocessing, classNames) write the real model's private fields.
        set(target, key, value) {
          return Reflect.set(target, key, value, target);
        },
      });
      return { model, inputs };
    };
    const train = patternDataset(40, 8);
    const val = patternDataset(20, 9);
    const options = { epochs: 2, batchSize: 16, dropLast: false, seed: 3, validation: val, augment: { padding: 2, flip: true } };
    try {
      const gpu = onGpu(tinyModel(6, { classes: CLASSES, side: SIDE }));
      const staged = await new Trainer(gpu.model, { compile: SGD, progress: 'none' }).fit(train, options);
      // Per epoch: 3 training steps (the last one short) and 2 validation batches.
      expect(copies.length).toBe(2 * (3 + 2));
      expect(gpu.inputs.every((x) => copies.includes(x))).toBe(true);
      expect(copies.every((t) => t.isDisposed)).toBe(true);
      // The same arithmetic as reading the pipeline's host tensors.
      const plain = await new Trainer(tinyModel(6, { classes: CLASSES, side: SIDE }), { compile: SGD, progress: 'none' }).fit(train, options);
      expect(staged.map((e) => [e.loss, e.valLoss])).toEqual(plain.map((e) => [e.loss, e.valLoss]));

      copies.length = 0;
      const failing = onGpu(tinyModel(6, { classes: CLASSES, side: SIDE }), 2);
      await expect(new Trainer(failing.model, { compile: SGD, progress: 'none' }).fit(train, options)).rejects.toThrow('injected failure');
      // Batch 3 was staged while step 2 ran; it is freed with the rest.
      expect(copies.length).toBe(3);
      expect(copies.every((t) => t.isDisposed)).toBe(true);
    } finally {
      spy.mockRestore();
    }
  });

  it('resumes from a checkpoint with results identical to an uninterrupted run', async () => {
    const train = patternDataset(96, 8);
    const val = patternDataset(24, 9);
    const fitOptions = {
      epochs: 3,
      batchSize: 16,
      validation: val,
      seed: 5,
      augment: { padding: 1, flip: true, mean: 0.3, std: 0.3 },
      schedule: schedules.cosine({ lr: 0.05, totalSteps: 18, warmupSteps: 2 }),
    };
    const runDir = join(dir, 'resume');
    const a = tinyModel(6, { classes: CLASSES, side: SIDE });
    const full = await new Trainer(a, { compile: SGD, progress: 'none' }).fit(train, {
      ...fitOptions,
      callbacks: [checkpoint({ dir: runDir, saveBest: 'valAccuracy', everyEpoch: true })],
    });
    expect((await readdir(runDir)).sort()).toEqual([
      'best.safetensors',
      'epoch-1.safetensors',
      'epoch-2.safetensors',
      'epoch-3.safetensors',
      'model.safetensors',
    ]);

    // A different initialisation: everything must come from the checkpoint.
    const b = tinyModel(99, { classes: CLASSES, side: SIDE });
    const events: string[] = [];
    const resumed = await new Trainer(b, { compile: SGD, progress: 'none' }).fit(train, {
      ...fitOptions,
      resumeFrom: join(runDir, 'epoch-1.safetensors'),
      callbacks: [{ onEpochBegin: (e) => void events.push(`epoch ${e}`) }],
    });
    expect(events).toEqual(['epoch 2', 'epoch 3']);
    expect(resumed).toHaveLength(3);
    const strip = (h: EpochLog[]) => h.map(({ seconds: _s, imagesPerSecond: _i, ...rest }) => rest);
    expect(strip(resumed)).toEqual(strip(full));
    expectSameParams(params(b), params(a));

    // Resuming a finished run needs more epochs.
    await expect(new Trainer(b, { progress: 'none' }).fit(train, { ...fitOptions, resumeFrom: join(runDir, 'model.safetensors') })).rejects.toThrow(
      /already trained 3 epochs/,
    );
    // A checkpoint of another architecture is refused before anything is changed.
    const other = tinyModel(5, { classes: 10, side: SIDE });
    const before = params(other);
    await expect(
      new Trainer(other, { compile: SGD, progress: 'none' }).fit(train, { ...fitOptions, resumeFrom: join(runDir, 'epoch-1.safetensors') }),
    ).rejects.toMatchObject({
      code: 'E_SHAPE',
      message: expect.stringMatching(/does not match the model being trained/),
    });
    expectSameParams(params(other), before);
    [a, b, other].forEach((m) => m.dispose());
  });

  it('takes a ReduceLROnPlateau as its schedule: each epoch at its lr, stepped on the monitored metric; resumed exactly', async () => {
    const train = patternDataset(64, 20);
    const val = patternDataset(24, 21);
    // threshold 10 (rel, min): better means loss < best * (1 - 10), which no epoch is, not even
    // the first (Infinity * -9 = -Infinity, as in PyTorch). With patience 1 the lr halves after
    // every second epoch: 0.05 for epochs 1–2, 0.025 for 3–4, 0.0125 for 5–6.
    const plateau = () => new schedules.ReduceLROnPlateau({ lr: 0.05, monitor: 'loss', patience: 1, factor: 0.5, threshold: 10 });
    const dirRun = join(dir, 'plateau');
    const opts = { batchSize: 16, validation: val, seed: 4 };
    const a = tinyModel(9, { classes: CLASSES, side: SIDE });
    const full = await new Trainer(a, { compile: SGD, progress: 'none' }).fit(train, {
      ...opts,
      epochs: 6,
      schedule: plateau(),
      callbacks: [checkpoint({ dir: dirRun, everyEpoch: true })],
    });
    expect(full.map((h) => h.lr)).toEqual([0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125]);
    expect(a.learningRate).toBe(0.0125);
    // Resumed after epoch 4 with a new scheduler: the history replayed, the same lrs and results.
    const b = tinyModel(9, { classes: CLASSES, side: SIDE });
    const resumed = await new Trainer(b, { compile: SGD, progress: 'none' }).fit(train, {
      ...opts,
      epochs: 6,
      schedule: plateau(),
      resumeFrom: join(dirRun, 'epoch-4.safetensors'),
    });
    const strip = (h: History) => h.map(({ seconds: _s, imagesPerSecond: _i, ...rest }) => rest);
    expect(strip(resumed)).toEqual(strip(full));
    // 'valAccuracy' follows the validation accuracy in 'max' mode; a validation metric needs a validation set.
    const s = new schedules.ReduceLROnPlateau({ lr: 0.05, monitor: 'valAccuracy', patience: 0 });
    const one = await new Trainer(b, { progress: 'none' }).fit(train, { ...opts, epochs: 1, schedule: s });
    expect(s.mode).toBe('max');
    expect(s.best).toBe(one[0]!.valAccuracy);
    await expect(
      new Trainer(b, { progress: 'none' }).fit(train, { epochs: 1, batchSize: 16, schedule: new schedules.ReduceLROnPlateau({ lr: 0.05 }) }),
    ).rejects.toMatchObject({ code: 'E_ARG', message: expect.stringMatching(/monitors 'valLoss': pass a validation dataset/) });
    [a, b].forEach((m) => m.dispose());
  });

  it('writes progress as a live bar on a TTY and as lines elsewhere', async () => {
    const chunks: string[] = [];
    const tty = { isTTY: true, columns: 120, write: (s: string) => void chunks.push(s) };
    const model = tinyModel(7, { classes: CLASSES, side: SIDE });
    await new Trainer(model, { compile: SGD, progressStream: tty }).fit(patternDataset(64, 10), {
      epochs: 2,
      batchSize: 16,
      validation: patternDataset(12, 11),
      seed: 1,
    });
    const out = chunks.join('');
    expect(out).toMatch(/\repoch 1\/2 \[=+>? *\]\s+\d\/4  loss \d\.\d{4}  acc \d\.\d{4}  [\d.]+ img\/s  ETA \d+:\d\d/);
    expect(out).toMatch(
      /epoch 2\/2  loss \d\.\d{4}  acc \d\.\d{4}  top5 \d\.\d{4}  val_loss \d\.\d{4}  val_acc \d\.\d{4}  val_top5 \d\.\d{4}  lr 0\.05  [\d.]+ img\/s  [\d.]+s\n/,
    );

    const lines: string[] = [];
    const file = { isTTY: false, write: (s: string) => void lines.push(s) };
    await new Trainer(model, { progressStream: file }).fit(patternDataset(64, 10), { epochs: 2, batchSize: 16, seed: 1 });
    expect(lines.join('')).not.toContain('\r');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^epoch 1\/2  loss .* img\/s  [\d.]+s\n$/);
    model.dispose();
  });

  const ERASE_LINE_END = new RegExp(`${String.fromCharCode(27)}\\[K$`);
  it('keeps the live line within the terminal width, dropping the bar and then img/s, acc and loss before the ETA', async () => {
    const lines = (columns: number): string[] => {
      const chunks: string[] = [];
      const progress = new Progress({ mode: 'bar', redrawMs: 0, stream: { isTTY: true, columns, write: (s: string) => void chunks.push(s) } });
      progress.trainBegin(30, 390);
      progress.epochBegin(12);
      progress.batch(123, 1.23456, 0.5, 123 * 128);
      return chunks.map((c) => c.replace(/^\r/, '').replace(ERASE_LINE_END, ''));
    };
    for (const columns of [120, 100, 80, 60, 50, 40, 24]) {
      const [line] = lines(columns);
      expect(line!.length, `${columns} columns: '${line}'`).toBeLessThanOrEqual(columns - 1);
      expect(line, `${columns} columns`).toMatch(/123\/390 .*ETA (\d+:\d\d|--:--)$/);
    }
    expect(lines(120)[0]).toMatch(/^epoch 12\/30 \[=+> *\]  123\/390  loss 1\.2346  acc 0\.5000  [\d.]+ img\/s  ETA /);
    expect(lines(60)[0]).toMatch(/^epoch 12\/30  123\/390  loss 1\.2346  acc 0\.5000  ETA /); // no bar, no img/s
    expect(lines(24)[0]).toMatch(/^123\/390  ETA /);
  });

  it('rejects bad arguments with a ResNetError that names them', async () => {
    const model = tinyModel(8, { classes: CLASSES, side: SIDE });
    const train = patternDataset(32, 12);
    const uncompiled = new Trainer(model, { progress: 'none' });
    await expect(uncompiled.fit(train, { epochs: 1, batchSize: 8 })).rejects.toThrow(/compile the model first/);
    const trainer = new Trainer(model, { compile: SGD, progress: 'none' });
    const err = await trainer.fit(train, { epochs: 1, batchSize: 64 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResNetError);
    expect((err as ResNetError).code).toBe('E_ARG');
    expect((err as ResNetError).message).toMatch(/32 examples, fewer than one batch of 64/);
    await expect(trainer.fit(train, { epochs: 1, batchSize: 8, shufle: true } as never)).rejects.toThrow(/unknown option 'shufle'/);
    await expect(trainer.fit(train, { epochs: 0, batchSize: 8 })).rejects.toThrow(/epochs must be an integer/);
    const grey = { ...patternDataset(16, 1), imageShape: [8, 8, 1] as const };
    await expect(trainer.fit(grey, { epochs: 1, batchSize: 8 })).rejects.toThrow(/1-channel images .* takes 3 channels/);
    await expect(trainer.fit(train, { epochs: 1, batchSize: 8, augment: { mean: [0, 0] } })).rejects.toThrow(
      /mean must be a number or an array of 3 numbers/,
    );
    await expect(trainer.fit(train, { epochs: 1, batchSize: 8, resumeFrom: join(dir, 'missing.safetensors') })).rejects.toMatchObject({
      code: 'E_IO',
    });
    expect(() => new Trainer(model, { progress: 'fancy' as never })).toThrow(/progress must be/);
    model.dispose();
  });
});

describe('metrics', () => {
  /** Top-k by sorting (a different algorithm from topKCorrect's rank count). */
  function sortedTopK(logits: Float32Array, classes: number, labels: ArrayLike<number>, k: number): number {
    let hits = 0;
    for (let i = 0; i < labels.length; i++) {
      const row = Array.from(logits.subarray(i * classes, (i + 1) * classes), (v, j) => ({ v, j }));
      row.sort((a, b) => b.v - a.v || a.j - b.j);
      if (row.slice(0, k).some((e) => e.j === labels[i])) hits++;
    }
    return hits;
  }

  it('topKCorrect and crossEntropySum match an independent computation', () => {
    const rng = new Rng(3);
    const n = 200;
    const classes = 12;
    const logits = rng.array(n * classes, 4);
    // Some rows with ties, including all-equal rows.
    for (let j = 0; j < classes; j++) logits[j] = 1;
    for (let j = 0; j < classes; j += 2) logits[classes + j] = 0.5;
    const labels = rng.labels(n, classes);
    labels[0] = 4;
    labels[1] = 6;
    for (const k of [1, 3, 5, 12]) expect(topKCorrect(logits, classes, labels, n, k)).toBe(sortedTopK(logits, classes, labels, k));
    expect(topKCorrect(logits, classes, labels, 1, 5)).toBe(1); // label 4 among equal logits 0..4
    expect(topKCorrect(logits, classes, [5], 1, 5)).toBe(0);
    let ce = 0;
    for (let i = 0; i < n; i++) {
      const row = Array.from(logits.subarray(i * classes, (i + 1) * classes));
      ce += -Math.log(Math.exp(row[labels[i]!]!) / row.reduce((s, v) => s + Math.exp(v), 0));
    }
    expect(crossEntropySum(logits, classes, labels, n)).toBeCloseTo(ce, 8);
    expect(topK(logits, classes, 0, 3).map((e) => e.index)).toEqual([0, 1, 2]);
    expect(topK([0.1, 0.7, 0.2, 0.7], 4, 0, 3)).toEqual([
      { index: 1, value: 0.7 },
      { index: 3, value: 0.7 },
      { index: 2, value: 0.2 },
    ]);
    const acc = new MetricAccumulator();
    acc.addLogits(logits.subarray(0, 100 * classes), classes, labels.subarray(0, 100), 100);
    acc.addLogits(logits.subarray(100 * classes), classes, labels.subarray(100), 100);
    expect(acc.top5).toBe(sortedTopK(logits, classes, labels, 5) / n);
    expect(acc.loss).toBeCloseTo(ce / n, 10);
  });

  it('evaluateModel equals predict + an independent top-k, and model.evaluate', async () => {
    const model = tinyModel(9, { classes: 10, side: SIDE });
    const ds = patternDataset(70, 13);
    const result = await evaluateModel(model, ds, { batchSize: 32 });
    const x = Tensor.fromArray(ds.images, [70, SIDE, SIDE, 3]);
    const logits = await model.predict(x);
    const l = logits.toFloat32Array();
    expect(result.count).toBe(70);
    expect(result.accuracy).toBe(sortedTopK(l, 10, ds.labels, 1) / 70);
    expect(result.top5).toBe(sortedTopK(l, 10, ds.labels, 5) / 70);
    const ref = await model.evaluate(x, ds.labels);
    expect(result.loss).toBeCloseTo(ref.loss, 4);
    expect(result.accuracy).toBeCloseTo(ref.accuracy, 10);
    // Normalisation is applied: mean 1, std 2 equals feeding (x − 1) / 2.
    const shifted = await evaluateModel(model, ds, { batchSize: 100, mean: 1, std: 2 });
    const xs = Tensor.fromArray(
      ds.images.map((v) => (v - 1) / 2),
      [70, SIDE, SIDE, 3],
    );
    expect(shifted.loss).toBeCloseTo((await model.evaluate(xs, ds.labels)).loss, 4);
    const small = tinyModel(1, { classes: 4, side: SIDE });
    await expect(evaluateModel(small, ds)).rejects.toThrow(/has 6 classes but model .* has 4 outputs/);
    // A dataset that writes a label outside its classes.
    await expect(evaluateModel(small, { ...ds, classes: 4, fill: ds.fill })).rejects.toThrow(/wrote label 4 of example 4, which is outside \[0, 4\)/);
    small.dispose();
    [x, xs, logits].forEach((t) => t.dispose());
    model.dispose();
  });
});

describe('SeededRandom', () => {
  it('is deterministic, restorable from its state, and shuffles without bias', () => {
    const a = new SeededRandom(42);
    const b = new SeededRandom(42);
    const seqA = Array.from({ length: 10 }, () => a.nextUint32());
    expect(Array.from({ length: 10 }, () => b.nextUint32())).toEqual(seqA);
    expect(Array.from({ length: 10 }, () => new SeededRandom(43).nextUint32())).not.toEqual(seqA);
    const state = a.state();
    const c = SeededRandom.fromState(JSON.parse(JSON.stringify(state)) as number[]);
    expect(Array.from({ length: 5 }, () => c.next())).toEqual(Array.from({ length: 5 }, () => a.next()));
    expect(() => SeededRandom.fromState([0, 0, 0, 0])).toThrow(ResNetError);
    expect(() => SeededRandom.fromState([1, 2, 3])).toThrow(ResNetError);
    // Every position equally likely for every element (3 elements, 6000 shuffles).
    const counts = new Map<string, number>();
    const r = new SeededRandom(1);
    for (let t = 0; t < 6000; t++) {
      const p = [0, 1, 2];
      r.shuffle(p);
      counts.set(p.join(''), (counts.get(p.join('')) ?? 0) + 1);
    }
    expect(counts.size).toBe(6);
    for (const v of counts.values()) expect(Math.abs(v - 1000)).toBeLessThan(120);
    for (let i = 0; i < 1000; i++) expect(r.nextInt(7)).toBeLessThan(7);
  });

  it('formats durations', () => {
    expect(formatDuration(5)).toBe('0:05');
    expect(formatDuration(125)).toBe('2:05');
    expect(formatDuration(3725)).toBe('1:02:05');
    expect(formatDuration(NaN)).toBe('--:--');
    expect(new Progress({ stream: { write: () => true, isTTY: true } }).mode).toBe('bar');
    expect(new Progress({ stream: { write: () => true } }).mode).toBe('log');
  });
});
