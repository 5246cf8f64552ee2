// Fuzzing io.decodeImage (and so model.predictImages and the CLI's predict): valid PNG, JPEG,
// WebP and GIF files, truncated, bit-flipped and spliced, seeded, as files and as Buffers, through
// every geometry (cover, resize + crop, stretch) and channel count: each decodes or throws
// E_FORMAT / E_IO naming the source — never another error, a crash or a hang. The hostile
// families, every run: truncated files (always E_FORMAT), huge declared dimensions (refused by
// the pixel limit before decoding), extreme aspect ratios, special files (E_IO at once), files
// over the size cap.
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

import sharp from 'sharp';
import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { io, type Preprocessing, ResNetError } from '../../lib/index.js';
import { MAX_IMAGE_BYTES } from '../../lib/data/image_folder.js';
import { describeUnexpected, expectPromptAnswer, makeSpecialFile, mutateBytes, releaseFifos, SPECIAL_KINDS } from '../support/fuzz.js';
import { Rng } from '../support/random.js';

const root = mkdtempSync(join(tmpdir(), 'rn-fuzz-images-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(releaseFifos);

const base = { channelOrder: 'rgb' as const, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
const GEOMETRIES: Preprocessing[] = [
  { ...base, imageSize: [8, 8], resizeTo: 8 },
  { ...base, imageSize: [8, 8], resizeTo: 11 },
  { ...base, imageSize: [6, 9] },
  { ...base, imageSize: [5, 7], resizeTo: 7 },
];
const GREY: Preprocessing = { channelOrder: 'rgb', mean: [0.5], std: [0.25], imageSize: [8, 8], resizeTo: 10 };

async function valid(): Promise<{ name: string; bytes: Uint8Array }[]> {
  const rng = new Rng(99);
  const raw = Buffer.from(Uint8Array.from({ length: 20 * 24 * 4 }, () => rng.int(0, 255)));
  const img = () => sharp(raw, { raw: { width: 24, height: 20, channels: 4 } });
  return [
    { name: 'PNG', bytes: new Uint8Array(await img().png().toBuffer()) },
    { name: 'JPEG', bytes: new Uint8Array(await img().jpeg({ quality: 80 }).toBuffer()) },
    { name: 'WebP', bytes: new Uint8Array(await img().webp().toBuffer()) },
    { name: 'GIF', bytes: new Uint8Array(await img().gif().toBuffer()) },
  ];
}

/** decodeImage's outcome: 'ok', or the ResNetError's code (anything else fails the test). */
async function outcome(source: string | Uint8Array, p: Preprocessing, where: string): Promise<string> {
  try {
    const t = await io.decodeImage(source, { preprocessing: p });
    const v = t.toFloat32Array();
    t.dispose();
    expect(v.length).toBe(p.imageSize[0] * p.imageSize[1] * p.mean.length);
    expect(v.every(Number.isFinite), where).toBe(true);
    return 'ok';
  } catch (err) {
    expect(err instanceof ResNetError, `${where}: ${describeUnexpected(err)}`).toBe(true);
    const e = err as ResNetError;
    expect(['E_FORMAT', 'E_IO'], `${where}: ${e.message}`).toContain(e.code);
    expect(e.message, where).toContain(typeof source === 'string' ? source : 'image buffer');
    return e.code;
  }
}

describe('fuzzed images', () => {
  it('mutated PNG / JPEG / WebP / GIF files and Buffers decode or throw E_FORMAT naming the source', async () => {
    const rng = new Rng(4242);
    const images = await valid();
    for (const { name, bytes } of images) expect(await outcome(bytes, GEOMETRIES[1]!, name)).toBe('ok');
    const runs = 800;
    const tally = new Map<string, number>();
    for (let i = 0; i < runs; i++) {
      const { name, bytes } = rng.pick(images);
      const { data, how } = mutateBytes(bytes, rng, { start: 0, end: 96 });
      const p = rng.next() < 0.2 ? GREY : rng.pick(GEOMETRIES);
      let source: string | Uint8Array = data;
      if (rng.next() < 0.5) {
        source = join(root, `fuzz.${name.toLowerCase()}`);
        writeFileSync(source, data);
      }
      const r = await outcome(source, p, `input ${i} (${name} ${how})`);
      tally.set(r, (tally.get(r) ?? 0) + 1);
    }
    console.log(`fuzzed images: ${runs} inputs → ${JSON.stringify(Object.fromEntries(tally))}`);
    expect(tally.get('E_FORMAT') ?? 0).toBeGreaterThan(runs / 10);
  });

  it('a truncated file is always E_FORMAT, never a partial image', async () => {
    const rng = new Rng(7);
    for (const { name, bytes } of await valid()) {
      for (let k = 0; k < 12; k++) {
        const cut = rng.int(1, bytes.length - 16);
        expect(await outcome(bytes.subarray(0, cut), rng.pick(GEOMETRIES), `${name} cut at ${cut}`), `${name} cut at ${cut}`).toBe('E_FORMAT');
      }
    }
  });

  it('a small PNG declaring a huge image is refused by the pixel limit, through every geometry', async () => {
    const png = new Uint8Array(
      await sharp(Buffer.alloc(4 * 4 * 3, 128), { raw: { width: 4, height: 4, channels: 3 } })
        .png()
        .toBuffer(),
    );
    const view = new DataView(png.buffer, png.byteOffset);
    expect(new TextDecoder().decode(png.subarray(12, 16))).toBe('IHDR');
    for (const [w, h] of [
      [30000, 30000],
      [1, 2 ** 31 - 1],
      [100000, 3],
    ] as const) {
      view.setUint32(16, w);
      view.setUint32(20, h);
      view.setUint32(29, crc32(png.subarray(12, 29)));
      const path = join(root, `bomb-${w}x${h}.png`);
      writeFileSync(path, png);
      for (const p of GEOMETRIES) {
        await expectPromptAnswer(`${w}×${h}`, () => io.decodeImage(path, { preprocessing: p }), {
          code: 'E_FORMAT',
          mentions: [path],
          limitMs: 5000,
          timeoutMs: 10000,
        });
      }
    }
  });

  it('an extreme aspect ratio is decoded without materialising the resized image, or refused', async () => {
    const tall = await sharp(Buffer.alloc(1 * 4000 * 3, 100), { raw: { width: 1, height: 4000, channels: 3 } })
      .png()
      .toBuffer();
    // Cover (resizeTo = the square's side) and resize + crop (resizeTo 256: 256 × 1,024,000 pixels, lazily).
    for (const resizeTo of [224, 256]) {
      const started = performance.now();
      const t = await io.decodeImage(tall, { preprocessing: { ...base, imageSize: [224, 224], resizeTo } });
      expect(t.shape).toEqual([1, 224, 224, 3]);
      expect(t.toFloat32Array().every((v) => Math.abs(v - (100 / 255 - 0.5) / 0.25) < 1e-5)).toBe(true);
      t.dispose();
      expect(performance.now() - started).toBeLessThan(5000);
    }
    // 1×20000 would resize to 256 × 5,120,000 pixels: refused.
    const taller = await sharp(Buffer.alloc(1 * 20000 * 3, 100), { raw: { width: 1, height: 20000, channels: 3 } })
      .png()
      .toBuffer();
    expect(await outcome(taller, { ...base, imageSize: [224, 224], resizeTo: 256 }, '1×20000')).toBe('E_FORMAT');
  });

  it('special files: E_IO naming the path, at once; a file over the size cap: E_FORMAT without reading it', async () => {
    for (const kind of SPECIAL_KINDS) {
      const path = join(root, `special-${kind.replace(/\W+/g, '-')}.png`);
      makeSpecialFile(kind, path);
      await expectPromptAnswer(kind, () => io.decodeImage(path, { preprocessing: GEOMETRIES[0]! }), {
        code: 'E_IO',
        mentions: [path],
        limitMs: 2000,
        timeoutMs: 5000,
      });
    }
    const big = join(root, 'big.png');
    writeFileSync(big, '');
    truncateSync(big, MAX_IMAGE_BYTES + 1); // sparse: no disk used
    await expectPromptAnswer('over the cap', () => io.decodeImage(big, { preprocessing: GEOMETRIES[0]! }), {
      code: 'E_FORMAT',
      mentions: [big, 'limit'],
      limitMs: 2000,
      timeoutMs: 5000,
    });
  });
});
