// The model spec: a plain, JSON-serialisable list of layers in topological order. The
// builders (builders.ts) produce it, the native plan compiler (native/core/graph.cpp)
// consumes it, checkpoints store it. Layouts: activations NHWC, conv weights HWIO
// [kh, kw, in / groups, out], dense weights [in, out].
//
// Parameter names are `${layer.name}.${suffix}`:
//   conv2d          .weight [kh, kw, in/groups, out], .bias [out] when useBias
//   batchNorm       .weight (gamma) [c], .bias (beta) [c]; non-trainable .running_mean, .running_var
//   dense           .weight [in, out], .bias [out] when useBias
//   squeezeExcite   .fc1.weight [c, hidden], .fc1.bias [hidden], .fc2.weight [hidden, c], .fc2.bias [c]
// Builders name layers the way torchvision names modules (conv1, bn1, layer1.0.conv1,
// layer1.0.downsample.0, fc, …) so that names are stable and weight import is a lookup.

/** 'same' (TensorFlow's rule), 'valid', n on every side, or [top, bottom, left, right]. */
export type SpecPadding = 'same' | 'valid' | number | [number, number, number, number];

interface LayerBase {
  /** Unique; parameter names derive from it. */
  name: string;
  /** Names of earlier layers, or 'input' for the network input. */
  inputs: string[];
}

export interface Conv2dLayer extends LayerBase {
  type: 'conv2d';
  filters: number;
  kernelSize: [number, number];
  strides: [number, number];
  padding: SpecPadding;
  dilations: [number, number];
  groups: number;
  useBias: boolean;
}

export interface BatchNormLayer extends LayerBase {
  type: 'batchNorm';
  /** Default 1e-5 (PyTorch); Keras uses 1e-3. */
  epsilon: number;
  /** Weight of the new batch in the running statistics (PyTorch convention), default 0.1. */
  momentum: number;
  /** The last batch-norm of a residual branch: its scale starts at 0 under `zeroInitResidual`. */
  residualLast?: boolean;
}

export interface ReluLayer extends LayerBase {
  type: 'relu';
}

/** Element-wise sum of two inputs of one shape. */
export interface AddLayer extends LayerBase {
  type: 'add';
}

export interface Pool2dLayer extends LayerBase {
  type: 'maxPool' | 'avgPool';
  poolSize: [number, number];
  strides: [number, number];
  padding: SpecPadding;
}

/** Mean over height and width: [n, h, w, c] → [n, c]. */
export interface GlobalAvgPoolLayer extends LayerBase {
  type: 'globalAvgPool';
}

/** [n, h, w, c] → [n, h·w·c] (row-major NHWC, as Keras' Flatten). */
export interface FlattenLayer extends LayerBase {
  type: 'flatten';
}

/** Fully connected on [n, features]. */
export interface DenseLayer extends LayerBase {
  type: 'dense';
  units: number;
  useBias: boolean;
}

/** Zero rows and columns around the image (Keras' ZeroPadding2D): [top, bottom, left, right]. */
export interface ZeroPadLayer extends LayerBase {
  type: 'zeroPad';
  padding: [number, number, number, number];
}

/**
 * Squeeze-and-excitation (Hu et al.): x · sigmoid(fc2(relu(fc1(globalAvgPool(x))))),
 * fc1 [c → hidden] and fc2 [hidden → c] with biases.
 */
export interface SqueezeExciteLayer extends LayerBase {
  type: 'squeezeExcite';
  hidden: number;
}

/**
 * The parameter-free shortcut of He et al.'s CIFAR option A: subsample by `strides` and
 * add zero channels up to `filters`, as many before as after (the odd one after).
 */
export interface ZeroPadShortcutLayer extends LayerBase {
  type: 'zeroPadShortcut';
  filters: number;
  strides: [number, number];
}

export type LayerSpec =
  | Conv2dLayer
  | BatchNormLayer
  | ReluLayer
  | AddLayer
  | Pool2dLayer
  | GlobalAvgPoolLayer
  | FlattenLayer
  | DenseLayer
  | ZeroPadLayer
  | SqueezeExciteLayer
  | ZeroPadShortcutLayer;

export type LayerType = LayerSpec['type'];

export interface ModelSpec {
  format: 'resnet-native/model';
  version: 1;
  /** e.g. 'resnet50', 'resnet_cifar20_v1'. */
  name: string;
  /** [height, width, channels] the model was built for; other sizes work where the architecture allows. */
  inputShape: [number, number, number];
  classes: number;
  layers: LayerSpec[];
  /** The layer whose output is the logits [n, classes]. */
  output: string;
}
