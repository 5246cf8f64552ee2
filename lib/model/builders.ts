// ResNet-family model builders: pure functions from options to a ModelSpec (spec.ts). No
// native code is involved; the engine compiles the spec later. resnetSpec() is the one
// generic builder; every named builder (resnet18 … resnetCifar) is a preset of it.
//
// Layer naming (torchvision module names where torchvision has the module, so weight import
// is a lookup; every name is unique, the first layer reads 'input'):
//   stem        'imagenet': conv1, bn1, relu, maxpool        'cifar': conv1, bn1, relu
//               explicit stems: conv{k}, bn{k} (k counts that kind from 1); relu, maxpool,
//               pad, stem_avgpool for the first of their kind, then relu2, maxpool2, pad2, …;
//               a descriptor's own `name` overrides.
//   blocks      prefix layer{i}.{j}: i = stage from 1, j = block in the stage from 0.
//               post-activation (basic, bottleneck):
//                 {p}.conv1, {p}.bn1, {p}.relu1, {p}.conv2, {p}.bn2, [{p}.relu2, {p}.conv3, {p}.bn3],
//                 [{p}.se], shortcut, {p}.add, {p}.relu
//               pre-activation (preactBasic, preactBottleneck): bn{k}/relu{k} precede conv{k}:
//                 [{p}.bn1, {p}.relu1,] {p}.conv1, {p}.bn2, {p}.relu2, {p}.conv2, [{p}.bn3, {p}.relu3, {p}.conv3],
//                 [{p}.se], shortcut, {p}.add            (no ReLU after the add)
//               shortcut: {p}.downsample.0 (1×1 conv), {p}.downsample.1 (its batch-norm, if any);
//                 parameter-free shortcuts (zero-pad, 1×1 max-pool subsampling) are {p}.shortcut;
//                 identity shortcuts add no layer.
//   after the stages (pre-activation models): post_bn, post_relu   (Keras ResNetV2's names)
//   head        avgpool (global or windowed average pool) | head_maxpool, flatten,
//               fc_hidden{k} + fc_hidden{k}_relu (hidden dense layers, k from 1), fc (the logits).
import { ResNetError } from '../errors.js';
import { isPlainObject } from '../validate.js';
import { type BlockConfig, SpecGraph, convBias, residualBlock } from './blocks.js';
import type { ModelSpec, SpecPadding } from './spec.js';

// ---------------------------------------------------------------------------------------
// Option types

/** Residual block layouts. */
export type BlockType = 'basic' | 'bottleneck' | 'preactBasic' | 'preactBottleneck';

/** A number for both axes, or [height, width]. */
export type Size2 = number | [number, number];

/** A convolution in an explicit stem. */
export interface StemConvOptions {
  type: 'conv2d';
  filters: number;
  kernelSize: Size2;
  /** Default 1. */
  strides?: Size2;
  /** Default 'valid' (as Keras and tfjs). */
  padding?: SpecPadding;
  /** Default: the model's `convBias` rule. */
  useBias?: boolean;
  name?: string;
}

/** A batch-norm in an explicit stem (the model's bnEpsilon / bnMomentum). */
export interface StemBatchNormOptions {
  type: 'batchNorm';
  name?: string;
}

/** A ReLU in an explicit stem. */
export interface StemReluOptions {
  type: 'relu';
  name?: string;
}

/** A pooling window (stem or head). */
export interface PoolWindowOptions {
  type: 'maxPool' | 'avgPool';
  poolSize: Size2;
  /** Default: poolSize (as Keras). */
  strides?: Size2;
  /** Default 'valid' (as Keras). A number pads that much on every side. */
  padding?: SpecPadding;
}

/** A pooling layer in an explicit stem. */
export interface StemPoolOptions extends PoolWindowOptions {
  name?: string;
}

/** Keras' ZeroPadding2D in an explicit stem: n on every side, or [top, bottom, left, right]. */
export interface StemZeroPadOptions {
  type: 'zeroPad';
  padding: number | [number, number, number, number];
  name?: string;
}

/** One layer of an explicit stem; the layers run in order, the first reads the input. */
export type StemLayerOptions = StemConvOptions | StemBatchNormOptions | StemReluOptions | StemPoolOptions | StemZeroPadOptions;

/**
 * The stem, before the first stage.
 * - 'imagenet': conv 7×7/2 (64, padding 3), BN, ReLU, max-pool 3×3/2 (padding 1) — torchvision.
 * - 'cifar': conv 3×3/1 (16, padding 1), BN, ReLU — He et al.'s CIFAR networks.
 * - a list of layers, e.g. the Keras ResNet-34 tutorial's
 *   `[{ type: 'zeroPad', padding: 3 }, { type: 'conv2d', filters: 64, kernelSize: 7, strides: 2, padding: 'same', useBias: true },
 *     { type: 'batchNorm' }, { type: 'relu' }, { type: 'maxPool', poolSize: 3, strides: 2, padding: 'same' }]`.
 */
export type StemOptions = 'imagenet' | 'cifar' | StemLayerOptions[];

/** The classifier after the last stage (and after post_bn / post_relu when `postNorm`). */
export interface HeadOptions {
  /**
   * 'global' (default): global average pool. 'flatten': flatten the feature map as it is.
   * A window (e.g. `{ type: 'avgPool', poolSize: 8 }`, Keras' AveragePooling2D(8)): pool, then flatten.
   */
  pool?: 'global' | 'flatten' | PoolWindowOptions;
  /** Units of hidden dense layers (each followed by a ReLU) before the classifier; default none. */
  hidden?: number[];
  /** Biases on the dense layers; default true. */
  useBias?: boolean;
}

/** One stage: `blocks` residual blocks of one width. */
export interface StageOptions {
  /** Number of residual blocks, ≥ 1. */
  blocks: number;
  /**
   * Base width ("planes" in torchvision). A block outputs `width * expansion` channels; a
   * bottleneck's inner width is `floor(width * widthPerGroup / 64) * groups`; a basic block's is `width`.
   */
  width: number;
  /** Stride of the stage's downsampling block; default 1 for the first stage, 2 for the others. */
  stride?: number;
  /** Overrides the model's `expansion` for this stage (Keras' CIFAR resnet_v2 expands 4× in stage 1, 2× after). */
  expansion?: number;
}

/** Squeeze-and-excitation after each residual branch (Hu et al.). */
export interface SqueezeExciteOptions {
  /** hidden = max(1, floor(channels / reduction)); SE-ResNet uses 16. */
  reduction: number;
}

/** Options of {@link resnetSpec}. Only `classes`, `stages` and `block` are required. */
export interface ResNetOptions {
  /** The spec's name; default 'resnet'. */
  name?: string;
  /** Number of classes (units of the final dense layer 'fc'). */
  classes: number;
  /** [height, width, channels] of the input; default [224, 224, 3]. */
  inputShape?: [number, number, number];
  /** Default 'imagenet'. */
  stem?: StemOptions;
  /** The stages, in order; stage i (from 1) names its blocks layer{i}.{j}. */
  stages: StageOptions[];
  /**
   * - 'basic': conv3×3-BN-ReLU-conv3×3-BN, add, ReLU.
   * - 'bottleneck': conv1×1-BN-ReLU-conv3×3(groups)-BN-ReLU-conv1×1-BN, add, ReLU.
   * - 'preactBasic' / 'preactBottleneck': the same convolutions, each preceded by BN-ReLU;
   *   nothing after the add (He et al. 2016, "Identity mappings").
   */
  block: BlockType;
  /** Groups of a bottleneck's 3×3 convolution (ResNeXt cardinality); default 1. Bottlenecks only. */
  groups?: number;
  /** torchvision's width_per_group; default 64 (ResNeXt 32×4d: 4, wide ResNet-50-2: 128). Bottlenecks only. */
  widthPerGroup?: number;
  /** Output channels per unit of stage width; default 1 for basic blocks, 4 for bottlenecks. */
  expansion?: number;
  /** Squeeze-and-excitation at the end of every residual branch (after its last BN, or its last conv when pre-activated). */
  se?: SqueezeExciteOptions;
  /**
   * Shortcut of a block whose output shape differs from its input's: 'projection' (default),
   * a 1×1 convolution with the stride; 'zeroPad', He et al.'s parameter-free option A
   * (subsample, zero channels). Identity whenever the shapes agree.
   */
  shortcut?: 'projection' | 'zeroPad';
  /** Batch-norm after a projection's convolution; default true for post-activation blocks, false for pre-activation. */
  projectionNorm?: boolean;
  /**
   * The shortcut of a block that strides without changing channels: 'projection' (default,
   * torchvision), or 'subsample' (every stride-th pixel, a 1×1 max pool: Keras ResNetV2).
   */
  strideShortcut?: 'projection' | 'subsample';
  /**
   * In a bottleneck, the convolution that carries the stride: '3x3' (default; ResNet v1.5,
   * torchvision) or '1x1' (the first 1×1: ResNet v1, Keras ResNet50, Keras CIFAR resnet_v2).
   */
  strideOn?: '3x3' | '1x1';
  /** Which block of a stage carries the stage's stride: 'first' (default) or 'last' (Keras ResNetV2). */
  downsampleBlock?: 'first' | 'last';
  /**
   * What a pre-activation block's projection reads: 'preactivated' (default; its BN-ReLU
   * output, as He et al. and Keras ResNetV2) or 'input' (the raw block input, as Keras' CIFAR resnet_v2).
   */
  preactShortcut?: 'preactivated' | 'input';
  /**
   * Omit the leading BN-ReLU of the very first pre-activation block. Default: true exactly
   * when the stem ends in a ReLU (its output is already normalised and activated, as in Keras' CIFAR resnet_v2).
   */
  skipFirstPreact?: boolean;
  /** BN + ReLU after the last stage ('post_bn', 'post_relu'); default true for pre-activation blocks. */
  postNorm?: boolean;
  /**
   * Biases on convolutions: false (default), true (every convolution, as Keras' defaults),
   * or 'auto' (exactly the convolutions not followed directly by a batch-norm: Keras ResNetV2).
   */
  convBias?: boolean | 'auto';
  /**
   * Padding of the block convolutions: 'explicit' (default; k >> 1 on every side, torchvision)
   * or 'same' (TensorFlow's rule, asymmetric under stride 2 on even sizes: Keras' tutorials).
   */
  convPadding?: 'explicit' | 'same';
  /** Batch-norm epsilon; default 1e-5 (PyTorch). Keras uses 1e-3, Keras applications 1.001e-5. */
  bnEpsilon?: number;
  /** Weight of the new batch in the running statistics (PyTorch convention); default 0.1 (Keras' 0.99 is 0.01 here). */
  bnMomentum?: number;
  /** Default: global average pool, then dense 'fc'. */
  head?: 'global' | HeadOptions;
}

/** Options of the named builders: any ResNetOptions except the architecture they fix. */
export interface ResNetPresetOptions extends Partial<Omit<ResNetOptions, 'stages' | 'block'>> {
  /** Default 1000. */
  classes?: number;
  /** Default [224, 224, 3]. */
  inputShape?: [number, number, number];
}

/** Options of resnet50 / resnet101 / resnet152. */
export interface ResNetV1Options extends ResNetPresetOptions {
  /** 'v1.5' (default, torchvision): stride on the 3×3. 'v1' (He et al., Keras ResNet50): stride on the first 1×1. */
  variant?: 'v1.5' | 'v1';
}

/** Options of {@link resnetCifar}. */
export interface ResNetCifarOptions extends Omit<ResNetPresetOptions, 'convBias' | 'shortcut'> {
  /** 6n+2 for version 1 (20, 32, 44, 56, 110, …), 9n+2 for version 2 (29, 56, 110, …). */
  depth: number;
  /** 1 (default): post-activation basic blocks. 2: pre-activation bottlenecks. */
  version?: 1 | 2;
  /** Bias on every convolution, as the Keras example (Keras' default); default false. */
  convBias?: boolean;
  /** 'projection' (default, the Keras example: 1×1 conv with no BN) or 'zeroPad' (He et al.'s option A). */
  shortcut?: 'projection' | 'zeroPad';
  /** Default 10. */
  classes?: number;
  /** Default [32, 32, 3]. */
  inputShape?: [number, number, number];
}

// ---------------------------------------------------------------------------------------
// Validation

function show(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`;
  if (typeof v === 'number' || typeof v === 'boolean' || v === undefined || v === null) return String(v);
  try {
    const s = JSON.stringify(v);
    return s.length > 60 ? `${s.slice(0, 57)}...` : s;
  } catch {
    return typeof v;
  }
}

function argError(fn: string, option: string, expected: string, got: unknown): never {
  throw new ResNetError('E_ARG', `${fn}: ${option} must be ${expected}, got ${show(got)}`);
}

function checkKeys(fn: string, where: string, obj: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      throw new ResNetError('E_ARG', `${fn}: unknown option ${where}${key} (known: ${allowed.join(', ')})`);
    }
  }
}

function int(fn: string, option: string, v: unknown, min: number, max = 1 << 20): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) argError(fn, option, `an integer in [${min}, ${max}]`, v);
  return v;
}

function oneOf<T extends string | number | boolean>(fn: string, option: string, v: unknown, values: readonly T[]): T {
  if (!values.includes(v as T)) argError(fn, option, `one of ${values.map(show).join(', ')}`, v);
  return v as T;
}

function bool(fn: string, option: string, v: unknown): boolean {
  if (typeof v !== 'boolean') argError(fn, option, 'a boolean', v);
  return v;
}

function size2(fn: string, option: string, v: unknown, min: number): [number, number] {
  if (typeof v === 'number') {
    int(fn, option, v, min);
    return [v, v];
  }
  if (!Array.isArray(v) || v.length !== 2) argError(fn, option, `an integer ≥ ${min} or [height, width]`, v);
  return [int(fn, `${option}[0]`, v[0], min), int(fn, `${option}[1]`, v[1], min)];
}

function padding(fn: string, option: string, v: unknown): SpecPadding {
  if (v === 'same' || v === 'valid') return v;
  if (typeof v === 'number') return int(fn, option, v, 0);
  if (Array.isArray(v) && v.length === 4) {
    const [top, bottom, left, right] = v.map((p: unknown, i) => int(fn, `${option}[${i}]`, p, 0));
    return [top, bottom, left, right];
  }
  return argError(fn, option, "'same', 'valid', an integer ≥ 0 or [top, bottom, left, right]", v);
}

function inputShape(fn: string, v: unknown): [number, number, number] {
  if (!Array.isArray(v) || v.length !== 3) argError(fn, 'inputShape', '[height, width, channels]', v);
  return [int(fn, 'inputShape[0]', v[0], 1), int(fn, 'inputShape[1]', v[1], 1), int(fn, 'inputShape[2]', v[2], 1)];
}

function name(fn: string, option: string, v: unknown): string {
  if (typeof v !== 'string' || v.length === 0) argError(fn, option, 'a non-empty string', v);
  return v;
}

const RESNET_KEYS = [
  'name',
  'classes',
  'inputShape',
  'stem',
  'stages',
  'block',
  'groups',
  'widthPerGroup',
  'expansion',
  'se',
  'shortcut',
  'projectionNorm',
  'strideShortcut',
  'strideOn',
  'downsampleBlock',
  'preactShortcut',
  'skipFirstPreact',
  'postNorm',
  'convBias',
  'convPadding',
  'bnEpsilon',
  'bnMomentum',
  'head',
] as const;

const BLOCK_TYPES: readonly BlockType[] = ['basic', 'bottleneck', 'preactBasic', 'preactBottleneck'];

const IMAGENET_STEM: StemLayerOptions[] = [
  { type: 'conv2d', filters: 64, kernelSize: 7, strides: 2, padding: 3 },
  { type: 'batchNorm' },
  { type: 'relu' },
  { type: 'maxPool', poolSize: 3, strides: 2, padding: 1 },
];

const CIFAR_STEM: StemLayerOptions[] = [
  { type: 'conv2d', filters: 16, kernelSize: 3, strides: 1, padding: 1 },
  { type: 'batchNorm' },
  { type: 'relu' },
];

// ---------------------------------------------------------------------------------------
// The generic builder

interface BuildContext {
  fn: string;
  g: SpecGraph;
  convBias: boolean | 'auto';
  bnEpsilon: number;
  bnMomentum: number;
}

/** Appends the stem; returns its output ('input' for an empty stem). */
function buildStem(ctx: BuildContext, stem: StemLayerOptions[], firstBlockStartsWithBatchNorm: boolean): string {
  const { fn, g } = ctx;
  const counts = new Map<string, number>();
  const defaultName = (base: string, indexFirst: boolean): string => {
    const k = (counts.get(base) ?? 0) + 1;
    counts.set(base, k);
    return indexFirst || k > 1 ? `${base}${k}` : base;
  };
  let x = 'input';
  stem.forEach((d: unknown, i) => {
    const at = `stem[${i}]`;
    if (!isPlainObject(d)) argError(fn, at, 'a stem layer object', d);
    const type = oneOf(fn, `${at}.type`, d.type, ['conv2d', 'batchNorm', 'relu', 'maxPool', 'avgPool', 'zeroPad'] as const);
    const own = d.name === undefined ? undefined : name(fn, `${at}.name`, d.name);
    switch (type) {
      case 'conv2d': {
        checkKeys(fn, `${at}.`, d, ['type', 'filters', 'kernelSize', 'strides', 'padding', 'useBias', 'name']);
        const next = stem[i + 1];
        const followedByBatchNorm = next === undefined ? firstBlockStartsWithBatchNorm : isPlainObject(next) && next.type === 'batchNorm';
        x = g.conv2d(own ?? defaultName('conv', true), x, {
          filters: int(fn, `${at}.filters`, d.filters, 1),
          kernelSize: size2(fn, `${at}.kernelSize`, d.kernelSize, 1),
          strides: d.strides === undefined ? [1, 1] : size2(fn, `${at}.strides`, d.strides, 1),
          padding: d.padding === undefined ? 'valid' : padding(fn, `${at}.padding`, d.padding),
          useBias: d.useBias === undefined ? convBias(ctx.convBias, followedByBatchNorm) : bool(fn, `${at}.useBias`, d.useBias),
        });
        break;
      }
      case 'batchNorm':
        checkKeys(fn, `${at}.`, d, ['type', 'name']);
        x = g.batchNorm(own ?? defaultName('bn', true), x, ctx.bnEpsilon, ctx.bnMomentum);
        break;
      case 'relu':
        checkKeys(fn, `${at}.`, d, ['type', 'name']);
        x = g.relu(own ?? defaultName('relu', false), x);
        break;
      case 'maxPool':
      case 'avgPool': {
        checkKeys(fn, `${at}.`, d, ['type', 'poolSize', 'strides', 'padding', 'name']);
        const poolSize = size2(fn, `${at}.poolSize`, d.poolSize, 1);
        x = g.pool(
          type,
          own ?? defaultName(type === 'maxPool' ? 'maxpool' : 'stem_avgpool', false),
          x,
          poolSize,
          d.strides === undefined ? poolSize : size2(fn, `${at}.strides`, d.strides, 1),
          d.padding === undefined ? 'valid' : padding(fn, `${at}.padding`, d.padding),
        );
        break;
      }
      case 'zeroPad': {
        checkKeys(fn, `${at}.`, d, ['type', 'padding', 'name']);
        const p = padding(fn, `${at}.padding`, d.padding);
        if (typeof p === 'string') argError(fn, `${at}.padding`, 'an integer ≥ 0 or [top, bottom, left, right]', p);
        x = g.zeroPad(own ?? defaultName('pad', false), x, typeof p === 'number' ? [p, p, p, p] : p);
        break;
      }
    }
  });
  return x;
}

/** Appends the head; returns the logits layer ('fc'). */
function buildHead(ctx: BuildContext, head: unknown, classes: number, x: string): string {
  const { fn, g } = ctx;
  const h: Record<string, unknown> =
    head === undefined || head === 'global' ? {} : isPlainObject(head) ? head : argError(fn, 'head', "'global' or a head object", head);
  checkKeys(fn, 'head.', h, ['pool', 'hidden', 'useBias']);
  const useBias = h.useBias === undefined ? true : bool(fn, 'head.useBias', h.useBias);
  const pool = h.pool ?? 'global';
  if (pool === 'global') {
    x = g.globalAvgPool('avgpool', x);
  } else if (pool === 'flatten') {
    x = g.flatten('flatten', x);
  } else if (isPlainObject(pool)) {
    checkKeys(fn, 'head.pool.', pool, ['type', 'poolSize', 'strides', 'padding']);
    const type = oneOf(fn, 'head.pool.type', pool.type, ['avgPool', 'maxPool'] as const);
    const poolSize = size2(fn, 'head.pool.poolSize', pool.poolSize, 1);
    x = g.pool(
      type,
      type === 'avgPool' ? 'avgpool' : 'head_maxpool',
      x,
      poolSize,
      pool.strides === undefined ? poolSize : size2(fn, 'head.pool.strides', pool.strides, 1),
      pool.padding === undefined ? 'valid' : padding(fn, 'head.pool.padding', pool.padding),
    );
    x = g.flatten('flatten', x);
  } else {
    argError(fn, 'head.pool', "'global', 'flatten' or a pool window object", pool);
  }
  const hidden = h.hidden ?? [];
  if (!Array.isArray(hidden)) argError(fn, 'head.hidden', 'an array of unit counts', hidden);
  hidden.forEach((units: unknown, k) => {
    x = g.dense(`fc_hidden${k + 1}`, x, int(fn, `head.hidden[${k}]`, units, 1), useBias);
    x = g.relu(`fc_hidden${k + 1}_relu`, x);
  });
  return g.dense('fc', x, classes, useBias);
}

function build(options: ResNetOptions, fn: string): ModelSpec {
  if (!isPlainObject(options)) argError(fn, 'options', 'an object', options);
  const o = options as unknown as Record<string, unknown>;
  checkKeys(fn, '', o, RESNET_KEYS);
  /** An enumerated option; the first value is its default. */
  const choice = <T extends string>(option: string, values: readonly T[]): T =>
    o[option] === undefined ? values[0] : oneOf(fn, option, o[option], values);

  const specName = o.name === undefined ? 'resnet' : name(fn, 'name', o.name);
  const classes = int(fn, 'classes', o.classes, 1);
  const shape = o.inputShape === undefined ? ([224, 224, 3] as [number, number, number]) : inputShape(fn, o.inputShape);
  const block = oneOf(fn, 'block', o.block, BLOCK_TYPES);
  const preact = block === 'preactBasic' || block === 'preactBottleneck';
  const bottleneck = block === 'bottleneck' || block === 'preactBottleneck';

  const groups = o.groups === undefined ? 1 : int(fn, 'groups', o.groups, 1);
  const widthPerGroup = o.widthPerGroup === undefined ? 64 : int(fn, 'widthPerGroup', o.widthPerGroup, 1);
  if (!bottleneck && (groups !== 1 || widthPerGroup !== 64)) {
    throw new ResNetError(
      'E_ARG',
      `${fn}: groups and widthPerGroup apply to bottleneck blocks; block '${block}' needs groups 1 and widthPerGroup 64, ` +
        `got groups ${groups}, widthPerGroup ${widthPerGroup}`,
    );
  }
  const expansion = o.expansion === undefined ? (bottleneck ? 4 : 1) : int(fn, 'expansion', o.expansion, 1);
  let seReduction: number | undefined;
  if (o.se !== undefined) {
    if (!isPlainObject(o.se)) argError(fn, 'se', 'an object { reduction }', o.se);
    checkKeys(fn, 'se.', o.se, ['reduction']);
    seReduction = int(fn, 'se.reduction', o.se.reduction, 1);
  }
  const shortcut = choice('shortcut', ['projection', 'zeroPad'] as const);
  const projectionNorm = o.projectionNorm === undefined ? !preact : bool(fn, 'projectionNorm', o.projectionNorm);
  const strideShortcut = choice('strideShortcut', ['projection', 'subsample'] as const);
  const strideOn = choice('strideOn', ['3x3', '1x1'] as const);
  const downsampleBlock = choice('downsampleBlock', ['first', 'last'] as const);
  const preactShortcut = choice('preactShortcut', ['preactivated', 'input'] as const);
  const postNorm = o.postNorm === undefined ? preact : bool(fn, 'postNorm', o.postNorm);
  const bias = o.convBias === undefined ? false : oneOf(fn, 'convBias', o.convBias, [false, true, 'auto'] as const);
  const padMode = choice('convPadding', ['explicit', 'same'] as const);
  const bnEpsilon = o.bnEpsilon === undefined ? 1e-5 : o.bnEpsilon;
  if (typeof bnEpsilon !== 'number' || !Number.isFinite(bnEpsilon) || bnEpsilon <= 0) {
    argError(fn, 'bnEpsilon', 'a finite number > 0', bnEpsilon);
  }
  const bnMomentum = o.bnMomentum === undefined ? 0.1 : o.bnMomentum;
  if (typeof bnMomentum !== 'number' || !(bnMomentum >= 0 && bnMomentum <= 1)) {
    argError(fn, 'bnMomentum', 'a number in [0, 1]', bnMomentum);
  }

  const stemOption = o.stem ?? 'imagenet';
  const stem: StemLayerOptions[] =
    stemOption === 'imagenet'
      ? IMAGENET_STEM
      : stemOption === 'cifar'
        ? CIFAR_STEM
        : Array.isArray(stemOption)
          ? (stemOption as StemLayerOptions[])
          : argError(fn, 'stem', "'imagenet', 'cifar' or an array of stem layers", stemOption);
  const lastStem: unknown = stem[stem.length - 1];
  const skipFirstPreact =
    o.skipFirstPreact === undefined ? isPlainObject(lastStem) && lastStem.type === 'relu' : bool(fn, 'skipFirstPreact', o.skipFirstPreact);

  if (!Array.isArray(o.stages) || o.stages.length === 0) {
    argError(fn, 'stages', 'a non-empty array of { blocks, width, stride? }', o.stages);
  }
  const stages = (o.stages as unknown[]).map((st, i) => {
    const at = `stages[${i}]`;
    if (!isPlainObject(st)) argError(fn, at, 'an object { blocks, width, stride?, expansion? }', st);
    checkKeys(fn, `${at}.`, st, ['blocks', 'width', 'stride', 'expansion']);
    const width = int(fn, `${at}.width`, st.width, 1);
    const e = st.expansion === undefined ? expansion : int(fn, `${at}.expansion`, st.expansion, 1);
    const inner = bottleneck ? Math.floor((width * widthPerGroup) / 64) * groups : width;
    if (inner < 1) {
      throw new ResNetError('E_ARG', `${fn}: ${at}.width ${width} with widthPerGroup ${widthPerGroup} gives a bottleneck of width 0`);
    }
    return {
      blocks: int(fn, `${at}.blocks`, st.blocks, 1),
      stride: st.stride === undefined ? (i === 0 ? 1 : 2) : int(fn, `${at}.stride`, st.stride, 1, 64),
      inner,
      out: width * e,
    };
  });

  const ctx: BuildContext = { fn, g: new SpecGraph(fn, shape), convBias: bias, bnEpsilon, bnMomentum };
  let x = buildStem(ctx, stem, preact && !skipFirstPreact);

  stages.forEach((st, i) => {
    for (let j = 0; j < st.blocks; j++) {
      const strided = downsampleBlock === 'first' ? j === 0 : j === st.blocks - 1;
      const cfg: BlockConfig = {
        kind: block,
        inner: st.inner,
        out: st.out,
        stride: strided ? st.stride : 1,
        groups,
        strideOn,
        shortcut,
        projectionNorm,
        strideShortcut,
        preactShortcut,
        skipPreact: preact && skipFirstPreact && i === 0 && j === 0,
        convPadding: padMode,
        convBias: bias,
        bnEpsilon,
        bnMomentum,
      };
      if (seReduction !== undefined) cfg.seReduction = seReduction;
      x = residualBlock(ctx.g, `layer${i + 1}.${j}`, x, cfg);
    }
  });

  if (postNorm) x = ctx.g.relu('post_relu', ctx.g.batchNorm('post_bn', x, bnEpsilon, bnMomentum));
  const output = buildHead(ctx, o.head, classes, x);

  return {
    format: 'resnet-native/model',
    version: 1,
    name: specName,
    inputShape: shape,
    classes,
    layers: ctx.g.layers,
    output,
  };
}

/**
 * Builds the spec of any ResNet-family network from its options (see {@link ResNetOptions}).
 * Throws ResNetError('E_ARG') naming the option when an option is invalid, or when the
 * input shape is too small for the architecture.
 */
export function resnetSpec(options: ResNetOptions): ModelSpec {
  return build(options, 'resnetSpec');
}

// ---------------------------------------------------------------------------------------
// Named builders

const WIDTHS = [64, 128, 256, 512];

function imagenetStages(blocks: number[]): StageOptions[] {
  return blocks.map((b, i) => ({ blocks: b, width: WIDTHS[i], stride: i === 0 ? 1 : 2 }));
}

/** Copies the caller's options (dropping undefined values) over a preset's defaults. */
function preset(
  fn: string,
  options: unknown,
  defaults: Partial<ResNetOptions>,
  fixed: Pick<ResNetOptions, 'stages' | 'block'>,
  own: readonly string[] = [],
): ResNetOptions {
  const o = options === undefined ? {} : options;
  if (!isPlainObject(o)) argError(fn, 'options', 'an object', o);
  const merged: Record<string, unknown> = { classes: 1000, ...defaults };
  for (const [key, value] of Object.entries(o)) {
    if (key === 'stages' || key === 'block') {
      throw new ResNetError('E_ARG', `${fn}: option ${key} is fixed by this model; use resnetSpec() for other architectures`);
    }
    if (value !== undefined && !own.includes(key)) merged[key] = value;
  }
  return { ...(merged as Partial<ResNetOptions>), ...fixed } as ResNetOptions;
}

/** A preset over the four torchvision ImageNet stages (64, 128, 256, 512 wide). */
function imagenetPreset(fn: string, blocks: number[], block: BlockType, defaults: Partial<ResNetOptions>, options: unknown): ModelSpec {
  return build(preset(fn, options, defaults, { stages: imagenetStages(blocks), block }), fn);
}

function v1Variant(fn: string, options: ResNetV1Options | undefined): Partial<ResNetOptions> {
  const v = options?.variant === undefined ? 'v1.5' : oneOf(fn, 'variant', options.variant, ['v1.5', 'v1'] as const);
  return { strideOn: v === 'v1' ? '1x1' : '3x3' };
}

function bottleneckV1(fn: string, blocks: number[], options: ResNetV1Options | undefined): ModelSpec {
  const variant = v1Variant(fn, options);
  const depth = fn.slice('resnet'.length);
  const name = variant.strideOn === '1x1' ? `resnet${depth}_v1` : `resnet${depth}`;
  return build(preset(fn, options, { name, ...variant }, { stages: imagenetStages(blocks), block: 'bottleneck' }, ['variant']), fn);
}

/** ResNet-18 (torchvision): basic blocks [2, 2, 2, 2]; 11,689,512 parameters at 1000 classes. */
export function resnet18(options?: ResNetPresetOptions): ModelSpec {
  return imagenetPreset('resnet18', [2, 2, 2, 2], 'basic', { name: 'resnet18' }, options);
}

/** ResNet-34 (torchvision): basic blocks [3, 4, 6, 3]; 21,797,672 parameters. */
export function resnet34(options?: ResNetPresetOptions): ModelSpec {
  return imagenetPreset('resnet34', [3, 4, 6, 3], 'basic', { name: 'resnet34' }, options);
}

/** ResNet-50 (torchvision, v1.5 by default): bottlenecks [3, 4, 6, 3]; 25,557,032 parameters. */
export function resnet50(options?: ResNetV1Options): ModelSpec {
  return bottleneckV1('resnet50', [3, 4, 6, 3], options);
}

/** ResNet-101: bottlenecks [3, 4, 23, 3]; 44,549,160 parameters. */
export function resnet101(options?: ResNetV1Options): ModelSpec {
  return bottleneckV1('resnet101', [3, 4, 23, 3], options);
}

/** ResNet-152: bottlenecks [3, 8, 36, 3]; 60,192,808 parameters. */
export function resnet152(options?: ResNetV1Options): ModelSpec {
  return bottleneckV1('resnet152', [3, 8, 36, 3], options);
}

/**
 * Keras applications' ResNetV2 layout (ResNet50V2 …): stem conv 7×7/2 with bias (padding 3),
 * ZeroPadding2D(1) + max-pool 3×3/2 'valid' (no BN-ReLU: every block pre-activates);
 * pre-activation bottlenecks whose stride sits on the 3×3 of the LAST block of stages 1–3
 * (stage 4 does not stride), with a 1×1 max-pool subsampling shortcut there; the first block
 * of each stage projects its pre-activated input with a biased 1×1 conv (no BN); biases on
 * exactly the convs not followed by a BN (conv1, shortcut, conv3); post_bn + post_relu,
 * global average pool, fc. Batch-norm epsilon 1.001e-5 as Keras applications.
 */
function resnetV2(fn: string, blocks: number[], options: ResNetPresetOptions | undefined): ModelSpec {
  const stages: StageOptions[] = blocks.map((b, i) => ({ blocks: b, width: WIDTHS[i], stride: i < 3 ? 2 : 1 }));
  const defaults: Partial<ResNetOptions> = {
    name: fn,
    stem: [
      { type: 'conv2d', filters: 64, kernelSize: 7, strides: 2, padding: 3 },
      { type: 'zeroPad', padding: 1 },
      { type: 'maxPool', poolSize: 3, strides: 2, padding: 'valid' },
    ],
    strideOn: '3x3',
    downsampleBlock: 'last',
    strideShortcut: 'subsample',
    preactShortcut: 'preactivated',
    projectionNorm: false,
    convBias: 'auto',
    bnEpsilon: 1.001e-5,
  };
  return build(preset(fn, options, defaults, { stages, block: 'preactBottleneck' }), fn);
}

/** ResNet-50 v2 (Keras applications ResNet50V2 layout; see the note on the v2 builders). */
export function resnet50v2(options?: ResNetPresetOptions): ModelSpec {
  return resnetV2('resnet50v2', [3, 4, 6, 3], options);
}

/** ResNet-101 v2 (Keras applications ResNet101V2 layout). */
export function resnet101v2(options?: ResNetPresetOptions): ModelSpec {
  return resnetV2('resnet101v2', [3, 4, 23, 3], options);
}

/** ResNet-152 v2 (Keras applications ResNet152V2 layout). */
export function resnet152v2(options?: ResNetPresetOptions): ModelSpec {
  return resnetV2('resnet152v2', [3, 8, 36, 3], options);
}

/** ResNeXt-50 32×4d (torchvision): 32 groups, 4 channels per group; 25,028,904 parameters. */
export function resnext50_32x4d(options?: ResNetPresetOptions): ModelSpec {
  const defaults = { name: 'resnext50_32x4d', groups: 32, widthPerGroup: 4 };
  return imagenetPreset('resnext50_32x4d', [3, 4, 6, 3], 'bottleneck', defaults, options);
}

/** ResNeXt-101 32×8d (torchvision): 32 groups, 8 channels per group; 88,791,336 parameters. */
export function resnext101_32x8d(options?: ResNetPresetOptions): ModelSpec {
  const defaults = { name: 'resnext101_32x8d', groups: 32, widthPerGroup: 8 };
  return imagenetPreset('resnext101_32x8d', [3, 4, 23, 3], 'bottleneck', defaults, options);
}

/** Wide ResNet-50-2 (torchvision): bottlenecks twice as wide inside; 68,883,240 parameters. */
export function wideResnet50_2(options?: ResNetPresetOptions): ModelSpec {
  return imagenetPreset('wideResnet50_2', [3, 4, 6, 3], 'bottleneck', { name: 'wide_resnet50_2', widthPerGroup: 128 }, options);
}

/** Wide ResNet-101-2 (torchvision); 126,886,696 parameters. */
export function wideResnet101_2(options?: ResNetPresetOptions): ModelSpec {
  return imagenetPreset('wideResnet101_2', [3, 4, 23, 3], 'bottleneck', { name: 'wide_resnet101_2', widthPerGroup: 128 }, options);
}

/** SE-ResNet-50: ResNet-50 (v1.5) with squeeze-excite, reduction 16; 28,088,024 parameters. */
export function seResnet50(options?: ResNetPresetOptions): ModelSpec {
  return imagenetPreset('seResnet50', [3, 4, 6, 3], 'bottleneck', { name: 'se_resnet50', se: { reduction: 16 } }, options);
}

/**
 * The CIFAR-10 ResNets of the Keras example (keras-team/keras examples/cifar10_resnet.py).
 *
 * version 1, depth 6n+2: stem conv 3×3 (16)-BN-ReLU; three stages of n basic blocks of
 * 16, 32, 64 filters (stride 2 on the first block of stages 2 and 3); the projection shortcut
 * is a 1×1 conv with no BN; head AveragePooling2D(8), Flatten, Dense.
 *
 * version 2, depth 9n+2: stem conv 3×3 (16)-BN-ReLU; three stages of n pre-activation
 * bottlenecks, 16→64, 64→128, 128→256 (inner → output channels), stride on the first 1×1; the
 * very first block skips its BN-ReLU (the stem's is its pre-activation); each stage's first
 * block projects its raw input with a 1×1 conv (no BN); then BN-ReLU, AveragePooling2D(8),
 * Flatten, Dense.
 *
 * Convolutions use TensorFlow 'same' padding as the example, batch-norm epsilon 1e-3 (Keras'
 * default). `convBias: true` gives every convolution a bias as Keras does (ResNet-20 v1:
 * 273,066 trainable parameters). For inputs smaller than 32×32 the head's pool window shrinks
 * to the final feature map (Keras would fail there); at 32×32 and above it is 8 as in Keras.
 */
export function resnetCifar(options: ResNetCifarOptions): ModelSpec {
  const fn = 'resnetCifar';
  if (!isPlainObject(options)) argError(fn, 'options', 'an object { depth, version? }', options);
  const version = options.version === undefined ? 1 : oneOf(fn, 'version', options.version, [1, 2] as const);
  const depth = int(fn, 'depth', options.depth, 1);
  const per = version === 1 ? 6 : 9;
  if ((depth - 2) % per !== 0 || depth < per + 2) {
    const examples = `${per + 2}, ${2 * per + 2}, ${3 * per + 2}`;
    throw new ResNetError('E_ARG', `${fn}: depth must be ${per}n+2 with n ≥ 1 for version ${version} (${examples}, …), got ${depth}`);
  }
  const n = (depth - 2) / per;
  const shape = options.inputShape === undefined ? ([32, 32, 3] as [number, number, number]) : inputShape(fn, options.inputShape);
  // Two stride-2 'same' stages: the final map is ceil(ceil(size / 2) / 2).
  const finalSize = (s: number): number => Math.ceil(Math.ceil(s / 2) / 2);
  const head: HeadOptions = { pool: { type: 'avgPool', poolSize: [Math.min(8, finalSize(shape[0])), Math.min(8, finalSize(shape[1]))] } };

  const common: Partial<ResNetOptions> = {
    name: `resnet_cifar${depth}_v${version}`,
    classes: 10,
    inputShape: shape,
    stem: 'cifar',
    convPadding: 'same',
    convBias: false,
    projectionNorm: false,
    bnEpsilon: 1e-3,
    head,
  };
  const own = ['depth', 'version'];
  if (version === 1) {
    const stages: StageOptions[] = [16, 32, 64].map((width, i) => ({ blocks: n, width, stride: i === 0 ? 1 : 2 }));
    return build(preset(fn, options, common, { stages, block: 'basic' }, own), fn);
  }
  const stages: StageOptions[] = [
    { blocks: n, width: 16, stride: 1, expansion: 4 },
    { blocks: n, width: 64, stride: 2, expansion: 2 },
    { blocks: n, width: 128, stride: 2, expansion: 2 },
  ];
  const v2: Partial<ResNetOptions> = { ...common, strideOn: '1x1', preactShortcut: 'input', skipFirstPreact: true, postNorm: true };
  return build(preset(fn, options, v2, { stages, block: 'preactBottleneck' }, own), fn);
}
