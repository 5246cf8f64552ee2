// Options of the ResNet builders (builders.ts): their types, and the checks that turn a
// caller's options into values the generic builder (build_resnet.ts) can trust.
import { ResNetError } from '../errors.js';
import * as validate from '../validate.js';
import type { SpecPadding } from './spec.js';

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
// Validation: the shared checks of validate.ts, `(value, op, name, ...range)`, plus the
// option shapes only the builders have.

/** The largest size (filters, units, kernel, padding) a builder option may ask for. */
export const MAX_SIZE = 1 << 20;

export function checkKeys(obj: Record<string, unknown>, fn: string, where: string, allowed: readonly string[]): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      throw new ResNetError('E_ARG', `${fn}: unknown option ${where}${key} (known: ${allowed.join(', ')})`);
    }
  }
}

/** A size: an integer in [min, max] (max defaults to MAX_SIZE). */
export function size(v: unknown, fn: string, option: string, min: number, max = MAX_SIZE): number {
  return validate.integer(v, fn, option, min, max);
}

export function size2(v: unknown, fn: string, option: string, min: number): [number, number] {
  if (typeof v === 'number') return [size(v, fn, option, min), v];
  if (!Array.isArray(v) || v.length !== 2) validate.invalid(v, fn, option, `an integer ≥ ${min} or [height, width]`);
  return [size(v[0], fn, `${option}[0]`, min), size(v[1], fn, `${option}[1]`, min)];
}

export function padding(v: unknown, fn: string, option: string): SpecPadding {
  if (v === 'same' || v === 'valid') return v;
  if (typeof v === 'number') return size(v, fn, option, 0);
  if (Array.isArray(v) && v.length === 4) {
    const [top, bottom, left, right] = v.map((p: unknown, i) => size(p, fn, `${option}[${i}]`, 0));
    return [top, bottom, left, right];
  }
  return validate.invalid(v, fn, option, "'same', 'valid', an integer ≥ 0 or [top, bottom, left, right]");
}

export function inputShape(v: unknown, fn: string): [number, number, number] {
  if (!Array.isArray(v) || v.length !== 3) validate.invalid(v, fn, 'inputShape', '[height, width, channels]');
  return [size(v[0], fn, 'inputShape[0]', 1), size(v[1], fn, 'inputShape[1]', 1), size(v[2], fn, 'inputShape[2]', 1)];
}

export const RESNET_KEYS = [
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

export const BLOCK_TYPES: readonly BlockType[] = ['basic', 'bottleneck', 'preactBasic', 'preactBottleneck'];

export const IMAGENET_STEM: StemLayerOptions[] = [
  { type: 'conv2d', filters: 64, kernelSize: 7, strides: 2, padding: 3 },
  { type: 'batchNorm' },
  { type: 'relu' },
  { type: 'maxPool', poolSize: 3, strides: 2, padding: 1 },
];

export const CIFAR_STEM: StemLayerOptions[] = [
  { type: 'conv2d', filters: 16, kernelSize: 3, strides: 1, padding: 1 },
  { type: 'batchNorm' },
  { type: 'relu' },
];
