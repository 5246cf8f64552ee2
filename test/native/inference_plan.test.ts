// Inference plans (native/core/plan.hpp): on the optimized CPU, predict and evaluate fold each
// batch-norm into the convolution before it and run the residual add and ReLU in that
// convolution's epilogue. Checked here against the same model's unfused inference plan
// (RESNET_INFERENCE_FUSION=0: batch-norm, add and ReLU as their own steps, read when a plan is
// compiled) on every block family the builders make, with batch-norm parameters and running
// statistics far from their initial values, within the project's tolerance
// (test/support/compare.ts, reduction lengths as test/model/model_vs_tfjs.test.ts). Then the
// folded weights must follow every parameter change: setParameter, a training step, a load.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { loadModel, Model, type ModelSpec, models, Tensor } from '../../lib/index.js';
import { reportWorstRatios } from '../support/compare.js';
import { Rng } from '../support/random.js';
import { expectCloseNamed, modelShapes, reductionLengths } from '../support/reduction_lengths.js';

reportWorstRatios(import.meta.url);

const FUSION = 'RESNET_INFERENCE_FUSION';
const specs = models.specs;

interface Case {
  label: string;
  spec: ModelSpec;
  n: number;
}

const small = { classes: 5, inputShape: [16, 16, 3] as [number, number, number] };
const CASES: Case[] = [
  {
    label: 'basic blocks, imagenet stem, projection shortcuts (resnet18-like)',
    spec: specs.resnetSpec({ ...small, inputShape: [32, 32, 3], block: 'basic', stages: [{ blocks: 2, width: 8 }, { blocks: 1, width: 16 }] }),
    n: 2,
  },
  {
    label: 'basic blocks at 64 channels (Winograd convolutions), conv biases',
    spec: specs.resnetSpec({ ...small, stem: 'cifar', block: 'basic', convBias: true, stages: [{ blocks: 1, width: 64 }] }),
    n: 2,
  },
  {
    label: 'wide 3×3 layers on small maps at batch 1 (output channels split over the threads)',
    spec: specs.resnetSpec({ classes: 5, inputShape: [8, 8, 3], stem: 'cifar', block: 'basic', convBias: true, stages: [{ blocks: 1, width: 64 }, { blocks: 1, width: 128 }] }),
    n: 1,
  },
  {
    label: 'wide 1×1 layers on small maps at batch 1 (output channels split over the threads)',
    spec: specs.resnetSpec({ classes: 5, inputShape: [8, 8, 3], stem: 'cifar', block: 'bottleneck', stages: [{ blocks: 2, width: 48 }] }),
    n: 1,
  },
  {
    label: 'bottlenecks (resnet50-like)',
    spec: specs.resnetSpec({ ...small, stem: 'cifar', block: 'bottleneck', stages: [{ blocks: 1, width: 8 }, { blocks: 2, width: 16 }] }),
    n: 3,
  },
  {
    label: 'pre-activation bottlenecks (v2: batch-norm after the add stays unfused)',
    spec: specs.resnetSpec({ ...small, stem: 'cifar', block: 'preactBottleneck', stages: [{ blocks: 1, width: 8 }, { blocks: 1, width: 16 }] }),
    n: 2,
  },
  {
    label: 'ResNeXt grouped bottlenecks (4 channels per group: the direct kernel)',
    spec: specs.resnetSpec({ ...small, stem: 'cifar', block: 'bottleneck', groups: 4, widthPerGroup: 16, stages: [{ blocks: 1, width: 16 }, { blocks: 1, width: 16 }] }),
    n: 2,
  },
  {
    label: 'squeeze-excite bottlenecks',
    spec: specs.resnetSpec({ ...small, stem: 'cifar', block: 'bottleneck', se: { reduction: 4 }, stages: [{ blocks: 1, width: 8 }, { blocks: 1, width: 16 }] }),
    n: 2,
  },
  {
    label: 'zero-pad shortcuts',
    spec: specs.resnetSpec({ ...small, stem: 'cifar', block: 'basic', shortcut: 'zeroPad', stages: [{ blocks: 1, width: 16 }, { blocks: 1, width: 32 }] }),
    n: 2,
  },
  { label: 'CIFAR v1 (resnetCifar depth 8, conv biases)', spec: specs.resnetCifar({ depth: 8, convBias: true, inputShape: [16, 16, 3] }), n: 4 },
  { label: 'CIFAR v2 (resnetCifar depth 11)', spec: specs.resnetCifar({ depth: 11, version: 2, inputShape: [16, 16, 3] }), n: 2 },
];

/** Batch-norm parameters and running statistics far from 1 / 0, the same in every model given. */
function perturbBatchNorms(seed: number, ...targets: Model[]): void {
  const rng = new Rng(seed);
  for (const info of targets[0]!.parameterInfo()) {
    const role = info.name.slice(info.name.lastIndexOf('.') + 1);
    const values = new Float32Array(info.shape.reduce((a, b) => a * b, 1));
    if (role === 'gamma' || (role === 'weight' && isBatchNorm(targets[0]!, info.name))) {
      for (let i = 0; i < values.length; i++) values[i] = 0.5 + rng.next() * 1.5;
    } else if (role === 'beta' || (role === 'bias' && isBatchNorm(targets[0]!, info.name))) {
      for (let i = 0; i < values.length; i++) values[i] = rng.next() - 0.5;
    } else if (role === 'running_mean' || role === 'moving_mean') {
      for (let i = 0; i < values.length; i++) values[i] = (rng.next() - 0.5) * 0.4;
    } else if (role === 'running_var' || role === 'moving_variance') {
      for (let i = 0; i < values.length; i++) values[i] = 0.3 + rng.next() * 2;
    } else {
      continue;
    }
    for (const m of targets) m.setParameter(info.name, values);
  }
}

function isBatchNorm(model: Model, parameter: string): boolean {
  const layer = parameter.slice(0, parameter.lastIndexOf('.'));
  return model.spec.layers.some((l) => l.name === layer && l.type === 'batchNorm');
}

function randomImages(seed: number, n: number, shape: readonly number[]): Tensor {
  const rng = new Rng(seed);
  const data = new Float32Array(n * shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = rng.next() * 2 - 1;
  return Tensor.fromArray(data, [n, ...shape]);
}

/** Runs `fn` with inference fusion off for the plans it compiles. */
async function unfused<T>(fn: () => Promise<T>): Promise<T> {
  process.env[FUSION] = '0';
  try {
    return await fn();
  } finally {
    delete process.env[FUSION];
  }
}

/** Logits of `fused` (fused plan) against `reference` (unfused plan), within the tolerance. */
async function expectSameLogits(label: string, fused: Model, reference: Model, images: Tensor): Promise<void> {
  const expected = (await unfused(() => reference.predict(images))).toFloat32Array();
  const actual = (await fused.predict(images)).toFloat32Array();
  const L = reductionLengths(fused.spec, modelShapes(fused), images.shape[0]!, false);
  expectCloseNamed('inference plan logits', label, actual, expected, L.forward);
}

const disposables: Model[] = [];
const pair = (spec: ModelSpec, seed: number): [Model, Model] => {
  const a = Model.fromSpec(spec, { seed });
  const b = Model.fromSpec(spec, { seed });
  disposables.push(a, b);
  return [a, b];
};
afterAll(() => {
  for (const m of disposables) m.dispose();
});

describe('inference plans against the unfused inference path', () => {
  for (const [i, c] of CASES.entries()) {
    it(c.label, async () => {
      const [fused, reference] = pair(c.spec, 10 + i);
      perturbBatchNorms(100 + i, fused, reference);
      const images = randomImages(200 + i, c.n, c.spec.inputShape);
      await expectSameLogits(c.label, fused, reference, images);
      // The fusion really ran: fewer steps than the unfused plan (every family has a foldable
      // convolution → batch-norm pair or a convolution → add).
      expect(fused.network.stats().planSteps).toBeLessThan(reference.network.stats().planSteps);
      // evaluate runs the same plan: the same loss as the unfused one.
      const labels = Int32Array.from({ length: c.n }, (_, k) => k % c.spec.classes);
      const e = await fused.evaluate(images, labels);
      const r = await unfused(() => reference.evaluate(images, labels));
      expect(Math.abs(e.loss - r.loss)).toBeLessThan(1e-4 * (1 + Math.abs(r.loss)));
    });
  }
});

describe('the folded weights follow parameter changes', () => {
  const spec = specs.resnetCifar({ depth: 8, inputShape: [8, 8, 3], classes: 4 });
  const images = randomImages(7, 4, spec.inputShape);
  const labels = Int32Array.from([0, 1, 2, 3]);

  it('setParameter of a batch-norm, a running statistic and a convolution', async () => {
    const [fused, reference] = pair(spec, 3);
    perturbBatchNorms(31, fused, reference);
    await expectSameLogits('before', fused, reference, images); // folds now
    const bn = fused.parameterInfo().find((p) => p.name.endsWith('running_var'))!;
    const conv = fused.parameterInfo().find((p) => p.name.endsWith('.weight') && p.shape.length === 4)!;
    for (const name of [bn.name, conv.name]) {
      const v = fused.getParameter(name).map((x) => x * 3 + 0.1);
      fused.setParameter(name, v);
      reference.setParameter(name, v);
      const stale = (await fused.predict(images)).toFloat32Array();
      const expected = (await unfused(() => reference.predict(images))).toFloat32Array();
      const L = reductionLengths(spec, modelShapes(fused), 4, false);
      expectCloseNamed('inference plan logits', `after setParameter ${name}`, stale, expected, L.forward);
    }
  });

  it('a training step (weights and running statistics move)', async () => {
    const [fused, reference] = pair(spec, 4);
    const before = (await fused.predict(images)).toFloat32Array(); // folds the initial weights
    for (const m of [fused, reference]) m.compile({ optimizer: { type: 'sgd', lr: 0.5, momentum: 0 } });
    await fused.trainStep(images, labels);
    await reference.trainStep(images, labels);
    await expectSameLogits('after a training step', fused, reference, images);
    const after = (await fused.predict(images)).toFloat32Array();
    // The step changed the logits well beyond the tolerance, so stale folded weights would fail above.
    expect(Math.max(...after.map((v, k) => Math.abs(v - before[k]!)))).toBeGreaterThan(1e-2);
  });

  it('a checkpoint loaded into a model that already predicted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rn-infer-'));
    try {
      const [source] = pair(spec, 5);
      perturbBatchNorms(51, source);
      const path = join(dir, 'source.safetensors');
      await source.save(path);
      const [target] = pair(spec, 6);
      await target.predict(images); // folds its own weights first
      const loaded = await loadModel(path);
      disposables.push(loaded);
      for (const p of loaded.parameterInfo()) target.setParameter(p.name, loaded.getParameter(p.name));
      await expectSameLogits('after load', target, source, images);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
