// `resnet-native train --freeze <glob>`, run as users run it (dist/cli.js in a child process): a
// malformed glob or one that names no layer is one usage line (exit status 2), and a run with
// --freeze leaves the frozen layers' weights and batch-norm statistics exactly as built.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { models } from '../../lib/index.js';
import { loadModel } from '../../lib/io/checkpoint.js';
import { type CliResult, runCli } from '../support/cli.js';
import { ensureDist } from '../support/dist.js';

let dir: string;
beforeAll(async () => {
  await ensureDist();
  dir = await mkdtemp(join(tmpdir(), 'rn-cli-freeze-'));
}, 300_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const TINY_RUN = [
  '--dataset',
  'mnist',
  '--model',
  'resnet8',
  '--epochs',
  '1',
  '--batch-size',
  '32',
  '--limit',
  '64',
  '--test-limit',
  '32',
  '--progress',
  'none',
  '--seed',
  '3',
];

function expectUsageError(r: CliResult, pattern: RegExp): void {
  expect(r.code).toBe(2);
  expect(r.stdout).toBe('');
  const lines = r.stderr.split('\n').filter((l) => l.length > 0);
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^resnet-native: error: /);
  expect(lines[0]).toMatch(pattern);
}

describe('resnet-native train --freeze', () => {
  it('a malformed glob, or one naming no layer, is one usage line', async () => {
    expectUsageError(await runCli(['train', '--freeze', 'layer[1']), /--freeze: pattern "layer\[1" has a '\[' without its '\]'/);
    expectUsageError(
      await runCli(['train', ...TINY_RUN, '--out', join(dir, 'none'), '--freeze', 'layer9']),
      /--freeze: pattern "layer9" matches no layer/,
    );
  }, 120_000);

  it('the help names the option', async () => {
    const r = await runCli(['train', '--help']);
    expect(r.stdout).toMatch(/--freeze <glob> +freeze the layers it names/);
  });

  it('frozen layers leave the run as they were built; the others train', async () => {
    const out = join(dir, 'run');
    const r = await runCli(['train', ...TINY_RUN, '--out', out, '--freeze', 'conv1,bn1,layer[1-2]']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/frozen 17 layers \(\d+ parameter tensors\) matching --freeze 'conv1,bn1,layer\[1-2\]'/);
    const built = models.resnetCifar({ depth: 8, classes: 10, inputShape: [28, 28, 1], seed: 3 });
    const trained = await loadModel(join(out, 'model.safetensors'));
    try {
      let frozen = 0;
      for (const p of built.parameters()) {
        const after = trained.getParameter(p.name);
        if (/^(conv1|bn1|layer[12])\./.test(p.name)) {
          expect(after, p.name).toEqual(p.values);
          frozen++;
        }
      }
      expect(frozen).toBeGreaterThan(10);
      expect(trained.getParameter('layer3.0.conv1.weight')).not.toEqual(built.getParameter('layer3.0.conv1.weight'));
      expect(trained.getParameter('fc.weight')).not.toEqual(built.getParameter('fc.weight'));
    } finally {
      built.dispose();
      trained.dispose();
    }
  }, 120_000);
});
