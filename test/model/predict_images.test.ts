// model.predictImages: per image, the top-k { index, className, probability }, sorted. The
// reference builds the model's input by hand (sharp's raw pixels of a file at the model's size,
// normalised here), runs model.predict with softmax and sorts the probabilities itself.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';

import { type Model, type Preprocessing, Tensor } from '../../lib/index.js';
import { expectCode } from '../support/expect_error.js';
import { tinyModel } from '../support/models.js';
import { Rng } from '../support/random.js';

const root = mkdtempSync(join(tmpdir(), 'rn-predict-images-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const P: Preprocessing = { imageSize: [8, 8], resizeTo: 8, channelOrder: 'rgb', mean: [0.4, 0.5, 0.6], std: [0.3, 0.2, 0.25] };
const NAMES = ['ant', 'bee', 'cat', 'dog', 'eel', 'fox'];

/** Six 8×8 images: PNG and JPEG files, and their decoded pixels. */
async function images(): Promise<{ files: string[]; raw: Buffer[] }> {
  const rng = new Rng(3);
  const files: string[] = [];
  const raw: Buffer[] = [];
  for (let i = 0; i < 6; i++) {
    const px = Buffer.from(Array.from({ length: 192 }, () => rng.int(0, 255)));
    const s = sharp(px, { raw: { width: 8, height: 8, channels: 3 } });
    const bytes = i % 2 === 0 ? await s.png().toBuffer() : await s.jpeg({ quality: 95 }).toBuffer();
    const file = join(root, `img${i}.${i % 2 === 0 ? 'png' : 'jpg'}`);
    writeFileSync(file, bytes);
    files.push(file);
    raw.push(await sharp(bytes).raw().toBuffer());
  }
  return { files, raw };
}

/** The reference: the hand-normalised images through model.predict, each row sorted. */
async function expected(model: Model, raw: Buffer[], k: number): Promise<{ index: number; probability: number }[][]> {
  const x = new Float32Array(raw.length * 192);
  raw.forEach((px, n) => {
    for (let i = 0; i < 192; i++) x[n * 192 + i] = (px[i]! / 255 - P.mean[i % 3]!) / P.std[i % 3]!;
  });
  const t = Tensor.fromArray(x, [raw.length, 8, 8, 3]);
  const probs = await model.predict(t, { softmax: true });
  const p = probs.toFloat32Array();
  t.dispose();
  probs.dispose();
  return raw.map((_, n) =>
    Array.from(p.subarray(n * model.classes, (n + 1) * model.classes), (probability, index) => ({ index, probability }))
      .sort((a, b) => b.probability - a.probability)
      .slice(0, k),
  );
}

describe('model.predictImages', () => {
  it('returns the top-k classes with names and probabilities, sorted', async () => {
    const model = tinyModel(2, { classes: 6 });
    model.preprocessing = P;
    model.classNames = NAMES;
    const { files, raw } = await images();
    const got = await model.predictImages(files, { topK: 3 });
    const want = await expected(model, raw, 3);
    expect(got).toHaveLength(6);
    got.forEach((answers, n) => {
      expect(answers.map((a) => a.index)).toEqual(want[n]!.map((a) => a.index));
      expect(answers.map((a) => a.className)).toEqual(want[n]!.map((a) => NAMES[a.index]));
      answers.forEach((a, r) => expect(Math.abs(a.probability - want[n]![r]!.probability)).toBeLessThanOrEqual(1e-6));
      for (let r = 1; r < answers.length; r++) expect(answers[r]!.probability).toBeLessThanOrEqual(answers[r - 1]!.probability);
    });
    model.dispose();
  });

  it('batches, Buffers and paths, topK beyond the classes, no class names', async () => {
    const model = tinyModel(2, { classes: 6 });
    model.preprocessing = P;
    const { files, raw } = await images();
    const all = await model.predictImages(files, { topK: 100 });
    expect(all.every((a) => a.length === 6)).toBe(true);
    expect(all[0]!.map((a) => a.className)).toEqual(all[0]!.map((a) => String(a.index)));
    const sum = all[0]!.reduce((s, a) => s + a.probability, 0);
    expect(Math.abs(sum - 1)).toBeLessThan(1e-5);
    // Two at a time, and from the bytes: the same answers (to float rounding of another batch size).
    const { readFileSync } = await import('node:fs');
    const small = await model.predictImages(
      files.map((f) => readFileSync(f)),
      { topK: 100, batchSize: 2 },
    );
    small.forEach((answers, n) => {
      expect(answers.map((a) => a.index)).toEqual(all[n]!.map((a) => a.index));
      answers.forEach((a, r) => expect(Math.abs(a.probability - all[n]![r]!.probability)).toBeLessThanOrEqual(1e-6));
    });
    const want = await expected(model, raw, 5);
    expect((await model.predictImages(files)).map((a) => a.map((e) => e.index))).toEqual(want.map((a) => a.map((e) => e.index)));
    expect(await model.predictImages([])).toEqual([]);
    model.dispose();
  });

  it('bad sources and options: E_FORMAT / E_IO naming the file, E_ARG', async () => {
    const model = tinyModel(2, { classes: 6 });
    model.preprocessing = P;
    const bad = join(root, 'bad.jpg');
    writeFileSync(bad, Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 1, 2, 3]));
    await expectCode(() => model.predictImages([bad]), 'E_FORMAT', bad);
    await expectCode(() => model.predictImages([join(root, 'none.png')]), 'E_IO', 'none.png');
    await expectCode(() => model.predictImages([bad], { topK: 0 }), 'E_ARG', 'topK');
    await expectCode(() => model.predictImages([bad], { batch: 3 } as never), 'E_ARG', "unknown option 'batch'");
    await expectCode(() => model.predictImages('a.png' as never), 'E_ARG', 'sources');
    model.dispose();
  });
});
