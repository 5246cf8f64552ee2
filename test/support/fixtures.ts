// Test fixtures shared by several test files: conv case descriptions and random
// batch-norm parameters.
import { Tensor } from '../../lib/index.js';
import type { BatchNormParams, Padding } from '../../lib/ops.js';
import type { Rng } from './random.js';

/** One conv2d test case: NHWC input, HWIO filter, and the conv options. */
export interface ConvCase {
  name: string;
  n: number;
  h: number;
  w: number;
  cin: number;
  cout: number;
  k: [number, number];
  strides: [number, number];
  dilations: [number, number];
  padding: Padding;
  groups: number;
  bias: boolean;
}

/** Batch-norm parameters and running statistics as plain arrays. */
export interface BatchNormData {
  gamma: Float32Array;
  beta: Float32Array;
  runningMean: Float32Array;
  runningVar: Float32Array;
}

/** gamma and runningVar in [0.5, 1.5), beta and runningMean in [-0.5, 0.5). */
export function randomBatchNormData(rng: Rng, channels: number): BatchNormData {
  return {
    gamma: Float32Array.from(rng.array(channels, 0.5), (v) => 1 + v),
    beta: rng.array(channels, 0.5),
    runningMean: rng.array(channels, 0.5),
    runningVar: Float32Array.from(rng.array(channels, 0.5), (v) => 1 + v),
  };
}

/** Fresh tensors (fromArray copies, so training-mode updates never touch `d`). */
export function batchNormTensors(d: BatchNormData): BatchNormParams {
  const c = d.gamma.length;
  return {
    gamma: Tensor.fromArray(d.gamma, [c]),
    beta: Tensor.fromArray(d.beta, [c]),
    runningMean: Tensor.fromArray(d.runningMean, [c]),
    runningVar: Tensor.fromArray(d.runningVar, [c]),
  };
}
