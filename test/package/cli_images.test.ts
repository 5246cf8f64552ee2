// The CLI with self-describing checkpoints, run as users run it (dist/cli.js in a child
// process): train on a folder of generated pictures at --image-size 32 stores the
// preprocessing and class names; eval reads the folder at that size without being told;
// predict prints exactly model.predictImages' answers (to the 1e-6 of its 6 decimals); a file
// without preprocessing makes predict and eval warn, once.
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { datasets, evaluateModel } from '../../lib/index.js';
import { loadModel } from '../../lib/io/checkpoint.js';
import { runCli } from '../support/cli.js';
import { ensureDist } from '../support/dist.js';
import { Rng } from '../support/random.js';

const rn = (...args: string[]) => runCli(args);

let dir: string;
beforeAll(async () => {
  await ensureDist();
  dir = await mkdtemp(join(tmpdir(), 'rn-cli-images-'));
}, 300_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A 48×40 picture: dark or light noise. */
function picture(rng: Rng, light: boolean): Buffer {
  return Buffer.from(Array.from({ length: 48 * 40 * 3 }, () => (light ? rng.int(150, 255) : rng.int(0, 105))));
}

/** data/{train,test}/{dark,light}/*.png (and a few JPEGs), and loose files to predict on. */
async function makeFolder(root: string): Promise<string[]> {
  const rng = new Rng(1);
  for (const split of ['train', 'test']) {
    for (const cls of ['dark', 'light']) {
      mkdirSync(join(root, split, cls), { recursive: true });
      for (let i = 0; i < (split === 'train' ? 12 : 4); i++) {
        const s = sharp(picture(rng, cls === 'light'), { raw: { width: 48, height: 40, channels: 3 } });
        if (i % 3 === 2) writeFileSync(join(root, split, cls, `${i}.jpg`), await s.jpeg().toBuffer());
        else writeFileSync(join(root, split, cls, `${i}.png`), await s.png().toBuffer());
      }
    }
  }
  const files: string[] = [];
  for (let i = 0; i < 4; i++) {
    const s = sharp(picture(rng, i % 2 === 1), { raw: { width: 48, height: 40, channels: 3 } });
    const file = join(root, `new${i}.${i < 2 ? 'png' : 'jpg'}`);
    writeFileSync(file, i < 2 ? await s.png().toBuffer() : await s.jpeg().toBuffer());
    files.push(file);
  }
  return files;
}

/** predict's stdout → per file, [className, probability] rows. */
function parsePredict(stdout: string, files: string[], k: number): [string, number][][] {
  const lines = stdout.trimEnd().split('\n');
  expect(lines).toHaveLength(files.length * (k + 1));
  return files.map((file, i) => {
    expect(lines[i * (k + 1)]).toBe(file);
    return lines.slice(i * (k + 1) + 1, (i + 1) * (k + 1)).map((row, rank) => {
      const m = /^ {2}(\d+)\. (\S+) +(\d\.\d{6})$/.exec(row);
      expect(m, row).not.toBeNull();
      expect(Number(m![1])).toBe(rank + 1);
      return [m![2]!, Number(m![3])] as [string, number];
    });
  });
}

const warnings = (stderr: string) => stderr.split('\n').filter((l) => l.includes('warning:'));

describe('resnet-native CLI with image checkpoints', () => {
  it('train stores preprocessing and class names; eval uses its image size; predict prints predictImages', async () => {
    const data = join(dir, 'data');
    const files = await makeFolder(data);
    const out = join(dir, 'run');
    const t = await rn(
      'train',
      '--dataset',
      'folder',
      '--data',
      data,
      '--image-size',
      '32',
      '--model',
      'resnet8',
      '--epochs',
      '2',
      '--batch-size',
      '8',
      '--out',
      out,
      '--progress',
      'none',
    );
    expect(t.code, t.stderr).toBe(0);

    for (const name of ['model.safetensors', 'best.safetensors']) {
      const m = await loadModel(join(out, name), { optimizer: false });
      expect(m.preprocessing).toEqual({
        imageSize: [32, 32],
        resizeTo: 32,
        channelOrder: 'rgb',
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
      });
      expect(m.classNames).toEqual(['dark', 'light']);
      m.dispose();
    }

    // eval without --image-size: the checkpoint's 32×32, not the default 64 (which the model cannot take).
    const e = await rn('eval', '--checkpoint', join(out, 'model.safetensors'), '--dataset', 'folder', '--data', data);
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout).toMatch(/^folder test: 8 images, loss [\d.]+, accuracy [\d.]+/);
    expect(warnings(e.stderr)).toEqual([]);
    // The same numbers as evaluating in-process on the folder read at 32×32 with the stored normalisation.
    const trained = await loadModel(join(out, 'model.safetensors'), { optimizer: false });
    const r = await evaluateModel(trained, await datasets.imageFolder(join(data, 'test'), { size: 32 }));
    trained.dispose();
    expect(e.stdout).toContain(`loss ${r.loss.toFixed(4)}, accuracy ${r.accuracy.toFixed(4)}`);

    const p = await rn('predict', '--checkpoint', join(out, 'model.safetensors'), '--top', '2', ...files);
    expect(p.code, p.stderr).toBe(0);
    expect(warnings(p.stderr)).toEqual([]);
    const printed = parsePredict(p.stdout, files, 2);
    const model = await loadModel(join(out, 'model.safetensors'), { optimizer: false });
    const answers = await model.predictImages(files, { topK: 2 });
    model.dispose();
    answers.forEach((rows, i) => {
      expect(printed[i]!.map((r) => r[0])).toEqual(rows.map((a) => a.className));
      rows.forEach((a, r) => expect(Math.abs(printed[i]![r]![1] - a.probability)).toBeLessThanOrEqual(1e-6));
    });
  });

  it("eval reads a folder with the checkpoint's resize rule (resizeTo above the crop)", async () => {
    const data = join(dir, 'data');
    const m = await loadModel(join(dir, 'run', 'model.safetensors'), { optimizer: false });
    m.preprocessing = { ...m.preprocessing!, resizeTo: 40 };
    const path = join(dir, 'resize40.safetensors');
    await m.save(path);
    const r = await evaluateModel(m, await datasets.imageFolder(join(data, 'test'), { size: 32, resizeTo: 40 }));
    const cover = await evaluateModel(m, await datasets.imageFolder(join(data, 'test'), { size: 32 }));
    m.dispose();
    expect(r.loss).not.toBe(cover.loss);
    const e = await rn('eval', '--checkpoint', path, '--dataset', 'folder', '--data', data);
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout).toContain(`loss ${r.loss.toFixed(4)}, accuracy ${r.accuracy.toFixed(4)}`);
  });

  it('a checkpoint without preprocessing: predict and eval warn once, and still answer', async () => {
    const data = join(dir, 'data');
    const m = await loadModel(join(dir, 'run', 'model.safetensors'), { optimizer: false });
    m.preprocessing = undefined;
    m.classNames = undefined;
    const bare = join(dir, 'bare.safetensors');
    await m.save(bare);
    m.dispose();
    const files = Array.from({ length: 70 }, (_, i) => join(data, 'test', i % 2 ? 'dark' : 'light', '0.png')); // more than one batch
    const p = await rn('predict', '--checkpoint', bare, '--top', '1', ...files);
    expect(p.code, p.stderr).toBe(0);
    const w = warnings(p.stderr);
    expect(w).toHaveLength(1);
    expect(w[0]).toContain(bare);
    expect(w[0]).toContain('32×32');
    expect(parsePredict(p.stdout, files, 1)[0]![0]![0]).toMatch(/^[01]$/); // classes by index
    const e = await rn('eval', '--checkpoint', bare, '--dataset', 'folder', '--data', data);
    expect(e.code, e.stderr).toBe(0);
    expect(warnings(e.stderr)).toHaveLength(1);
    expect(warnings(e.stderr)[0]).toContain(bare);
  });
});
