// The optimized CPU kernels against the reference kernels (the oracle), selected with
// RESNET_KERNELS: one job — seeded random convolutions (kernel sizes 1/3/5/7, strides 1/2,
// dilations, groups, every padding mode, odd sizes, batch 1..4, channel counts on both sides
// of the GEMM / direct switch), batch norms (with and without the fused add + ReLU, training
// and inference) and whole models (forward, loss, every gradient, running statistics) — runs
// in child processes (test/support/kernels_child.mjs): one on the reference kernels, one on the
// optimized kernels as dispatched on this CPU (AVX-512 GEMM where the CPU has it) and one with
// RESNET_SIMD=avx2 (the AVX2 GEMM), and one with RESNET_WINOGRAD=1 (every 3×3 stride-1 forward and
// input gradient on Winograd, F(4×4, 3×3) or F(2×2, 3×3), native/cpu/conv2d_winograd.cpp, with extra shapes for
// it: odd sizes, 1×1 spatial, 1/3/16/33 channels, asymmetric pads), and every value of each
// optimized run is compared with the reference run's.
//
// Tolerances follow test/support/compare.ts (|a − e| ≤ 1e-4·√L + 1e-4·|e|, L the reduction
// length behind the value) with the reduction lengths of test/model/model_vs_tfjs.test.ts: conv
// forward kh·kw·cin/groups, input gradient kh·kw·cout/groups, weight and bias gradients n·oh·ow,
// batch norm its rows; for models, the longest path's sum, and gradients divided by
// clamp(RMS of the reference, 1e-3, 1) before comparing.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { Model, type ModelSpec, models } from '../../lib/index.js';
import { reportWorstRatios } from '../support/compare.js';
import { expectCloseNamed, expectCloseScaled, modelShapes, type ReductionLengths, reductionLengths } from '../support/reduction_lengths.js';
import { decode, type Encoded, encode, randomParameters } from '../support/kernel_jobs.js';
import { Rng } from '../support/random.js';

reportWorstRatios(import.meta.url);

const childScript = join(process.cwd(), 'test', 'support', 'kernels_child.mjs');

interface TensorJob {
  data: Encoded;
  shape: number[];
}
interface ConvCase {
  label: string;
  x: TensorJob;
  w: TensorJob;
  dy: TensorJob;
  bias?: TensorJob;
  opts: { strides: [number, number]; padding: unknown; dilations: [number, number]; groups: number };
  /** n, kh, kw, cin, cout, groups, oh, ow: for the reduction lengths. */
  dims: { n: number; kh: number; kw: number; cin: number; cout: number; groups: number; oh: number; ow: number };
}
interface BatchNormCase {
  label: string;
  x: TensorJob;
  dy: TensorJob;
  skip?: TensorJob;
  gamma: TensorJob;
  beta: TensorJob;
  mean: TensorJob;
  var: TensorJob;
  training: boolean;
  rows: number;
}
interface ModelCase {
  label: string;
  spec: ModelSpec;
  seed: number;
  parameters: Record<string, Encoded>;
  images: TensorJob;
  labels: number[];
  smoothing: number;
}
interface ChildResult {
  kernels: string;
  conv: Record<string, Encoded>[];
  batchNorm: Record<string, Encoded>[];
  models: { logits: Encoded; loss: number; accuracy: number; gradients: Record<string, Encoded>; runningStats: Record<string, Encoded> }[];
}

const job = (data: Float32Array, shape: number[]): TensorJob => ({ data: encode(data), shape });
const size = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

function runChild(kernels: 'reference' | 'optimized', input: unknown, simd?: 'avx2', winograd?: '1'): ChildResult {
  const env: NodeJS.ProcessEnv = { ...process.env, RESNET_KERNELS: kernels };
  delete env.RESNET_SIMD;
  delete env.RESNET_WINOGRAD;
  if (simd) env.RESNET_SIMD = simd;
  if (winograd) env.RESNET_WINOGRAD = winograd;
  const out = execFileSync(process.execPath, [childScript], {
    input: JSON.stringify(input),
    env,
    maxBuffer: 1 << 28,
  });
  return JSON.parse(out.toString('utf8')) as ChildResult;
}

// ---------------------------------------------------------------------------------------
// Cases

/** TensorFlow's output size and the pads a padding option resolves to. */
function outputSize(size: number, k: number, stride: number, dilation: number, pad: [number, number] | 'same'): number {
  const span = (k - 1) * dilation + 1;
  if (pad === 'same') return Math.ceil(size / stride);
  return Math.floor((size + pad[0] + pad[1] - span) / stride) + 1;
}

function randomConv(rng: Rng, index: number): ConvCase {
  for (;;) {
    const kh = rng.pick([1, 3, 5, 7]);
    const kw = rng.next() < 0.8 ? kh : rng.pick([1, 3, 5, 7]);
    const sh = rng.pick([1, 2]);
    const sw = rng.next() < 0.8 ? sh : rng.pick([1, 2]);
    const dilation = rng.next() < 0.15 ? 2 : 1;
    const groups = rng.pick([1, 1, 1, 2, 3, 4]);
    // Output channels per group on both sides of the GEMM switch (8), and past one 16-wide panel.
    const opg = rng.pick([1, 3, 5, 8, 11, 16, 19, 24]);
    const ipg = rng.int(1, 12);
    const n = rng.int(1, 4);
    const h = rng.int(1, 17);
    const w = rng.int(1, 17);
    const mode = rng.pick(['same', 'valid', 'number', 'explicit'] as const);
    let padding: unknown;
    let padH: [number, number] | 'same';
    let padW: [number, number] | 'same';
    if (mode === 'same' || mode === 'valid') {
      padding = mode;
      padH = padW = mode === 'same' ? 'same' : [0, 0];
    } else if (mode === 'number') {
      const p = rng.int(0, Math.floor(Math.max(kh, kw) / 2));
      padding = p;
      padH = padW = [p, p];
    } else {
      const pads = [rng.int(0, 3), rng.int(0, 3), rng.int(0, 3), rng.int(0, 3)] as [number, number, number, number];
      padding = pads;
      padH = [pads[0], pads[1]];
      padW = [pads[2], pads[3]];
    }
    const oh = outputSize(h, kh, sh, dilation, padH);
    const ow = outputSize(w, kw, sw, dilation, padW);
    if (oh < 1 || ow < 1) continue;
    const cin = ipg * groups;
    const cout = opg * groups;
    const xShape = [n, h, w, cin];
    const wShape = [kh, kw, ipg, cout];
    const yShape = [n, oh, ow, cout];
    const withBias = rng.next() < 0.5;
    return {
      label: `#${index} ${kh}×${kw}/${sh}${sw === sh ? '' : `×${sw}`}${dilation > 1 ? ' dil 2' : ''} ${cin}→${cout} g${groups} ` +
        `${h}×${w} n${n} pad ${JSON.stringify(padding)}${withBias ? ' +bias' : ''}`,
      x: job(rng.array(size(xShape)), xShape),
      w: job(rng.array(size(wShape)), wShape),
      dy: job(rng.array(size(yShape)), yShape),
      ...(withBias ? { bias: job(rng.array(cout), [cout]) } : {}),
      opts: { strides: [sh, sw], padding, dilations: [dilation, dilation], groups },
      dims: { n, kh, kw, cin, cout, groups, oh, ow },
    };
  }
}

/** Shapes the random draw may miss: a 1×1 stride-1 conv (the GEMM-without-im2col path), and more rows than one tile. */
function fixedConvs(rng: Rng): ConvCase[] {
  const make = (label: string, n: number, h: number, w: number, cin: number, cout: number, k: number, s: number): ConvCase => {
    const padding = k === 1 ? 'valid' : 'same';
    const oh = Math.ceil(h / s);
    const ow = Math.ceil(w / s);
    const xShape = [n, h, w, cin];
    const wShape = [k, k, cin, cout];
    const yShape = [n, oh, ow, cout];
    return {
      label,
      x: job(rng.array(size(xShape)), xShape),
      w: job(rng.array(size(wShape)), wShape),
      dy: job(rng.array(size(yShape)), yShape),
      opts: { strides: [s, s], padding, dilations: [1, 1], groups: 1 },
      dims: { n, kh: k, kw: k, cin, cout, groups: 1, oh, ow },
    };
  };
  return [
    make('1×1/1 24→40 15×13 n3 (pointwise GEMM)', 3, 15, 13, 24, 40, 1, 1),
    make('1×1/2 16→32 9×9 n2 (strided 1×1)', 2, 9, 9, 16, 32, 1, 2),
    make('3×3/1 32→32 19×21 n2 same (many tiles)', 2, 19, 21, 32, 32, 3, 1),
    make('7×7/2 3→16 23×23 n2 same (stem)', 2, 23, 23, 3, 16, 7, 2),
    make('3×3/1 40→48 11×9 n2 same (K = 360: two depth blocks; three 16-column panels)', 2, 11, 9, 40, 48, 3, 1),
  ];
}

/** 3×3 stride-1 convolutions for the Winograd run (own seed, so the other cases keep theirs). */
function winogradConvs(): ConvCase[] {
  const wrng = new Rng(20261127);
  const make = (n: number, h: number, w: number, cin: number, cout: number, mode: 'same' | 'valid' | 'explicit' | 'number'): ConvCase | undefined => {
    let padding: unknown;
    let padH: [number, number] | 'same';
    let padW: [number, number] | 'same';
    if (mode === 'same' || mode === 'valid') {
      padding = mode;
      padH = padW = mode === 'same' ? 'same' : [0, 0];
    } else if (mode === 'number') {
      const p = wrng.int(0, 2);
      padding = p;
      padH = padW = [p, p];
    } else {
      const pads = [wrng.int(0, 3), wrng.int(0, 3), wrng.int(0, 3), wrng.int(0, 3)] as [number, number, number, number];
      padding = pads;
      padH = [pads[0], pads[1]];
      padW = [pads[2], pads[3]];
    }
    const oh = outputSize(h, 3, 1, 1, padH);
    const ow = outputSize(w, 3, 1, 1, padW);
    if (oh < 1 || ow < 1) return undefined;
    const xShape = [n, h, w, cin];
    const wShape = [3, 3, cin, cout];
    const yShape = [n, oh, ow, cout];
    const withBias = wrng.next() < 0.5;
    return {
      label: `Winograd 3×3/1 ${cin}→${cout} ${h}×${w} n${n} pad ${JSON.stringify(padding)}${withBias ? ' +bias' : ''}`,
      x: job(wrng.array(size(xShape)), xShape),
      w: job(wrng.array(size(wShape)), wShape),
      dy: job(wrng.array(size(yShape)), yShape),
      ...(withBias ? { bias: job(wrng.array(cout), [cout]) } : {}),
      opts: { strides: [1, 1], padding, dilations: [1, 1], groups: 1 },
      dims: { n, kh: 3, kw: 3, cin, cout, groups: 1, oh, ow },
    };
  };
  const out: ConvCase[] = [
    make(2, 7, 9, 16, 33, 'same')!,
    make(3, 1, 1, 33, 16, 'same')!,
    make(1, 9, 7, 3, 16, 'explicit')!,
    make(2, 8, 8, 16, 16, 'valid')!,
    make(1, 13, 11, 33, 33, 'same')!,
    make(4, 8, 8, 64, 64, 'same')!, // on Winograd by default too (≥ 64 channels, ≥ 256 output pixels)
  ];
  const channels = [1, 3, 16, 33];
  while (out.length < 20) {
    const c = make(wrng.int(1, 3), wrng.int(1, 13), wrng.int(1, 13), wrng.pick(channels), wrng.pick(channels),
      wrng.pick(['same', 'valid', 'explicit', 'number'] as const));
    if (c) out.push(c);
  }
  return out;
}

/**
 * Shape classes of the AVX-512 implicit-GEMM forward (own seed, so the other cases keep theirs):
 * one 16-channel panel with 16- and 28-pixel blocks, the 7×7/2 stem into four panels, 3×3 at
 * stride 1 and 2 from 16, 32 and 64 channels (weights held in registers per kernel row), odd
 * widths and channel counts (a partial last panel), per-tap segments (dilation 2), pixel strides
 * without a compiled constant, batch 1, and maps so small that every pixel reads the border or
 * rows outside the image (1×1, 2×2, 2×3 with padding 2).
 */
function implicitConvs(): ConvCase[] {
  const irng = new Rng(20261208);
  const make = (
    n: number, h: number, w: number, cin: number, cout: number, k: number, s: number, dilation: number,
    pad: number | 'same' | 'valid', withBias: boolean, note: string,
  ): ConvCase => {
    const pads: [number, number] | 'same' = pad === 'same' ? 'same' : pad === 'valid' ? [0, 0] : [pad, pad];
    const oh = outputSize(h, k, s, dilation, pads);
    const ow = outputSize(w, k, s, dilation, pads);
    const xShape = [n, h, w, cin];
    const wShape = [k, k, cin, cout];
    const yShape = [n, oh, ow, cout];
    return {
      label: `implicit ${k}×${k}/${s}${dilation > 1 ? ` dil ${dilation}` : ''} ${cin}→${cout} ${h}×${w} n${n} pad ` +
        `${JSON.stringify(pad)}${withBias ? ' +bias' : ''} (${note})`,
      x: job(irng.array(size(xShape)), xShape),
      w: job(irng.array(size(wShape)), wShape),
      dy: job(irng.array(size(yShape)), yShape),
      ...(withBias ? { bias: job(irng.array(cout), [cout]) } : {}),
      opts: { strides: [s, s], padding: pad, dilations: [dilation, dilation], groups: 1 },
      dims: { n, kh: k, kw: k, cin, cout, groups: 1, oh, ow },
    };
  };
  return [
    make(2, 9, 32, 16, 16, 3, 1, 1, 'same', true, '16 channels: 16-pixel blocks'),
    make(1, 4, 56, 16, 16, 3, 1, 1, 1, false, '16 channels: 28-pixel blocks, batch 1'),
    make(1, 17, 17, 16, 32, 3, 2, 1, 'same', true, 'stride 2, batch 1'),
    make(1, 37, 41, 3, 64, 7, 2, 1, 3, true, 'stem: four panels'),
    make(3, 1, 1, 32, 64, 3, 1, 1, 'same', false, 'a 1×1 map: border only'),
    make(2, 2, 2, 16, 32, 3, 1, 1, 'same', true, 'a 2×2 map: border only'),
    make(1, 2, 3, 24, 16, 3, 1, 1, 2, true, 'rows and columns wholly outside the image'),
    make(2, 9, 10, 16, 48, 5, 1, 2, 'same', false, 'dilation 2: one segment per tap; three panels'),
    make(1, 7, 7, 64, 80, 3, 1, 1, 'same', true, '7×7 map, five panels'),
    make(1, 5, 61, 8, 20, 3, 1, 1, 'same', true, 'pixel stride without a constant; a partial panel'),
    make(2, 6, 13, 16, 20, 3, 1, 1, 'valid', false, 'a partial second panel'),
    make(1, 9, 11, 32, 64, 3, 2, 1, 1, true, 'stride 2 from 32 channels'),
    make(2, 5, 6, 64, 32, 3, 2, 1, 'same', false, 'stride 2 from 64 channels'),
    make(1, 6, 31, 32, 16, 3, 1, 1, 'same', true, '32 channels into one panel'),
  ];
}

/**
 * Shapes for the GEMM's L2-blocked driver (K past one 256-deep block, N past 512 columns), the
 * input gradient's row split of 1×1 convolutions, and the weight gradient split over K rows
 * (K ≥ 1024): M not a multiple of 12, N not a multiple of 16 (own seed, so the other cases keep theirs).
 */
function gemmConvs(): ConvCase[] {
  const grng = new Rng(20261207);
  const make = (label: string, n: number, h: number, w: number, cin: number, cout: number, k: number, s: number, groups = 1, bias = false): ConvCase => {
    const oh = Math.ceil(h / s);
    const ow = Math.ceil(w / s);
    const xShape = [n, h, w, cin];
    const wShape = [k, k, cin / groups, cout];
    const yShape = [n, oh, ow, cout];
    return {
      label,
      x: job(grng.array(size(xShape)), xShape),
      w: job(grng.array(size(wShape)), wShape),
      dy: job(grng.array(size(yShape)), yShape),
      ...(bias ? { bias: job(grng.array(cout), [cout]) } : {}),
      opts: { strides: [s, s], padding: 'same', dilations: [1, 1], groups },
      dims: { n, kh: k, kw: k, cin, cout, groups, oh, ow },
    };
  };
  return [
    make('1×1/1 600→520 5×5 n2 (K: three depth blocks; N: two L2 width blocks)', 2, 5, 5, 600, 520, 1, 1),
    make('1×1/1 1040→24 15×13 n2 (K-split weight gradient over two depth tiles; 390 rows)', 2, 15, 13, 1040, 24, 1, 1),
    make('3×3/2 120→40 9×9 n2 (K = 1080 split by rows of dW)', 2, 9, 9, 120, 40, 3, 2),
    make('3×3/1 240→48 6×7 n1 groups 2 (K = 1080 per group)', 1, 6, 7, 240, 48, 3, 1, 2),
    make('3×3/1 70→20 6×5 n2 (flipped weights: 64 + 6 input channels)', 2, 6, 5, 70, 20, 3, 1),
    make('1×1/1 20→72 19×19 n3 +bias (weight gradient as dWᵀ = dYᵀ·X; two pixel tiles)', 3, 19, 19, 20, 72, 1, 1, 1, true),
    make('3×3/2 120→40 9×9 n2 +bias (K-split bias gradient)', 2, 9, 9, 120, 40, 3, 2, 1, true),
  ];
}

function randomBatchNorm(rng: Rng, index: number): BatchNormCase {
  const n = rng.int(1, 4);
  const h = rng.int(1, 9);
  const w = rng.int(2, 9);
  const c = rng.pick([1, 3, 8, 16, 21, 40]);
  const shape = [n, h, w, c];
  const training = index % 2 === 0;
  const withSkip = index % 4 >= 2;
  // Non-zero means, so the statistics are not trivially centred.
  const x = Float32Array.from(rng.array(size(shape)), (v, i) => 2 * v + (i % c) * 0.1);
  return {
    label: `#${index} [${shape.join(', ')}] ${training ? 'training' : 'inference'}${withSkip ? ' + skip + ReLU' : ''}`,
    x: job(x, shape),
    dy: job(rng.array(size(shape)), shape),
    ...(withSkip ? { skip: job(rng.array(size(shape)), shape) } : {}),
    gamma: job(Float32Array.from(rng.array(c, 0.5), (v) => 1 + v), [c]),
    beta: job(rng.array(c, 0.5), [c]),
    mean: job(rng.array(c, 0.5), [c]),
    var: job(Float32Array.from(rng.array(c, 0.5), (v) => 1 + v), [c]),
    training,
    rows: n * h * w,
  };
}

const MODELS: { label: string; spec: () => ModelSpec; n: number; smoothing: number }[] = [
  {
    label: 'resnetCifar 8, conv bias, 13×15 input',
    spec: () => models.specs.resnetCifar({ depth: 8, inputShape: [13, 15, 3], convBias: true }),
    n: 3,
    smoothing: 0,
  },
  {
    label: 'basic blocks, 7×7/2 stem + max pool, 29×27 input',
    spec: () =>
      models.specs.resnetSpec({
        name: 'basic_small',
        classes: 7,
        inputShape: [29, 27, 3],
        block: 'basic',
        stem: [
          { type: 'conv2d', filters: 8, kernelSize: 7, strides: 2, padding: 3 },
          { type: 'batchNorm' },
          { type: 'relu' },
          { type: 'maxPool', poolSize: 3, strides: 2, padding: 1 },
        ],
        stages: [
          { blocks: 1, width: 8, stride: 1 },
          { blocks: 1, width: 24, stride: 2 },
        ],
      }),
    n: 2,
    smoothing: 0.1,
  },
  {
    label: 'grouped bottlenecks with squeeze-excite, 5×5 stem, 17×17 input',
    spec: () =>
      models.specs.resnetSpec({
        name: 'grouped_se',
        classes: 6,
        inputShape: [17, 17, 3],
        block: 'bottleneck',
        groups: 2,
        widthPerGroup: 16,
        se: { reduction: 4 },
        stem: [
          { type: 'conv2d', filters: 16, kernelSize: 5, strides: 1, padding: 'same' },
          { type: 'batchNorm' },
          { type: 'relu' },
        ],
        stages: [
          { blocks: 1, width: 8, stride: 1 },
          { blocks: 1, width: 16, stride: 2 },
        ],
      }),
    n: 2,
    smoothing: 0,
  },
];


/** Forward length to the logits and the gradient length (forward + loss + backward), training mode. */
function modelReductionLengths(model: Model, n: number): ReductionLengths {
  return reductionLengths(model.spec, modelShapes(model), n, true);
}

// ---------------------------------------------------------------------------------------
// The run: one job, two child processes.

const rng = new Rng(20261126);
const convCases = [
  ...fixedConvs(rng),
  ...Array.from({ length: 28 }, (_, i) => randomConv(rng, i)),
  ...winogradConvs(),
  ...gemmConvs(),
  ...implicitConvs(),
];
const bnCases = Array.from({ length: 8 }, (_, i) => randomBatchNorm(rng, i));
const modelCases: (ModelCase & { lengths: ReturnType<typeof modelReductionLengths> })[] = MODELS.map((m, i) => {
  const spec = m.spec();
  const seed = 100 + i;
  const model = Model.fromSpec(spec, { seed });
  const parameters = randomParameters(model, rng);
  const lengths = modelReductionLengths(model, m.n);
  const shape = [m.n, ...model.inputShape];
  const labels = Array.from(rng.labels(m.n, model.classes));
  model.dispose();
  return { label: m.label, spec, seed, parameters, images: job(rng.array(size(shape)), shape), labels, smoothing: m.smoothing, lengths };
});

const distBuilt = existsSync(join(process.cwd(), 'dist', 'index.js'));
interface Runs {
  reference: ChildResult;
  optimized: ChildResult;
  /** The optimized runs to check: as dispatched, and capped at AVX2. */
  variants: { label: string; result: ChildResult }[];
}
let results: Runs | undefined;
function both(): Runs {
  if (!distBuilt) throw new Error('dist/index.js is missing: run `npm run compile` (the child processes load the built package)');
  if (results === undefined) {
    const input = { conv: convCases, batchNorm: bnCases, models: modelCases };
    const optimized = runChild('optimized', input);
    results = {
      reference: runChild('reference', input),
      optimized,
      variants: [
        { label: 'dispatched', result: optimized },
        { label: 'RESNET_SIMD=avx2', result: runChild('optimized', input, 'avx2') },
        { label: 'RESNET_WINOGRAD=1', result: runChild('optimized', input, undefined, '1') },
      ],
    };
  }
  return results;
}

/** Runs `check` for each optimized variant, naming the variant in a failure. */
function forEachVariant(check: (result: ChildResult, op: (name: string) => string) => void): void {
  for (const { label, result } of both().variants) {
    // The Winograd run's ratios are recorded under their own names in the test report.
    const op = (name: string): string => (label === 'RESNET_WINOGRAD=1' ? `${name} [Winograd]` : name);
    try {
      check(result, op);
    } catch (e) {
      throw new Error(`[optimized, ${label}] ${(e as Error).message}`);
    }
  }
}

describe('RESNET_KERNELS selects the kernels', () => {
  it("runs the reference kernels with RESNET_KERNELS=reference and the optimized ones by default (runtimeInfo().kernels)", () => {
    const { reference, optimized } = both();
    expect(reference.kernels).toBe('reference');
    expect(optimized.kernels).toBe('optimized');
    // The two runs really executed different code: the GEMM kernels sum in another order,
    // so some convolution outputs differ in their last bits.
    const differing = convCases.filter((_, i) => reference.conv[i]!.y !== optimized.conv[i]!.y).length;
    expect(differing).toBeGreaterThan(0);
  });

  it('RESNET_WINOGRAD=1 runs another path for 3×3 stride-1 convolutions (forward and input gradient differ in their last bits)', () => {
    const { optimized, variants } = both();
    const winograd = variants.find((v) => v.label === 'RESNET_WINOGRAD=1')!.result;
    const eligible = convCases
      .map((c, i) => ({ c, i }))
      .filter(({ c }) => c.dims.kh === 3 && c.dims.kw === 3 && c.opts.strides[0] === 1 && c.opts.strides[1] === 1 &&
        c.opts.dilations[0] === 1 && c.dims.groups === 1 && c.dims.oh * c.dims.ow > 1);
    expect(eligible.length).toBeGreaterThan(10);
    expect(eligible.filter(({ i }) => winograd.conv[i]!.y !== optimized.conv[i]!.y).length).toBeGreaterThan(eligible.length / 2);
    expect(eligible.filter(({ i }) => winograd.conv[i]!.dx !== optimized.conv[i]!.dx).length).toBeGreaterThan(eligible.length / 2);
    // The measured heuristic (RESNET_WINOGRAD unset) picks Winograd for 64→64 at 4×8×8 outputs.
    const byDefault = convCases.findIndex((c) => c.label.startsWith('Winograd 3×3/1 64→64 8×8 n4'));
    expect(byDefault).toBeGreaterThanOrEqual(0);
    expect(optimized.conv[byDefault]!.y).toBe(winograd.conv[byDefault]!.y);
    expect(optimized.conv[byDefault]!.dx).toBe(winograd.conv[byDefault]!.dx);
  });

  it('rejects an unknown RESNET_KERNELS value with E_ARG naming it, at runtimeInfo() and at model creation', () => {
    const script = `
      import { runtimeInfo, models } from ${JSON.stringify(join(process.cwd(), 'dist', 'index.js'))};
      const codes = [];
      for (const f of [() => runtimeInfo(), () => models.resnetCifar({ depth: 8, seed: 1 })]) {
        try { f(); codes.push('no error'); } catch (e) { codes.push(e.name + ' ' + e.code + ' ' + e.message); }
      }
      console.log(JSON.stringify(codes));`;
    if (!distBuilt) throw new Error('dist/index.js is missing: run `npm run compile`');
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, RESNET_KERNELS: 'fastest' },
      encoding: 'utf8',
    });
    const codes = JSON.parse(out.trim()) as string[];
    expect(codes).toHaveLength(2);
    for (const c of codes) {
      expect(c).toMatch(/^ResNetError E_ARG /);
      expect(c).toContain("RESNET_KERNELS must be 'optimized' or 'reference', got 'fastest'");
    }
  });
});

describe('conv2d: optimized vs reference kernels (seeded random shapes)', () => {
  it.each(convCases.map((c, i) => [c.label, i] as const))('%s', (_label, i) => {
    const { reference } = both();
    const c = convCases[i]!;
    const { n, kh, kw, cin, cout, groups, oh, ow } = c.dims;
    const ref = reference.conv[i]!;
    const winogradEligible = kh === 3 && kw === 3 && c.opts.strides[0] === 1 && c.opts.strides[1] === 1 &&
      c.opts.dilations[0] === 1 && c.opts.dilations[1] === 1 && groups === 1;
    forEachVariant((optimized, variantOp) => {
      const op = (name: string): string => (winogradEligible ? variantOp(name) : name);
      const opt = optimized.conv[i]!;
      expectCloseNamed(op('conv2d forward'), 'y', decode(opt.y!), decode(ref.y!), (kh * kw * cin) / groups);
      expectCloseNamed(op('conv2d input gradient'), 'dx', decode(opt.dx!), decode(ref.dx!), (kh * kw * cout) / groups);
      expectCloseNamed('conv2d weight gradient', 'dw', decode(opt.dw!), decode(ref.dw!), n * oh * ow);
      expect(opt.db === undefined).toBe(c.bias === undefined);
      if (c.bias) expectCloseNamed('conv2d bias gradient', 'db', decode(opt.db!), decode(ref.db!), n * oh * ow);
    });
  });
});

describe('batch norm: optimized vs reference kernels', () => {
  it.each(bnCases.map((c, i) => [c.label, i] as const))('%s', (_label, i) => {
    const { reference } = both();
    const c = bnCases[i]!;
    const ref = reference.batchNorm[i]!;
    forEachVariant((optimized) => {
      const opt = optimized.batchNorm[i]!;
      const op = c.skip ? 'batchNormAddRelu' : 'batchNorm';
      const forwardLength = c.training ? c.rows : 1;
      for (const key of ['y', 'runningMean', 'runningVar']) {
        expectCloseNamed(`${op} forward`, key, decode(opt[key]!), decode(ref[key]!), forwardLength);
      }
      const keys = c.skip ? ['dx', 'dskip', 'dgamma', 'dbeta'] : ['dx', 'dgamma', 'dbeta'];
      for (const key of keys) expectCloseNamed(`${op} backward`, key, decode(opt[key]!), decode(ref[key]!), forwardLength + c.rows);
    });
  });
});

describe('whole models: optimized vs reference kernels', () => {
  it.each(modelCases.map((c, i) => [c.label, i] as const))('%s: logits, loss, gradients, running statistics', (_label, i) => {
    const { reference } = both();
    const c = modelCases[i]!;
    const ref = reference.models[i]!;
    forEachVariant((optimized, op) => {
      const opt = optimized.models[i]!;
      expectCloseNamed(op('model logits (inference)'), 'logits', decode(opt.logits), decode(ref.logits), c.lengths.forward);
      expectCloseNamed('model loss', 'loss', Float32Array.of(opt.loss), Float32Array.of(ref.loss), c.lengths.forward + c.spec.classes);
      expect(opt.accuracy).toBe(ref.accuracy);
      const names = Object.keys(ref.gradients);
      expect(Object.keys(opt.gradients).sort()).toEqual([...names].sort());
      expect(names.length).toBeGreaterThan(0);
      for (const name of names) {
        expectCloseScaled(op('model gradients'), name, decode(opt.gradients[name]!), decode(ref.gradients[name]!), c.lengths.gradient);
      }
      for (const name of Object.keys(ref.runningStats)) {
        const layer = name.slice(0, name.lastIndexOf('.'));
        expectCloseNamed('model running statistics', name, decode(opt.runningStats[name]!), decode(ref.runningStats[name]!), c.lengths.at.get(layer)!);
      }
    });
  });
});
