// io.decodeImage against an independent computation. The reference decodes the same file with
// sharp to raw pixels at its own size (lossless formats: the pixels the test wrote), then crops
// and normalises by hand in this file (torchvision's rule: offsets rounded half to even). Where
// a resize is involved, the reference resizes the raw pixels with sharp to the dimensions
// torchvision's Resize(int) computes, then crops by hand: what is checked is the geometry
// (sizes, offsets), the channel handling and the arithmetic, not sharp's resampling kernel.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';

import { datasets, io, type Preprocessing } from '../../lib/index.js';
import { expectCode } from '../support/expect_error.js';
import { tinyModel } from '../support/models.js';
import { Rng } from '../support/random.js';

const root = mkdtempSync(join(tmpdir(), 'rn-decode-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Random bytes for a w×h×c image. */
function pixels(w: number, h: number, c: number, seed: number): Buffer {
  const rng = new Rng(seed);
  return Buffer.from(Array.from({ length: w * h * c }, () => rng.int(0, 255)));
}

function encode(raw: Buffer, w: number, h: number, c: 1 | 2 | 3 | 4, format: 'png' | 'jpeg' | 'webp' | 'gif'): Promise<Buffer> {
  const s = sharp(raw, { raw: { width: w, height: h, channels: c } });
  if (format === 'png') return s.png().toBuffer();
  if (format === 'jpeg') return s.jpeg({ quality: 90 }).toBuffer();
  if (format === 'webp') return s.webp({ lossless: true, exact: true }).toBuffer(); // exact: keep the colour under transparent pixels
  return s.gif().toBuffer();
}

/** The reference: crop [h, w] at (top, left) of a W×C-strided raw image, normalise, in channel order. */
function reference(raw: Uint8Array, W: number, C: number, top: number, left: number, p: Preprocessing, channelOf = (k: number) => k): Float32Array {
  const [h, w] = p.imageSize;
  const c = p.mean.length;
  const out = new Float32Array(h * w * c);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let k = 0; k < c; k++) {
        const v = raw[((top + y) * W + left + x) * C + channelOf(k)]! / 255;
        out[(y * w + x) * c + k] = (v - p.mean[k]!) / p.std[k]!;
      }
  return out;
}

async function decoded(source: string | Buffer, p: Preprocessing): Promise<{ shape: readonly number[]; values: Float32Array }> {
  const t = await io.decodeImage(source, { preprocessing: p });
  const r = { shape: t.shape, values: t.toFloat32Array() };
  t.dispose();
  return r;
}

function expectNear(actual: Float32Array, expected: Float32Array, tol = 1e-6): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  expect(worst).toBeLessThanOrEqual(tol);
}

const RGB: Preprocessing = { imageSize: [8, 8], resizeTo: 8, channelOrder: 'rgb', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

describe('io.decodeImage', () => {
  it('lossless PNG / WebP / GIF at the crop size: the pixels, normalised', async () => {
    const raw = pixels(8, 8, 3, 1);
    for (const format of ['png', 'webp'] as const) {
      const r = await decoded(await encode(raw, 8, 8, 3, format), RGB);
      expect(r.shape).toEqual([1, 8, 8, 3]);
      expectNear(r.values, reference(raw, 8, 3, 0, 0, RGB));
    }
    // GIF: a palette image; four colours survive its quantisation exactly.
    const colours = [
      [255, 0, 0],
      [0, 255, 0],
      [0, 0, 255],
      [255, 255, 255],
    ];
    const rng = new Rng(2);
    const few = Buffer.from(Array.from({ length: 64 }, () => colours[rng.int(0, 3)]!).flat());
    const g = await decoded(await encode(few, 8, 8, 3, 'gif'), RGB);
    expectNear(g.values, reference(few, 8, 3, 0, 0, RGB));
  });

  it('JPEG: the decoded pixels (sharp at full size), cropped and normalised', async () => {
    const raw = pixels(12, 8, 3, 3);
    const jpeg = await encode(raw, 12, 8, 3, 'jpeg');
    const full = await sharp(jpeg).raw().toBuffer();
    // 12×8 → shorter side 8 (no resize), centre crop 8×8 at left (12 − 8) / 2 = 2.
    expectNear((await decoded(jpeg, RGB)).values, reference(full, 12, 3, 0, 2, RGB));
  });

  it("crops at torchvision's offsets (round half to even) when resizeTo exceeds the crop", async () => {
    const p: Preprocessing = { ...RGB, resizeTo: 10 };
    // 11×10: shorter side already 10; left = round(1.5) = 2, top = round(1) = 1.
    const a = pixels(11, 10, 3, 4);
    expectNear((await decoded(await encode(a, 11, 10, 3, 'png'), p)).values, reference(a, 11, 3, 1, 2, p));
    // 10×13: top = round(2.5) = 2 (half to even), left = 1.
    const b = pixels(10, 13, 3, 5);
    expectNear((await decoded(await encode(b, 10, 13, 3, 'png'), p)).values, reference(b, 10, 3, 2, 1, p));
  });

  it('resizes the shorter side to resizeTo (longer: ⌊resizeTo · long / short⌋) before the crop', async () => {
    const p: Preprocessing = { ...RGB, resizeTo: 10 };
    const raw = pixels(25, 20, 3, 6); // → 12×10 (⌊10 · 25 / 20⌋ = 12), crop top 1, left 2
    const png = await encode(raw, 25, 20, 3, 'png');
    const resized = await sharp(raw, { raw: { width: 25, height: 20, channels: 3 } })
      .resize({ width: 12, height: 10, fit: 'fill' })
      .raw()
      .toBuffer();
    expectNear((await decoded(png, p)).values, reference(resized, 12, 3, 1, 2, p));
  });

  it('without resizeTo, stretches the whole image to imageSize', async () => {
    const p: Preprocessing = { imageSize: [6, 8], channelOrder: 'rgb', mean: [0, 0, 0], std: [1, 1, 1] };
    const raw = pixels(20, 9, 3, 7);
    const png = await encode(raw, 20, 9, 3, 'png');
    const resized = await sharp(raw, { raw: { width: 20, height: 9, channels: 3 } })
      .resize({ width: 8, height: 6, fit: 'fill' })
      .raw()
      .toBuffer();
    const r = await decoded(png, p);
    expect(r.shape).toEqual([1, 6, 8, 3]);
    expectNear(r.values, reference(resized, 8, 3, 0, 0, p));
  });

  it('greyscale to 3 channels replicates; RGBA drops alpha; grey models get one channel', async () => {
    const grey = pixels(8, 8, 1, 8);
    const r = await decoded(await encode(grey, 8, 8, 1, 'png'), RGB);
    expectNear(
      r.values,
      reference(grey, 8, 1, 0, 0, RGB, () => 0),
    );

    const rgba = pixels(8, 8, 4, 9);
    for (const format of ['png', 'webp'] as const) {
      expectNear((await decoded(await encode(rgba, 8, 8, 4, format), RGB)).values, reference(rgba, 8, 4, 0, 0, RGB));
    }

    // A grey model: an RGB image whose channels are equal is that grey (to one level of rounding).
    const GREY: Preprocessing = { imageSize: [8, 8], resizeTo: 8, channelOrder: 'rgb', mean: [0.5], std: [0.25] };
    const rgbGrey = Buffer.from(Array.from(grey).flatMap((v) => [v, v, v]));
    const g = await decoded(await encode(rgbGrey, 8, 8, 3, 'png'), GREY);
    expect(g.shape).toEqual([1, 8, 8, 1]);
    expectNear(g.values, reference(grey, 8, 1, 0, 0, GREY), 1.01 / 255 / 0.25);
    // Grey with alpha, to a grey model.
    const ga = pixels(8, 8, 2, 10);
    expectNear((await decoded(await encode(ga, 8, 8, 2, 'png'), GREY)).values, reference(ga, 8, 2, 0, 0, GREY));
  });

  it("channelOrder 'bgr' reverses the channels; mean/std belong to the model's channels", async () => {
    const p: Preprocessing = { ...RGB, channelOrder: 'bgr', mean: [0.1, 0.2, 0.3], std: [0.5, 0.6, 0.7] };
    const raw = pixels(8, 8, 3, 11);
    expectNear(
      (await decoded(await encode(raw, 8, 8, 3, 'png'), p)).values,
      reference(raw, 8, 3, 0, 0, p, (k) => 2 - k),
    );
  });

  it("a GIF's first frame", async () => {
    const w = 8;
    const h = 8;
    const frames = Buffer.concat([Buffer.alloc(w * h * 3, 200), Buffer.alloc(w * h * 3, 10)]);
    const gif = await sharp(frames, { raw: { width: w, height: 2 * h, channels: 3, pageHeight: h } } as never)
      .gif()
      .toBuffer();
    expect((await sharp(gif).metadata()).pages).toBe(2);
    const p: Preprocessing = { ...RGB, mean: [0, 0, 0], std: [1, 1, 1] };
    const r = await decoded(gif, p);
    expectNear(r.values, new Float32Array(w * h * 3).fill(200 / 255));
    // Also through the resizeTo path (which reads the frame's size from the metadata).
    const r2 = await decoded(gif, { ...p, imageSize: [6, 6], resizeTo: 7 });
    expectNear(r2.values, new Float32Array(6 * 6 * 3).fill(200 / 255));
  });

  it('a path and a Buffer of the same file decode alike; { model } uses model.preprocessing', async () => {
    const raw = pixels(10, 10, 3, 12);
    const png = await encode(raw, 10, 10, 3, 'png');
    const path = join(root, 'a.png');
    writeFileSync(path, png);
    const p: Preprocessing = { ...RGB, resizeTo: 10 };
    const fromBuffer = await decoded(png, p);
    expect((await decoded(path, p)).values).toEqual(fromBuffer.values);
    const bare = await io.decodeImage(png, p); // a Preprocessing in place of { preprocessing }
    expect(bare.toFloat32Array()).toEqual(fromBuffer.values);
    bare.dispose();
    const model = tinyModel(1);
    model.preprocessing = p;
    const t = await io.decodeImage(path, { model });
    expect(t.toFloat32Array()).toEqual(fromBuffer.values);
    t.dispose();
    // A model without preprocessing: its input size, cover + crop, values in [0, 1].
    model.preprocessing = undefined;
    const undescribed = await io.decodeImage(path, { model });
    expect(undescribed.shape).toEqual([1, 8, 8, 3]);
    const resized = await sharp(raw, { raw: { width: 10, height: 10, channels: 3 } })
      .resize({ width: 8, height: 8, fit: 'cover' })
      .raw()
      .toBuffer();
    expectNear(undescribed.toFloat32Array(), reference(resized, 8, 3, 0, 0, { ...p, mean: [0, 0, 0], std: [1, 1, 1] }));
    undescribed.dispose();
    model.dispose();
  });

  it('gives exactly the pixels datasets.imageFolder reads (cover by default; its resizeTo option)', async () => {
    const dir = join(root, 'folder');
    const files: [string, number, number][] = [
      ['a/1.png', 30, 17],
      ['a/2.png', 9, 21],
      ['b/3.png', 16, 16],
    ];
    const { mkdirSync } = await import('node:fs');
    for (const [name, w, h] of files) {
      mkdirSync(join(dir, name, '..'), { recursive: true });
      writeFileSync(join(dir, name), await encode(pixels(w, h, 3, w * h), w, h, 3, 'png'));
    }
    const ds = await datasets.imageFolder(dir, { size: 8 });
    const images = new Float32Array(3 * 192);
    await ds.fill([0, 1, 2], images, new Int32Array(3));
    const p: Preprocessing = { imageSize: [8, 8], resizeTo: 8, channelOrder: 'rgb', mean: [0, 0, 0], std: [1, 1, 1] };
    for (const [i, [name]] of files.entries()) {
      expect((await decoded(join(dir, name), p)).values).toEqual(images.subarray(i * 192, (i + 1) * 192));
    }
    // And imageFolder's resizeTo (what eval uses for a checkpoint's preprocessing) is decodeImage's rule.
    const resized = await datasets.imageFolder(dir, { size: 8, resizeTo: 11 });
    await resized.fill([0, 1, 2], images, new Int32Array(3));
    for (const [i, [name]] of files.entries()) {
      expect((await decoded(join(dir, name), { ...p, resizeTo: 11 })).values).toEqual(images.subarray(i * 192, (i + 1) * 192));
    }
    await expectCode(() => datasets.imageFolder(dir, { size: 8, resizeTo: 7 }), 'E_ARG', 'resizeTo');
    await expectCode(() => datasets.imageFolder(dir, { size: 8, resize: 'stretch', resizeTo: 9 }), 'E_ARG', 'resizeTo');
  });

  it('decodeImages stacks decodeImage results into one batch', async () => {
    const p: Preprocessing = { ...RGB, resizeTo: 10 };
    const sources = [await encode(pixels(12, 9, 3, 20), 12, 9, 3, 'png'), await encode(pixels(9, 14, 1, 21), 9, 14, 1, 'png')];
    const batch = await io.decodeImages(sources, { preprocessing: p });
    expect(batch.shape).toEqual([2, 8, 8, 3]);
    const values = batch.toFloat32Array();
    batch.dispose();
    for (const [i, s] of sources.entries()) expect(values.subarray(i * 192, (i + 1) * 192)).toEqual((await decoded(s, p)).values);
    await expectCode(() => io.decodeImages([], { preprocessing: p }), 'E_ARG', 'sources');
  });

  it('bad input: E_FORMAT / E_IO naming the source, E_ARG for bad options', async () => {
    await expectCode(() => io.decodeImage(Buffer.from('not an image at all'), { preprocessing: RGB }), 'E_FORMAT', 'image buffer');
    const path = join(root, 'bad.png');
    writeFileSync(path, 'garbage');
    await expectCode(() => io.decodeImage(path, { preprocessing: RGB }), 'E_FORMAT', path);
    await expectCode(() => io.decodeImage(join(root, 'missing.png'), { preprocessing: RGB }), 'E_IO', 'missing.png', 'not found');
    await expectCode(() => io.decodeImage(root, { preprocessing: RGB }), 'E_IO', 'directory');
    await expectCode(() => io.decodeImage(path, {}), 'E_ARG', 'preprocessing or a model');
    await expectCode(() => io.decodeImage(path, { preprocessing: RGB, size: 3 } as never), 'E_ARG', "unknown option 'size'");
    await expectCode(() => io.decodeImage(42 as never, { preprocessing: RGB }), 'E_ARG', 'source');
    await expectCode(() => io.decodeImage(path, { preprocessing: { ...RGB, mean: [0, 0, 0, 0], std: [1, 1, 1, 1] } }), 'E_ARG', '4');
  });
});
