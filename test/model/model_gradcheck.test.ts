// Finite-difference checks of whole-model gradients (Model.computeGradients) for small
// custom ResNets that cover every block and layer kind the builders emit: squeeze-excite,
// pre-activation basic and bottleneck blocks, the zero-pad shortcut, grouped 3×3
// convolutions, TensorFlow 'same' padding with stride 2, a windowed average-pool head with
// flatten and a hidden dense layer, and the Keras CIFAR v2 layout.
//
// Method. L(θ) is the training-mode loss that computeGradients returns (batch statistics in
// every BN, so the running averages it also updates do not enter L; the test checks that a
// repeated call returns the same loss). For a few seeded random coordinates of every
// trainable parameter we set θ_i ± h with setParameter, compute the loss, restore θ_i, and
// compare the difference quotients with the analytic gradient g_i of the unperturbed call.
//
// Tolerance: |d − g| ≤ 3e-2 · max(|d|, |g|) + 2e-8 / h for a central difference d at step h
// (twice the rounding term for a one-sided one), and a coordinate passes when the central
// difference at one of h ∈ {1e-3, 2.5e-4, 6.25e-5}, or a one-sided difference at the
// smallest step, agrees. Why:
//  * Rounding: the forward runs in float32 and L is the float64 mean of log-softmax terms of
//    float32 logits. Only the computations the perturbation changes differ between L(θ+h)
//    and L(θ−h) (the rest is bit-identical), and the measured noise of L on these models is
//    ~1e-8, so the central difference carries ≤ 2e-8 / h: 2e-5 at h = 1e-3, 3.2e-4 at 6.25e-5.
//  * Kinks: the loss is piecewise smooth (ReLU). With batch 4 on 8×8 images a few ReLU units
//    carry a large share of the loss (squeeze-excite's hidden units, a hidden dense layer, the
//    last feature maps), and scanning L(θ_i + t) for t ∈ [−1e-3, 1e-3] shows slope jumps of
//    ~10 % of g about once per 1e-3 — with L exactly linear, with slope g, between them. A
//    difference quotient whose step straddles a kink is off by up to the jump whatever its
//    size, so a single fixed step would fail on a few percent of coordinates. Smaller steps
//    straddle kinks less often but carry more rounding; a kink a hair away on one side still
//    leaves the other side's one-sided difference clean. A wrong gradient (a missing path, a
//    wrong index, padding offset or scale) is wrong for all of these quotients at once: they
//    agree with one another and not with it. (Scaling every analytic gradient by 1.05 makes
//    every model here fail; the worst error/tolerance ratio of the correct gradients, over
//    six input seeds tried while writing the test, was 0.98, typically 0.2–0.5.)
//  * 3e-2 relative also covers the truncation error (O(h²·L''') central, O(h·L'') one-sided).
import { describe, expect, it } from 'vitest';

import { type Model, models, Tensor } from '../../lib/index.js';
import type { ResNetOptions, StemLayerOptions } from '../../lib/model/builders.js';
import { Rng } from '../support/random.js';

/** Steps h of the finite differences (see the header). */
const STEPS = [1e-3, 2.5e-4, 6.25e-5];
const REL = 3e-2;
const NOISE = 2e-8;
/** Coordinates checked per parameter tensor (all of them when it is smaller). */
const SAMPLES = 5;

const N = 4;
const SIZE = 8;
const CLASSES = 3;

const stem: StemLayerOptions[] = [{ type: 'conv2d', filters: 4, kernelSize: 3, padding: 1 }, { type: 'batchNorm' }, { type: 'relu' }];
const base = { classes: CLASSES, inputShape: [SIZE, SIZE, 3] as [number, number, number], stem };
const twoStages = [
  { blocks: 1, width: 4 },
  { blocks: 1, width: 8 },
];

/**
 * The Keras CIFAR-10 example's resnet_v2 (what resnetCifar({ version: 2 }) builds) with its
 * widths cut to ≤ 8 channels: stem conv 3×3 with bias + BN + ReLU; three stages of
 * pre-activation bottlenecks with the stride on the first 1×1, the very first block without
 * its leading BN-ReLU, each stage's first block projecting its raw input (1×1 conv, bias, no
 * BN); post BN-ReLU; AveragePooling2D (2 at 8×8), Flatten, Dense. 'same' padding, BN eps 1e-3.
 */
const kerasV2Options: ResNetOptions = {
  ...base,
  name: 'keras_cifar_v2_narrow',
  stem: [{ type: 'conv2d', filters: 4, kernelSize: 3, strides: 1, padding: 1 }, { type: 'batchNorm' }, { type: 'relu' }],
  stages: [
    { blocks: 1, width: 4, stride: 1, expansion: 2 },
    { blocks: 1, width: 4, stride: 2, expansion: 2 },
    { blocks: 1, width: 4, stride: 2, expansion: 2 },
  ],
  block: 'preactBottleneck',
  strideOn: '1x1',
  preactShortcut: 'input',
  skipFirstPreact: true,
  postNorm: true,
  convPadding: 'same',
  projectionNorm: false,
  convBias: true,
  bnEpsilon: 1e-3,
  head: { pool: { type: 'avgPool', poolSize: 2 } },
};

const CASES: Array<{ name: string; build: () => Model; expectLayers: string[] }> = [
  {
    name: 'basic blocks with squeeze-excite (reduction 4)',
    build: () => models.resnet({ ...base, stages: twoStages, block: 'basic', se: { reduction: 4 }, seed: 1 }),
    expectLayers: ['layer1.0.se', 'layer2.0.se', 'layer2.0.downsample.0'],
  },
  {
    name: 'preactBasic blocks',
    build: () =>
      models.resnet({
        ...base,
        stages: [
          { blocks: 2, width: 4 },
          { blocks: 1, width: 8 },
        ],
        block: 'preactBasic',
        seed: 2,
      }),
    expectLayers: ['layer1.1.bn1', 'layer2.0.downsample.0', 'post_bn', 'post_relu'],
  },
  {
    name: 'preactBottleneck blocks',
    build: () =>
      models.resnet({
        ...base,
        stages: [
          { blocks: 1, width: 2 },
          { blocks: 1, width: 2 },
        ],
        block: 'preactBottleneck',
        seed: 3,
      }),
    expectLayers: ['layer1.0.conv3', 'layer2.0.bn3', 'layer2.0.downsample.0', 'post_bn'],
  },
  {
    name: 'zero-pad (option A) shortcut',
    build: () => models.resnet({ ...base, stages: twoStages, block: 'basic', shortcut: 'zeroPad', seed: 4 }),
    expectLayers: ['layer2.0.shortcut'],
  },
  {
    name: 'bottlenecks with grouped 3×3 convolutions (groups 2)',
    build: () =>
      models.resnet({
        ...base,
        stages: [
          { blocks: 1, width: 2 },
          { blocks: 1, width: 2 },
        ],
        block: 'bottleneck',
        groups: 2,
        seed: 5,
      }),
    expectLayers: ['layer1.0.conv2', 'layer2.0.downsample.1'],
  },
  {
    name: "'same' padding with stride 2 (asymmetric on 8×8)",
    build: () => models.resnet({ ...base, stages: twoStages, block: 'basic', convPadding: 'same', seed: 6 }),
    expectLayers: ['layer2.0.conv1'],
  },
  {
    name: 'windowed average-pool head, flatten and a hidden dense layer',
    build: () =>
      models.resnet({
        ...base,
        stages: twoStages,
        block: 'basic',
        head: { pool: { type: 'avgPool', poolSize: 2 }, hidden: [6] },
        seed: 7,
      }),
    expectLayers: ['avgpool', 'flatten', 'fc_hidden1', 'fc_hidden1_relu', 'fc'],
  },
  {
    name: 'Keras CIFAR v2 layout (narrow)',
    build: () => models.resnet({ ...kerasV2Options, seed: 8 }),
    expectLayers: ['layer1.0.downsample.0', 'layer3.0.bn1', 'post_bn', 'avgpool', 'flatten'],
  },
];

/** The allowed |fd − g| for a central difference at step h (see the header). */
function tolerance(a: number, b: number, h: number): number {
  return REL * Math.max(Math.abs(a), Math.abs(b)) + NOISE / h;
}

/** Distinct random indices in [0, n), or all of them. */
function coordinates(rng: Rng, n: number, count: number): number[] {
  if (n <= count) return Array.from({ length: n }, (_, i) => i);
  const picked = new Set<number>();
  while (picked.size < count) picked.add(rng.int(0, n - 1));
  return [...picked];
}

describe('the narrow Keras CIFAR v2 model has the layer structure of resnetCifar({ version: 2 })', () => {
  it('same layer names, types, inputs, kernels, strides, paddings, biases and BN epsilons; only widths differ', () => {
    const reference = models.specs.resnetCifar({ depth: 11, version: 2, convBias: true, inputShape: [SIZE, SIZE, 3], classes: CLASSES });
    const narrow = models.specs.resnetSpec(kerasV2Options);
    const strip = (layers: readonly object[]) =>
      layers.map((l) => {
        const { filters: _f, units: _u, hidden: _h, ...rest } = l as Record<string, unknown>;
        return rest;
      });
    expect(strip(narrow.layers)).toEqual(strip(reference.layers));
    expect(narrow.output).toBe(reference.output);
  });
});

describe('model gradients agree with central differences of the training-mode loss', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const model = c.build();
      const names = model.layers().map((l) => l.name);
      for (const l of c.expectLayers) expect(names, `layer ${l}`).toContain(l);
      for (const l of model.layers()) {
        // ≤ 8 channels in every feature map
        if (l.outputShape.length === 4) expect(l.outputShape[3], l.name).toBeLessThanOrEqual(8);
      }
      const rng = new Rng(100 + CASES.indexOf(c));
      const x = Tensor.fromArray(rng.array(N * SIZE * SIZE * 3), [N, SIZE, SIZE, 3]);
      const y = Int32Array.from([0, 1, 2, 1]);
      const { loss: loss0, gradients } = await model.computeGradients(x, y);
      expect(Number.isFinite(loss0)).toBe(true);
      const loss = async () => (await model.computeGradients(x, y)).loss;
      // Repeating the call gives the same loss (the updated running statistics don't enter it).
      expect(await loss()).toBe(loss0);

      const failures: string[] = [];
      let worst = 0;
      let checked = 0;
      for (const [name, g] of gradients) {
        const p0 = model.getParameter(name);
        expect(g.length, name).toBe(p0.length);
        for (const i of coordinates(rng, p0.length, SAMPLES)) {
          const gi = g[i]!;
          const seen: string[] = [];
          let best = Infinity;
          for (const h of STEPS) {
            const p = p0.slice();
            p[i] = Math.fround(p0[i]! + h);
            model.setParameter(name, p);
            const plus = await loss();
            const up = p[i]! - p0[i]!; // the steps actually taken (float32)
            p[i] = Math.fround(p0[i]! - h);
            model.setParameter(name, p);
            const minus = await loss();
            const down = p0[i]! - p[i]!;
            const central = (plus - minus) / (up + down);
            best = Math.min(best, Math.abs(central - gi) / tolerance(central, gi, h));
            let note = '';
            if (h === STEPS[STEPS.length - 1]) {
              // At the smallest step, a one-sided difference (a kink on the other side).
              const right = (plus - loss0) / up;
              const left = (loss0 - minus) / down;
              best = Math.min(best, Math.abs(right - gi) / tolerance(right, gi, h / 2), Math.abs(left - gi) / tolerance(left, gi, h / 2));
              note = ` (one-sided ${left.toExponential(3)} | ${right.toExponential(3)})`;
            }
            seen.push(`h=${h}: ${central.toExponential(4)}${note}`);
          }
          model.setParameter(name, p0);
          checked++;
          worst = Math.max(worst, best);
          if (!(best <= 1)) failures.push(`${name}[${i}]: analytic ${gi.toExponential(4)}; central differences ${seen.join(', ')}`);
        }
      }
      expect(checked).toBeGreaterThan(20);
      expect(failures, `worst error/tolerance ratio ${worst.toFixed(3)}`).toEqual([]);
      // The perturbations were undone exactly.
      expect(await loss()).toBe(loss0);
    });
  }
});
