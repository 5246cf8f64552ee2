// Winograd F(4×4, 3×3) (native/cpu/conv2d_winograd.cpp, forced with RESNET_WINOGRAD=4x4) against
// the reference kernels, in child processes as test/native/kernels_vs_reference.test.ts: 3×3
// stride-1 convolutions with 16, 64 and 512 channels (F(4×4)'s rounding error grows with the
// reduction length), odd sizes (7×7, 5×9, 1×1 with padding, partial 4×4 tiles at every edge),
// channel counts that leave lanes over (3, 17, 33), asymmetric pads, with and without bias:
// forward and input gradient; and a whole model, whose inference forward runs the prepared
// weights with the fused residual add + ReLU epilogue and whose training forward computes the
// batch statistics from the tiles. The convolutions run twice: as dispatched (AVX-512 transforms
// where the CPU has them) and with RESNET_SIMD=avx2 (the 8-lane clones). A run with RESNET_WINOGRAD=2x2 checks that the two tiles are
// really different code. Same tolerances as kernels_vs_reference (test/support/compare.ts, conv
// forward length 9·cin, input gradient 9·cout).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { Model, type ModelSpec, models } from '../../lib/index.js';
import { reportWorstRatios } from '../support/compare.js';
import { expectCloseNamed, expectCloseScaled, modelShapes, reductionLengths } from '../support/reduction_lengths.js';
import { decode, type Encoded, encode, randomParameters } from '../support/kernel_jobs.js';
import { Rng } from '../support/random.js';

reportWorstRatios(import.meta.url);

const childScript = join(process.cwd(), 'test', 'support', 'kernels_child.mjs');
const distBuilt = existsSync(join(process.cwd(), 'dist', 'index.js'));

interface TensorJob {
  data: Encoded;
  shape: number[];
}
interface ConvResult {
  y: Encoded;
  dx: Encoded;
  dw: Encoded;
  db?: Encoded;
}
interface ModelResult {
  logits: Encoded;
  loss: number;
  accuracy: number;
  gradients: Record<string, Encoded>;
  runningStats: Record<string, Encoded>;
}
interface ChildResult {
  kernels: string;
  conv: ConvResult[];
  models: ModelResult[];
}

const job = (data: Float32Array, shape: number[]): TensorJob => ({ data: encode(data), shape });
const size = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

const rng = new Rng(20261207);

type Pads = [number, number, number, number];
function conv(n: number, h: number, w: number, cin: number, cout: number, pads: Pads, withBias: boolean) {
  const oh = h + pads[0] + pads[1] - 2;
  const ow = w + pads[2] + pads[3] - 2;
  const xShape = [n, h, w, cin];
  const wShape = [3, 3, cin, cout];
  const yShape = [n, oh, ow, cout];
  return {
    label: `3×3/1 ${cin}→${cout} ${h}×${w} n${n} pads ${JSON.stringify(pads)} → ${oh}×${ow}${withBias ? ' +bias' : ''}`,
    x: job(rng.array(size(xShape)), xShape),
    w: job(rng.array(size(wShape)), wShape),
    dy: job(rng.array(size(yShape)), yShape),
    ...(withBias ? { bias: job(rng.array(cout), [cout]) } : {}),
    opts: { strides: [1, 1], padding: pads, dilations: [1, 1], groups: 1 },
    cin,
    cout,
  };
}

const convCases = [
  conv(2, 7, 7, 16, 16, [1, 1, 1, 1], true),
  conv(3, 5, 9, 16, 16, [0, 2, 1, 3], false),
  conv(2, 1, 1, 16, 16, [1, 1, 1, 1], true),
  conv(2, 32, 32, 16, 16, [1, 1, 1, 1], false), // many tiles: several chunks per thread
  conv(2, 7, 7, 64, 64, [1, 1, 1, 1], true),
  conv(1, 5, 9, 64, 64, [2, 2, 2, 2], false),
  conv(2, 1, 1, 64, 64, [1, 1, 1, 1], false),
  conv(1, 7, 7, 512, 512, [1, 1, 1, 1], true),
  conv(1, 5, 9, 512, 512, [0, 0, 0, 0], false),
  conv(1, 1, 1, 512, 512, [1, 1, 1, 1], true),
  conv(2, 13, 11, 33, 17, [1, 1, 1, 1], true), // lanes left over on both sides
  conv(1, 9, 6, 3, 16, [3, 0, 2, 1], false),
  conv(3, 9, 10, 40, 16, [1, 1, 1, 1], true), // 16 output channels, K = 40: the register-blocked 16-column GEMM's depth blocks
  conv(2, 11, 9, 32, 32, [1, 1, 1, 1], true), // 32 output channels: the two-panel GEMM
  conv(1, 6, 7, 24, 32, [2, 1, 0, 1], false),
  conv(1, 9, 9, 20, 48, [1, 1, 1, 1], true), // 48 and 80 output channels: groups of 4, 2 and 1 panels
  conv(2, 8, 8, 96, 80, [1, 1, 1, 1], false),
];

const modelSpec = (): ModelSpec => models.specs.resnetCifar({ depth: 8, inputShape: [13, 15, 3], convBias: true });
const modelN = 3;


const modelCase = (() => {
  const spec = modelSpec();
  const model = Model.fromSpec(spec, { seed: 7 });
  const parameters = randomParameters(model, rng);
  const lengths = reductionLengths(model.spec, modelShapes(model), modelN, true);
  const shape = [modelN, ...model.inputShape];
  const labels = Array.from(rng.labels(modelN, model.classes));
  model.dispose();
  return { label: 'resnetCifar 8', spec, seed: 7, parameters, images: job(rng.array(size(shape)), shape), labels, smoothing: 0, lengths };
})();

function runChild(kernels: 'reference' | 'optimized', winograd?: '2x2' | '4x4', simd?: 'avx2'): ChildResult {
  const env: NodeJS.ProcessEnv = { ...process.env, RESNET_KERNELS: kernels };
  delete env.RESNET_SIMD;
  delete env.RESNET_WINOGRAD;
  if (winograd) env.RESNET_WINOGRAD = winograd;
  if (simd) env.RESNET_SIMD = simd;
  const input = { conv: convCases, models: [modelCase] };
  const out = execFileSync(process.execPath, [childScript], { input: JSON.stringify(input), env, maxBuffer: 1 << 28 });
  return JSON.parse(out.toString('utf8')) as ChildResult;
}

let runs: { reference: ChildResult; f4: ChildResult; f4avx2: ChildResult; f2: ChildResult } | undefined;
function results(): NonNullable<typeof runs> {
  if (!distBuilt) throw new Error('dist/index.js is missing: run `npm run compile` (the child processes load the built package)');
  runs ??= {
    reference: runChild('reference'),
    f4: runChild('optimized', '4x4'),
    f4avx2: runChild('optimized', '4x4', 'avx2'),
    f2: runChild('optimized', '2x2'),
  };
  return runs;
}

describe('Winograd F(4×4, 3×3) (RESNET_WINOGRAD=4x4) vs the reference kernels', () => {
  it.each(convCases.map((c, i) => [c.label, i] as const))('%s: forward and input gradient', (_label, i) => {
    const { reference, f4, f4avx2 } = results();
    const c = convCases[i]!;
    for (const [label, run] of [['', f4], [', RESNET_SIMD=avx2', f4avx2]] as const) {
      const opt = run.conv[i]!;
      expectCloseNamed(`conv2d forward [Winograd 4×4${label}]`, 'y', decode(opt.y), decode(reference.conv[i]!.y), 9 * c.cin);
      expectCloseNamed(`conv2d input gradient [Winograd 4×4${label}]`, 'dx', decode(opt.dx), decode(reference.conv[i]!.dx), 9 * c.cout);
    }
  });

  it('runs other code than F(2×2) (outputs differ in their last bits)', () => {
    const { f4, f2 } = results();
    const multiPixel = convCases.map((_, i) => i).filter((i) => decode(f4.conv[i]!.y).length > 2 * convCases[i]!.cout * 2);
    expect(multiPixel.filter((i) => f4.conv[i]!.y !== f2.conv[i]!.y).length).toBeGreaterThan(multiPixel.length / 2);
    expect(multiPixel.filter((i) => f4.conv[i]!.dx !== f2.conv[i]!.dx).length).toBeGreaterThan(multiPixel.length / 2);
  });

  it('whole model: inference logits (prepared weights, fused add + ReLU), training loss, gradients, batch statistics', () => {
    const { reference, f4 } = results();
    const ref = reference.models[0]!;
    const opt = f4.models[0]!;
    const { lengths, spec } = modelCase;
    expectCloseNamed('model logits (inference) [Winograd 4×4]', 'logits', decode(opt.logits), decode(ref.logits), lengths.forward);
    expectCloseNamed('model loss [Winograd 4×4]', 'loss', Float32Array.of(opt.loss), Float32Array.of(ref.loss), lengths.forward + spec.classes);
    expect(opt.accuracy).toBe(ref.accuracy);
    const names = Object.keys(ref.gradients);
    expect(names.length).toBeGreaterThan(0);
    expect(Object.keys(opt.gradients).sort()).toEqual([...names].sort());
    for (const name of names) {
      expectCloseScaled('model gradients [Winograd 4×4]', name, decode(opt.gradients[name]!), decode(ref.gradients[name]!), lengths.gradient);
    }
    const stats = Object.keys(ref.runningStats);
    expect(stats.length).toBeGreaterThan(0);
    for (const name of stats) {
      const layer = name.slice(0, name.lastIndexOf('.'));
      expectCloseNamed('model running statistics [Winograd 4×4]', name, decode(opt.runningStats[name]!), decode(ref.runningStats[name]!), lengths.at.get(layer)!);
    }
  });
});
