// The fine-tuning path on image files, in process (the pretrained download is tested with its
// own feature): a model with ImageNet-style preprocessing → replaceHead for the folder's
// classes → freeze all but the last stage → fit on an image folder read with that preprocessing's resize rule →
// save → loadModel → predictImages on PNG and JPEG files gives the same answers as the model
// that was trained, and they name the folder's classes.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';

import { datasets, loadModel, models, Trainer } from '../../lib/index.js';
import { Rng } from '../support/random.js';

const root = mkdtempSync(join(tmpdir(), 'rn-fine-tune-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const IMAGENET = {
  imageSize: [16, 16] as [number, number],
  resizeTo: 18,
  channelOrder: 'rgb' as const,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
};

/** A 24×20 picture: reddish or bluish noise. */
async function picture(rng: Rng, red: boolean, format: 'png' | 'jpeg'): Promise<Buffer> {
  const px = Buffer.from(
    Array.from({ length: 24 * 20 }, () =>
      red ? [rng.int(150, 255), rng.int(0, 90), rng.int(0, 90)] : [rng.int(0, 90), rng.int(0, 90), rng.int(150, 255)],
    ).flat(),
  );
  const s = sharp(px, { raw: { width: 24, height: 20, channels: 3 } });
  return format === 'png' ? s.png().toBuffer() : s.jpeg().toBuffer();
}

describe('fine-tuning on image files', () => {
  it('replaceHead → fit on a folder → save → loadModel → predictImages', async () => {
    const rng = new Rng(11);
    for (const cls of ['blue', 'red']) {
      mkdirSync(join(root, 'train', cls), { recursive: true });
      for (let i = 0; i < 16; i++) writeFileSync(join(root, 'train', cls, `${i}.png`), await picture(rng, cls === 'red', 'png'));
    }
    const files: string[] = [];
    for (let i = 0; i < 4; i++) {
      const file = join(root, `new${i}.${i % 2 ? 'jpg' : 'png'}`);
      writeFileSync(file, await picture(rng, i < 2, i % 2 ? 'jpeg' : 'png'));
      files.push(file);
    }

    // The "pretrained" model: 1000 classes, ImageNet-style preprocessing.
    const base = models.resnetCifar({ depth: 8, inputShape: [16, 16, 3], classes: 1000, seed: 1, preprocessing: IMAGENET });
    const train = await datasets.imageFolder(join(root, 'train'), { size: 16, resizeTo: 18 });
    const model = base.replaceHead({ classes: train.classes, classNames: train.classNames!, seed: 2 });
    base.dispose();
    expect(model.preprocessing).toEqual(IMAGENET);
    // Train only the last stage and the new head.
    model.freeze('conv1,bn1,layer1,layer2');
    const stem = model.getParameter('conv1.weight');

    await new Trainer(model, { compile: { optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 } }, progress: 'none' }).fit(train, {
      epochs: 4,
      batchSize: 8,
      seed: 1,
      augment: { flip: true }, // mean/std: the model's
    });
    // fit kept the preprocessing (it fed what it says) and the class names.
    expect(model.preprocessing).toEqual(IMAGENET);
    expect(model.classNames).toEqual(['blue', 'red']);
    expect(model.getParameter('conv1.weight')).toEqual(stem);

    const path = join(root, 'colours.safetensors');
    await model.save(path);
    const before = await model.predictImages(files, { topK: 2 });
    model.dispose();
    const loaded = await loadModel(path);
    const after = await loaded.predictImages(files, { topK: 2 });
    loaded.dispose();
    after.forEach((rows, i) => {
      expect(rows.map((r) => r.className)).toEqual(before[i]!.map((r) => r.className));
      rows.forEach((r, k) => expect(Math.abs(r.probability - before[i]![k]!.probability)).toBeLessThanOrEqual(1e-6));
    });
    // The colours are learned: red pictures come out 'red'.
    expect(after.map((rows) => rows[0]!.className)).toEqual(['red', 'red', 'blue', 'blue']);
  });
});
