// ImageNet-style augmentation (augmentBatch's randomResizedCrop, centerCrop, colorJitter,
// mixup, cutmix) and the mixed-target loss. References: tfjs's resizeBilinear with
// halfPixelCenters (torch's interpolate(align_corners=False) convention, no antialiasing) on
// the box sliced out; torchvision's ColorJitter formulas written out here in plain JS; the
// mixed loss against λ·CE(a) + (1 − λ)·CE(b) from separate runs and finite differences.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { augmentBatch, type AugmentOptions } from '../../lib/data/index.js';
import type { Dataset } from '../../lib/data/dataset.js';
import { Tensor } from '../../lib/index.js';
import { native, packageRoot } from '../../lib/native.js';
import { checkpoint } from '../../lib/train/callbacks.js';
import { Trainer } from '../../lib/train/trainer.js';
import { expectCode } from '../support/expect_error.js';
import { tinyModel } from '../support/models.js';
import { Rng } from '../support/random.js';
import { tf } from '../support/tf.js';

type Shape3 = [number, number, number];

function images(n: number, [h, w, c]: Shape3, seed: number): Float32Array {
  const rng = new Rng(seed);
  const a = new Float32Array(n * h * w * c);
  for (let i = 0; i < a.length; i++) a[i] = rng.next();
  return a;
}

async function run(src: Float32Array, n: number, shape: Shape3, out: [number, number], options: Partial<AugmentOptions>) {
  const dst = Tensor.zeros([n, out[0], out[1], shape[2]]);
  try {
    const r = await augmentBatch(src, dst, { count: n, imageShape: shape, seed: 7, step: 3, ...options });
    return { data: dst.toFloat32Array(), result: r };
  } finally {
    dst.dispose();
  }
}

/** tfjs: the box [top, left, h, w] of image i, resized (half-pixel centres) to out, optionally mirrored. */
function tfCrop(
  src: Float32Array,
  i: number,
  [H, W, C]: Shape3,
  box: [number, number, number, number],
  out: [number, number],
  flip = false,
): Float32Array {
  return tf.tidy(() => {
    const img = tf.tensor4d(src.subarray(i * H * W * C, (i + 1) * H * W * C), [1, H, W, C]);
    let r = tf.image.resizeBilinear(tf.slice(img, [0, box[0], box[1], 0], [1, box[2], box[3], C]), out, false, true);
    if (flip) r = tf.reverse(r, 2);
    return r.dataSync() as Float32Array;
  });
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const image = (data: Float32Array, i: number, per: number) => data.subarray(i * per, (i + 1) * per);

describe('randomResizedCrop', () => {
  it('resamples the whole image like tfjs resizeBilinear (half-pixel) when scale and ratio pin the box', async () => {
    const shape: Shape3 = [12, 18, 3];
    const src = images(4, shape, 1);
    for (const out of [
      [8, 8],
      [24, 20],
      [12, 18],
    ] as [number, number][]) {
      const { data } = await run(src, 4, shape, out, { randomResizedCrop: { scale: [1, 1], ratio: [18 / 12, 18 / 12] } });
      for (let i = 0; i < 4; i++) {
        expect(maxDiff(image(data, i, out[0] * out[1] * 3), tfCrop(src, i, shape, [0, 0, 12, 18], out))).toBeLessThan(1e-5);
      }
    }
  });

  it('crops a box of the asked area and ratio at a random place, matching tfjs on that box', async () => {
    const shape: Shape3 = [16, 16, 3];
    const n = 8;
    const src = images(n, shape, 2);
    const out: [number, number] = [10, 10];
    // area 0.375·256 = 96, ratio 1.5 → w = round(√144) = 12, h = round(√64) = 8.
    const { data } = await run(src, n, shape, out, { randomResizedCrop: { scale: [0.375, 0.375], ratio: [1.5, 1.5] }, flip: true });
    const places = new Set<string>();
    let flips = 0;
    for (let i = 0; i < n; i++) {
      const got = image(data, i, 300);
      const matches: string[] = [];
      for (let top = 0; top <= 8; top++) {
        for (let left = 0; left <= 4; left++) {
          for (const flip of [false, true]) {
            if (maxDiff(got, tfCrop(src, i, shape, [top, left, 8, 12], out, flip)) < 1e-5) matches.push(`${top},${left},${flip}`);
          }
        }
      }
      expect(matches).toHaveLength(1);
      places.add(matches[0]!.split(',').slice(0, 2).join(','));
      if (matches[0]!.endsWith('true')) flips++;
    }
    expect(places.size).toBeGreaterThan(4); // the places vary from image to image
    expect(flips).toBeGreaterThan(0);
    expect(flips).toBeLessThan(n);
  });

  it("falls back to torchvision's centre crop when 10 attempts do not fit", async () => {
    const shape: Shape3 = [16, 16, 3];
    const src = images(3, shape, 3);
    // ratio 4 on a square image: every attempt is 32 wide; the fallback is the full width, round(16 / 4) = 4 high, centred.
    const { data } = await run(src, 3, shape, [4, 8], { randomResizedCrop: { scale: [1, 1], ratio: [4, 4] } });
    for (let i = 0; i < 3; i++) expect(maxDiff(image(data, i, 96), tfCrop(src, i, shape, [6, 0, 4, 16], [4, 8]))).toBeLessThan(1e-5);
  });

  it('stays inside the image for random scales and ratios (every output value comes from its own source image)', async () => {
    const shape: Shape3 = [20, 14, 1];
    const n = 16;
    const src = new Float32Array(n * 20 * 14);
    for (let i = 0; i < n; i++) src.fill(i + 1, i * 280, (i + 1) * 280); // image i is constant i + 1
    const { data } = await run(src, n, shape, [7, 9], { randomResizedCrop: {} });
    for (let i = 0; i < n; i++) expect(Array.from(new Set(image(data, i, 63)))).toEqual([i + 1]);
  });
});

describe('centerCrop', () => {
  it("is torchvision's Resize(resize) + CenterCrop(size), compared with tfjs's resize then slice", async () => {
    for (const [shape, resize, out] of [
      [[20, 30, 3], 16, [14, 14]],
      [[30, 20, 3], 12, [12, 10]],
      [[9, 9, 3], 9, [7, 7]],
      [[8, 12, 3], 24, [20, 22]],
    ] as [Shape3, number, [number, number]][]) {
      const [H, W] = shape;
      const src = images(2, shape, 4);
      const { data } = await run(src, 2, shape, out, { centerCrop: { resize } });
      // torchvision: the shorter side becomes `resize`, the longer int(resize · long / short); the crop offset is round((r − o) / 2).
      const rh = H <= W ? resize : Math.trunc((resize * H) / W);
      const rw = H <= W ? Math.trunc((resize * W) / H) : resize;
      const top = Math.round((rh - out[0]) / 2);
      const left = Math.round((rw - out[1]) / 2);
      for (let i = 0; i < 2; i++) {
        const want = tf.tidy(() => {
          const img = tf.tensor4d(src.subarray(i * H * W * 3, (i + 1) * H * W * 3), [1, H, W, 3]);
          return tf.slice(tf.image.resizeBilinear(img, [rh, rw], false, true), [0, top, left, 0], [1, out[0], out[1], 3]).dataSync();
        });
        expect(maxDiff(image(data, i, out[0] * out[1] * 3), want)).toBeLessThan(1e-5);
      }
    }
  });
});

/** torchvision's functional ops on one HWC image in [0, 1] (the formulas, float64 here). */
const greyOf = (a: Float32Array, p: number) => 0.2989 * a[p]! + 0.587 * a[p + 1]! + 0.114 * a[p + 2]!;
const clamp = (v: number) => Math.min(1, Math.max(0, v));
function brightness(a: Float32Array, f: number): Float32Array {
  return a.map((v) => clamp(f * v));
}
function contrast(a: Float32Array, f: number): Float32Array {
  let s = 0;
  for (let p = 0; p < a.length; p += 3) s += greyOf(a, p);
  const mean = s / (a.length / 3);
  return a.map((v) => clamp(f * v + (1 - f) * mean));
}
function saturation(a: Float32Array, f: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let p = 0; p < a.length; p += 3) {
    const g = greyOf(a, p);
    for (let ch = 0; ch < 3; ch++) out[p + ch] = clamp(f * a[p + ch]! + (1 - f) * g);
  }
  return out;
}

describe('colorJitter', () => {
  const shape: Shape3 = [6, 5, 3];
  const per = 90;
  const n = 16;
  const src = images(n, shape, 5);

  it('applies each op as torchvision does (a fixed factor)', async () => {
    for (const [opts, fn] of [
      [{ brightness: [0.6, 0.6] }, (a: Float32Array) => brightness(a, 0.6)],
      [{ brightness: [1.7, 1.7] }, (a: Float32Array) => brightness(a, 1.7)],
      [{ contrast: [1.4, 1.4] }, (a: Float32Array) => contrast(a, 1.4)],
      [{ contrast: [0.2, 0.2] }, (a: Float32Array) => contrast(a, 0.2)],
      [{ saturation: [0.3, 0.3] }, (a: Float32Array) => saturation(a, 0.3)],
      [{ saturation: [2, 2] }, (a: Float32Array) => saturation(a, 2)],
    ] as const) {
      const { data } = await run(src, n, shape, [6, 5], { colorJitter: opts as never });
      for (let i = 0; i < n; i++) expect(maxDiff(image(data, i, per), fn(image(src, i, per)))).toBeLessThan(1e-5);
    }
  });

  it('draws factors from [max(0, 1 − b), 1 + b] and applies the ops in a random order', async () => {
    const { data } = await run(src, n, shape, [6, 5], { colorJitter: { brightness: 0.4 } });
    const factors: number[] = [];
    for (let i = 0; i < n; i++) {
      const a = image(src, i, per);
      const got = image(data, i, per);
      let k = 0;
      while (got[k]! >= 1 || a[k]! < 0.05) k++; // an unclamped value gives the factor
      const f = got[k]! / a[k]!;
      expect(f).toBeGreaterThanOrEqual(0.6 - 1e-6);
      expect(f).toBeLessThanOrEqual(1.4 + 1e-6);
      expect(maxDiff(got, brightness(a, f))).toBeLessThan(1e-5);
      factors.push(f);
    }
    expect(new Set(factors.map((f) => f.toFixed(4))).size).toBeGreaterThan(n / 2);

    const { data: all } = await run(src, n, shape, [6, 5], { colorJitter: { brightness: [0.7, 0.7], contrast: [1.5, 1.5], saturation: [0.4, 0.4] } });
    const ops = [(a: Float32Array) => brightness(a, 0.7), (a: Float32Array) => contrast(a, 1.5), (a: Float32Array) => saturation(a, 0.4)];
    const orders = [
      [0, 1, 2],
      [0, 2, 1],
      [1, 0, 2],
      [1, 2, 0],
      [2, 0, 1],
      [2, 1, 0],
    ];
    const seen = new Set<number>();
    for (let i = 0; i < n; i++) {
      const hits = orders.map(
        (o) =>
          maxDiff(
            image(all, i, per),
            o.reduce((a, k) => ops[k]!(a), image(src, i, per) as Float32Array),
          ) < 1e-5,
      );
      expect(hits.some(Boolean)).toBe(true);
      seen.add(hits.indexOf(true));
    }
    expect(seen.size).toBeGreaterThan(1);
  });

  it('jitters before the normalisation', async () => {
    const { data } = await run(src, 2, shape, [6, 5], { colorJitter: { brightness: [0.5, 0.5] }, mean: [0.1, 0.2, 0.3], std: [2, 2, 2] });
    const want = brightness(image(src, 0, per), 0.5).map((v, k) => (v - [0.1, 0.2, 0.3][k % 3]!) / 2);
    expect(maxDiff(image(data, 0, per), want)).toBeLessThan(1e-6);
  });
});

describe('mixup and cutmix', () => {
  const shape: Shape3 = [8, 8, 3];
  const per = 192;
  const n = 6;
  const src = images(n, shape, 6);

  it('mixup blends image i with image n − 1 − i by the λ it reports', async () => {
    const plain = await run(src, n, shape, [8, 8], { flip: true });
    const { data, result } = await run(src, n, shape, [8, 8], { flip: true, mixup: { alpha: 0.4 } });
    expect(result.mix).toBe('mixup');
    expect(result.lambda).toBeGreaterThan(0);
    expect(result.lambda).toBeLessThan(1);
    const l = result.lambda;
    for (let i = 0; i < n; i++) {
      const a = image(plain.data, i, per);
      const b = image(plain.data, n - 1 - i, per);
      expect(
        maxDiff(
          image(data, i, per),
          a.map((v, k) => l * v + (1 - l) * b[k]!),
        ),
      ).toBeLessThan(1e-6);
    }
  });

  it('cutmix pastes one box of image n − 1 − i, and λ is the share of pixels left', async () => {
    const plain = await run(src, n, shape, [8, 8], {});
    let boxes = 0;
    for (let step = 0; step < 12; step++) {
      const { data, result } = await run(src, n, shape, [8, 8], { cutmix: { alpha: 1 }, step });
      expect(result.mix).toBe('cutmix');
      let replaced = 0;
      for (let p = 0; p < 64; p++) {
        const from = [0, 1, 2].every((ch) => data[p * 3 + ch] === plain.data[(n - 1) * per + p * 3 + ch]);
        const own = [0, 1, 2].every((ch) => data[p * 3 + ch] === plain.data[p * 3 + ch]);
        expect(from !== own).toBe(true);
        if (from) replaced++;
      }
      expect(result.lambda).toBeCloseTo(1 - replaced / 64, 12);
      if (replaced > 0) boxes++;
    }
    expect(boxes).toBeGreaterThan(0);
  });

  it('draws λ ~ Beta(α, α): mean 1/2, spread as the distribution says', async () => {
    const tiny = new Float32Array(2);
    const lambdas: number[] = [];
    for (let step = 0; step < 300; step++) lambdas.push((await run(tiny, 2, [1, 1, 1], [1, 1], { mixup: { alpha: 1 }, step })).result.lambda);
    const mean = lambdas.reduce((a, b) => a + b) / lambdas.length;
    const variance = lambdas.reduce((a, b) => a + (b - mean) ** 2, 0) / lambdas.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.06);
    expect(Math.abs(variance - 1 / 12)).toBeLessThan(0.02); // Beta(1, 1) is uniform
    const small: number[] = [];
    for (let step = 0; step < 300; step++) small.push((await run(tiny, 2, [1, 1, 1], [1, 1], { mixup: { alpha: 0.2 }, step })).result.lambda);
    // Beta(0.2, 0.2) piles up near 0 and 1: variance 1/(4·(2α+1)) ≈ 0.179.
    const m2 = small.reduce((a, b) => a + (b - 0.5) ** 2, 0) / small.length;
    expect(Math.abs(m2 - 0.25 / 1.4)).toBeLessThan(0.03);
  });
});

describe('reproducibility', () => {
  it('the same seed and step give bit-identical batches; another step or seed differs', async () => {
    const shape: Shape3 = [20, 24, 3];
    const src = images(8, shape, 7);
    const opts: Partial<AugmentOptions> = {
      randomResizedCrop: {},
      flip: true,
      colorJitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4 },
      mixup: { alpha: 0.2 },
      cutmix: { alpha: 1 },
      mean: [0.5, 0.5, 0.5],
      std: [0.25, 0.25, 0.25],
    };
    const a = await run(src, 8, shape, [16, 16], opts);
    const b = await run(src, 8, shape, [16, 16], opts);
    expect(Buffer.from(a.data.buffer).equals(Buffer.from(b.data.buffer))).toBe(true);
    expect(a.result).toEqual(b.result);
    const c = await run(src, 8, shape, [16, 16], { ...opts, step: 4 });
    expect(Buffer.from(a.data.buffer).equals(Buffer.from(c.data.buffer))).toBe(false);
    const d = await run(src, 8, shape, [16, 16], { ...opts, seed: 8 });
    expect(Buffer.from(a.data.buffer).equals(Buffer.from(d.data.buffer))).toBe(false);
  });

  it('gives the same batch whatever the thread count (RESNET_NUM_THREADS 1 and 3 in child processes)', async () => {
    const shape: Shape3 = [20, 24, 3];
    const n = 8;
    const src = images(n, shape, 12);
    const native = {
      randomResizedCrop: { scale: [0.08, 1], ratio: [3 / 4, 4 / 3] },
      colorJitter: { brightness: [0.6, 1.4], contrast: [0.6, 1.4], saturation: [0.6, 1.4] },
      mixupAlpha: 0.2,
      cutmixAlpha: 1,
    };
    const here = await run(src, n, shape, [16, 16], {
      flip: true,
      randomResizedCrop: {},
      colorJitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4 },
      mixup: { alpha: 0.2 },
      cutmix: { alpha: 1 },
    });
    const script = `
      const addon = process.env.RESNET_NATIVE_ADDON;
      const b = addon ? require(addon) : require('node-gyp-build')(${JSON.stringify(packageRoot)});
      const src = new Float32Array(Buffer.from(process.argv[1], 'base64').buffer.slice(0));
      const dst = new b.NativeTensor(new Float32Array(${n * 16 * 16 * 3}), [${n}, 16, 16, 3]);
      b.augmentBatch(src, dst, { count: ${n}, imageShape: [20, 24, 3], padding: 0, flip: true, mean: null, std: null,
        seed: 7, step: 3, ...${JSON.stringify(native)} }).then((r) => {
        process.stdout.write(JSON.stringify({ threads: b.runtimeInfo().threads, r,
          out: Buffer.from(dst.toFloat32Array().buffer).toString('base64') }));
      });`;
    const srcB64 = Buffer.from(src.buffer, src.byteOffset, src.byteLength).toString('base64');
    for (const threads of ['1', '3']) {
      const res = JSON.parse(
        execFileSync(process.execPath, ['-e', script, srcB64], { cwd: packageRoot, env: { ...process.env, RESNET_NUM_THREADS: threads } }).toString(),
      ) as { threads: number; r: { lambda: number }; out: string };
      expect(res.threads).toBe(Number(threads));
      expect(res.r.lambda).toBe(here.result.lambda);
      expect(Buffer.from(res.out, 'base64').equals(Buffer.from(here.data.buffer))).toBe(true);
    }
  });
});

describe('hostile options', () => {
  const shape: Shape3 = [8, 8, 3];
  const src = images(2, shape, 8);
  const bad: [Partial<AugmentOptions>, string][] = [
    [{ randomResizedCrop: { scale: [0, 1] } }, 'scale'],
    [{ randomResizedCrop: { scale: [0.5, 1.5] } }, 'scale'],
    [{ randomResizedCrop: { scale: [0.9, 0.5] } }, 'scale'],
    [{ randomResizedCrop: { scale: [Number.NaN, 1] } }, 'scale'],
    [{ randomResizedCrop: { ratio: [0, 1] } }, 'ratio'],
    [{ randomResizedCrop: { ratio: [-1, 1] } }, 'ratio'],
    [{ randomResizedCrop: { ratio: [1, Number.POSITIVE_INFINITY] } }, 'ratio'],
    [{ randomResizedCrop: { ratio: 1 as never } }, 'ratio'],
    [{ randomResizedCrop: { shear: 1 } as never }, 'shear'],
    [{ randomResizedCrop: {}, padding: 2 }, 'padding'],
    [{ randomResizedCrop: {}, centerCrop: {} }, 'not both'],
    [{ centerCrop: { resize: 4 } }, 'resize'],
    [{ centerCrop: { resize: Number.NaN } }, 'resize'],
    [{ colorJitter: { brightness: -0.1 } }, 'brightness'],
    [{ colorJitter: { contrast: Number.NaN } }, 'contrast'],
    [{ colorJitter: { saturation: [2, 1] } }, 'saturation'],
    [{ colorJitter: { hue: 0.1 } as never }, 'hue'],
    [{ mixup: { alpha: 0 } }, 'mixup.alpha'],
    [{ mixup: { alpha: Number.NaN } }, 'mixup.alpha'],
    [{ cutmix: { alpha: -1 } }, 'cutmix.alpha'],
    [{ cutmix: 1 as never }, 'cutmix'],
  ];
  for (const [opts, mention] of bad) {
    it(`rejects ${JSON.stringify(opts)} with E_ARG naming ${mention}`, async () => {
      const dst = Tensor.zeros([2, 6, 6, 3]);
      try {
        await expectCode(() => augmentBatch(src, dst, { count: 2, imageShape: shape, seed: 1, step: 0, ...opts }), 'E_ARG', mention);
      } finally {
        dst.dispose();
      }
    });
  }

  it('the native binding itself refuses hostile values (E_ARG), whatever lib passes', async () => {
    const dst = Tensor.zeros([2, 6, 6, 3]);
    const same = Tensor.zeros([2, 8, 8, 3]); // for the options that keep the size
    const base = { count: 2, imageShape: shape, padding: 0, flip: false, mean: null, std: null, seed: 0, step: 0 };
    const nat = (o: object) => () =>
      Promise.resolve().then(() =>
        native.augmentBatch(src, ('randomResizedCrop' in o || 'centerCrop' in o ? dst : same).handle, { ...base, ...o } as never),
      );
    try {
      const rrc = (scale: unknown, ratio: unknown) => ({ randomResizedCrop: { scale, ratio } });
      await expectCode(nat(rrc([0, 1], [1, 1])), 'E_ARG', 'scale');
      await expectCode(nat(rrc([0.5, 2], [1, 1])), 'E_ARG', 'scale');
      await expectCode(nat(rrc([Number.NaN, 1], [1, 1])), 'E_ARG', 'scale');
      await expectCode(nat(rrc([0.5, 1], [-1, 1])), 'E_ARG', 'ratio');
      await expectCode(nat(rrc([0.5, 1], [1, Number.POSITIVE_INFINITY])), 'E_ARG', 'ratio');
      await expectCode(nat(rrc([0.5, 1], 'wide')), 'E_ARG', 'ratio');
      await expectCode(nat({ centerCrop: { resize: 3 } }), 'E_ARG', 'resize');
      await expectCode(nat({ centerCrop: { resize: -3 } }), 'E_ARG', 'resize');
      await expectCode(nat({ colorJitter: { brightness: [2, 1] } }), 'E_ARG', 'jitter');
      await expectCode(nat({ colorJitter: { contrast: [Number.NaN, 1] } }), 'E_ARG', 'contrast');
      await expectCode(nat({ mixupAlpha: -1 }), 'E_ARG', 'mixupAlpha');
      await expectCode(nat({ cutmixAlpha: Number.NaN }), 'E_ARG', 'cutmixAlpha');
      await expectCode(nat({ ...rrc([0.5, 1], [1, 1]), padding: 1 }), 'E_ARG', 'padding');
    } finally {
      dst.dispose();
      same.dispose();
    }
  });

  it('refuses a dst of another size without a resampling crop, and a size that disagrees with dst (E_SHAPE)', async () => {
    const dst = Tensor.zeros([2, 6, 6, 3]);
    try {
      await expectCode(() => augmentBatch(src, dst, { count: 2, imageShape: shape, seed: 1, step: 0 }), 'E_SHAPE');
      await expectCode(
        () => augmentBatch(src, dst, { count: 2, imageShape: shape, seed: 1, step: 0, randomResizedCrop: { size: 5 } }),
        'E_SHAPE',
        'size',
      );
    } finally {
      dst.dispose();
    }
  });
});

describe('the mixed-target loss', () => {
  const side = 8;
  const n = 6;
  const x = images(n, [side, side, 3], 9);
  const a = Int32Array.from([0, 1, 2, 3, 1, 0]);
  const b = Int32Array.from(a).reverse();

  it('is λ·CE(a) + (1 − λ)·CE(b), with that gradient and the dominant label’s accuracy', async () => {
    const model = tinyModel(3, { classes: 4, side });
    const t = Tensor.fromArray(x, [n, side, side, 3]);
    try {
      for (const smoothing of [0, 0.1]) {
        for (const lambda of [0.3, 0.8]) {
          const ga = await model.computeGradients(t, a, { labelSmoothing: smoothing });
          const gb = await model.computeGradients(t, b, { labelSmoothing: smoothing });
          const gm = await model.computeGradients(t, a, { labelSmoothing: smoothing, mix: { labels: b, lambda } });
          expect(gm.loss).toBeCloseTo(lambda * ga.loss + (1 - lambda) * gb.loss, 5);
          expect(gm.accuracy).toBe(lambda >= 0.5 ? ga.accuracy : gb.accuracy);
          for (const [name, g] of gm.gradients) {
            const want = g.map((_, k) => lambda * ga.gradients.get(name)![k]! + (1 - lambda) * gb.gradients.get(name)![k]!);
            expect(maxDiff(g, want)).toBeLessThan(1e-5 * Math.max(1, maxDiff(want, new Float32Array(want.length))));
          }
        }
      }
    } finally {
      t.dispose();
      model.dispose();
    }
  });

  it('has the gradient finite differences give (the dense layer’s bias)', async () => {
    const model = tinyModel(4, { classes: 4, side });
    const t = Tensor.fromArray(x, [n, side, side, 3]);
    try {
      const mix = { labels: b, lambda: 0.35 };
      const g = await model.computeGradients(t, a, { mix });
      const name = model.parameterInfo().find((p) => p.shape.length === 1 && p.shape[0] === 4 && /dense|fc|logits/i.test(p.name))?.name;
      expect(name).toBeDefined();
      const bias = model.getParameter(name!);
      const eps = 1e-2;
      for (let k = 0; k < 4; k++) {
        const plus = Float32Array.from(bias);
        plus[k] += eps;
        model.setParameter(name!, plus);
        const lp = (await model.computeGradients(t, a, { mix })).loss;
        const minus = Float32Array.from(bias);
        minus[k] -= eps;
        model.setParameter(name!, minus);
        const lm = (await model.computeGradients(t, a, { mix })).loss;
        model.setParameter(name!, bias);
        expect(g.gradients.get(name!)![k]!).toBeCloseTo((lp - lm) / (2 * eps), 3);
      }
    } finally {
      t.dispose();
      model.dispose();
    }
  });

  it('trainStep refuses bad mix targets', async () => {
    const model = tinyModel(5, { classes: 4, side }).compile({ optimizer: { type: 'sgd', lr: 0.01 } });
    const t = Tensor.fromArray(x, [n, side, side, 3]);
    try {
      await expectCode(() => model.trainStep(t, a, { mix: { labels: b, lambda: 1.5 } }), 'E_ARG', 'lambda');
      await expectCode(() => model.trainStep(t, a, { mix: { labels: b, lambda: Number.NaN } }), 'E_ARG', 'lambda');
      await expectCode(() => model.trainStep(t, a, { mix: { labels: b.subarray(1), lambda: 0.5 } }), 'E_SHAPE', 'mix.labels');
      await expectCode(() => model.trainStep(t, a, { mix: { labels: Int32Array.from([9, 0, 0, 0, 0, 0]), lambda: 0.5 } }), 'E_ARG', 'label 9');
    } finally {
      t.dispose();
      model.dispose();
    }
  });
});

describe('Trainer.fit with ImageNet-style augmentation', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  /** 48 images of 12×12 stored; the model trains on 8×8 crops. */
  function stored(): Dataset {
    const data = images(48, [12, 12, 3], 10);
    return {
      length: 48,
      imageShape: [12, 12, 3],
      classes: 4,
      fill(indices, out, labels) {
        for (let i = 0; i < indices.length; i++) {
          out.set(data.subarray(indices[i]! * 432, (indices[i]! + 1) * 432), i * 432);
          labels[i] = indices[i]! % 4;
        }
      },
    };
  }
  const augment = {
    randomResizedCrop: { size: 8, scale: [0.3, 1] as [number, number] },
    flip: true,
    colorJitter: { brightness: 0.3, contrast: 0.3, saturation: 0.3 },
    mixup: { alpha: 0.4 },
    cutmix: { alpha: 1 },
    mean: 0.5,
    std: 0.25,
  };
  const compile = { optimizer: { type: 'sgd' as const, lr: 0.05, momentum: 0.9 } };
  const params = (m: ReturnType<typeof tinyModel>) => m.parameterInfo().map((p) => m.getParameter(p.name));

  it('trains reproducibly, validates with the centre crop, and resumes bit-identically', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rn-aug-'));
    dirs.push(dir);
    const options = { epochs: 2, batchSize: 8, seed: 11, augment, validation: stored() };
    const a = tinyModel(1, { classes: 4, side: 8 });
    const ha = await new Trainer(a, { compile, progress: 'none' }).fit(stored(), { ...options, callbacks: [checkpoint({ dir, everyEpoch: true })] });
    expect(ha).toHaveLength(2);
    expect(Number.isFinite(ha[1]!.valLoss)).toBe(true);
    const b = tinyModel(1, { classes: 4, side: 8 });
    const hb = await new Trainer(b, { compile, progress: 'none' }).fit(stored(), options);
    expect(hb.map((e) => e.loss)).toEqual(ha.map((e) => e.loss));
    params(b).forEach((p, i) => expect(Buffer.from(p.buffer).equals(Buffer.from(params(a)[i]!.buffer))).toBe(true));
    // Resumed after epoch 1 from another initialisation: the same weights, bit for bit.
    const c = tinyModel(77, { classes: 4, side: 8 });
    await new Trainer(c, { compile, progress: 'none' }).fit(stored(), { ...options, resumeFrom: join(dir, 'epoch-1.safetensors') });
    params(c).forEach((p, i) => expect(Buffer.from(p.buffer).equals(Buffer.from(params(a)[i]!.buffer))).toBe(true));
    for (const m of [a, b, c]) m.dispose();
  });

  it('refuses bad augment options with E_ARG naming them', async () => {
    const m = tinyModel(1, { classes: 4, side: 8 });
    const t = new Trainer(m, { compile, progress: 'none' });
    await expectCode(
      () => t.fit(stored(), { epochs: 1, batchSize: 8, augment: { randomResizedCrop: { size: 8, scale: [0, 1] } } }),
      'E_ARG',
      'scale',
    );
    await expectCode(() => t.fit(stored(), { epochs: 1, batchSize: 8, augment: { randomResizedCrop: { size: 8 }, padding: 2 } }), 'E_ARG', 'padding');
    await expectCode(() => t.fit(stored(), { epochs: 1, batchSize: 8, augment: { randomResizedCrop: { size: 0 } as never } }), 'E_ARG', 'size');
    await expectCode(() => t.fit(stored(), { epochs: 1, batchSize: 8, augment: { mixup: { alpha: -1 } } }), 'E_ARG', 'alpha');
    await expectCode(() => t.fit(stored(), { epochs: 1, batchSize: 8, augment: { centerCrop: { size: 8, resize: 4 } } }), 'E_ARG', 'resize');
    m.dispose();
  });
});
