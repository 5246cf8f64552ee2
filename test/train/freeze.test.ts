// Freezing layers for fine-tuning (Model.freeze / unfreeze): which layers a pattern names;
// frozen parameters stay bit-identical through SGD (momentum, weight decay) and AdamW (whose
// decoupled decay moves even a zero-gradient weight), with their optimizer state kept; the
// trainable parameters' gradients equal those of the same model unfrozen (batch-norm 'update'
// mode: the same math) or in eval mode (every batch-norm frozen on its running statistics);
// a frozen prefix runs no backward at all; a frozen batch-norm in inference mode keeps its
// running statistics, and its affine backward agrees with finite differences; unfreeze
// restores normal training; save / load keep the weights of a frozen model.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { type Model, models, Tensor } from '../../lib/index.js';
import { loadModel } from '../../lib/io/checkpoint.js';
import { layerMatcher, matchLayers } from '../../lib/model/freeze.js';
import { expectCodeSync } from '../support/expect_error.js';
import { Rng } from '../support/random.js';

const root = mkdtempSync(join(tmpdir(), 'rn-freeze-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const N = 4;
const SIDE = 8;
const CLASSES = 4;

/** resnetCifar depth 8: conv1, bn1, relu, layer1…layer3 (one basic block each), avgpool, fc. */
const tiny = (seed = 1): Model => models.resnetCifar({ depth: 8, inputShape: [SIDE, SIDE, 3], classes: CLASSES, seed });

function batch(seed: number): { x: Tensor; y: Int32Array } {
  const rng = new Rng(seed);
  return { x: Tensor.fromArray(rng.array(N * SIDE * SIDE * 3), [N, SIDE, SIDE, 3]), y: Int32Array.from([0, 1, 2, 3]) };
}

/** Every parameter (running statistics included) by name. */
function snapshot(model: Model): Map<string, Float32Array> {
  return new Map(model.parameters().map((p) => [p.name, p.values]));
}

const PREFIX = 'conv1,bn1,layer1,layer2';

describe('freeze patterns name layers', () => {
  const resnet18 = models.specs.resnet18({ classes: 10 }).layers.map((l) => l.name);

  it("a glob names a layer and everything inside it: 'layer[1-3]' is layer1…layer3, not layer4, conv1 or fc", () => {
    const hits = matchLayers('layer[1-3]', resnet18, 'freeze');
    expect(hits.length).toBeGreaterThan(30);
    expect(hits.every((n) => /^layer[123]\./.test(n))).toBe(true);
    expect(hits).toContain('layer2.0.downsample.1');
    expect(resnet18.filter((n) => /^layer[123]\./.test(n))).toEqual(hits);
  });

  it("'conv1' is the stem convolution only; ',' joins globs; * stays within one part; [!…] negates", () => {
    expect(matchLayers('conv1', resnet18, 'freeze')).toEqual(['conv1']);
    expect(matchLayers('conv1,bn1', resnet18, 'freeze')).toEqual(['conv1', 'bn1']);
    expect(matchLayers('layer4.*.conv1', resnet18, 'freeze')).toEqual(['layer4.0.conv1', 'layer4.1.conv1']);
    const notLast = matchLayers('layer[!4]', resnet18, 'freeze');
    expect(notLast.some((n) => n.startsWith('layer4'))).toBe(false);
    expect(notLast.some((n) => n.startsWith('layer3'))).toBe(true);
    // '.' is literal, '?' one character
    expect(layerMatcher('layer1.0', 'freeze')('layer1x0.conv1')).toBe(false);
    expect(layerMatcher('layer?', 'freeze')('layer2.1.bn2')).toBe(true);
  });

  it('a RegExp is tested against layer names', () => {
    expect(matchLayers(/^layer4\.1\.bn\d$/, resnet18, 'freeze')).toEqual(['layer4.1.bn1', 'layer4.1.bn2']);
  });

  it('E_ARG for a pattern that names no layer, a malformed glob, a non-pattern, bad options', () => {
    const model = tiny();
    try {
      expectCodeSync(() => model.freeze('layer9'), 'E_ARG', 'layer9', 'matches no layer');
      expectCodeSync(() => model.freeze('layer[1'), 'E_ARG', "'['");
      expectCodeSync(() => model.freeze(3 as unknown as string), 'E_ARG', 'pattern');
      expectCodeSync(() => model.freeze('', {}), 'E_ARG');
      expectCodeSync(() => model.freeze('layer1,,fc'), 'E_ARG', 'empty part');
      expectCodeSync(() => model.freeze('layer1', { batchNormStatistics: 'maybe' as 'frozen' }), 'E_ARG', 'batchNormStatistics');
      expectCodeSync(() => model.freeze('layer1', { bogus: 1 } as object), 'E_ARG', 'bogus');
      expectCodeSync(() => model.unfreeze('nothing'), 'E_ARG', 'matches no layer');
      expect(model.frozen).toEqual([]);
    } finally {
      model.dispose();
    }
  });
});

describe('frozen parameters get no update', () => {
  for (const optimizer of [
    { type: 'sgd' as const, lr: 0.1, momentum: 0.9, weightDecay: 1e-2 },
    { type: 'adamw' as const, lr: 1e-2, weightDecay: 0.1 },
  ]) {
    it(`${optimizer.type}: frozen weights and batch-norm statistics bit-identical, their optimizer state kept; the rest trains`, async () => {
      const model = tiny().compile({ optimizer, decayNormAndBias: true });
      const { x, y } = batch(1);
      try {
        await model.trainStep(x, y); // optimizer state becomes non-zero before the freeze
        model.freeze(PREFIX);
        expect(model.frozen).toContain('layer2.0.downsample.0');
        const frozenParams = model.frozenParameters();
        expect(frozenParams).toContain('conv1.weight');
        expect(frozenParams).not.toContain('fc.weight');
        const before = snapshot(model);
        const state = new Map(frozenParams.map((n) => [n, model.getOptimizerState(n, 0)]));
        for (let i = 0; i < 3; i++) await model.trainStep(x, y);
        const after = snapshot(model);
        for (const l of model.frozen) {
          for (const [name, v] of before) {
            if (name.startsWith(`${l}.`)) expect(after.get(name), name).toEqual(v);
          }
        }
        for (const n of frozenParams) expect(model.getOptimizerState(n, 0), n).toEqual(state.get(n));
        expect(after.get('fc.weight')).not.toEqual(before.get('fc.weight'));
        expect(after.get('layer3.0.conv1.weight')).not.toEqual(before.get('layer3.0.conv1.weight'));
        expect(after.get('layer3.0.bn1.running_mean')).not.toEqual(before.get('layer3.0.bn1.running_mean'));
      } finally {
        model.dispose();
        x.dispose();
      }
    });
  }

  it('everything frozen: a step changes nothing and reports a zero gradient norm', async () => {
    const model = tiny().compile({ optimizer: { type: 'adamw', lr: 1e-2 } });
    const { x, y } = batch(2);
    try {
      model.freeze('*');
      const before = snapshot(model);
      const r = await model.trainStep(x, y);
      expect(r.gradNorm).toBe(0);
      expect(snapshot(model)).toEqual(before);
      expect(model.network.stats().backwardSteps).toBe(0);
    } finally {
      model.dispose();
      x.dispose();
    }
  });
});

describe('gradients with a frozen prefix', () => {
  it("batchNormStatistics 'update': the trainable gradients equal the unfrozen model's exactly, and the prefix runs no backward", async () => {
    const full = tiny(3);
    const frozen = tiny(3);
    const { x, y } = batch(3);
    try {
      const a = await full.computeGradients(x, y);
      const fullStats = full.network.stats();
      expect(fullStats.backwardSteps).toBe(fullStats.planSteps);
      frozen.freeze(PREFIX, { batchNormStatistics: 'update' });
      const b = await frozen.computeGradients(x, y);
      const stats = frozen.network.stats();
      expect(stats.planSteps).toBe(fullStats.planSteps);
      expect(stats.backwardSteps).toBeLessThan(stats.planSteps / 2);
      expect(b.loss).toBe(a.loss);
      const frozenNames = new Set(frozen.frozenParameters());
      expect([...b.gradients.keys()].some((n) => frozenNames.has(n))).toBe(false);
      expect(b.gradients.size).toBe(a.gradients.size - frozenNames.size);
      expect(b.gradients.size).toBeGreaterThan(5);
      for (const [name, g] of b.gradients) expect(g, name).toEqual(a.gradients.get(name));
      // 'update': the frozen batch-norms still follow the batch statistics, as the unfrozen ones do.
      expect(frozen.getParameter('bn1.running_var')).toEqual(full.getParameter('bn1.running_var'));
    } finally {
      full.dispose();
      frozen.dispose();
      x.dispose();
    }
  });

  it("batchNormStatistics 'frozen' (default): with all but fc frozen, fc's gradient equals the eval-mode model's", async () => {
    const reference = tiny(4);
    const frozen = tiny(4);
    const { x, y } = batch(4);
    const rng = new Rng(44);
    try {
      // Running statistics far from the batch's, so that using the wrong ones shows.
      for (const p of reference.parameterInfo()) {
        if (!p.trainable) {
          const n = p.shape[0]!;
          const v = p.name.endsWith('running_var') ? Float32Array.from({ length: n }, () => 0.5 + rng.next()) : rng.array(n, 0.5);
          reference.setParameter(p.name, v);
          frozen.setParameter(p.name, v);
        }
      }
      reference.eval();
      const a = await reference.computeGradients(x, y);
      frozen.freeze(/^(?!fc$)/); // a RegExp beyond the linear-time subset (lookahead) still works
      expect(frozen.frozen).not.toContain('fc');
      const statsBefore = snapshot(frozen);
      const b = await frozen.computeGradients(x, y);
      expect([...b.gradients.keys()]).toEqual(['fc.weight', 'fc.bias']);
      expect(b.loss).toBeCloseTo(a.loss, 6);
      for (const [name, g] of b.gradients) {
        const ref = a.gradients.get(name)!;
        for (let i = 0; i < g.length; i++) expect(Math.abs(g[i]! - ref[i]!), `${name}[${i}]`).toBeLessThanOrEqual(1e-6 + 1e-5 * Math.abs(ref[i]!));
      }
      expect(frozen.network.stats().backwardSteps).toBe(1); // fc only
      // The frozen batch-norms kept their running statistics.
      expect(snapshot(frozen)).toEqual(statsBefore);
    } finally {
      reference.dispose();
      frozen.dispose();
      x.dispose();
    }
  });
});

describe('frozen layers behind trainable ones pass their input gradient on', () => {
  it("squeeze-excite, a hidden dense layer, a convolution and a batch-norm ('update'): the other gradients equal the unfrozen model's", async () => {
    const build = () =>
      models.resnet({
        classes: 3,
        inputShape: [SIDE, SIDE, 3],
        stem: [{ type: 'conv2d', filters: 4, kernelSize: 3, padding: 1 }, { type: 'batchNorm' }, { type: 'relu' }],
        stages: [
          { blocks: 1, width: 4 },
          { blocks: 1, width: 8 },
        ],
        block: 'basic',
        se: { reduction: 4 },
        head: { pool: { type: 'avgPool', poolSize: 2 }, hidden: [6] },
        seed: 9,
      });
    const full = build();
    const frozen = build();
    const { x } = batch(9);
    const y = Int32Array.from([0, 1, 2, 1]);
    try {
      const a = await full.computeGradients(x, y);
      frozen.freeze('layer1.0.se,fc_hidden1,layer2.0.conv1');
      frozen.freeze('layer1.0.bn1', { batchNormStatistics: 'update' });
      expect(frozen.frozen).toEqual(['layer1.0.bn1', 'layer1.0.se', 'layer2.0.conv1', 'fc_hidden1']);
      const b = await frozen.computeGradients(x, y);
      expect(b.loss).toBe(a.loss);
      expect(b.gradients.has('conv1.weight')).toBe(true);
      expect(b.gradients.size).toBe(a.gradients.size - frozen.frozenParameters().length);
      for (const [name, g] of b.gradients) expect(g, name).toEqual(a.gradients.get(name));
    } finally {
      full.dispose();
      frozen.dispose();
      x.dispose();
    }
  });
});

describe('a frozen batch-norm in inference mode between trainable layers', () => {
  it('its forward uses the running statistics, which training leaves as they are', async () => {
    const model = tiny(5).compile({ optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 } });
    const { x, y } = batch(5);
    try {
      model.freeze('layer1.0.bn1');
      const l0 = (await model.computeGradients(x, y)).loss;
      const mean = model.getParameter('layer1.0.bn1.running_mean');
      model.setParameter(
        'layer1.0.bn1.running_mean',
        mean.map((v) => v + 0.5),
      );
      const l1 = (await model.computeGradients(x, y)).loss;
      expect(l1).not.toBe(l0);
      // A trainable batch-norm's running mean does not enter the training loss.
      model.setParameter(
        'layer1.0.bn2.running_mean',
        model.getParameter('layer1.0.bn2.running_mean').map((v) => v + 0.5),
      );
      expect((await model.computeGradients(x, y)).loss).toBe(l1);
      const frozenStats = [model.getParameter('layer1.0.bn1.running_mean'), model.getParameter('layer1.0.bn1.running_var')];
      const otherVar = model.getParameter('layer1.0.bn2.running_var');
      await model.trainStep(x, y);
      expect([model.getParameter('layer1.0.bn1.running_mean'), model.getParameter('layer1.0.bn1.running_var')]).toEqual(frozenStats);
      expect(model.getParameter('layer1.0.bn2.running_var')).not.toEqual(otherVar);
    } finally {
      model.dispose();
      x.dispose();
    }
  });

  // The tolerance of test/model/model_gradcheck.test.ts (see its header): central differences
  // of the training-mode loss at three steps, or a one-sided one at any of them (see below).
  it('the gradients of the layers before and after it agree with finite differences', async () => {
    const STEPS = [1e-3, 2.5e-4, 6.25e-5];
    const tolerance = (a: number, b: number, h: number) => 3e-2 * Math.max(Math.abs(a), Math.abs(b)) + 2e-8 / h;
    const model = tiny(6);
    const rng = new Rng(66);
    const { x, y } = batch(6);
    try {
      const n = model.getParameter('layer1.0.bn1.running_var').length;
      model.setParameter('layer1.0.bn1.running_mean', rng.array(n, 0.5));
      model.setParameter(
        'layer1.0.bn1.running_var',
        Float32Array.from({ length: n }, () => 0.3 + rng.next()),
      );
      model.setParameter('layer1.0.bn1.weight', rng.array(n, 1.5));
      model.freeze('layer1.0.bn1');
      const { loss: loss0, gradients } = await model.computeGradients(x, y);
      const loss = async () => (await model.computeGradients(x, y)).loss;
      expect(await loss()).toBe(loss0);
      expect(gradients.has('layer1.0.bn1.weight')).toBe(false);
      const failures: string[] = [];
      let checked = 0;
      // Before the frozen batch-norm (its gradient passes through it), and after it.
      for (const name of ['conv1.weight', 'bn1.weight', 'bn1.bias', 'layer1.0.conv1.weight', 'layer1.0.conv2.weight', 'fc.bias']) {
        const g = gradients.get(name)!;
        const p0 = model.getParameter(name);
        const picks = new Set<number>();
        while (picks.size < Math.min(5, p0.length)) picks.add(rng.int(0, p0.length - 1));
        for (const i of picks) {
          let best = Infinity;
          for (const h of STEPS) {
            const p = p0.slice();
            p[i] = Math.fround(p0[i]! + h);
            model.setParameter(name, p);
            const plus = await loss();
            const up = p[i]! - p0[i]!;
            p[i] = Math.fround(p0[i]! - h);
            model.setParameter(name, p);
            const minus = await loss();
            const down = p0[i]! - p[i]!;
            const central = (plus - minus) / (up + down);
            best = Math.min(best, Math.abs(central - g[i]!) / tolerance(central, g[i]!, h));
            // One-sided differences at every step, not only the smallest: conv1 feeds every
            // ReLU of the model, and a kink within 1e-3 on one side at all three steps was seen
            // (the ASan build's rounding: right 4.6e-3, 6.8e-3, 9.7e-3 against left 8.12e-3,
            // 8.23e-3 and an analytic 8.27e-3). The clean side still agrees; a wrong gradient
            // agrees with neither.
            const right = (plus - loss0) / up;
            const left = (loss0 - minus) / down;
            best = Math.min(best, Math.abs(right - g[i]!) / tolerance(right, g[i]!, h / 2), Math.abs(left - g[i]!) / tolerance(left, g[i]!, h / 2));
          }
          model.setParameter(name, p0);
          checked++;
          if (!(best <= 1)) failures.push(`${name}[${i}]: analytic ${g[i]!.toExponential(4)}, ratio ${best.toFixed(2)}`);
        }
      }
      expect(checked).toBeGreaterThan(20);
      expect(failures).toEqual([]);
    } finally {
      model.dispose();
      x.dispose();
    }
  });
});

describe('unfreeze, and frozen models in files', () => {
  it('unfreeze() restores normal training: the same weights as a model never frozen', async () => {
    const a = tiny(7).compile({ optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 } });
    const b = tiny(7).compile({ optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 } });
    const { x, y } = batch(7);
    try {
      b.freeze('layer1');
      b.freeze('fc', { batchNormStatistics: 'update' });
      b.unfreeze('fc');
      expect(b.frozen.every((l) => l.startsWith('layer1.'))).toBe(true);
      b.unfreeze();
      expect(b.frozen).toEqual([]);
      expect(b.frozenParameters()).toEqual([]);
      for (let i = 0; i < 2; i++) {
        await a.trainStep(x, y);
        await b.trainStep(x, y);
      }
      expect(snapshot(b)).toEqual(snapshot(a));
    } finally {
      a.dispose();
      b.dispose();
      x.dispose();
    }
  });

  it('a frozen, trained model saves and loads with the same weights; frozen again, it trains on identically', async () => {
    const model = tiny(8).compile({ optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 } });
    const { x, y } = batch(8);
    const path = join(root, 'frozen.safetensors');
    let loaded: Model | undefined;
    try {
      model.freeze(PREFIX);
      await model.trainStep(x, y);
      await model.save(path);
      loaded = await loadModel(path);
      expect(snapshot(loaded)).toEqual(snapshot(model));
      // Freezing is a training setting (as PyTorch's requires_grad): the file keeps the weights.
      expect(loaded.frozen).toEqual([]);
      loaded.freeze(PREFIX);
      await model.trainStep(x, y);
      await loaded.trainStep(x, y);
      expect(snapshot(loaded)).toEqual(snapshot(model));
    } finally {
      model.dispose();
      loaded?.dispose();
      x.dispose();
    }
  });
});
