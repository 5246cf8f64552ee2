// The pieces the ResNet builders (builders.ts) assemble a ModelSpec from: SpecGraph, which
// appends layers in topological order while tracking every activation's shape (so a
// configuration that cannot work for its input shape fails here, in JS, with a message
// naming the layer), and the residual blocks themselves. Pure functions of their arguments;
// nothing here touches native code. Layer names follow the scheme described in builders.ts.
import { ResNetError } from '../errors.js';
import type { BatchNormLayer, LayerSpec, SpecPadding } from './spec.js';

/** [height, width, channels] of an image activation, or [features] after pooling/flatten. */
export type ActivationShape = number[];

/** Output length of one spatial axis under a padding rule (TensorFlow's rule for 'same'). */
function outputLength(n: number, k: number, s: number, padding: SpecPadding, axis: 0 | 1): number {
  if (padding === 'same') return Math.ceil(n / s);
  let before = 0;
  let after = 0;
  if (typeof padding === 'number') {
    before = padding;
    after = padding;
  } else if (Array.isArray(padding)) {
    before = padding[axis * 2];
    after = padding[axis * 2 + 1];
  }
  return Math.floor((n + before + after - k) / s) + 1;
}

function fmt(shape: ActivationShape): string {
  return `[${shape.join(', ')}]`;
}

/**
 * Appends layers to a spec in topological order and infers the shape of each one's output.
 * `fn` names the public builder in error messages.
 */
export class SpecGraph {
  readonly layers: LayerSpec[] = [];
  private readonly shapes = new Map<string, ActivationShape>();

  constructor(
    private readonly fn: string,
    inputShape: [number, number, number],
  ) {
    this.shapes.set('input', [...inputShape]);
  }

  shape(name: string): ActivationShape {
    const s = this.shapes.get(name);
    if (s === undefined) throw new ResNetError('E_INTERNAL', `${this.fn}: no layer named '${name}'`);
    return s;
  }

  private image(name: string, input: string): [number, number, number] {
    const s = this.shape(input);
    if (s.length !== 3) {
      throw new ResNetError('E_ARG', `${this.fn}: layer '${name}' needs an image [h, w, c] input, but '${input}' gives ${fmt(s)}`);
    }
    return s as [number, number, number];
  }

  private push(layer: LayerSpec, shape: ActivationShape): string {
    if (this.shapes.has(layer.name)) {
      throw new ResNetError('E_ARG', `${this.fn}: layer name '${layer.name}' is used twice; layer names must be unique`);
    }
    if (shape.some((d) => !Number.isInteger(d) || d < 1)) {
      throw new ResNetError(
        'E_ARG',
        `${this.fn}: inputShape is too small for this architecture: layer '${layer.name}' (${layer.type}) ` +
          `would output ${fmt(shape)} from ${layer.inputs.map((i) => `'${i}' ${fmt(this.shape(i))}`).join(' and ')}`,
      );
    }
    this.layers.push(layer);
    this.shapes.set(layer.name, shape);
    return layer.name;
  }

  private windowed(name: string, input: string, k: [number, number], s: [number, number], padding: SpecPadding): ActivationShape {
    const [h, w, c] = this.image(name, input);
    return [outputLength(h, k[0], s[0], padding, 0), outputLength(w, k[1], s[1], padding, 1), c];
  }

  conv2d(
    name: string,
    input: string,
    o: {
      filters: number;
      kernelSize: [number, number];
      strides: [number, number];
      padding: SpecPadding;
      groups?: number;
      useBias: boolean;
    },
  ): string {
    const groups = o.groups ?? 1;
    const c = this.image(name, input)[2];
    if (c % groups !== 0 || o.filters % groups !== 0) {
      throw new ResNetError(
        'E_ARG',
        `${this.fn}: conv '${name}' has ${groups} groups, which must divide both its ${c} input and ${o.filters} output channels`,
      );
    }
    const out = this.windowed(name, input, o.kernelSize, o.strides, o.padding);
    out[2] = o.filters;
    return this.push(
      {
        name,
        inputs: [input],
        type: 'conv2d',
        filters: o.filters,
        kernelSize: o.kernelSize,
        strides: o.strides,
        padding: o.padding,
        dilations: [1, 1],
        groups,
        useBias: o.useBias,
      },
      out,
    );
  }

  batchNorm(name: string, input: string, epsilon: number, momentum: number, residualLast = false): string {
    const s = this.image(name, input);
    const layer: BatchNormLayer = { name, inputs: [input], type: 'batchNorm', epsilon, momentum };
    if (residualLast) layer.residualLast = true;
    return this.push(layer, [...s]);
  }

  relu(name: string, input: string): string {
    return this.push({ name, inputs: [input], type: 'relu' }, [...this.shape(input)]);
  }

  add(name: string, a: string, b: string): string {
    const sa = this.shape(a);
    const sb = this.shape(b);
    if (fmt(sa) !== fmt(sb)) {
      throw new ResNetError(
        'E_ARG',
        `${this.fn}: add '${name}' joins '${a}' ${fmt(sa)} and '${b}' ${fmt(sb)}, whose shapes differ ` + `(check the stem, paddings and inputShape)`,
      );
    }
    return this.push({ name, inputs: [a, b], type: 'add' }, [...sa]);
  }

  pool(
    type: 'maxPool' | 'avgPool',
    name: string,
    input: string,
    poolSize: [number, number],
    strides: [number, number],
    padding: SpecPadding,
  ): string {
    return this.push({ name, inputs: [input], type, poolSize, strides, padding }, this.windowed(name, input, poolSize, strides, padding));
  }

  zeroPad(name: string, input: string, padding: [number, number, number, number]): string {
    const [h, w, c] = this.image(name, input);
    return this.push({ name, inputs: [input], type: 'zeroPad', padding }, [h + padding[0] + padding[1], w + padding[2] + padding[3], c]);
  }

  globalAvgPool(name: string, input: string): string {
    return this.push({ name, inputs: [input], type: 'globalAvgPool' }, [this.image(name, input)[2]]);
  }

  flatten(name: string, input: string): string {
    const [h, w, c] = this.image(name, input);
    return this.push({ name, inputs: [input], type: 'flatten' }, [h * w * c]);
  }

  dense(name: string, input: string, units: number, useBias: boolean): string {
    const s = this.shape(input);
    if (s.length !== 1) {
      throw new ResNetError('E_INTERNAL', `${this.fn}: dense '${name}' needs a [features] input, but '${input}' gives ${fmt(s)}`);
    }
    return this.push({ name, inputs: [input], type: 'dense', units, useBias }, [units]);
  }

  squeezeExcite(name: string, input: string, hidden: number): string {
    const s = this.image(name, input);
    return this.push({ name, inputs: [input], type: 'squeezeExcite', hidden }, [...s]);
  }

  zeroPadShortcut(name: string, input: string, filters: number, stride: number): string {
    const [h, w, c] = this.image(name, input);
    if (filters < c) {
      throw new ResNetError(
        'E_ARG',
        `${this.fn}: shortcut 'zeroPad' cannot reduce channels ('${name}' goes from ${c} to ${filters}); use shortcut 'projection'`,
      );
    }
    return this.push({ name, inputs: [input], type: 'zeroPadShortcut', filters, strides: [stride, stride] }, [
      Math.ceil(h / stride),
      Math.ceil(w / stride),
      filters,
    ]);
  }
}

/** The resolved settings of one residual block (builders.ts resolves them from ResNetOptions). */
export interface BlockConfig {
  kind: 'basic' | 'bottleneck' | 'preactBasic' | 'preactBottleneck';
  /** Width of the inner convolutions: conv1 of a basic block, conv1 and conv2 of a bottleneck. */
  inner: number;
  /** Output channels of the block. */
  out: number;
  stride: number;
  /** Groups of a bottleneck's 3×3 convolution. */
  groups: number;
  /** In a bottleneck, which convolution carries the stride. */
  strideOn: '3x3' | '1x1';
  shortcut: 'projection' | 'zeroPad';
  /** Batch-norm after a projection shortcut's convolution. */
  projectionNorm: boolean;
  /** Shortcut where only the spatial size changes: 1×1 conv, or 1×1 max pool with the stride. */
  strideShortcut: 'projection' | 'subsample';
  /** What a pre-activation block's projection shortcut reads. */
  preactShortcut: 'preactivated' | 'input';
  /** Omit a pre-activation block's leading BN-ReLU (its input is already activated). */
  skipPreact: boolean;
  /** Squeeze-excite reduction; absent: no SE. */
  seReduction?: number;
  convPadding: 'explicit' | 'same';
  convBias: boolean | 'auto';
  bnEpsilon: number;
  bnMomentum: number;
}

/** Convolution padding for an odd kernel: `k >> 1` on every side, or TensorFlow's 'same'. */
export function convPadding(mode: 'explicit' | 'same', k: number): SpecPadding {
  return mode === 'same' ? 'same' : k >> 1;
}

/** Whether a convolution gets a bias: `convBias`, or under 'auto' exactly when no batch-norm follows it. */
export function convBias(mode: boolean | 'auto', followedByBatchNorm: boolean): boolean {
  return mode === 'auto' ? !followedByBatchNorm : mode;
}

/**
 * Appends one residual block named `prefix` (e.g. 'layer2.0') reading `input`; returns the
 * name of its output layer.
 *
 * Post-activation (basic, bottleneck): conv-BN-ReLU … conv-BN [-SE] (+ shortcut), add, ReLU.
 * Pre-activation (preactBasic, preactBottleneck): BN-ReLU-conv … BN-ReLU-conv [-SE]
 * (+ shortcut), add; no ReLU after the add. In both, the last batch-norm of the branch is
 * marked `residualLast`.
 */
export function residualBlock(g: SpecGraph, prefix: string, input: string, cfg: BlockConfig): string {
  const n = (s: string): string => `${prefix}.${s}`;
  const preact = cfg.kind === 'preactBasic' || cfg.kind === 'preactBottleneck';
  const bottleneck = cfg.kind === 'bottleneck' || cfg.kind === 'preactBottleneck';
  const inChannels = g.shape(input)[2];
  const s = cfg.stride;

  const convs: { k: number; filters: number; stride: number; groups: number }[] = bottleneck
    ? [
        { k: 1, filters: cfg.inner, stride: cfg.strideOn === '1x1' ? s : 1, groups: 1 },
        { k: 3, filters: cfg.inner, stride: cfg.strideOn === '3x3' ? s : 1, groups: cfg.groups },
        { k: 1, filters: cfg.out, stride: 1, groups: 1 },
      ]
    : [
        { k: 3, filters: cfg.inner, stride: s, groups: 1 },
        { k: 3, filters: cfg.out, stride: 1, groups: 1 },
      ];
  const last = convs.length;

  const conv = (k: number, x: string, followedByBatchNorm: boolean): string => {
    const c = convs[k - 1];
    return g.conv2d(n(`conv${k}`), x, {
      filters: c.filters,
      kernelSize: [c.k, c.k],
      strides: [c.stride, c.stride],
      padding: convPadding(cfg.convPadding, c.k),
      groups: c.groups,
      useBias: convBias(cfg.convBias, followedByBatchNorm),
    });
  };
  const bn = (k: number, x: string): string => g.batchNorm(n(`bn${k}`), x, cfg.bnEpsilon, cfg.bnMomentum, k === last);

  // The residual branch.
  let preactivated = input;
  let x = input;
  if (preact) {
    if (!cfg.skipPreact) preactivated = g.relu(n('relu1'), bn(1, input));
    x = preactivated;
    for (let k = 1; k <= last; k++) {
      if (k > 1) x = g.relu(n(`relu${k}`), bn(k, x));
      x = conv(k, x, k < last);
    }
  } else {
    for (let k = 1; k <= last; k++) {
      x = bn(k, conv(k, x, true));
      if (k < last) x = g.relu(n(`relu${k}`), x);
    }
  }
  if (cfg.seReduction !== undefined) {
    x = g.squeezeExcite(n('se'), x, Math.max(1, Math.floor(cfg.out / cfg.seReduction)));
  }

  // The shortcut.
  let shortcut = input;
  const channelsChange = inChannels !== cfg.out;
  if (s !== 1 || channelsChange) {
    if (cfg.shortcut === 'zeroPad') {
      shortcut = g.zeroPadShortcut(n('shortcut'), input, cfg.out, s);
    } else if (!channelsChange && cfg.strideShortcut === 'subsample') {
      shortcut = g.pool('maxPool', n('shortcut'), input, [1, 1], [s, s], 'valid');
    } else {
      const from = preact && cfg.preactShortcut === 'preactivated' ? preactivated : input;
      shortcut = g.conv2d(n('downsample.0'), from, {
        filters: cfg.out,
        kernelSize: [1, 1],
        strides: [s, s],
        padding: convPadding(cfg.convPadding, 1),
        useBias: convBias(cfg.convBias, cfg.projectionNorm),
      });
      if (cfg.projectionNorm) shortcut = g.batchNorm(n('downsample.1'), shortcut, cfg.bnEpsilon, cfg.bnMomentum);
    }
  }

  const sum = g.add(n('add'), x, shortcut);
  return preact ? sum : g.relu(n('relu'), sum);
}
