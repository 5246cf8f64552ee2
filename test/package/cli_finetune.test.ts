// The fine-tuning path through the CLI, as the README shows it (issue 18, part 5):
//
//   resnet-native train --model resnet18 --weights IMAGENET1K_V1 --dataset folder --data dir --freeze 'layer[1-3]'
//
// A local HTTP server on 127.0.0.1 is the weights mirror (RESNET_WEIGHTS_URL). It serves a
// generated resnet18 ImageNet state_dict (torchvision's keys and shapes from
// test/fixtures/torchvision/architectures.json, He-uniform convolutions, identity batch-norms,
// BF16 storages) as a torch.save .pth whose name carries its own SHA-256 prefix; the CLI child
// process resolves IMAGENET1K_V1 to that file through the test-only RESNET_WEIGHTS_TABLE_OVERRIDE
// (the real file name's hash prefix cannot match a generated file). The data is a generated
// folder of coloured shapes (3 classes, PNG and JPEG, mixed sizes). Then the saved model is
// loaded in process and its predictImages answers on PNG and JPEG files are compared with the
// CLI's predict output (classes and probabilities to 1e-6).
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { io, loadModel, models } from '../../lib/index.js';
import { type CliResult, runCli } from '../support/cli.js';
import { ensureDist } from '../support/dist.js';
import { encodePth } from '../support/pth_writer.js';
import { Rng } from '../support/random.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'rn-cli-finetune-'));
const requests: string[] = [];
const served = new Map<string, Uint8Array>();
let server: Server;
let base = '';

/** A resnet18 state_dict as torchvision lays it out, with values a network can run on: He-uniform weights, identity batch-norms. */
function resnet18StateDict(): Uint8Array {
  const architectures = JSON.parse(readFileSync(join(HERE, '..', 'fixtures', 'torchvision', 'architectures.json'), 'utf8')) as Record<
    string,
    [string, number[], string][]
  >;
  const rng = new Rng(5);
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  return encodePth(
    architectures.resnet18!.map(([name, shape, dtype]) => {
      const numel = shape.reduce((a, b) => a * b, 1);
      if (dtype === 'int64') return { name, storage: 'LongStorage', shape, data: new Uint8Array(8 * numel) };
      const bits = new Uint16Array(numel);
      const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
      const bound = Math.sqrt(6 / fanIn);
      for (let i = 0; i < numel; i++) {
        let v = 0;
        if (name.endsWith('running_var') || (name.endsWith('.weight') && shape.length === 1)) v = 1;
        else if (shape.length > 1) v = (rng.next() * 2 - 1) * bound;
        f32[0] = v;
        bits[i] = u32[0]! >>> 16;
      }
      return { name, storage: 'BFloat16Storage', shape, data: new Uint8Array(bits.buffer) };
    }),
  );
}

const CLASSES = ['blue-square', 'green-triangle', 'red-circle'] as const;

/** A picture of one class's shape in its colour on a noisy grey background, width × height. */
async function picture(rng: Rng, cls: (typeof CLASSES)[number], width: number, height: number, format: 'png' | 'jpeg'): Promise<Buffer> {
  const px = Buffer.alloc(width * height * 3);
  const colour = cls === 'red-circle' ? [220, 30, 30] : cls === 'green-triangle' ? [30, 200, 40] : [30, 50, 220];
  const cx = width / 2 + rng.int(-3, 3);
  const cy = height / 2 + rng.int(-3, 3);
  const r = Math.min(width, height) * (0.3 + 0.1 * rng.next());
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const dx = x - cx;
      const dy = y - cy;
      const inside =
        cls === 'red-circle'
          ? dx * dx + dy * dy <= r * r
          : cls === 'blue-square'
            ? Math.abs(dx) <= r && Math.abs(dy) <= r
            : dy <= r && dy >= -r && Math.abs(dx) <= (dy + r) / 2;
      const grey = 110 + rng.int(-25, 25);
      for (let c = 0; c < 3; c++) px[(y * width + x) * 3 + c] = inside ? colour[c]! + rng.int(-20, 20) : grey;
    }
  }
  const s = sharp(px, { raw: { width, height, channels: 3 } });
  return format === 'png' ? s.png().toBuffer() : s.jpeg({ quality: 90 }).toBuffer();
}

/** The image folder: train/ and test/ with one subfolder per class, PNG and JPEG files of several sizes. */
async function imageFolder(dir: string, rng: Rng): Promise<void> {
  for (const [split, count] of [
    ['train', 8],
    ['test', 3],
  ] as const) {
    for (const cls of CLASSES) {
      mkdirSync(join(dir, split, cls), { recursive: true });
      for (let i = 0; i < count; i++) {
        const format = i % 2 ? 'jpeg' : 'png';
        writeFileSync(
          join(dir, split, cls, `${i}.${format === 'png' ? 'png' : 'jpg'}`),
          await picture(rng, cls, 40 + 4 * (i % 3), 36 + 6 * (i % 2), format),
        );
      }
    }
  }
}

function expectUsageError(r: CliResult, pattern: RegExp): void {
  expect(r.code).toBe(2);
  const lines = r.stderr.split('\n').filter((l) => l.length > 0);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^resnet-native: error: /);
  expect(lines[0]).toMatch(pattern);
}

/** predict's answers: per file, its [className, probability] lines. */
function parsePredict(stdout: string): Map<string, [string, number][]> {
  const out = new Map<string, [string, number][]>();
  let current: [string, number][] | undefined;
  for (const line of stdout.split('\n')) {
    const m = /^ +\d+\. (\S+) +([0-9.]+)$/.exec(line);
    if (m) current!.push([m[1]!, Number(m[2])]);
    else if (line.length > 0) out.set(line, (current = []));
  }
  return out;
}

const pth: { name: string; data: Uint8Array } = { name: '', data: new Uint8Array() };
let env: NodeJS.ProcessEnv;
const data = join(root, 'shapes');
const newImages: string[] = [];

beforeAll(async () => {
  const built = ensureDist();
  pth.data = resnet18StateDict();
  pth.name = `resnet18-${createHash('sha256').update(pth.data).digest('hex').slice(0, 8)}.pth`;
  served.set(pth.name, pth.data);
  server = createServer((req, res) => {
    const url = req.url ?? '/';
    requests.push(url);
    const file = served.get(url.replace(/^\/mirror\//, ''));
    if (!url.startsWith('/mirror/') || !file) {
      res.writeHead(404);
      return void res.end('not found');
    }
    res.writeHead(200, { 'content-length': file.length });
    res.end(file);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  env = {
    ...process.env,
    RESNET_NATIVE_HOME: join(root, 'home'),
    RESNET_WEIGHTS_URL: `${base}/mirror`,
    RESNET_WEIGHTS_TABLE_OVERRIDE: JSON.stringify([{ model: 'resnet18', weights: 'IMAGENET1K_V1', fileName: pth.name }]),
  };
  const rng = new Rng(17);
  await imageFolder(data, rng);
  for (const [i, cls] of (['red-circle', 'blue-square', 'green-triangle', 'red-circle'] as const).entries()) {
    const format = i % 2 ? 'jpeg' : 'png';
    const file = join(root, `new${i}.${format === 'png' ? 'png' : 'jpg'}`);
    writeFileSync(file, await picture(rng, cls, 48, 40, format));
    newImages.push(file);
  }
  await built;
}, 300_000);

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(root, { recursive: true, force: true });
});

const RUN = ['--dataset', 'folder', '--data', data, '--image-size', '32', '--epochs', '2', '--batch-size', '8', '--progress', 'none', '--seed', '3'];

describe('resnet-native train --weights', () => {
  it('pretrained resnet18 from the mirror → fine-tune on an image folder with --freeze → predict: CLI and predictImages agree', async () => {
    const out = join(root, 'run');
    const started = performance.now();
    const r = await runCli(
      ['train', '--model', 'resnet18', '--weights', 'IMAGENET1K_V1', ...RUN, '--freeze', 'layer[1-3]', '--lr', '0.02', '--out', out],
      {
        env,
      },
    );
    const trainSeconds = (performance.now() - started) / 1000;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(requests).toEqual([`/mirror/${pth.name}`]);
    expect(r.stdout).toMatch(/training resnet18 .* on folder: 24 train \/ 9 test images \[32×32×3\], 3 classes/);
    expect(r.stdout).toMatch(/frozen \d+ layers .* matching --freeze 'layer\[1-3\]'/);
    expect(r.stdout).toMatch(/, weights resnet18 IMAGENET1K_V1/);
    console.log(`train --weights IMAGENET1K_V1 run (download, 2 epochs of 3 steps, resnet18 at 32×32): ${trainSeconds.toFixed(1)} s`);

    const path = join(out, 'model.safetensors');
    const model = await loadModel(path);
    try {
      // The weights' preprocessing at 32×32 (torchvision's 256 → 224 ratio: 37), the folder's classes.
      expect(model.preprocessing).toEqual({
        imageSize: [32, 32],
        resizeTo: 37,
        channelOrder: 'rgb',
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
      });
      expect(model.classNames).toEqual([...CLASSES]);
      expect(model.classes).toBe(3);

      // The frozen stages are the served file's values, bit for bit; the stem trained.
      const reference = models.resnet18({ classes: 3, inputShape: [32, 32, 3] });
      await io.loadTorchvision(reference, join(root, 'home', 'weights', pth.name), { exclude: /^fc\./ });
      let frozen = 0;
      for (const p of reference.parameterInfo()) {
        if (!/^layer[1-3]\./.test(p.name)) continue;
        const [got, want] = [model.getParameter(p.name), reference.getParameter(p.name)];
        expect(
          Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength)),
          p.name,
        ).toBe(true);
        frozen++;
      }
      expect(frozen).toBeGreaterThan(40);
      const [stem, stemBefore] = [model.getParameter('conv1.weight'), reference.getParameter('conv1.weight')];
      expect(stem.some((x, i) => x !== stemBefore[i])).toBe(true);
      reference.dispose();

      const inProcess = await model.predictImages(newImages, { topK: 3 });
      const p = await runCli(['predict', '--checkpoint', path, '--top', '3', ...newImages], { env });
      expect(p.stderr).toBe('');
      expect(p.code).toBe(0);
      const printed = parsePredict(p.stdout);
      newImages.forEach((file, i) => {
        const rows = printed.get(file)!;
        expect(rows.map(([name]) => name)).toEqual(inProcess[i]!.map((e) => e.className));
        rows.forEach(([, probability], k) => expect(Math.abs(probability - inProcess[i]![k]!.probability)).toBeLessThanOrEqual(1e-6));
      });
    } finally {
      model.dispose();
    }

    // Resuming: the checkpoint wins; other --weights than the run's are refused, naming them, before any loading.
    const other = join(root, 'other.pth');
    writeFileSync(other, pth.data);
    expectUsageError(
      await runCli(['train', '--resume', path, '--weights', other, '--progress', 'none'], { env }),
      /--weights .*other\.pth \(the run: --weights IMAGENET1K_V1\).*--force/,
    );
    expect(requests).toHaveLength(1);
  }, 300_000);

  it('--weights <file.pth>: a torchvision-format file, its head left out for other classes', async () => {
    const file = join(root, 'resnet18-local.pth');
    writeFileSync(file, pth.data);
    const out = join(root, 'from-file');
    const r = await runCli(['train', '--model', 'resnet18', '--weights', file, ...RUN, '--epochs', '1', '--freeze', 'layer[1-3]', '--out', out], {
      env,
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`, weights ${file}`);
    const model = await loadModel(join(out, 'model.safetensors'));
    const reference = models.resnet18({ classes: 3, inputShape: [32, 32, 3] });
    await io.loadTorchvision(reference, file, { exclude: /^fc\./ });
    try {
      expect(model.preprocessing).toMatchObject({ imageSize: [32, 32], resizeTo: 37, mean: [0.485, 0.456, 0.406] });
      expect(model.classNames).toEqual([...CLASSES]);
      const [got, want] = [model.getParameter('layer2.0.conv1.weight'), reference.getParameter('layer2.0.conv1.weight')];
      expect(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength))).toBe(true);
    } finally {
      model.dispose();
      reference.dispose();
    }
  }, 120_000);

  it('names the valid weight sets, and the models that have any, in one usage line', async () => {
    expectUsageError(
      await runCli(['train', '--model', 'resnet18', '--weights', 'IMAGENET1K_V2', ...RUN], { env }),
      /--weights IMAGENET1K_V2: resnet18 has no such weight set; torchvision publishes DEFAULT, IMAGENET1K_V1/,
    );
    expectUsageError(
      await runCli(['train', '--model', 'resnet20', '--weights', 'IMAGENET1K_V1', ...RUN], { env }),
      /torchvision publishes no weights for --model resnet20; models with weights: resnet18, .*wide_resnet101_2/,
    );
    expectUsageError(
      await runCli(['train', '--model', 'resnet18', '--weights', join(root, 'missing.pth'), ...RUN], { env }),
      /missing\.pth: no such file/,
    );
    expect(requests).toHaveLength(1);
    const help = await runCli(['train', '--help']);
    expect(help.stdout).toMatch(/--weights <name\|file>/);
    expect(help.stdout).toMatch(/--random-resized-crop/);
  }, 120_000);

  it('--random-resized-crop, --color-jitter and --mixup: images stored larger, the model described at the crop size', async () => {
    const out = join(root, 'rrc');
    const r = await runCli(
      [
        'train',
        '--model',
        'resnet8',
        ...RUN,
        '--epochs',
        '1',
        '--random-resized-crop',
        '--crop-scale',
        '0.5,1',
        '--color-jitter',
        '0.3',
        '--mixup',
        '0.2',
        '--out',
        out,
      ],
      { env },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\[37×37×3\]/);
    expect(r.stdout).toMatch(/augment random-resized-crop scale 0\.5-1 from 37 \+ color jitter 0\.3,0\.3,0\.3 \+ mixup 0\.2 \+ flip/);
    const model = await loadModel(join(out, 'model.safetensors'));
    expect(model.inputShape).toEqual([32, 32, 3]);
    expect(model.preprocessing).toMatchObject({ imageSize: [32, 32], resizeTo: 37 });
    model.dispose();
    // eval reads the test images as the checkpoint says (resize to 37, centre crop 32).
    const e = await runCli(['eval', '--checkpoint', join(out, 'model.safetensors'), '--dataset', 'folder', '--data', data]);
    expect(e.stderr).toBe('');
    expect(e.code).toBe(0);
    expect(e.stdout).toMatch(/accuracy: \d\.\d{4}/);
    expectUsageError(await runCli(['train', ...RUN, '--crop-scale', '0.5,1']), /--crop-scale applies to --random-resized-crop only/);
    expectUsageError(await runCli(['train', ...RUN, '--mixup', '0']), /--mixup must be a number > 0/);
    expectUsageError(await runCli(['train', ...RUN, '--no-augment', '--cutmix', '1']), /--no-augment contradicts/);
  }, 120_000);
});
