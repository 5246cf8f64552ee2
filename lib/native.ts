// The one place that loads the native addon (through node-gyp-build: a prebuild from
// prebuilds/ when one matches, else build/Release from a source build).
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ResNetError } from './errors.js';
import type { Precision } from './validate.js';

/** Opaque native tensor handle. */
export interface NativeTensorHandle {
  shape(): number[];
  toFloat32Array(): Float32Array;
  dispose(): void;
  isDisposed(): boolean;
  device(): string;
  toDevice(device: string): NativeTensorHandle;
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

/** Loss scaling for mixed precision (ModelInitOptions.lossScale). */
export interface LossScaleOptions {
  /** Halve on overflow (skipping the step), double after growthInterval good steps. Default true. */
  dynamic?: boolean;
  /** The starting (or fixed) scale, in [1, 2^24]. Default 65536 when dynamic, 1 when not. */
  initial?: number;
  /** Good steps in a row before the scale doubles. Default 2000. */
  growthInterval?: number;
}

export interface NativeStepResult {
  loss: number;
  correct: number;
  /** Labels ranked in the top five logits. */
  correct5: number;
  count: number;
  gradNorm: number;
  /** Mixed precision: the scaled gradients overflowed and nothing was updated. */
  skipped: boolean;
  /** The loss scale this step's backward used (1 unless fp16). */
  lossScale: number;
}

export interface NativeLayerInfo {
  name: string;
  type: string;
  outputShape: number[];
  params: number;
  nonTrainable: number;
  inputs: string[];
}

export interface NativeOptimizerConfig {
  type: 'sgd' | 'adamw';
  lr: number;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  decoupledWeightDecay: boolean;
  beta1: number;
  beta2: number;
  eps: number;
  clipGradNorm: number;
  /** Per trainable parameter, in parameterTable order. */
  decayScale: Float32Array;
  lrScale: Float32Array;
}

/** A compiled model: parameters, optimizer and per-shape plans (native/core/network.hpp). */
/** profilePredict's result (network_profile.cpp): the last run's logits, mean ms per call and per plan step. */
export interface NativePredictProfile {
  logits: H;
  totalMs: number;
  steps: { name: string; op: string; detail: string; ms: number }[];
}

export interface NativeNetworkHandle {
  parameterTable(): { name: string; shape: number[]; trainable: boolean; layer: string }[];
  describe(inputShape: number[]): NativeLayerInfo[];
  initialize(options: { seed: number; zeroInitResidual: boolean }): void;
  getParameter(name: string): Float32Array;
  setParameter(name: string, values: Float32Array): void;
  getGradient(name: string): Float32Array;
  setOptimizer(config: NativeOptimizerConfig, labelSmoothing: number): void;
  setLearningRate(lr: number): void;
  setTraining(training: boolean): void;
  /** The whole frozen state: these layers frozen, these frozen batch-norms on their running statistics (network_wrap.cpp). */
  setFrozen(frozenLayers: string[], runningStatisticsLayers: string[]): void;
  trainStep(images: H, labels: Int32Array, mixLabels?: Int32Array, lambda?: number): Promise<NativeStepResult>;
  computeGradients(images: H, labels: Int32Array, labelSmoothing: number, mixLabels?: Int32Array, lambda?: number): Promise<NativeStepResult>;
  predict(images: H, softmax: boolean): Promise<H>;
  evaluate(images: H, labels: Int32Array): Promise<NativeStepResult>;
  profilePredict(images: H, runs: number): Promise<NativePredictProfile>;
  stats(): {
    plans: number;
    arenaBytes: number;
    trainable: number;
    nonTrainable: number;
    device: string;
    backend: string;
    precision: Precision;
    lossScale: number;
    skippedSteps: number;
    /** The most recently used plan's fused steps, and how many run backward (a frozen prefix runs none). */
    planSteps: number;
    backwardSteps: number;
  };
  dispose(): void;
  isDisposed(): boolean;
  /** State slots per trainable parameter (0, 1 or 2) and the step count; E_ARG before setOptimizer. */
  optimizerStateInfo(): { slots: number; steps: number };
  getOptimizerState(name: string, slot: number): Float32Array;
  /** Slot `slot` of parameter `name`'s optimizer state… */
  setOptimizerState(name: string, slot: number, values: Float32Array): void;
  /** …or, with (null, -1, steps), the optimizer's step count (network_wrap.cpp set_optimizer_state). */
  setOptimizerState(name: null, slot: -1, steps: number): void;
}

/** lib/data/augment.ts → native/addon/augment_bindings.cpp. */
export interface NativeAugmentOptions {
  count: number;
  imageShape: [number, number, number];
  padding: number;
  flip: boolean;
  mean: number[] | null;
  std: number[] | null;
  seed: number;
  step: number;
  randomResizedCrop?: { scale: [number, number]; ratio: [number, number] };
  centerCrop?: { resize: number };
  colorJitter?: { brightness: [number, number] | null; contrast: [number, number] | null; saturation: [number, number] | null };
  mixupAlpha?: number;
  cutmixAlpha?: number;
}

/** What the CUDA side looks like (native/addon/device_bindings.cpp). */
export interface CudaStatus {
  /** True when the plugin, the driver, cuDNN and at least one GPU are all there. */
  available: boolean;
  /** Why not, naming the missing piece and how to provide it. */
  reason?: string;
  /** Where the plugin was looked for (beside the addon, or RESNET_CUDA_PLUGIN). */
  pluginPath: string;
  /** The libcudnn.so.9 that was loaded. */
  cudnnPath?: string;
  driverVersion?: number;
  runtimeVersion?: number;
  cudnnVersion?: number;
  devices?: { name: string; memoryBytes: number; computeCapability: string; multiprocessors: number }[];
}

/** The addon's exports (see native/addon/). */
export interface NativeBinding {
  NativeTensor: NativeTensorConstructor;
  NativeNetwork: new (
    spec: object,
    options?: { device?: string; allowTf32?: boolean; precision?: string; lossScale?: LossScaleOptions; memoryBudget?: number },
  ) => NativeNetworkHandle;
  cudaStatus(): CudaStatus;
  allocationStats(): { allocations: number; liveBytes: number };
  setErrorClass(ctor: typeof ResNetError): void;
  runtimeInfo(): { threads: number; kernels: string; engine: string; simd: string };
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
  augmentBatch(src: Float32Array, dst: H, opts: NativeAugmentOptions): Promise<{ kind: 'none' | 'mixup' | 'cutmix'; lambda: number }>;
}

/** The package root: dist/.. once built, lib/.. when run from source. */
export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

function load(): { binding: NativeBinding; path: string } {
  const require = createRequire(import.meta.url);
  const nodeGypBuild = require('node-gyp-build') as { path(dir: string): string };
  // RESNET_NATIVE_ADDON=<path to a .node file> loads that build instead (scripts/test-asan.mjs
  // points it at the sanitizer build in build-asan/); unset, node-gyp-build chooses.
  const override = process.env.RESNET_NATIVE_ADDON;
  let binding: NativeBinding;
  let path: string;
  try {
    path = override ? resolve(override) : nodeGypBuild.path(packageRoot);
    binding = require(path) as NativeBinding;
  } catch (err) {
    throw new ResNetError(
      'E_NATIVE',
      `resnet-native: no native addon ${override ? `at RESNET_NATIVE_ADDON=${override} ` : ''}for ${process.platform}-${process.arch} (node ${process.versions.node}) could be loaded. ` +
        `Run \`npm rebuild resnet-native\` to build it from source (needs cmake and a C++20 compiler). Cause: ${(err as Error).message}`,
    );
  }
  binding.setErrorClass(ResNetError);
  return { binding, path };
}

const loaded = load();

/** The loaded addon (loaded on first import of the package). */
export const native: NativeBinding = loaded.binding;

/** The file the addon was loaded from: prebuilds/<platform>-<arch>/… or build/Release/…. */
export const addonPath: string = loaded.path;
