// What eval adds for the report: the printed class table and matrix (scikit-learn's layout,
// class names made safe for a terminal), and the thumbnails drawn from a dataset's own pixels.
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';

import { formatClassTable, formatConfusionMatrix, namesFor, printableName } from '../../lib/cli/eval_report.js';
import type { Dataset } from '../../lib/data/dataset.js';
import { datasetThumbnails } from '../../lib/report/thumbnails.js';

describe('eval tables', () => {
  it("prints scikit-learn's classification_report example in its layout", () => {
    // y_true = [0, 1, 2, 2, 2], y_pred = [0, 0, 2, 2, 1] (the guide's numbers, to 4 decimals).
    const m = (precision: number, recall: number, f1: number, support: number) => ({ precision, recall, f1, support });
    const lines = formatClassTable(
      ['class 0', 'class 1', 'class 2'],
      [m(0.5, 1, 2 / 3, 1), m(0, 0, 0, 1), m(1, 2 / 3, 0.8, 3)],
      m(0.5, 5 / 9, 0.4889, 5),
      m(0.7, 0.6, 0.6133, 5),
      0.6,
    );
    expect(lines.map((l) => l.trim().split(/\s{2,}/))).toEqual([
      ['precision', 'recall', 'f1-score', 'support'],
      ['class 0', '0.5000', '1.0000', '0.6667', '1'],
      ['class 1', '0.0000', '0.0000', '0.0000', '1'],
      ['class 2', '1.0000', '0.6667', '0.8000', '3'],
      ['accuracy', '0.6000', '5'],
      ['macro avg', '0.5000', '0.5556', '0.4889', '5'],
      ['weighted avg', '0.7000', '0.6000', '0.6133', '5'],
    ]);
    // Columns line up: every line has the same length.
    expect(new Set(lines.map((l) => l.length)).size).toBe(1);
  });

  it('the matrix: rows named, columns numbered', () => {
    expect(
      formatConfusionMatrix(
        ['0', 'cat'],
        [
          [12, 3],
          [0, 1000],
        ],
      ),
    ).toEqual(['true \\ predicted     0    1', '0                   12    3', '1 cat                0 1000']);
  });

  it('class names lose control characters (a folder named with an escape sequence) and long ones are cut', () => {
    expect(printableName('red\u001b[2Jx\u0007')).toBe('red?[2Jx?');
    expect(printableName('x'.repeat(40))).toBe(`${'x'.repeat(23)}…`);
    expect(namesFor(3, undefined, ['a', 'b', 'c'])).toEqual(['a', 'b', 'c']);
    expect(namesFor(3, ['a', 'b'], undefined)).toEqual(['0', '1', '2']);
    expect(namesFor(2, ['x', 'y'], ['a', 'b'])).toEqual(['x', 'y']);
  });
});

describe('datasetThumbnails', () => {
  const dataset = (h: number, w: number, c: number, value: (i: number, p: number, k: number) => number): Dataset => ({
    length: 3,
    imageShape: [h, w, c],
    classes: 2,
    fill(indices, images, labels) {
      for (let n = 0; n < indices.length; n++) {
        for (let p = 0; p < h * w; p++) for (let k = 0; k < c; k++) images[(n * h * w + p) * c + k] = value(indices[n]!, p, k);
        labels[n] = 0;
      }
    },
  });

  it('MNIST-like grey 28×28 → 56×56 grey PNG, pixels kept (nearest-neighbour, ×2)', async () => {
    const ds = dataset(28, 28, 1, (i, p) => ((p + i) % 5) / 4);
    const [a, b] = await datasetThumbnails(ds, [2, 0], 't');
    for (const [png, i] of [
      [a!, 2],
      [b!, 0],
    ] as const) {
      const meta = await sharp(Buffer.from(png, 'base64')).metadata();
      expect([meta.format, meta.width, meta.height, meta.channels]).toEqual(['png', 56, 56, 1]);
      const { data } = await sharp(Buffer.from(png, 'base64')).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
      // Pixel (y, x) of the thumbnail is pixel (y/2, x/2) of the image.
      for (const [y, x] of [
        [0, 0],
        [5, 9],
        [55, 55],
      ] as const) {
        const p = Math.floor(y / 2) * 28 + Math.floor(x / 2);
        expect(data[y * 56 + x]).toBe(Math.round((((p + i) % 5) / 4) * 255));
      }
    }
  });

  it('CIFAR-like RGB 32×32 → 64×64; a large image shrinks to fit 96; values outside [0, 1] are clamped', async () => {
    const [small] = await datasetThumbnails(
      dataset(32, 32, 3, (_, __, k) => [1.5, 0.5, -1][k]!),
      [1],
      't',
    );
    const s = await sharp(Buffer.from(small!, 'base64')).raw().toBuffer({ resolveWithObject: true });
    expect([s.info.width, s.info.height, s.info.channels]).toEqual([64, 64, 3]);
    expect([...s.data.subarray(0, 3)]).toEqual([255, 128, 0]);
    const [large] = await datasetThumbnails(
      dataset(100, 200, 3, () => 0.2),
      [0],
      't',
    );
    const l = await sharp(Buffer.from(large!, 'base64')).metadata();
    expect([l.width, l.height]).toEqual([96, 48]);
    expect(
      await datasetThumbnails(
        dataset(4, 4, 3, () => 0),
        [],
        't',
      ),
    ).toEqual([]);
  });
});
