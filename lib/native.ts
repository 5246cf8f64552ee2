// The one place that loads the native addon (through node-gyp-build: a prebuild from
// prebuilds/ when one matches, else build/Release from a source build).
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ResNetError } from './errors.js';

/** Opaque native tensor handle. */
export interface NativeTensorHandle {
  shape(): number[];
  toFloat32Array(): Float32Array;
  dispose(): void;
  isDisposed(): boolean;
}

export interface NativeTensorConstructor {
  new (data: Float32Array, shape: number[]): NativeTensorHandle;
}

type H = NativeTensorHandle;
export interface WindowOptions {
  strides: [number, number];
  dilations?: [number, number];
  padding: 'same' | 'valid' | [number, number, number, number];
}
export interface NativeConvOptions extends WindowOptions {
  groups: number;
}
export interface NativePoolOptions extends WindowOptions {
  size: [number, number];
}
export interface NativeBatchNormOptions {
  training: boolean;
  momentum: number;
  epsilon: number;
}
export interface NativeBatchNormGrads {
  dx: H;
  dskip?: H;
  dgamma: H;
  dbeta: H;
}

/** The addon's exports (see native/addon/). */
export interface NativeBinding {
  NativeTensor: NativeTensorConstructor;
  setErrorClass(ctor: typeof ResNetError): void;
  runtimeInfo(): { threads: number; kernels: string };
  conv2d(x: H, w: H, bias: H | null, opts: NativeConvOptions): Promise<H>;
  conv2dBackward(x: H, w: H, dy: H, withBias: boolean, opts: NativeConvOptions): Promise<{ dx: H; dw: H; db?: H }>;
  batchNorm(x: H, gamma: H, beta: H, mean: H, variance: H, opts: NativeBatchNormOptions): Promise<H>;
  batchNormBackward(x: H, dy: H, gamma: H, beta: H, mean: H, variance: H, opts: NativeBatchNormOptions): Promise<NativeBatchNormGrads>;
  batchNormAddRelu(x: H, skip: H, gamma: H, beta: H, mean: H, variance: H, opts: NativeBatchNormOptions): Promise<H>;
  batchNormAddReluBackward(
    x: H,
    skip: H,
    dy: H,
    gamma: H,
    beta: H,
    mean: H,
    variance: H,
    opts: NativeBatchNormOptions,
  ): Promise<NativeBatchNormGrads>;
  relu(x: H): Promise<H>;
  reluBackward(x: H, dy: H): Promise<H>;
  add(a: H, b: H): Promise<H>;
  maxPool(x: H, opts: NativePoolOptions): Promise<H>;
  maxPoolBackward(x: H, dy: H, opts: NativePoolOptions): Promise<H>;
  avgPool(x: H, opts: NativePoolOptions): Promise<H>;
  avgPoolBackward(x: H, dy: H, opts: NativePoolOptions): Promise<H>;
  globalAvgPool(x: H): Promise<H>;
  globalAvgPoolBackward(x: H, dy: H): Promise<H>;
  dense(x: H, w: H, bias: H | null): Promise<H>;
  denseBackward(x: H, w: H, dy: H, withBias: boolean): Promise<{ dx: H; dw: H; db?: H }>;
  softmaxCrossEntropy(logits: H, labels: Int32Array, labelSmoothing: number): Promise<number>;
  softmaxCrossEntropyBackward(logits: H, labels: Int32Array, labelSmoothing: number, dloss: number): Promise<H>;
}

/** The package root: dist/.. once built, lib/.. when run from source. */
export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

function load(): NativeBinding {
  const require = createRequire(import.meta.url);
  const nodeGypBuild = require('node-gyp-build') as ((dir: string) => unknown) & { path(dir: string): string };
  let binding: NativeBinding;
  try {
    binding = nodeGypBuild(packageRoot) as NativeBinding;
  } catch (err) {
    throw new ResNetError(
      'E_NATIVE',
      `resnet-native: no native addon for ${process.platform}-${process.arch} (node ${process.versions.node}) could be loaded. ` +
        `Run \`npm rebuild resnet-native\` to build it from source (needs cmake and a C++20 compiler). Cause: ${(err as Error).message}`,
    );
  }
  binding.setErrorClass(ResNetError);
  return binding;
}

/** The loaded addon (loaded on first import of the package). */
export const native: NativeBinding = load();
