// Native batch augmentation (augmentBatch): every expected value is rebuilt here from the
// definition — pad with zeros, crop at an offset, mirror, (x − mean) / std in float32 —
// and the random offsets are recovered by searching all candidates, not by re-deriving
// the native hash.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

import { augmentBatch, type AugmentOptions } from '../../lib/data/index.js';
import { Tensor } from '../../lib/index.js';
import { native, packageRoot } from '../../lib/native.js';
import { Rng } from '../support/random.js';
import { expectCode } from '../support/expect_error.js';

const f = Math.fround;

type Shape3 = [number, number, number];

/** Expected output of one image under (oy, ox, flip), per the documented definition. */
function expectedImage(
  src: Float32Array,
  i: number,
  [h, w, c]: Shape3,
  padding: number,
  oy: number,
  ox: number,
  flip: boolean,
  mean: number[] | undefined,
  std: number[] | undefined,
): Float32Array {
  const out = new Float32Array(h * w * c);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const xs = flip ? w - 1 - x : x;
      const sy = y + oy - padding;
      const sx = xs + ox - padding;
      for (let ch = 0; ch < c; ch++) {
        let v = sy >= 0 && sy < h && sx >= 0 && sx < w ? src[i * h * w * c + (sy * w + sx) * c + ch]! : 0;
        if (mean) v = f(v - f(mean[ch]!));
        if (std) v = f(v / f(std[ch]!));
        out[(y * w + x) * c + ch] = v;
      }
    }
  }
  return out;
}

function sameValues(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i]) && a[i] !== b[i]) return false;
  return true;
}

function image(all: Float32Array, i: number, [h, w, c]: Shape3): Float32Array {
  return all.subarray(i * h * w * c, (i + 1) * h * w * c);
}

async function run(src: Float32Array, n: number, shape: Shape3, options: Omit<AugmentOptions, 'imageShape' | 'count'> & { count?: number }) {
  const dst = Tensor.zeros([n, ...shape]);
  await augmentBatch(src, dst, { count: n, imageShape: shape, ...options });
  const out = dst.toFloat32Array();
  dst.dispose();
  return out;
}

/** All (oy, ox, flip) whose reconstruction equals output image i exactly. */
function matchingDraws(
  src: Float32Array,
  out: Float32Array,
  i: number,
  shape: Shape3,
  padding: number,
  flips: boolean[],
  mean?: number[],
  std?: number[],
): { oy: number; ox: number; flip: boolean }[] {
  const got = image(out, i, shape);
  const found = [];
  for (let oy = 0; oy <= 2 * padding; oy++) {
    for (let ox = 0; ox <= 2 * padding; ox++) {
      for (const flip of flips) {
        if (sameValues(got, expectedImage(src, i, shape, padding, oy, ox, flip, mean, std))) found.push({ oy, ox, flip });
      }
    }
  }
  return found;
}

describe('augmentBatch', () => {
  const shape: Shape3 = [6, 7, 3];
  const n = 64;
  const src = new Rng(7).array(n * 6 * 7 * 3);
  const mean = [0.1, -0.25, 0.5];
  const std = [0.5, 0.2, 1.5];

  it('with padding 0 and no flip only normalises: (x − mean) / std per channel, exactly in float32', async () => {
    const out = await run(src, n, shape, { mean, std, seed: 1, step: 0 });
    for (let i = 0; i < n; i++) expect(sameValues(image(out, i, shape), expectedImage(src, i, shape, 0, 0, 0, false, mean, std))).toBe(true);
  });

  it('without mean/std and augmentation it copies the batch exactly', async () => {
    const out = await run(src, n, shape, { seed: 1, step: 0 });
    expect(sameValues(out, src)).toBe(true);
  });

  it('flip mirrors images exactly, about half of them, the rest unchanged', async () => {
    const out = await run(src, n, shape, { flip: true, mean, std, seed: 3, step: 5 });
    let flipped = 0;
    for (let i = 0; i < n; i++) {
      const draws = matchingDraws(src, out, i, shape, 0, [false, true], mean, std);
      expect(draws).toHaveLength(1);
      if (draws[0]!.flip) flipped++;
    }
    expect(flipped).toBeGreaterThan(16);
    expect(flipped).toBeLessThan(48);
  });

  it('random crops are the zero-padded image shifted by an offset within [0, 2·padding], every offset used', async () => {
    const padding = 2;
    const out = await run(src, n, shape, { padding, flip: true, mean, std, seed: 11, step: 3 });
    const offsetsY = new Set<number>();
    const offsetsX = new Set<number>();
    const pairs = new Set<string>();
    let flipped = 0;
    for (let i = 0; i < n; i++) {
      const draws = matchingDraws(src, out, i, shape, padding, [false, true], mean, std);
      expect(draws, `image ${i}`).toHaveLength(1);
      offsetsY.add(draws[0]!.oy);
      offsetsX.add(draws[0]!.ox);
      pairs.add(`${draws[0]!.oy},${draws[0]!.ox}`);
      if (draws[0]!.flip) flipped++;
    }
    expect([...offsetsY].sort()).toEqual([0, 1, 2, 3, 4]);
    expect([...offsetsX].sort()).toEqual([0, 1, 2, 3, 4]);
    // Vertical and horizontal offsets are drawn independently: most of the 25 pairs occur.
    expect(pairs.size).toBeGreaterThanOrEqual(18);
    expect(flipped).toBeGreaterThan(12);
    expect(flipped).toBeLessThan(52);
  });

  it('padded pixels are zeros before normalisation (−mean/std), even when the padding exceeds the image', async () => {
    const small: Shape3 = [3, 2, 1];
    const count = 40;
    const s = new Rng(5).array(count * 6);
    const padding = 3;
    const out = await run(s, count, small, { padding, mean: [0.5], std: [0.25], seed: 9, step: 1 });
    let allPadding = 0;
    for (let i = 0; i < count; i++) {
      const draws = matchingDraws(s, out, i, small, padding, [false], [0.5], [0.25]);
      expect(draws.length, `image ${i}`).toBeGreaterThan(0); // several offsets can give an all-padding crop
      if (image(out, i, small).every((v) => v === f(f(-0.5) / 0.25))) allPadding++;
    }
    expect(allPadding).toBeGreaterThan(0);
  });

  it('is deterministic in (seed, step, image index): same inputs agree, other steps or seeds differ', async () => {
    const opts = { padding: 2, flip: true, seed: 42, step: 7 };
    const a = await run(src, n, shape, opts);
    const b = await run(src, n, shape, opts);
    expect(sameValues(a, b)).toBe(true);
    expect(sameValues(a, await run(src, n, shape, { ...opts, step: 8 }))).toBe(false);
    expect(sameValues(a, await run(src, n, shape, { ...opts, seed: 43 }))).toBe(false);
    // Image i's draw does not depend on the batch size.
    const dst = Tensor.fill([n, ...shape], 7);
    await augmentBatch(src, dst, { count: 5, imageShape: shape, ...opts });
    const part = dst.toFloat32Array();
    const per = 6 * 7 * 3;
    expect(sameValues(part.subarray(0, 5 * per), a.subarray(0, 5 * per))).toBe(true);
    // Images past count are left as they were.
    expect(part.subarray(5 * per).every((v) => v === 7)).toBe(true);
    dst.dispose();
  });

  it('gives the same result whatever the thread count (RESNET_NUM_THREADS 1 and 4 in child processes)', async () => {
    const opts = { padding: 2, flip: true, mean, std, seed: 5, step: 123 };
    const here = await run(src, n, shape, opts);
    const script = `
      const b = require('node-gyp-build')(${JSON.stringify(packageRoot)});
      const src = new Float32Array(Buffer.from(process.argv[1], 'base64').buffer.slice(0));
      const dst = new b.NativeTensor(new Float32Array(${n * 6 * 7 * 3}), [${n}, 6, 7, 3]);
      b.augmentBatch(src, dst, { count: ${n}, imageShape: [6, 7, 3], padding: 2, flip: true,
        mean: ${JSON.stringify(mean)}, std: ${JSON.stringify(std)}, seed: 5, step: 123 }).then(() => {
        process.stdout.write(JSON.stringify({ threads: b.runtimeInfo().threads,
          out: Buffer.from(dst.toFloat32Array().buffer).toString('base64') }));
      });`;
    const srcB64 = Buffer.from(src.buffer, src.byteOffset, src.byteLength).toString('base64');
    for (const threads of ['1', '4']) {
      const res = JSON.parse(
        execFileSync(process.execPath, ['-e', script, srcB64], { cwd: packageRoot, env: { ...process.env, RESNET_NUM_THREADS: threads } }).toString(),
      ) as { threads: number; out: string };
      expect(res.threads).toBe(Number(threads));
      const other = new Float32Array(new Uint8Array(Buffer.from(res.out, 'base64')).buffer);
      expect(sameValues(other, here)).toBe(true);
    }
  });

  it('keeps dst alive when it is disposed while the work is in flight', async () => {
    const dst = Tensor.zeros([n, ...shape]);
    const p = augmentBatch(src, dst, { count: n, imageShape: shape, padding: 1, flip: true, seed: 1, step: 1 });
    dst.dispose();
    await expect(p).resolves.toEqual({ mix: 'none', lambda: 1 }); // nothing mixed
  });
});

describe('augmentBatch rejects', () => {
  const shape: Shape3 = [4, 4, 3];
  const src = new Float32Array(2 * 48);
  const base: AugmentOptions = { count: 2, imageShape: shape, seed: 0, step: 0 };
  const dst = Tensor.zeros([2, 4, 4, 3]);
  const call =
    (over: Partial<AugmentOptions> & Record<string, unknown>, s: unknown = src, d: unknown = dst) =>
    () =>
      augmentBatch(s as Float32Array, d as Tensor, { ...base, ...over } as AugmentOptions);

  it('a src that is not a Float32Array', () => expectCode(call({}, new Float64Array(96)), 'E_DTYPE', 'src'));
  it('a dst that is not a Tensor', () => expectCode(call({}, src, {}), 'E_ARG', 'dst'));
  it('a disposed dst', async () => {
    const d = Tensor.zeros([2, 4, 4, 3]);
    d.dispose();
    await expectCode(call({}, src, d), 'E_DISPOSED', 'dst');
  });
  it('a dst whose shape does not match imageShape', () =>
    expectCode(call({}, src, Tensor.zeros([2, 4, 5, 3])), 'E_SHAPE', '[2, 4, 5, 3]', '[4, 4, 3]'));
  it('a count above dst’s batch', () => expectCode(call({ count: 3 }), 'E_SHAPE', 'count 3'));
  it('a src too short for count images', () => expectCode(call({}, new Float32Array(95)), 'E_SHAPE', '95'));
  it('mean / std of the wrong length', async () => {
    await expectCode(call({ mean: [0, 0] }), 'E_SHAPE', 'mean', '3 channels');
    await expectCode(call({ std: [1] }), 'E_SHAPE', 'std');
  });
  it('a std of 0 or a non-finite mean', async () => {
    await expectCode(call({ std: [1, 0, 1] }), 'E_ARG', 'std[1]');
    await expectCode(call({ mean: [0, NaN, 0] }), 'E_ARG', 'mean[1]');
  });
  it('negative or fractional padding, a non-boolean flip, a missing seed or step, an unknown option', async () => {
    await expectCode(call({ padding: -1 }), 'E_ARG', 'padding');
    await expectCode(call({ padding: 1.5 }), 'E_ARG', 'padding');
    await expectCode(call({ flip: 1 as unknown as boolean }), 'E_ARG', 'flip');
    await expectCode(call({ seed: undefined as unknown as number }), 'E_ARG', 'seed');
    await expectCode(call({ step: -1 }), 'E_ARG', 'step');
    await expectCode(call({ pad: 2 }), 'E_ARG', "unknown option 'pad'");
  });
  it('a bad imageShape', () => expectCode(call({ imageShape: [4, 4] as unknown as Shape3 }), 'E_SHAPE', 'imageShape'));

  // The binding checks again, so direct calls that skip lib's validation never crash.
  describe('at the native binding', () => {
    const nat = (s: unknown, d: unknown, o: unknown) => () =>
      Promise.resolve().then(() => native.augmentBatch(s as Float32Array, d as never, o as never));
    const opts = { count: 2, imageShape: [4, 4, 3], padding: 0, flip: false, mean: null, std: null, seed: 0, step: 0 };
    it('wrong types', async () => {
      await expectCode(nat(new Float64Array(96), dst.handle, opts), 'E_DTYPE', 'src');
      await expectCode(nat(src, {}, opts), 'E_ARG', 'dst');
      await expectCode(nat(src, dst.handle, 5), 'E_ARG', 'options');
      await expectCode(nat(src, dst.handle, { ...opts, flip: 'yes' }), 'E_ARG', 'flip');
    });
    it('wrong sizes and values', async () => {
      await expectCode(nat(src, dst.handle, { ...opts, count: 5 }), 'E_SHAPE', 'count 5');
      await expectCode(nat(new Float32Array(10), dst.handle, opts), 'E_SHAPE', 'src');
      await expectCode(nat(src, dst.handle, { ...opts, imageShape: [4, 4, 0] }), 'E_SHAPE', 'imageShape');
      await expectCode(nat(src, dst.handle, { ...opts, imageShape: [4, 4, 2] }), 'E_SHAPE', 'dst');
      await expectCode(nat(src, dst.handle, { ...opts, std: [1, -1, 1] }), 'E_ARG', 'std[1]');
      await expectCode(nat(src, dst.handle, { ...opts, mean: [1, 2] }), 'E_SHAPE', 'mean');
      await expectCode(nat(src, dst.handle, { ...opts, padding: -2 }), 'E_ARG', 'padding');
      await expectCode(nat(src, dst.handle, { ...opts, seed: -1 }), 'E_ARG', 'seed');
      await expectCode(nat(src, dst.handle, { ...opts, step: 0.5 }), 'E_ARG', 'step');
    });
  });
});
