// The ResNet builders against published figures: parameter counts (torchvision, Keras
// applications, the Keras CIFAR-10 example, Cadene's pretrainedmodels), output shapes,
// torchvision's state_dict names and layouts, summary() totals, and the initialisation
// (seeded, torchvision's kaiming_normal_(fan_out) / nn.Linear defaults, zeroInitResidual).
// Every expected value is a published figure or is computed here from first principles.
import v8 from 'node:v8';
import vm from 'node:vm';

import { describe, expect, it } from 'vitest';

import { allocationStats, type Model, models, Tensor } from '../../lib/index.js';
import { Rng } from '../support/random.js';

// There is no Model.dispose(): a model's native memory goes when it is garbage collected.
// The big builders hold up to 1 GB each (parameters + gradients), so the parameter-count
// tests collect garbage between models to keep one alive at a time.
let gc: (() => void) | undefined;
try {
  v8.setFlagsFromString('--expose-gc');
  gc = vm.runInNewContext('gc') as () => void;
} catch {
  gc = undefined;
}
/**
 * Collects garbage and lets finalizers run (they are deferred to the event loop). Also
 * yields to the event loop, which long synchronous builds otherwise starve (vitest's worker
 * RPC times out when a file runs a minute of synchronous tests back to back).
 */
async function collect(): Promise<void> {
  for (let i = 0; i < 2; i++) {
    gc?.();
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

// ---------------------------------------------------------------------------------------
// Independent architecture arithmetic (from the papers / reference implementations).

/** Output length of a padded window: floor((n + 2p - k) / s) + 1 (PyTorch's rule). */
const outLen = (n: number, k: number, s: number, p: number) => Math.floor((n + 2 * p - k) / s) + 1;

/**
 * Batch-norm channels of a torchvision ResNet (each BN holds 2 running statistics per
 * channel). torchvision: stem BN 64; a basic block has 2 BNs of `width`; a bottleneck has 2
 * BNs of its inner width floor(width * widthPerGroup / 64) * groups and one of 4 * width;
 * the first block of a stage has a downsample BN whenever its shape changes.
 */
function torchvisionBatchNormChannels(blocks: number[], bottleneck: boolean, groups = 1, widthPerGroup = 64): number {
  let total = 64;
  let channels = 64;
  blocks.forEach((n, i) => {
    const width = 64 * 2 ** i;
    const out = bottleneck ? 4 * width : width;
    const inner = bottleneck ? Math.floor((width * widthPerGroup) / 64) * groups : width;
    const perBlock = bottleneck ? 2 * inner + out : 2 * width;
    total += n * perBlock;
    if (i > 0 || channels !== out) total += out; // downsample.1
    channels = out;
  });
  return total;
}

/**
 * Parameters of the Keras CIFAR-10 example's resnet_v1 (keras-team/keras
 * examples/cifar10_resnet.py), every conv with a bias (Keras' default): stem conv 3×3 → 16
 * + BN; per stage (16, 32, 64 filters) n blocks of conv3×3-BN-ReLU-conv3×3-BN, the first
 * block of stages 2 and 3 with a 1×1 strided projection (no BN); AveragePooling2D(8),
 * Flatten, Dense(classes). Returns trainable and non-trainable counts.
 */
function kerasCifarV1Params(depth: number, classes = 10): { trainable: number; nonTrainable: number } {
  const n = (depth - 2) / 6;
  let trainable = 0;
  let nonTrainable = 0;
  const conv = (k: number, cin: number, cout: number) => (trainable += k * k * cin * cout + cout);
  const bn = (c: number) => {
    trainable += 2 * c;
    nonTrainable += 2 * c;
  };
  conv(3, 3, 16);
  bn(16);
  let cin = 16;
  for (let stage = 0; stage < 3; stage++) {
    const filters = 16 * 2 ** stage;
    for (let b = 0; b < n; b++) {
      conv(3, cin, filters);
      bn(filters);
      conv(3, filters, filters);
      bn(filters);
      if (stage > 0 && b === 0) conv(1, cin, filters);
      cin = filters;
    }
  }
  trainable += 64 * classes + classes;
  return { trainable, nonTrainable };
}

/**
 * The same example's resnet_v2 (depth 9n+2): stem conv 3×3 → 16 + BN + ReLU; stage s has
 * num_filters_in = 16, 64, 128 and num_filters_out = 64, 128, 256; each block is
 * [BN-ReLU]-conv1×1(in)-BN-ReLU-conv3×3(in)-BN-ReLU-conv1×1(out), the very first block
 * without its leading BN-ReLU, the first block of every stage with a 1×1 projection
 * (no BN) of its raw input; then BN, ReLU, AveragePooling2D(8), Flatten, Dense.
 */
function kerasCifarV2Params(depth: number, classes = 10): { trainable: number; nonTrainable: number } {
  const n = (depth - 2) / 9;
  let trainable = 0;
  let nonTrainable = 0;
  const conv = (k: number, cin: number, cout: number) => (trainable += k * k * cin * cout + cout);
  const bn = (c: number) => {
    trainable += 2 * c;
    nonTrainable += 2 * c;
  };
  conv(3, 3, 16);
  bn(16);
  let filtersIn = 16;
  let channels = 16;
  for (let stage = 0; stage < 3; stage++) {
    const filtersOut = stage === 0 ? filtersIn * 4 : filtersIn * 2;
    for (let b = 0; b < n; b++) {
      if (!(stage === 0 && b === 0)) bn(channels);
      conv(1, channels, filtersIn);
      bn(filtersIn);
      conv(3, filtersIn, filtersIn);
      bn(filtersIn);
      conv(1, filtersIn, filtersOut);
      if (b === 0) conv(1, channels, filtersOut);
      channels = filtersOut;
    }
    filtersIn = filtersOut;
  }
  bn(channels);
  trainable += channels * classes + classes;
  return { trainable, nonTrainable };
}

/** torchvision resnet18's state_dict (without num_batches_tracked), shapes transposed to HWIO / [in, out]. */
function torchvisionResnet18StateDict(): Array<[string, number[]]> {
  const out: Array<[string, number[]]> = [];
  const conv = (name: string, k: number, cin: number, cout: number) => out.push([`${name}.weight`, [k, k, cin, cout]]);
  const bn = (name: string, c: number) => {
    for (const s of ['weight', 'bias', 'running_mean', 'running_var']) out.push([`${name}.${s}`, [c]]);
  };
  conv('conv1', 7, 3, 64);
  bn('bn1', 64);
  let cin = 64;
  [64, 128, 256, 512].forEach((width, i) => {
    for (let j = 0; j < 2; j++) {
      const p = `layer${i + 1}.${j}`;
      conv(`${p}.conv1`, 3, cin, width);
      bn(`${p}.bn1`, width);
      conv(`${p}.conv2`, 3, width, width);
      bn(`${p}.bn2`, width);
      if (j === 0 && cin !== width) {
        conv(`${p}.downsample.0`, 1, cin, width);
        bn(`${p}.downsample.1`, width);
      }
      cin = width;
    }
  });
  out.push(['fc.weight', [512, 1000]], ['fc.bias', [1000]]);
  return out;
}

/** Index of the first element where a and b differ (NaN-aware), -1 when equal; fast on big arrays. */
function firstDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}

const group = (n: number) => n.toLocaleString('en-US');

function moments(v: Float32Array): { mean: number; std: number } {
  let s = 0;
  for (const x of v) s += x;
  const mean = s / v.length;
  let q = 0;
  for (const x of v) q += (x - mean) ** 2;
  return { mean, std: Math.sqrt(q / v.length) };
}

// ---------------------------------------------------------------------------------------

type Builder = () => Model;
interface CountCase {
  name: string;
  build: Builder;
  /** Published trainable parameter count. */
  trainable: number;
  /** Published or derived count including batch-norm running statistics. */
  total: number;
  /** Channels of the last feature map (before the global pool) at 224×224. */
  features: number;
}

const tv = (blocks: number[], bottleneck: boolean, groups = 1, widthPerGroup = 64) =>
  2 * torchvisionBatchNormChannels(blocks, bottleneck, groups, widthPerGroup);

const B18 = [2, 2, 2, 2];
const B34 = [3, 4, 6, 3];
const B101 = [3, 4, 23, 3];
const B152 = [3, 8, 36, 3];

// torchvision's documented parameter counts (torchvision.models docs, "Params" column, exact
// values from sum(p.numel() for p in model.parameters())); SE-ResNet-50 from Cadene's
// pretrainedmodels (se_resnet50); the v2 models from Keras applications' model.summary()
// ("Total params", which includes the BN moving statistics): ResNet50V2 25,613,800
// (trainable 25,568,360), ResNet101V2 44,675,560, ResNet152V2 60,380,648.
const COUNT_CASES: CountCase[] = [
  { name: 'resnet18', build: () => models.resnet18({ seed: 1 }), trainable: 11_689_512, total: 11_689_512 + tv(B18, false), features: 512 },
  { name: 'resnet34', build: () => models.resnet34({ seed: 1 }), trainable: 21_797_672, total: 21_797_672 + tv(B34, false), features: 512 },
  { name: 'resnet50', build: () => models.resnet50({ seed: 1 }), trainable: 25_557_032, total: 25_557_032 + tv(B34, true), features: 2048 },
  {
    name: 'resnet50 (variant v1)',
    build: () => models.resnet50({ seed: 1, variant: 'v1' }),
    trainable: 25_557_032,
    total: 25_557_032 + tv(B34, true),
    features: 2048,
  },
  { name: 'resnet101', build: () => models.resnet101({ seed: 1 }), trainable: 44_549_160, total: 44_549_160 + tv(B101, true), features: 2048 },
  { name: 'resnet152', build: () => models.resnet152({ seed: 1 }), trainable: 60_192_808, total: 60_192_808 + tv(B152, true), features: 2048 },
  {
    name: 'resnext50_32x4d',
    build: () => models.resnext50_32x4d({ seed: 1 }),
    trainable: 25_028_904,
    total: 25_028_904 + tv(B34, true, 32, 4),
    features: 2048,
  },
  {
    name: 'resnext101_32x8d',
    build: () => models.resnext101_32x8d({ seed: 1 }),
    trainable: 88_791_336,
    total: 88_791_336 + tv(B101, true, 32, 8),
    features: 2048,
  },
  {
    name: 'resnext101_64x4d',
    build: () => models.resnext101_64x4d({ seed: 1 }),
    trainable: 83_455_272,
    total: 83_455_272 + tv(B101, true, 64, 4),
    features: 2048,
  },
  {
    name: 'wideResnet50_2',
    build: () => models.wideResnet50_2({ seed: 1 }),
    trainable: 68_883_240,
    total: 68_883_240 + tv(B34, true, 1, 128),
    features: 2048,
  },
  {
    name: 'wideResnet101_2',
    build: () => models.wideResnet101_2({ seed: 1 }),
    trainable: 126_886_696,
    total: 126_886_696 + tv(B101, true, 1, 128),
    features: 2048,
  },
  { name: 'seResnet50', build: () => models.seResnet50({ seed: 1 }), trainable: 28_088_024, total: 28_088_024 + tv(B34, true), features: 2048 },
  { name: 'resnet50v2', build: () => models.resnet50v2({ seed: 1 }), trainable: 25_568_360, total: 25_613_800, features: 2048 },
  { name: 'resnet101v2', build: () => models.resnet101v2({ seed: 1 }), trainable: 44_675_560 - 97_664, total: 44_675_560, features: 2048 },
  { name: 'resnet152v2', build: () => models.resnet152v2({ seed: 1 }), trainable: 60_380_648 - 143_744, total: 60_380_648, features: 2048 },
];
// (Keras' non-trainable counts for ResNet101V2 / ResNet152V2 are 97,664 / 143,744: two
// moving statistics per BN channel, i.e. ResNet50V2's 45,440 plus 17 resp. 4 + 30 extra blocks'
// 2·(1024 + 256 + 256) resp. 2·(512 + 128 + 128) — see the derivation test below.)

describe('parameter counts match the published figures', () => {
  it('the derived torchvision batch-norm totals agree with the known resnet18 / resnet50 figures', () => {
    // resnet18: 64 + 4·64 + (4·128 + 128) + (4·256 + 256) + (4·512 + 512) = 4,800 channels.
    expect(torchvisionBatchNormChannels(B18, false)).toBe(4800);
    // resnet50: stem 64, stages (2·64 + 256)·3 + 256, (2·128 + 512)·4 + 512, (2·256 + 1024)·6 + 1024, (2·512 + 2048)·3 + 2048.
    expect(torchvisionBatchNormChannels(B34, true)).toBe(64 + 1408 + 3584 + 10240 + 11264);
  });

  it('the Keras v2 non-trainable counts follow from ResNet50V2 block by block', () => {
    const v50 = 45_440;
    expect(v50 + 17 * 2 * (1024 + 256 + 256)).toBe(97_664);
    expect(97_664 + 4 * 2 * (512 + 128 + 128) + 13 * 2 * (1024 + 256 + 256)).toBe(143_744);
  });

  for (const c of COUNT_CASES) {
    it(`${c.name}: ${group(c.trainable)} trainable, ${group(c.total)} with batch-norm statistics; [1, 1000] logits at 224×224`, async () => {
      let model: Model | null = c.build();
      try {
        expect(model.paramCount()).toBe(c.trainable);
        expect(model.paramCount({ includeNonTrainable: true })).toBe(c.total);
        const layers = model.layers();
        const last = layers[layers.length - 1]!;
        expect(last.name).toBe('fc');
        expect(last.outputShape).toEqual([1, 1000]);
        // The global pool reads a 7×7 map (224 / 32) of the final width.
        const pool = layers.find((l) => l.name === 'avgpool')!;
        const before = layers.find((l) => l.name === pool.inputs[0])!;
        expect(before.outputShape).toEqual([1, 7, 7, c.features]);
        expect(pool.outputShape).toEqual([1, c.features]);
        // Per-layer counts add up to the totals.
        expect(layers.reduce((s, l) => s + l.params, 0)).toBe(c.trainable);
        expect(layers.reduce((s, l) => s + l.params + l.nonTrainable, 0)).toBe(c.total);
      } finally {
        model = null;
        await collect();
      }
    });
  }

  it('resnetCifar depth 20 (convBias: true) is the Keras CIFAR-10 example ResNet20 v1: 273,066 trainable, 274,442 in all', () => {
    // The example's printed summary: Total params: 274,442, Trainable params: 273,066, Non-trainable params: 1,376.
    const keras = kerasCifarV1Params(20);
    expect(keras).toEqual({ trainable: 273_066, nonTrainable: 1_376 });
    const model = models.resnetCifar({ depth: 20, convBias: true, seed: 1 });
    expect(model.paramCount()).toBe(273_066);
    expect(model.paramCount({ includeNonTrainable: true })).toBe(274_442);
    const layers = model.layers();
    expect(layers[layers.length - 1]!.outputShape).toEqual([1, 10]);
  });

  it.each([32, 44, 56, 110])('resnetCifar depth %i v1 (convBias: true) matches the Keras example architecture', (depth) => {
    const keras = kerasCifarV1Params(depth);
    const model = models.resnetCifar({ depth, convBias: true, seed: 1 });
    expect(model.paramCount()).toBe(keras.trainable);
    expect(model.paramCount({ includeNonTrainable: true })).toBe(keras.trainable + keras.nonTrainable);
  });

  it.each([11, 29, 56])('resnetCifar depth %i v2 (convBias: true) matches the Keras example resnet_v2 architecture', (depth) => {
    const keras = kerasCifarV2Params(depth);
    const model = models.resnetCifar({ depth, version: 2, convBias: true, seed: 1 });
    expect(model.paramCount()).toBe(keras.trainable);
    expect(model.paramCount({ includeNonTrainable: true })).toBe(keras.trainable + keras.nonTrainable);
    const layers = model.layers();
    expect(layers[layers.length - 1]!.outputShape).toEqual([1, 10]);
  });

  it('resnetCifar without convBias has exactly one bias per convolution fewer', () => {
    // ResNet20 v1 has 21 convolutions (stem, 2·9 in the blocks, 2 projections); their output
    // channels: stem 16; stage 1: 6 × 16; stage 2: 6 × 32 + projection 32; stage 3: 6 × 64 + projection 64.
    const biases = 16 + 6 * 16 + 7 * 32 + 7 * 64;
    expect(models.resnetCifar({ depth: 20, seed: 1 }).paramCount()).toBe(273_066 - biases);
  });
});

describe('resnet18 (torchvision layout)', () => {
  const model = models.resnet18({ seed: 1234 });

  it("parameter names and order are torchvision's state_dict keys (without num_batches_tracked), in HWIO / [in, out] layouts", () => {
    const expected = torchvisionResnet18StateDict();
    expect(expected).toHaveLength(102); // torchvision: 122 keys, 20 of them num_batches_tracked
    const info = model.parameterInfo();
    expect(info.map((p) => p.name)).toEqual(expected.map(([n]) => n));
    expect(info.map((p) => [...p.shape])).toEqual(expected.map(([, s]) => s));
    for (const p of info) {
      expect(p.trainable, p.name).toBe(!/running_(mean|var)$/.test(p.name));
      expect(p.layer, p.name).toBe(p.name.replace(/\.(weight|bias|running_mean|running_var)$/, ''));
    }
    expect(info.find((p) => p.name === 'conv1.weight')!.shape).toEqual([7, 7, 3, 64]);
    expect(info.find((p) => p.name === 'layer1.0.conv1.weight')!.shape).toEqual([3, 3, 64, 64]);
    expect(info.find((p) => p.name === 'layer2.0.downsample.0.weight')!.shape).toEqual([1, 1, 64, 128]);
    expect(info.find((p) => p.name === 'fc.weight')!.shape).toEqual([512, 1000]);
  });

  it('parameters() returns values of the right sizes and the per-layer table agrees', () => {
    const params = model.parameters();
    for (const p of params) expect(p.values.length, p.name).toBe(p.shape.reduce((a, b) => a * b, 1));
    const sum = (pred: (p: (typeof params)[number]) => boolean) => params.filter(pred).reduce((s, p) => s + p.values.length, 0);
    expect(sum((p) => p.trainable)).toBe(11_689_512);
    expect(sum((p) => !p.trainable)).toBe(9_600);
    const layers = model.layers();
    const conv1 = layers.find((l) => l.name === 'conv1')!;
    expect(conv1).toMatchObject({ type: 'conv2d', params: 7 * 7 * 3 * 64, nonTrainable: 0, inputs: ['input'], outputShape: [1, 112, 112, 64] });
    const bn = layers.find((l) => l.name === 'layer3.0.downsample.1')!;
    expect(bn).toMatchObject({ type: 'batchNorm', params: 2 * 256, nonTrainable: 2 * 256, outputShape: [1, 14, 14, 256] });
    expect(layers.find((l) => l.name === 'fc')).toMatchObject({ type: 'dense', params: 512 * 1000 + 1000, inputs: ['avgpool'] });
  });

  it('summary() has the header, every layer, and the totals 11,699,112 / 11,689,512 / 9,600', () => {
    const text = model.summary();
    const lines = text.split('\n');
    expect(lines[0]).toBe('Model: "resnet18"');
    expect(text).toMatch(/Layer \(type\)\s+Output Shape\s+Param #\s+Connected to/);
    for (const l of model.layers()) expect(text).toContain(`${l.name} (${l.type})`);
    // 2 × 4,800 BN channels of running statistics (derived above).
    const nonTrainable = 2 * torchvisionBatchNormChannels(B18, false);
    expect(text).toContain(`Total params: ${group(11_689_512 + nonTrainable)}`);
    expect(text).toContain('Total params: 11,699,112');
    expect(text).toContain('Trainable params: 11,689,512');
    expect(text).toContain('Non-trainable params: 9,600');
    // A row: conv1 (conv2d), (None, 112, 112, 64), 7·7·3·64 = 9,408 parameters, from the input.
    expect(lines.find((l) => l.startsWith('conv1 (conv2d)'))).toMatch(/^conv1 \(conv2d\)\s+\(None, 112, 112, 64\)\s+9,408\s+input$/);
    expect(lines.find((l) => l.startsWith('fc (dense)'))).toMatch(/\(None, 1000\)\s+513,000\s+avgpool$/);
    // A summary at another input size shows that size's shapes.
    expect(model.summary([64, 64, 3])).toMatch(/layer4\.1\.relu \(relu\)\s+\(None, 2, 2, 512\)/);
  });

  it('takes a 67×61 image as torchvision does: every shape follows floor((n + 2p - k) / s) + 1, and predict gives [1, 1000]', async () => {
    const [h, w] = [67, 61];
    const stem = (n: number) => outLen(outLen(n, 7, 2, 3), 3, 2, 1);
    const stage = (n: number) => outLen(n, 3, 2, 1);
    const expected: Record<string, number[]> = {
      conv1: [1, outLen(h, 7, 2, 3), outLen(w, 7, 2, 3), 64],
      maxpool: [1, stem(h), stem(w), 64],
      'layer1.1.relu': [1, stem(h), stem(w), 64],
      'layer2.1.relu': [1, stage(stem(h)), stage(stem(w)), 128],
      'layer2.0.downsample.0': [1, outLen(stem(h), 1, 2, 0), outLen(stem(w), 1, 2, 0), 128],
      'layer3.1.relu': [1, stage(stage(stem(h))), stage(stage(stem(w))), 256],
      'layer4.1.relu': [1, stage(stage(stage(stem(h)))), stage(stage(stage(stem(w)))), 512],
      avgpool: [1, 512],
      fc: [1, 1000],
    };
    expect(expected.conv1).toEqual([1, 34, 31, 64]);
    expect(expected['layer4.1.relu']).toEqual([1, 3, 2, 512]);
    const layers = model.layers([h, w, 3]);
    for (const [name, shape] of Object.entries(expected)) {
      expect(layers.find((l) => l.name === name)?.outputShape, name).toEqual(shape);
    }
    const rng = new Rng(67);
    const out = await model.predict(Tensor.fromArray(rng.array(h * w * 3), [1, h, w, 3]));
    expect(out.shape).toEqual([1, 1000]);
    expect(out.toFloat32Array().every(Number.isFinite)).toBe(true);
    out.dispose();
  });

  it('getParameter / setParameter round-trip (Float32Array and plain arrays) and touch nothing else', () => {
    const rng = new Rng(5);
    const name = 'layer1.0.conv1.weight';
    const other = model.getParameter('layer1.0.conv2.weight');
    const values = rng.array(3 * 3 * 64 * 64);
    const original = model.getParameter(name);
    model.setParameter(name, values);
    expect(firstDifference(model.getParameter(name), values)).toBe(-1);
    // getParameter returns a copy: changing it changes nothing.
    const copy = model.getParameter(name);
    copy[0] = 123;
    expect(model.getParameter(name)[0]).toBe(values[0]);
    model.setParameter(
      'fc.bias',
      Array.from({ length: 1000 }, (_, i) => i / 8),
    );
    expect(model.getParameter('fc.bias')).toEqual(Float32Array.from({ length: 1000 }, (_, i) => i / 8));
    model.setParameter('bn1.running_var', new Float32Array(64).fill(2.5));
    expect(model.getParameter('bn1.running_var')).toEqual(new Float32Array(64).fill(2.5));
    expect(firstDifference(model.getParameter('layer1.0.conv2.weight'), other)).toBe(-1);
    model.setParameter(name, original);
    expect(firstDifference(model.getParameter(name), original)).toBe(-1);
  });
});

describe('initialisation', () => {
  it('the same seed gives identical weights; another seed different ones', () => {
    const a = models.resnetCifar({ depth: 20, seed: 77 });
    const b = models.resnetCifar({ depth: 20, seed: 77 });
    const c = models.resnetCifar({ depth: 20, seed: 78 });
    for (const p of a.parameterInfo()) {
      const va = a.getParameter(p.name);
      expect(firstDifference(b.getParameter(p.name), va), p.name).toBe(-1);
      if (p.shape.length > 1 || p.name === 'fc.bias') {
        // Random tensors: another seed changes (practically) every value.
        const vc = c.getParameter(p.name);
        let same = 0;
        for (let i = 0; i < va.length; i++) same += va[i] === vc[i] ? 1 : 0;
        expect(same, p.name).toBeLessThanOrEqual(Math.max(1, va.length / 1000));
      }
    }
    // Without a seed, two models differ.
    const d = models.resnetCifar({ depth: 20 });
    const e = models.resnetCifar({ depth: 20 });
    expect(d.getParameter('conv1.weight')).not.toEqual(e.getParameter('conv1.weight'));
  });

  it('resnet18 with seed 0 and seed 2**40 builds deterministic, distinct weights', async () => {
    const a = models.resnet18({ seed: 2 ** 40 }).getParameter('conv1.weight');
    const b = models.resnet18({ seed: 2 ** 40 }).getParameter('conv1.weight');
    const c = models.resnet18({ seed: 0 }).getParameter('conv1.weight');
    await collect();
    expect(firstDifference(a, b)).toBe(-1);
    expect(firstDifference(a, c)).not.toBe(-1);
  });

  describe('resnet18 follows torchvision (kaiming_normal_ fan_out for convs, nn.Linear default for fc, BN 1/0/0/1)', () => {
    const model = models.resnet18({ seed: 99 });
    const info = model.parameterInfo();

    it('every conv weight ~ N(0, 2 / (k·k·out)): mean, std and the normal shape within 6 sampling sigmas', () => {
      const convs = info.filter((p) => p.shape.length === 4);
      expect(convs).toHaveLength(20);
      for (const p of convs) {
        const [kh, kw, , out] = p.shape as [number, number, number, number];
        const sigma = Math.sqrt(2 / (kh * kw * out));
        const v = model.getParameter(p.name);
        const n = v.length;
        const { mean, std } = moments(v);
        // Standard errors: mean σ/√n; sample std ≈ σ/√(2n) for a normal sample.
        expect(Math.abs(mean), p.name).toBeLessThan((6 * sigma) / Math.sqrt(n));
        expect(Math.abs(std / sigma - 1), p.name).toBeLessThan(6 / Math.sqrt(2 * n));
        // Normal, not uniform of the same variance: P(|x| < σ) = 0.6827 (uniform: 0.577).
        let inside = 0;
        for (const x of v) inside += Math.abs(x) < sigma ? 1 : 0;
        const pIn = 0.682689;
        expect(Math.abs(inside / n - pIn), p.name).toBeLessThan(6 * Math.sqrt((pIn * (1 - pIn)) / n));
      }
    });

    it('fc weight and bias ~ U(-1/√512, 1/√512)', () => {
      const bound = 1 / Math.sqrt(512);
      const w = model.getParameter('fc.weight');
      const b = model.getParameter('fc.bias');
      for (const v of [w, b]) {
        let max = 0;
        for (const x of v) max = Math.max(max, Math.abs(x));
        expect(max).toBeLessThanOrEqual(bound);
      }
      // 512,000 uniform samples: max |x| within 1e-4 of the bound, variance bound²/3 within 6 sigmas.
      let max = 0;
      for (const x of w) max = Math.max(max, Math.abs(x));
      expect(max).toBeGreaterThan(bound * (1 - 1e-4));
      const { mean, std } = moments(w);
      const n = w.length;
      const sigma = bound / Math.sqrt(3);
      expect(Math.abs(mean)).toBeLessThan((6 * sigma) / Math.sqrt(n));
      // Var of x² for U(-a, a): a⁴/5 - a⁴/9 = 4a⁴/45; relative SE of the variance = sqrt(4/45 / n) / (1/3).
      expect(Math.abs((std * std) / (sigma * sigma) - 1)).toBeLessThan(6 * 3 * Math.sqrt(4 / 45 / n));
      const { std: bStd } = moments(b);
      expect(bStd).toBeGreaterThan(sigma * 0.8);
    });

    it('batch-norm: weight 1, bias 0, running_mean 0, running_var 1', () => {
      const bns = info.filter((p) => p.shape.length === 1 && p.name !== 'fc.bias');
      expect(bns).toHaveLength(20 * 4);
      for (const p of bns) {
        const fill = /\.(weight|running_var)$/.test(p.name) ? 1 : 0;
        expect(model.getParameter(p.name), p.name).toEqual(new Float32Array(p.shape[0]!).fill(fill));
      }
    });
  });

  it('zeroInitResidual: every basic block bn2 scale is 0, every other BN scale 1 (resnet18)', async () => {
    const model = models.resnet18({ seed: 3, zeroInitResidual: true });
    const gammas = model.parameterInfo().filter((p) => p.shape.length === 1 && p.name.endsWith('.weight'));
    let zeroed = 0;
    for (const p of gammas) {
      const residualLast = /^layer\d\.\d\.bn2\.weight$/.test(p.name);
      zeroed += residualLast ? 1 : 0;
      expect(model.getParameter(p.name), p.name).toEqual(new Float32Array(p.shape[0]!).fill(residualLast ? 0 : 1));
    }
    expect(zeroed).toBe(8);
    // Without the option the same seed gives scale 1 and the same conv weights.
    const plain = models.resnet18({ seed: 3 });
    expect(plain.getParameter('layer1.0.bn2.weight')).toEqual(new Float32Array(64).fill(1));
    expect(firstDifference(plain.getParameter('layer4.1.conv2.weight'), model.getParameter('layer4.1.conv2.weight'))).toBe(-1);
    await collect();
  });

  it('zeroInitResidual: every bottleneck bn3 scale is 0, bn1 / bn2 / downsample.1 scales stay 1', () => {
    const model = models.resnet({
      classes: 5,
      inputShape: [32, 32, 3],
      stages: [
        { blocks: 2, width: 8 },
        { blocks: 2, width: 16 },
      ],
      block: 'bottleneck',
      seed: 4,
      zeroInitResidual: true,
    });
    const gammas = model.parameterInfo().filter((p) => p.shape.length === 1 && p.name.endsWith('.weight'));
    let zeroed = 0;
    for (const p of gammas) {
      const residualLast = /^layer\d\.\d\.bn3\.weight$/.test(p.name);
      zeroed += residualLast ? 1 : 0;
      expect(model.getParameter(p.name), p.name).toEqual(new Float32Array(p.shape[0]!).fill(residualLast ? 0 : 1));
    }
    expect(zeroed).toBe(4);
    expect(gammas.some((p) => p.name === 'layer1.0.downsample.1.weight')).toBe(true);
  });

  it('memory of a model is released once it is garbage collected', async () => {
    expect(gc, 'garbage collection must be exposed (v8 --expose-gc) for this test').toBeDefined();
    await collect();
    const before = allocationStats().liveBytes;
    let model: Model | null = models.resnet34({ seed: 1 });
    // parameters + gradients of 21.8M floats at least
    expect(allocationStats().liveBytes - before).toBeGreaterThanOrEqual(2 * 4 * 21_797_672);
    expect(model.paramCount()).toBe(21_797_672);
    model = null;
    await collect();
    expect(allocationStats().liveBytes).toBeLessThanOrEqual(before);
  });
});
