// The named ResNets (resnet18 … resnetCifar): presets of the generic builder.
import { ResNetError } from '../errors.js';
import * as validate from '../validate.js';
import { isPlainObject } from '../validate.js';
import { build } from './build_resnet.js';
import {
  type BlockType,
  type HeadOptions,
  type StageOptions,
  type ResNetOptions,
  type ResNetPresetOptions,
  type ResNetV1Options,
  type ResNetCifarOptions,
  size,
  inputShape,
} from './builder_options.js';
import type { ModelSpec } from './spec.js';

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
  if (!isPlainObject(o)) validate.invalid(o, fn, 'options', 'an object');
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
  const v = options?.variant === undefined ? 'v1.5' : validate.oneOf(options.variant, fn, 'variant', ['v1.5', 'v1'] as const);
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

/** ResNeXt-101 64×4d (torchvision): 64 groups, 4 channels per group; 83,455,272 parameters. */
export function resnext101_64x4d(options?: ResNetPresetOptions): ModelSpec {
  const defaults = { name: 'resnext101_64x4d', groups: 64, widthPerGroup: 4 };
  return imagenetPreset('resnext101_64x4d', [3, 4, 23, 3], 'bottleneck', defaults, options);
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
  if (!isPlainObject(options)) validate.invalid(options, fn, 'options', 'an object { depth, version? }');
  const version = options.version === undefined ? 1 : validate.oneOf(options.version, fn, 'version', [1, 2] as const);
  const depth = size(options.depth, fn, 'depth', 1);
  const per = version === 1 ? 6 : 9;
  if ((depth - 2) % per !== 0 || depth < per + 2) {
    const examples = `${per + 2}, ${2 * per + 2}, ${3 * per + 2}`;
    throw new ResNetError('E_ARG', `${fn}: depth must be ${per}n+2 with n ≥ 1 for version ${version} (${examples}, …), got ${depth}`);
  }
  const n = (depth - 2) / per;
  const shape = options.inputShape === undefined ? ([32, 32, 3] as [number, number, number]) : inputShape(options.inputShape, fn);
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
