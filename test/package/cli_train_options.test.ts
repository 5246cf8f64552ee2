// `resnet-native train` options of issue 21, run as users run them (dist/cli.js in a child
// process): --log csv,tensorboard, --resume refusing other model or data options unless
// --force (and taking the run's options when left out), negative numbers reaching the range
// checks, one error prefix, the settings line naming every option, bench --quick.
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type CliResult, runCli } from '../support/cli.js';
import { ensureDist } from '../support/dist.js';
import { readEvents, scalars } from '../support/tfevents.js';

const rn = (...args: string[]) => runCli(args);

let dir: string;
beforeAll(async () => {
  await ensureDist();
  dir = await mkdtemp(join(tmpdir(), 'rn-cli-train-'));
}, 300_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Exactly one line on stderr, with one "resnet-native: error: " prefix. */
function expectError(r: CliResult, code: number, pattern: RegExp): void {
  expect(r.code, r.stderr).toBe(code);
  const lines = r.stderr.split('\n').filter((l) => l.length > 0);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^resnet-native: error: /);
  expect(lines[0]!.slice('resnet-native: error: '.length)).not.toMatch(/^resnet-native: /);
  expect(lines[0]).toMatch(pattern);
}

/** A tiny MNIST run: resnet8, 128 training and 32 test images. */
const TINY = ['--dataset', 'mnist', '--model', 'resnet8', '--batch-size', '32', '--limit', '128', '--test-limit', '32', '--progress', 'none'];

describe('train options', () => {
  it('negative numbers reach the range check instead of "needs a value"', async () => {
    expectError(await rn('train', '--lr', '-1'), 2, /--lr must be a number in \[0, 1000000\], got '-1'$/);
    expectError(await rn('train', '--lr', '-.5'), 2, /--lr must be a number in \[0, 1000000\], got '-\.5'$/);
    expectError(await rn('train', '--epochs', '-3'), 2, /--epochs must be an integer ≥ 1, got '-3'$/);
    expectError(await rn('train', '--weight-decay', '-1e-4'), 2, /--weight-decay must be a number .*got '-1e-4'$/);
    expectError(await rn('summary', '--model', 'resnet8', '--classes', '-4'), 2, /--classes must be an integer ≥ 1, got '-4'$/);
    // An option after a value-taking one is still an option.
    expectError(await rn('train', '--lr', '--epochs', '2'), 2, /option '--lr' needs a value/);
  });

  it('prints "resnet-native: error:" once, also for messages that start with the name', async () => {
    const r = await runCli(['summary', '--model', 'resnet8'], { env: { ...process.env, RESNET_NATIVE_ADDON: join(dir, 'missing.node') } });
    expectError(r, 1, /^resnet-native: error: no native addon at RESNET_NATIVE_ADDON=/);
  });

  it('bench --quick: batch 16 and a few steps, as npm run bench -- --quick', async () => {
    const r = await rn('bench', '--quick', '--model', 'resnet8', '--input-shape', '8,8,3', '--threads', '1');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/batch 16, 1 threads/);
    expect(r.stdout).toMatch(/^train +[\d.]+ img\/s  \([\d.]+ ms per batch of 16\)$/m);
    expect(r.stdout).toMatch(/^predict +[\d.]+ img\/s/m);
    expect((await rn('bench', '--help')).stdout).toContain('--quick');
  });

  it('--log csv,tensorboard writes log.csv and tensorboard/ into the run folder; the settings line names every option', async () => {
    const out = join(dir, 'logs');
    const r = await rn(
      'train',
      ...TINY,
      '--epochs',
      '2',
      '--lr',
      '0.07',
      '--momentum',
      '0.8',
      '--weight-decay',
      '0.0003',
      '--label-smoothing',
      '0.1',
      '--schedule',
      'constant',
      '--seed',
      '5',
      '--log',
      'csv,tensorboard',
      '--out',
      out,
    );
    expect(r.code, r.stderr).toBe(0);
    const settings = r.stdout.split('\n')[1]!;
    for (const part of [
      '2 epochs × 4 steps of 32',
      'sgd momentum 0.8 nesterov',
      'lr 0.07 constant',
      'weight decay 0.0003',
      'label smoothing 0.1',
      'augment padding 2',
      'seed 5',
      `out ${out}`,
      'logs csv + tensorboard',
    ]) {
      expect(settings).toContain(part);
    }
    const csv = (await readFile(join(out, 'log.csv'), 'utf8')).trim().split('\n');
    expect(csv[0]).toBe('epoch,accuracy,imagesPerSecond,loss,lr,seconds,top5,valAccuracy,valLoss,valTop5');
    expect(csv.map((l) => l.split(',')[0])).toEqual(['epoch', '1', '2']);
    const history = JSON.parse(await readFile(join(out, 'history.json'), 'utf8')) as { loss: number; valAccuracy: number }[];
    expect(Number(csv[2]!.split(',')[3])).toBe(history[1]!.loss);
    for (const sub of ['train', 'validation']) {
      const files = (await readdir(join(out, 'tensorboard', sub))).filter((f) => f.startsWith('events.out.tfevents.'));
      expect(files).toHaveLength(1);
      const s = scalars(readEvents(new Uint8Array(await readFile(join(out, 'tensorboard', sub, files[0]!)))));
      expect(s.get('epoch_accuracy')!.map(([step]) => step)).toEqual([4, 8]);
      if (sub === 'validation') expect(s.get('epoch_accuracy')![1]![1]).toBe(Math.fround(history[1]!.valAccuracy));
      else expect(s.get('batch_loss')).toHaveLength(8);
    }
    expectError(await rn('train', '--log', 'csv,wandb'), 2, /--log takes csv and\/or tensorboard, comma-separated, got 'csv,wandb'/);
  });

  it('--resume refuses other model or data options, naming each, unless --force; left out, they are the run’s', async () => {
    const out = join(dir, 'resume');
    const first = await rn('train', ...TINY, '--epochs', '1', '--log', 'csv', '--out', out);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(await readFile(join(out, 'run.json'), 'utf8')).settings).toMatchObject({
      model: 'resnet8',
      dataset: 'mnist',
      'batch-size': 32,
      limit: 128,
      'test-limit': 32,
      seed: 1,
    });
    const ckpt = join(out, 'model.safetensors');
    expectError(
      await rn('train', '--resume', ckpt, '--epochs', '2', '--model', 'resnet14', '--out', out),
      2,
      /continues a run with other model or data options: --model resnet14 \(the run: --model resnet8\); resume with the run's options, or pass --force$/,
    );
    expectError(
      await rn('train', '--resume', ckpt, '--epochs', '2', '--batch-size', '16', '--limit', '64', '--out', out),
      2,
      /--batch-size 16 \(the run: --batch-size 32\), --limit 64 \(the run: --limit 128\)/,
    );
    expectError(
      await rn('train', '--resume', ckpt, '--epochs', '2', '--dataset', 'cifar10', '--data', dir, '--out', out),
      2,
      /--dataset cifar10 \(the run: --dataset mnist\)/,
    );
    expectError(await rn('train', '--epochs', '2', '--force'), 2, /--force applies to --resume only/);

    // Options left out are the run's: this resumes resnet8 on the same 128 images, batch 32.
    const resumed = await rn('train', '--resume', ckpt, '--epochs', '2', '--log', 'csv', '--progress', 'none', '--out', out);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/resuming resnet_cifar8_v1 .* on mnist: 128 train \/ 32 test images/);
    expect(resumed.stdout).toContain('2 epochs × 4 steps of 32');
    const csv = (await readFile(join(out, 'log.csv'), 'utf8')).trim().split('\n');
    expect(csv.map((l) => l.split(',')[0])).toEqual(['epoch', '1', '2']);

    // --force: a different batch size is taken, and run.json records it.
    const forced = await rn('train', '--resume', ckpt, '--epochs', '3', '--batch-size', '16', '--force', '--progress', 'none', '--out', out);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toContain('3 epochs × 8 steps of 16');
    expect(JSON.parse(await readFile(join(out, 'run.json'), 'utf8')).settings['batch-size']).toBe(16);
    // A different model cannot be forced: its weights do not fit (the model is named).
    expectError(
      await rn('train', '--resume', ckpt, '--epochs', '4', '--model', 'resnet14', '--force', '--progress', 'none', '--out', out),
      1,
      /the checkpoint holds model 'resnet_cifar8_v1'.*does not match the model being trained \('resnet_cifar14_v1'/,
    );
  }, 120_000);

  it('--resume of a checkpoint without run.json still refuses another --model', async () => {
    const out = join(dir, 'no-run-json');
    expect((await rn('train', ...TINY, '--epochs', '1', '--out', out)).code).toBe(0);
    await rm(join(out, 'run.json'));
    expect(existsSync(join(out, 'model.safetensors'))).toBe(true);
    expectError(
      await rn('train', ...TINY, '--model', 'resnet14', '--resume', join(out, 'model.safetensors'), '--epochs', '2', '--out', out),
      1,
      /does not match the model being trained/,
    );
  }, 60_000);
});
