// A model describes its inputs: model.preprocessing and model.classNames are set by the builders'
// options and by Trainer.fit (the rule in lib/train/fit_description.ts), saved in every file
// (model.save, the checkpoint callback), restored by loadModel (older files: from the trainer
// state), and applied by default by evaluateModel and fit({ resumeFrom }).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { checkpoint, evaluateModel, models, type Preprocessing, Trainer } from '../../lib/index.js';
import type { Dataset } from '../../lib/data/dataset.js';
import { loadCheckpoint, loadModel, snapshotModel, writeCheckpoint } from '../../lib/io/checkpoint.js';
import { SafetensorsReader } from '../../lib/io/safetensors.js';
import { expectCode, expectCodeSync } from '../support/expect_error.js';
import { tinyModel } from '../support/models.js';
import { Rng } from '../support/random.js';

const root = mkdtempSync(join(tmpdir(), 'rn-preprocessing-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let count = 0;
const file = () => join(root, `m${count++}.safetensors`);

const IMAGENET: Preprocessing = { imageSize: [8, 8], resizeTo: 10, channelOrder: 'rgb', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
const SGD = { optimizer: { type: 'sgd' as const, lr: 0.01 } };

/** n random 8×8×3 images in [0, 1] with 4 named classes. */
function dataset(n: number, seed: number, classNames: string[] | null = ['ant', 'bee', 'cat', 'dog']): Dataset {
  const rng = new Rng(seed);
  const images = Float32Array.from({ length: n * 192 }, () => rng.next());
  const labels = rng.labels(n, 4);
  return {
    length: n,
    imageShape: [8, 8, 3],
    classes: 4,
    ...(classNames ? { classNames } : {}),
    fill(indices, out, outLabels) {
      for (let i = 0; i < indices.length; i++) {
        const k = indices[i]!;
        out.set(images.subarray(k * 192, (k + 1) * 192), i * 192);
        outLabels[i] = labels[k]!;
      }
    },
  };
}

describe('builders', () => {
  it('take preprocessing and classNames options', () => {
    const m = models.resnetCifar({ depth: 8, inputShape: [8, 8, 3], classes: 2, seed: 1, preprocessing: IMAGENET, classNames: ['no', 'yes'] });
    expect(m.preprocessing).toEqual(IMAGENET);
    expect(m.classNames).toEqual(['no', 'yes']);
    m.dispose();
  });

  it('check them as the setters do', () => {
    expectCodeSync(() => models.resnetCifar({ depth: 8, inputShape: [8, 8, 3], classes: 2, classNames: ['one'] }), 'E_ARG', 'classNames');
    expectCodeSync(
      () => models.resnetCifar({ depth: 8, inputShape: [8, 8, 3], preprocessing: { ...IMAGENET, mean: [0.5] } }),
      'E_ARG',
      'preprocessing.mean',
    );
  });
});

describe('files', () => {
  it('model.save and loadModel keep preprocessing and classNames', async () => {
    const m = tinyModel(1, { classes: 4 });
    m.preprocessing = IMAGENET;
    m.classNames = ['ant', 'bee', 'cat', 'dog'];
    const path = file();
    await m.save(path);
    const back = await loadModel(path);
    expect(back.preprocessing).toEqual(IMAGENET);
    expect(back.classNames).toEqual(['ant', 'bee', 'cat', 'dog']);
    const reader = await SafetensorsReader.open(path);
    expect(JSON.parse(reader.metadata.preprocessing!)).toEqual(IMAGENET);
    await reader.close();
    m.dispose();
    back.dispose();
  });

  it('a model without them saves and loads without them', async () => {
    const m = tinyModel(1);
    const path = file();
    await m.save(path);
    const back = await loadModel(path);
    expect(back.preprocessing).toBeUndefined();
    expect(back.classNames).toBeUndefined();
    m.dispose();
    back.dispose();
  });

  it('an older file (normalisation in the trainer state only) loads with that normalisation', async () => {
    const m = tinyModel(1, { classes: 4 });
    const training = {
      epoch: 1,
      step: 2,
      normalize: { mean: [0.1, 0.2, 0.3], std: [0.4, 0.5, 0.6] },
      imageShape: [8, 8, 3],
      classNames: ['a', 'b', 'c', 'd'],
    };
    const path = file();
    await writeCheckpoint(path, snapshotModel(m, { training }));
    const back = await loadModel(path);
    expect(back.preprocessing).toEqual({ imageSize: [8, 8], resizeTo: 8, channelOrder: 'rgb', mean: [0.1, 0.2, 0.3], std: [0.4, 0.5, 0.6] });
    expect(back.classNames).toEqual(['a', 'b', 'c', 'd']);
    // Without imageShape (a hand-written training state): the model's input size.
    const noShape = file();
    const shapeless = { epoch: 1, step: 2, normalize: training.normalize };
    await writeCheckpoint(noShape, snapshotModel(m, { training: shapeless }));
    const back2 = await loadModel(noShape);
    expect(back2.preprocessing).toEqual({ imageSize: [8, 8], resizeTo: 8, channelOrder: 'rgb', mean: [0.1, 0.2, 0.3], std: [0.4, 0.5, 0.6] });
    expect(back2.classNames).toBeUndefined();
    m.dispose();
    back.dispose();
    back2.dispose();
  });

  it('a malformed preprocessing or classNames entry is E_FORMAT naming the file', async () => {
    const m = tinyModel(1, { classes: 4 });
    const snap = snapshotModel(m);
    const cases: [string, string, string][] = [
      ['preprocessing', '{"imageSize":[8,8],"mean":[0],"std":[1]}', 'preprocessing.mean'],
      ['preprocessing', '{"imageSize":[8,8],"mean":[0,0,0],"std":[0,1,1]}', 'preprocessing.std'],
      ['preprocessing', 'not json', 'not valid JSON'],
      ['classNames', '["a","b"]', 'classNames'],
      ['classNames', '[1,2,3,4]', 'classNames[0]'],
    ];
    for (const [key, value, mention] of cases) {
      const path = file();
      await writeCheckpoint(path, { tensors: snap.tensors, metadata: { ...snap.metadata, [key]: value } });
      await expectCode(() => loadModel(path), 'E_FORMAT', path, key, mention);
    }
    m.dispose();
  });
});

describe('Trainer.fit', () => {
  it('describes the model it trains (normalisation, size, class names), and the checkpoint callback saves it', async () => {
    const m = tinyModel(1, { classes: 4 });
    const dir = join(root, 'cb');
    await new Trainer(m, { compile: SGD, progress: 'none' }).fit(dataset(32, 1), {
      epochs: 1,
      batchSize: 8,
      seed: 1,
      augment: { padding: 1, flip: true, mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3] },
      callbacks: [checkpoint({ dir })],
    });
    const expected = { imageSize: [8, 8], resizeTo: 8, channelOrder: 'rgb', mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3] };
    expect(m.preprocessing).toEqual(expected);
    expect(m.classNames).toEqual(['ant', 'bee', 'cat', 'dog']);
    const back = await loadModel(join(dir, 'model.safetensors'));
    expect(back.preprocessing).toEqual(expected);
    expect(back.classNames).toEqual(['ant', 'bee', 'cat', 'dog']);
    m.dispose();
    back.dispose();
  });

  it("keeps a model's preprocessing that matches what it feeds, and trains with its mean/std when given none", async () => {
    const m = tinyModel(1, { classes: 4 });
    m.preprocessing = IMAGENET;
    m.classNames = ['w', 'x', 'y', 'z'];
    const dir = join(root, 'keep');
    await new Trainer(m, { compile: SGD, progress: 'none' }).fit(dataset(16, 2, null), {
      epochs: 1,
      batchSize: 8,
      seed: 1,
      callbacks: [checkpoint({ dir })],
    });
    expect(m.preprocessing).toEqual(IMAGENET); // resizeTo 10 kept
    expect(m.classNames).toEqual(['w', 'x', 'y', 'z']); // the dataset has none
    const { training } = await loadCheckpoint(join(dir, 'model.safetensors'), { optimizer: false }).then((c) => {
      c.model.dispose();
      return c;
    });
    expect(training?.normalize).toEqual({ mean: IMAGENET.mean, std: IMAGENET.std });
    m.dispose();
  });

  it('replaces a preprocessing that differs from what it feeds, and class names that differ', async () => {
    const m = tinyModel(1, { classes: 4 });
    m.preprocessing = IMAGENET;
    m.classNames = ['w', 'x', 'y', 'z'];
    await new Trainer(m, { compile: SGD, progress: 'none' }).fit(dataset(16, 3), {
      epochs: 1,
      batchSize: 8,
      seed: 1,
      normalize: { mean: 0.5, std: 0.25 },
    });
    expect(m.preprocessing).toEqual({ imageSize: [8, 8], resizeTo: 8, channelOrder: 'rgb', mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] });
    expect(m.classNames).toEqual(['ant', 'bee', 'cat', 'dog']);
    m.dispose();
  });

  it("describes a 'bgr' model as 'rgb' after fit (datasets are RGB), with its statistics reordered", async () => {
    const m = tinyModel(1, { classes: 4 });
    m.preprocessing = { imageSize: [8, 8], resizeTo: 8, channelOrder: 'bgr', mean: [0.1, 0.2, 0.3], std: [0.4, 0.5, 0.6] };
    await new Trainer(m, { compile: SGD, progress: 'none' }).fit(dataset(16, 6), { epochs: 1, batchSize: 8, seed: 1 });
    expect(m.preprocessing).toEqual({ imageSize: [8, 8], resizeTo: 8, channelOrder: 'rgb', mean: [0.3, 0.2, 0.1], std: [0.6, 0.5, 0.4] });
    m.dispose();
  });

  it("resumeFrom gives a fresh model the checkpoint's preprocessing and normalises with it", async () => {
    const m = tinyModel(1, { classes: 4 });
    const dir = join(root, 'resume');
    const ds = dataset(16, 4);
    await new Trainer(m, { compile: SGD, progress: 'none' }).fit(ds, {
      epochs: 1,
      batchSize: 8,
      seed: 1,
      normalize: { mean: [0.3, 0.3, 0.3], std: [0.7, 0.7, 0.7] },
      callbacks: [checkpoint({ dir })],
    });
    const fresh = tinyModel(2, { classes: 4 });
    const dir2 = join(root, 'resume2');
    await new Trainer(fresh, { compile: SGD, progress: 'none' }).fit(ds, {
      epochs: 2,
      batchSize: 8,
      resumeFrom: join(dir, 'model.safetensors'),
      callbacks: [checkpoint({ dir: dir2 })],
    });
    expect(fresh.preprocessing?.mean).toEqual([0.3, 0.3, 0.3]);
    const c = await loadCheckpoint(join(dir2, 'model.safetensors'), { optimizer: false });
    expect(c.training?.normalize).toEqual({ mean: [0.3, 0.3, 0.3], std: [0.7, 0.7, 0.7] });
    c.model.dispose();
    m.dispose();
    fresh.dispose();
  });
});

describe('evaluateModel', () => {
  it("normalises with the model's preprocessing unless given mean/std", async () => {
    const m = tinyModel(3, { classes: 4 });
    const ds = dataset(24, 5);
    const raw = await evaluateModel(m, ds);
    const explicit = await evaluateModel(m, ds, { mean: IMAGENET.mean, std: IMAGENET.std });
    m.preprocessing = IMAGENET;
    const described = await evaluateModel(m, ds);
    expect(described).toEqual(explicit);
    expect(described.loss).not.toBe(raw.loss);
    expect(await evaluateModel(m, ds, { mean: 0, std: 1 })).toEqual(raw);
    m.dispose();
  });
});
