// `resnet-native export --format onnx`, run as users run it (dist/cli.js in a child process):
// help, usage errors, and exported checkpoints run in onnxruntime against the library's predict.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type * as Ort from 'onnxruntime-web';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { loadModel, type Model, Tensor } from '../../lib/index.js';
import { runCli, type CliResult } from '../support/cli.js';
import { ensureDist } from '../support/dist.js';
import { tinyModel } from '../support/models.js';
import { Rng } from '../support/random.js';

const rn = (...args: string[]) => runCli(args);

let dir: string;
let ort: typeof Ort;
let plain: string; // a checkpoint without training state
let trained: string; // one whose training state has normalize and classNames
const MEAN = [0.5, 0.4, 0.3];
const STD = [0.2, 0.25, 0.3];
const CLASSES = ['a', 'b', 'c', 'd'];

beforeAll(async () => {
  await ensureDist();
  ort = await import('onnxruntime-web');
  ort.env.wasm.numThreads = 1;
  dir = await mkdtemp(join(tmpdir(), 'rn-cli-export-'));
  const model = tinyModel(3, { classes: 4 });
  try {
    plain = join(dir, 'plain.safetensors');
    await model.save(plain);
    trained = join(dir, 'trained.safetensors');
    // What Trainer.fit stores beside the epoch and step: the input normalisation and the class names.
    const training = { epoch: 1, step: 10, normalize: { mean: MEAN, std: STD }, classNames: CLASSES };
    await model.save(trained, { training });
  } finally {
    model.dispose();
  }
}, 300_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function expectUsageError(r: CliResult, pattern: RegExp, code = 2): void {
  expect(r.code).toBe(code);
  expect(r.stdout).toBe('');
  const lines = r.stderr.split('\n').filter((l) => l.length > 0);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^resnet-native: error: /);
  expect(lines[0]).toMatch(pattern);
}

async function logitsOf(model: Model, x: Float32Array, n: number): Promise<Float32Array> {
  const t = Tensor.fromArray(x, [n, ...model.inputShape]);
  const y = await model.predict(t);
  const out = y.toFloat32Array();
  y.dispose();
  t.dispose();
  return out;
}

async function runOnnx(file: string, input: Float32Array, dims: number[]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(file);
  try {
    return (await session.run({ input: new ort.Tensor('float32', input, dims) })).logits!.data as Float32Array;
  } finally {
    await session.release();
  }
}

function expectClose(actual: Float32Array, expected: Float32Array): void {
  const scale = Math.max(...Array.from(expected, Math.abs));
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i]! - expected[i]!)).toBeLessThanOrEqual(1e-4 * scale);
}

describe('resnet-native export', () => {
  it('has help, and is listed in the global help', async () => {
    const [help, viaHelp, global] = await Promise.all([rn('export', '--help'), rn('help', 'export'), rn('--help')]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: resnet-native export --checkpoint <file> --format onnx --out <file>/);
    for (const flag of ['--opset <n>', '--batch dynamic|<n>', '--layout NHWC|NCHW', '--include-preprocessing']) expect(help.stdout).toContain(flag);
    expect(viaHelp.stdout).toBe(help.stdout);
    expect(global.stdout).toMatch(/^ {2}export /m);
  });

  it('usage errors are one line with exit status 2', async () => {
    const out = join(dir, 'never.onnx');
    const cases: [string[], RegExp][] = [
      [['--format', 'onnx', '--out', out], /export needs --checkpoint/],
      [['--checkpoint', plain, '--out', out], /export needs --format/],
      [['--checkpoint', plain, '--format', 'onnx'], /export needs --out/],
      [['--checkpoint', plain, '--format', 'tflite', '--out', out], /--format must be 'onnx', got 'tflite'/],
      [['--checkpoint', plain, '--format', 'onnx', '--out', out, '--opset', '12'], /--opset must be an integer ≥ 13 and ≤ 21/],
      [['--checkpoint', plain, '--format', 'onnx', '--out', out, '--batch', '0'], /--batch must be/],
      [['--checkpoint', plain, '--format', 'onnx', '--out', out, '--batch', 'any'], /--batch must be 'dynamic' or an integer/],
      [['--checkpoint', plain, '--format', 'onnx', '--out', out, '--layout', 'nchw'], /--layout must be 'NHWC' or 'NCHW', got 'nchw'/],
      [['--checkpoint', plain, '--format', 'onnx', '--out', out, '--bogus'], /unknown option '--bogus'/],
      [
        ['--checkpoint', plain, '--format', 'onnx', '--out', out, '--include-preprocessing'],
        /--include-preprocessing: .*nothing about input normalisation/,
      ],
    ];
    for (const [args, pattern] of cases) expectUsageError(await rn('export', ...args), pattern);
    await expect(readFile(out)).rejects.toMatchObject({ code: 'ENOENT' });
    expectUsageError(
      await rn('export', '--checkpoint', join(dir, 'missing.safetensors'), '--format', 'onnx', '--out', out),
      /missing\.safetensors/,
      1,
    );
  });

  it('writes an ONNX file that onnxruntime runs as predict does (NHWC, dynamic batch)', async () => {
    const out = join(dir, 'plain.onnx');
    const r = await rn('export', '--checkpoint', plain, '--format', 'onnx', '--out', out);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^wrote .*plain\.onnx: ONNX opset 17, input 'input' \[dynamic, 8, 8, 3\] NHWC/);
    const model = await loadModel(plain);
    try {
      for (const n of [1, 3]) {
        const x = new Rng(n).array(n * 8 * 8 * 3);
        expectClose(await runOnnx(out, x, [n, 8, 8, 3]), await logitsOf(model, x, n));
      }
    } finally {
      model.dispose();
    }
  });

  it('--layout NCHW --batch 2 --opset 13 --include-preprocessing (normalisation and class names from training)', async () => {
    const out = join(dir, 'trained.onnx');
    const r = await rn(
      'export',
      '--checkpoint',
      trained,
      '--format',
      'onnx',
      '--out',
      out,
      '--layout',
      'NCHW',
      '--batch',
      '2',
      '--opset',
      '13',
      '--include-preprocessing',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/input 'input' \[2, 3, 8, 8\] NCHW/);
    const bytes = await readFile(out);
    expect(bytes.includes(Buffer.from(JSON.stringify(CLASSES)))).toBe(true);

    const model = await loadModel(trained);
    try {
      const n = 2;
      const raw = Float32Array.from(new Rng(5).array(n * 8 * 8 * 3), (v) => (v + 1) / 2);
      const ready = raw.map((v, i) => (v - MEAN[i % 3]!) / STD[i % 3]!);
      const nchw = new Float32Array(raw.length);
      for (let b = 0; b < n; b++) for (let p = 0; p < 64; p++) for (let c = 0; c < 3; c++) nchw[(b * 3 + c) * 64 + p] = raw[(b * 64 + p) * 3 + c]!;
      expectClose(await runOnnx(out, nchw, [n, 3, 8, 8]), await logitsOf(model, ready, n));
      await expect(runOnnx(out, new Float32Array(3 * 3 * 64), [3, 3, 8, 8])).rejects.toThrow();
    } finally {
      model.dispose();
    }
  });
});
