// The `resnet-native` command, run as users run it: the compiled dist/cli.js in a child
// process. Help texts, usage errors (one line, exit status 2), summary, bench, and a tiny
// MNIST training run whose checkpoints eval and predict then read.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { datasets } from '../../lib/data/index.js';
import { cliPath as cli, type CliResult as Result, runCli } from '../support/cli.js';
import { ensureDist } from '../support/dist.js';

const rn = (...args: string[]) => runCli(args);

let dir: string;
beforeAll(async () => {
  // The command runs from dist/: build it when lib/ is newer (npm install builds it too).
  await ensureDist();
  dir = await mkdtemp(join(tmpdir(), 'rn-cli-'));
}, 300_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A usage or runtime error: exactly one line on stderr, nothing on stdout. */
function expectError(r: Result, code: number, pattern: RegExp): void {
  expect(r.code).toBe(code);
  expect(r.stdout).toBe('');
  const lines = r.stderr.split('\n').filter((l) => l.length > 0);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^resnet-native: error: /);
  expect(lines[0]).toMatch(pattern);
}

describe('resnet-native CLI', () => {
  it('starts with a shebang line', async () => {
    expect((await readFile(cli, 'utf8')).split('\n')[0]).toBe('#!/usr/bin/env node');
  });

  it('prints help globally and for every command', async () => {
    const global = await rn('--help');
    expect(global.code).toBe(0);
    expect(global.stdout).toMatch(/^Usage: resnet-native <command> \[options\]/);
    for (const c of ['train', 'eval', 'predict', 'summary', 'bench']) expect(global.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    expect((await rn('-h')).stdout).toBe(global.stdout);
    const none = await rn();
    expect(none.code).toBe(2);
    expect(none.stdout).toBe(global.stdout);

    const expected: Record<string, RegExp[]> = {
      train: [
        /--model <name>/,
        /--dataset <name>/,
        /--epochs <n>/,
        /--batch-size <n>/,
        /--lr <x>/,
        /--optimizer <name>/,
        /--no-augment/,
        /--out <dir>/,
        /--seed <n>/,
        /--threads <n>/,
      ],
      eval: [/--checkpoint <file>/, /--dataset <name>/, /--split <name>/],
      predict: [/--checkpoint <file> \[options\] <image>/, /--top <k>/],
      summary: [/--model <name>/, /--input-shape/, /resnet20, resnet32, resnet44, resnet56/],
      bench: [/--batch-size <n>/, /--steps <n>/],
    };
    await Promise.all(
      Object.entries(expected).map(async ([command, patterns]) => {
        const [r, viaHelp] = await Promise.all([rn(command, '--help'), rn('help', command)]);
        expect(r.code).toBe(0);
        expect(r.stderr).toBe('');
        expect(r.stdout).toMatch(new RegExp(`^Usage: resnet-native ${command} `));
        for (const p of patterns) expect(r.stdout).toMatch(p);
        expect(viaHelp.stdout).toBe(r.stdout);
      }),
    );
    expect((await rn('--version')).stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });

  it('rejects unknown commands, unknown flags and bad values with one line and exit status 2', async () => {
    expectError(await rn('fly'), 2, /unknown command 'fly' \(commands: train, eval, predict, summary, bench/);
    expectError(await rn('--fly'), 2, /unknown option '--fly'/);
    expectError(await rn('train', '--bogus'), 2, /unknown option '--bogus' for 'resnet-native train' \(see resnet-native train --help\)/);
    expectError(await rn('summary', '--model', 'resnet20', '-x'), 2, /unknown option '-x' for 'resnet-native summary'/);
    expectError(await rn('train', '--epochs'), 2, /option '--epochs' needs a value/);
    expectError(await rn('train', '--epochs', 'two'), 2, /--epochs must be an integer ≥ 1, got 'two'/);
    expectError(await rn('train', '--optimizer', 'rmsprop'), 2, /--optimizer must be 'sgd' or 'adamw', got 'rmsprop'/);
    expectError(await rn('train', '--model', 'resnet21'), 2, /unknown model 'resnet21'/);
    expectError(await rn('train', '--dataset', 'cifar10'), 2, /--dataset cifar10 needs --data/);
    expectError(await rn('train', 'extra'), 2, /unexpected argument 'extra'/);
    expectError(await rn('summary'), 2, /summary needs --model/);
    expectError(await rn('predict', '--checkpoint', 'x.safetensors'), 2, /needs at least one image file/);
    // A runtime failure: exit status 1, still one line.
    expectError(await rn('eval', '--checkpoint', join(dir, 'missing.safetensors')), 1, /missing\.safetensors/);
  });

  it('summary prints the layer table with the published parameter counts', async () => {
    const r = await rn('summary', '--model', 'resnet20');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Model: "resnet_cifar20_v1"/m);
    expect(r.stdout).toMatch(/fc \(dense\) +\(None, 10\) +650/);
    expect(r.stdout).toContain('Total params: 273,658');
    expect(r.stdout).toContain('Trainable params: 272,282');
    const r18 = await rn('summary', '--model', 'resnet18');
    expect(r18.stdout).toContain('Trainable params: 11,689,512');
    const grey = await rn('summary', '--model', 'resnet20', '--input-shape', '28,28,1', '--classes', '10');
    expect(grey.stdout).toContain('Trainable params: 271,994');
  });

  it('bench reports images/s of training and prediction', async () => {
    const r = await rn('bench', '--model', 'resnet8', '--input-shape', '8,8,3', '--batch-size', '4', '--steps', '2', '--threads', '1');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/batch 4, 1 threads/);
    expect(r.stdout).toMatch(/^train +[\d.]+ img\/s/m);
    expect(r.stdout).toMatch(/^predict +[\d.]+ img\/s/m);
  });

  it('--device chooses where the model runs; an unknown or absent device is one error line', async () => {
    const tiny = ['bench', '--model', 'resnet8', '--input-shape', '8,8,3', '--batch-size', '2', '--steps', '1', '--threads', '1'];
    expectError(await rn(...tiny, '--device', 'tpu'), 1, /device must be 'cpu', 'cuda' or 'cuda:N', got 'tpu'/);
    const cpu = await rn(...tiny, '--device', 'cpu');
    expect(cpu.code).toBe(0);
    expect(cpu.stdout).toMatch(/batch 2, 1 threads/);
    const { cudaStatus } = await import('../../lib/index.js');
    const status = cudaStatus();
    expectError(await rn(...tiny, '--precision', 'fp16'), 1, /precision 'fp16' \(mixed precision\) needs a CUDA device/);
    expectError(await rn(...tiny, '--precision', 'fp64'), 2, /--precision must be fp32, fp16 or bf16, got 'fp64'/);
    if (status.available) {
      const gpu = await rn(...tiny, '--device', 'cuda');
      expect(gpu.code).toBe(0);
      expect(gpu.stdout).toMatch(/batch 2, cuda:0 fp32/);
      const half = await rn(...tiny, '--device', 'cuda', '--precision', 'fp16');
      expect(half.code).toBe(0);
      expect(half.stdout).toMatch(/batch 2, cuda:0 fp16/);
    } else {
      expectError(await rn(...tiny, '--device', 'cuda'), 1, /device 'cuda:0': /);
    }
  });

  it('train writes the checkpoints and ends with the test accuracy; eval and predict read them', async () => {
    const out = join(dir, 'mnist');
    const r = await rn(
      'train',
      '--dataset',
      'mnist',
      '--model',
      'resnet8',
      '--epochs',
      '2',
      '--batch-size',
      '32',
      '--limit',
      '256',
      '--test-limit',
      '64',
      '--out',
      out,
      '--progress',
      'log',
      '--seed',
      '3',
    );
    expect(r.stderr).toMatch(
      /^epoch 1\/2  loss [\d.]+  acc [\d.]+  top5 [\d.]+  val_loss [\d.]+  val_acc [\d.]+  val_top5 [\d.]+  lr [\d.e-]+  [\d.]+ img\/s  [\d.]+s$/m,
    );
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/training resnet_cifar8_v1 \([\d,]+ parameters\) on mnist: 256 train \/ 64 test images \[28×28×1\], 10 classes/);
    expect(lines[lines.length - 1]).toMatch(/^test accuracy: [01]\.\d{4}$/);
    const accuracy = Number(lines[lines.length - 1]!.split(': ')[1]);
    expect(existsSync(join(out, 'model.safetensors'))).toBe(true);
    expect(existsSync(join(out, 'best.safetensors'))).toBe(true);
    const history = JSON.parse(await readFile(join(out, 'history.json'), 'utf8')) as { epoch: number; valAccuracy: number }[];
    expect(history.map((h) => h.epoch)).toEqual([1, 2]);
    expect(history[1]!.valAccuracy.toFixed(4)).toBe(accuracy.toFixed(4));

    // eval on the same 64 test images, with the normalisation stored in the checkpoint.
    const e = await rn('eval', '--checkpoint', join(out, 'model.safetensors'), '--dataset', 'mnist', '--limit', '64');
    expect(e.code).toBe(0);
    expect(e.stdout).toMatch(/^mnist test: 64 images, loss [\d.]+, accuracy [\d.]+, top-5 [\d.]+/);
    expect(e.stdout.trimEnd().split('\n').pop()).toBe(`accuracy: ${accuracy.toFixed(4)}`);

    // predict on two digits written as PNG files.
    const test = await datasets.mnist({ split: 'test' });
    const images = new Float32Array(2 * 784);
    const labels = new Int32Array(2);
    await test.fill([0, 1], images, labels);
    const files: string[] = [];
    for (let i = 0; i < 2; i++) {
      const bytes = Buffer.from(Array.from(images.subarray(i * 784, (i + 1) * 784), (v) => Math.round(v * 255)));
      const file = join(dir, `digit-${i}.png`);
      await sharp(bytes, { raw: { width: 28, height: 28, channels: 1 } })
        .png()
        .toFile(file);
      files.push(file);
    }
    const p = await rn('predict', '--checkpoint', join(out, 'best.safetensors'), ...files);
    expect(p.code).toBe(0);
    const pl = p.stdout.trimEnd().split('\n');
    expect(pl).toHaveLength(12);
    for (const [i, file] of files.entries()) {
      expect(pl[i * 6]).toBe(file);
      const rows = pl.slice(i * 6 + 1, i * 6 + 6);
      const probs = rows.map((row, rank) => {
        const m = /^ {2}(\d)\. (\d) +(0\.\d{6}|1\.000000)$/.exec(row);
        expect(m, row).not.toBeNull();
        expect(Number(m![1])).toBe(rank + 1);
        return Number(m![3]);
      });
      for (let k = 1; k < 5; k++) expect(probs[k]!).toBeLessThanOrEqual(probs[k - 1]!);
      expect(probs.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(1.0005);
    }
    const top1 = await rn('predict', '--checkpoint', join(out, 'best.safetensors'), '--top', '1', files[0]!);
    expect(top1.stdout.trimEnd().split('\n')).toHaveLength(2);
    // More files than one predict batch (64): every file still gets its own answer, in order.
    const alone = await rn('predict', '--checkpoint', join(out, 'best.safetensors'), '--top', '1', files[1]!);
    const many = Array.from({ length: 131 }, (_, i) => files[i % 2]!);
    const all = await rn('predict', '--checkpoint', join(out, 'best.safetensors'), '--top', '1', ...many);
    expect(all.code).toBe(0);
    const answers = all.stdout.trimEnd().split('\n');
    expect(answers).toHaveLength(2 * many.length);
    // Batched and single kernels may round the last printed digit differently: compare the
    // file, the class and the probability to 1e-3.
    const parse = (lines: string[]) => {
      const m = /^ {2}1\. (\d) +([\d.]+)$/.exec(lines[1]!);
      expect(m, lines[1]).not.toBeNull();
      return { file: lines[0], digit: m![1], p: Number(m![2]) };
    };
    const expected = [parse(top1.stdout.trimEnd().split('\n')), parse(alone.stdout.trimEnd().split('\n'))];
    for (let i = 0; i < many.length; i++) {
      const got = parse(answers.slice(2 * i, 2 * i + 2));
      const want = expected[i % 2]!;
      expect([got.file, got.digit]).toEqual([want.file, want.digit]);
      expect(Math.abs(got.p - want.p)).toBeLessThanOrEqual(1e-3);
    }
    expectError(await rn('predict', '--checkpoint', join(out, 'best.safetensors'), join(dir, 'nope.png')), 1, /cannot read .*nope\.png: not found/);
  });
});
