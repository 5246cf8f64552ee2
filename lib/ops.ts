// Functional ops with explicit gradients, for experts and for testing. NHWC activations,
// HWIO conv filters, [in, out] dense weights, fp32. Every op runs off the JS thread and
// returns a Promise; bad arguments reject with a ResNetError.
import { native, type NativeBatchNormOptions, type NativeConvOptions, type NativePoolOptions, type NativeTensorHandle } from './native.js';
import { Tensor } from './tensor.js';
import * as validate from './validate.js';
import type { Padding, Pair } from './validate.js';

export type { Padding, Pair };

export interface Conv2dOptions {
  /** Default 1. */
  strides?: Pair;
  /** 'same' (TensorFlow's rule: the odd pixel goes bottom/right), 'valid' (default), n, or [top, bottom, left, right]. */
  padding?: Padding;
  /** Default 1. */
  dilations?: Pair;
  /** Channel groups; in and out channels must both divide by it. groups = in channels is depthwise. Default 1. */
  groups?: number;
  /** Per-output-channel bias [outChannels]. */
  bias?: Tensor;
}

export interface Conv2dGradients {
  dx: Tensor;
  dw: Tensor;
  /** Present when the options had a bias. */
  db?: Tensor;
}

export interface DenseGradients {
  dx: Tensor;
  dw: Tensor;
  /** Present when a bias was passed. */
  db?: Tensor;
}

export interface BatchNormParams {
  gamma: Tensor;
  beta: Tensor;
  /** Updated in place in training mode. */
  runningMean: Tensor;
  runningVar: Tensor;
}

export interface BatchNormOptions {
  /** Batch statistics (and update the running ones) when true; running statistics when false. Default true. */
  training?: boolean;
  /** Weight of the new batch in the running statistics (PyTorch's convention). Default 0.1. */
  momentum?: number;
  /** Default 1e-5. */
  epsilon?: number;
}

export interface BatchNormGradients {
  dx: Tensor;
  dgamma: Tensor;
  dbeta: Tensor;
}

export interface BatchNormAddReluGradients extends BatchNormGradients {
  dskip: Tensor;
}

export interface PoolOptions {
  /** Window size. */
  size: Pair;
  /** Default: the window size. */
  strides?: Pair;
  /** Default 'valid'. Padded pixels never count (max ignores them, average divides by real pixels). */
  padding?: Padding;
}

export interface SoftmaxCrossEntropyOptions {
  /** Targets become (1 - s) * onehot + s / classes. Default 0. */
  labelSmoothing?: number;
}

export interface SoftmaxCrossEntropyBackwardOptions extends SoftmaxCrossEntropyOptions {
  /** Gradient of the final loss with respect to this loss. Default 1. */
  dloss?: number;
}

const wrap = (handle: NativeTensorHandle): Tensor => new Tensor(handle);

function convOptions(v: unknown, op: string): { native: NativeConvOptions; bias?: Tensor } {
  const o = validate.options<Conv2dOptions>(v, op);
  return {
    native: {
      strides: validate.pair(o.strides ?? 1, op, 'strides'),
      dilations: validate.pair(o.dilations ?? 1, op, 'dilations'),
      padding: validate.padding(o.padding ?? 'valid', op),
      groups: validate.integer(o.groups ?? 1, op, 'groups', 1),
    },
    bias: Tensor.checkOptional(o.bias, op, 'bias'),
  };
}

function poolOptions(v: unknown, op: string): NativePoolOptions {
  if (v === undefined || v === null) validate.fail('E_ARG', `${op}: options { size, strides?, padding? } are required`);
  const o = validate.options<PoolOptions>(v, op);
  const size = validate.pair(o.size, op, 'size');
  return {
    size,
    strides: o.strides === undefined ? size : validate.pair(o.strides, op, 'strides'),
    padding: validate.padding(o.padding ?? 'valid', op),
  };
}

function batchNormOptions(v: unknown, op: string): NativeBatchNormOptions {
  const o = validate.options<BatchNormOptions>(v, op);
  return {
    training: validate.boolean(o.training ?? true, op, 'training'),
    momentum: validate.number(o.momentum ?? 0.1, op, 'momentum', 0, 1),
    // 0 would divide a constant channel's zero variance by zero: NaN, quietly.
    epsilon: validate.number(o.epsilon ?? 1e-5, op, 'epsilon', 0, 1, 'min'),
  };
}

function batchNormParams(v: unknown, op: string) {
  if (typeof v !== 'object' || v === null) {
    validate.fail('E_ARG', `${op}: params must be { gamma, beta, runningMean, runningVar }`);
  }
  const p = v as Partial<BatchNormParams>;
  return [
    Tensor.check(p.gamma, op, 'gamma').handle,
    Tensor.check(p.beta, op, 'beta').handle,
    Tensor.check(p.runningMean, op, 'runningMean').handle,
    Tensor.check(p.runningVar, op, 'runningVar').handle,
  ] as const;
}

/** 2-D convolution: x [n, h, w, cIn], filter [kh, kw, cIn / groups, cOut] → [n, outH, outW, cOut]. */
export async function conv2d(x: Tensor, filter: Tensor, options?: Conv2dOptions): Promise<Tensor> {
  const op = 'conv2d';
  const { native: opts, bias } = convOptions(options, op);
  return wrap(await native.conv2d(Tensor.check(x, op, 'x').handle, Tensor.check(filter, op, 'filter').handle, bias?.handle ?? null, opts));
}

/** Gradients of conv2d with respect to x, the filter and (when options.bias is set) the bias. */
export async function conv2dBackward(x: Tensor, filter: Tensor, dy: Tensor, options?: Conv2dOptions): Promise<Conv2dGradients> {
  const op = 'conv2dBackward';
  const { native: opts, bias } = convOptions(options, op);
  const g = await native.conv2dBackward(
    Tensor.check(x, op, 'x').handle,
    Tensor.check(filter, op, 'filter').handle,
    Tensor.check(dy, op, 'dy').handle,
    bias !== undefined,
    opts,
  );
  return g.db ? { dx: wrap(g.dx), dw: wrap(g.dw), db: wrap(g.db) } : { dx: wrap(g.dx), dw: wrap(g.dw) };
}

/** Batch normalisation over the last axis of x ([n, c] or NHWC). */
export async function batchNorm(x: Tensor, params: BatchNormParams, options?: BatchNormOptions): Promise<Tensor> {
  const op = 'batchNorm';
  const opts = batchNormOptions(options, op);
  return wrap(await native.batchNorm(Tensor.check(x, op, 'x').handle, ...batchNormParams(params, op), opts));
}

/** Gradients of batchNorm (training mode: through the batch statistics). Running statistics are not touched. */
export async function batchNormBackward(x: Tensor, dy: Tensor, params: BatchNormParams, options?: BatchNormOptions): Promise<BatchNormGradients> {
  const op = 'batchNormBackward';
  const opts = batchNormOptions(options, op);
  const g = await native.batchNormBackward(Tensor.check(x, op, 'x').handle, Tensor.check(dy, op, 'dy').handle, ...batchNormParams(params, op), opts);
  return { dx: wrap(g.dx), dgamma: wrap(g.dgamma), dbeta: wrap(g.dbeta) };
}

/** relu(batchNorm(x) + skip): the end of a residual block, in one pass. */
export async function batchNormAddRelu(x: Tensor, skip: Tensor, params: BatchNormParams, options?: BatchNormOptions): Promise<Tensor> {
  const op = 'batchNormAddRelu';
  const opts = batchNormOptions(options, op);
  return wrap(
    await native.batchNormAddRelu(Tensor.check(x, op, 'x').handle, Tensor.check(skip, op, 'skip').handle, ...batchNormParams(params, op), opts),
  );
}

export async function batchNormAddReluBackward(
  x: Tensor,
  skip: Tensor,
  dy: Tensor,
  params: BatchNormParams,
  options?: BatchNormOptions,
): Promise<BatchNormAddReluGradients> {
  const op = 'batchNormAddReluBackward';
  const opts = batchNormOptions(options, op);
  const g = await native.batchNormAddReluBackward(
    Tensor.check(x, op, 'x').handle,
    Tensor.check(skip, op, 'skip').handle,
    Tensor.check(dy, op, 'dy').handle,
    ...batchNormParams(params, op),
    opts,
  );
  return { dx: wrap(g.dx), dskip: wrap(g.dskip!), dgamma: wrap(g.dgamma), dbeta: wrap(g.dbeta) };
}

export async function relu(x: Tensor): Promise<Tensor> {
  return wrap(await native.relu(Tensor.check(x, 'relu', 'x').handle));
}

/** dx = dy where x > 0, else 0. */
export async function reluBackward(x: Tensor, dy: Tensor): Promise<Tensor> {
  return wrap(await native.reluBackward(Tensor.check(x, 'reluBackward', 'x').handle, Tensor.check(dy, 'reluBackward', 'dy').handle));
}

/** Element-wise a + b (same shapes). Its gradient passes dy to both inputs unchanged. */
export async function add(a: Tensor, b: Tensor): Promise<Tensor> {
  return wrap(await native.add(Tensor.check(a, 'add', 'a').handle, Tensor.check(b, 'add', 'b').handle));
}

export async function maxPool(x: Tensor, options: PoolOptions): Promise<Tensor> {
  const opts = poolOptions(options, 'maxPool');
  return wrap(await native.maxPool(Tensor.check(x, 'maxPool', 'x').handle, opts));
}

export async function maxPoolBackward(x: Tensor, dy: Tensor, options: PoolOptions): Promise<Tensor> {
  const op = 'maxPoolBackward';
  const opts = poolOptions(options, op);
  return wrap(await native.maxPoolBackward(Tensor.check(x, op, 'x').handle, Tensor.check(dy, op, 'dy').handle, opts));
}

export async function avgPool(x: Tensor, options: PoolOptions): Promise<Tensor> {
  const opts = poolOptions(options, 'avgPool');
  return wrap(await native.avgPool(Tensor.check(x, 'avgPool', 'x').handle, opts));
}

export async function avgPoolBackward(x: Tensor, dy: Tensor, options: PoolOptions): Promise<Tensor> {
  const op = 'avgPoolBackward';
  const opts = poolOptions(options, op);
  return wrap(await native.avgPoolBackward(Tensor.check(x, op, 'x').handle, Tensor.check(dy, op, 'dy').handle, opts));
}

/** [n, h, w, c] → [n, c], the mean over each feature map. */
export async function globalAvgPool(x: Tensor): Promise<Tensor> {
  return wrap(await native.globalAvgPool(Tensor.check(x, 'globalAvgPool', 'x').handle));
}

export async function globalAvgPoolBackward(x: Tensor, dy: Tensor): Promise<Tensor> {
  const op = 'globalAvgPoolBackward';
  return wrap(await native.globalAvgPoolBackward(Tensor.check(x, op, 'x').handle, Tensor.check(dy, op, 'dy').handle));
}

/** x [n, in] · weights [in, out] (+ bias [out]). */
export async function dense(x: Tensor, weights: Tensor, bias?: Tensor): Promise<Tensor> {
  const op = 'dense';
  const b = Tensor.checkOptional(bias, op, 'bias');
  return wrap(await native.dense(Tensor.check(x, op, 'x').handle, Tensor.check(weights, op, 'weights').handle, b?.handle ?? null));
}

/** Gradients of dense; db is present when a bias is passed. */
export async function denseBackward(x: Tensor, weights: Tensor, dy: Tensor, bias?: Tensor): Promise<DenseGradients> {
  const op = 'denseBackward';
  const b = Tensor.checkOptional(bias, op, 'bias');
  const g = await native.denseBackward(
    Tensor.check(x, op, 'x').handle,
    Tensor.check(weights, op, 'weights').handle,
    Tensor.check(dy, op, 'dy').handle,
    b !== undefined,
  );
  return g.db ? { dx: wrap(g.dx), dw: wrap(g.dw), db: wrap(g.db) } : { dx: wrap(g.dx), dw: wrap(g.dw) };
}

/** Mean softmax cross-entropy of logits [n, classes] against integer labels. */
export async function softmaxCrossEntropy(
  logits: Tensor,
  labels: Int32Array | readonly number[],
  options?: SoftmaxCrossEntropyOptions,
): Promise<number> {
  const op = 'softmaxCrossEntropy';
  const o = validate.options<SoftmaxCrossEntropyOptions>(options, op);
  return native.softmaxCrossEntropy(
    Tensor.check(logits, op, 'logits').handle,
    validate.labels(labels, op),
    validate.number(o.labelSmoothing ?? 0, op, 'labelSmoothing', 0, 1),
  );
}

/** d(loss)/d(logits), scaled by options.dloss. */
export async function softmaxCrossEntropyBackward(
  logits: Tensor,
  labels: Int32Array | readonly number[],
  options?: SoftmaxCrossEntropyBackwardOptions,
): Promise<Tensor> {
  const op = 'softmaxCrossEntropyBackward';
  const o = validate.options<SoftmaxCrossEntropyBackwardOptions>(options, op);
  return wrap(
    await native.softmaxCrossEntropyBackward(
      Tensor.check(logits, op, 'logits').handle,
      validate.labels(labels, op),
      validate.number(o.labelSmoothing ?? 0, op, 'labelSmoothing', 0, 1),
      validate.number(o.dloss ?? 1, op, 'dloss', -Number.MAX_VALUE, Number.MAX_VALUE),
    ),
  );
}
