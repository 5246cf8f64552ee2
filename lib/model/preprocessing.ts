// What a model expects of its input images: the geometry (resize, center crop) and the value
// transform (channel order, mean, std). It travels with the model in every file we write, so
// that image inputs (io.decodeImage, model.predictImages, the CLI) prepare pictures the way the
// weights were trained on them; model.predict(tensor) takes model-ready tensors and ignores it.
import { ResNetError } from '../errors.js';
import * as validate from '../validate.js';

export type ChannelOrder = 'rgb' | 'bgr';

export interface Preprocessing {
  /** Height and width of the network's input, [height, width]. */
  imageSize: [number, number];
  /**
   * Resize the shorter side to this many pixels, then center-crop imageSize (torchvision's
   * Resize(256) + CenterCrop(224)). Undefined: resize the whole image straight to imageSize.
   */
  resizeTo?: number;
  /** Order of the channels the first convolution was trained on. Default 'rgb'. */
  channelOrder: ChannelOrder;
  /** Per channel, on values scaled to [0, 1]: (x - mean) / std. Caffe-style 0–255 means are mean/255 with std 1/255. */
  mean: number[];
  std: number[];
}

/** The builders' options that describe a model's inputs and outputs (Model.preprocessing, Model.classNames). */
export interface ModelDescriptionOptions {
  /** How images become the model's inputs (see Preprocessing). Default: not described. */
  preprocessing?: Preprocessing;
  /** One name per class. Default: none (predictions name classes by index). */
  classNames?: readonly string[];
}

/** The identity transform: [0, 1] values in, unchanged. What a file without preprocessing implies. */
export function identityPreprocessing(imageSize: [number, number], channels: number): Preprocessing {
  return { imageSize, channelOrder: 'rgb', mean: new Array<number>(channels).fill(0), std: new Array<number>(channels).fill(1) };
}

const KEYS = ['imageSize', 'resizeTo', 'channelOrder', 'mean', 'std'] as const;
const MAX_SIDE = 65536;

/**
 * Checks a Preprocessing from a user or a file and returns a frozen copy. `channels` is the
 * model's input channels (mean and std need one entry each); `op` names the caller in errors.
 */
export function checkPreprocessing(v: unknown, channels: number, op: string): Readonly<Preprocessing> {
  if (!validate.isPlainObject(v)) validate.invalid(v, op, 'preprocessing', 'an object { imageSize, channelOrder, mean, std, resizeTo? }');
  validate.keys(v, `${op} preprocessing`, KEYS);
  const size = v.imageSize;
  if (!Array.isArray(size) || size.length !== 2) validate.invalid(size, op, 'preprocessing.imageSize', 'a [height, width] pair');
  const imageSize: [number, number] = [
    validate.integer(size[0], op, 'preprocessing.imageSize[0]', 1, MAX_SIDE),
    validate.integer(size[1], op, 'preprocessing.imageSize[1]', 1, MAX_SIDE),
  ];
  const channelOrder =
    v.channelOrder === undefined ? 'rgb' : validate.oneOf(v.channelOrder, op, 'preprocessing.channelOrder', ['rgb', 'bgr'] as const);
  const mean = channelValues(v.mean, channels, op, 'mean', -1e6, 1e6);
  const std = channelValues(v.std, channels, op, 'std', 1e-12, 1e6);
  const out: Preprocessing = { imageSize, channelOrder, mean, std };
  if (v.resizeTo !== undefined) {
    out.resizeTo = validate.integer(v.resizeTo, op, 'preprocessing.resizeTo', Math.min(...imageSize), MAX_SIDE);
  }
  return Object.freeze(out);
}

function channelValues(v: unknown, channels: number, op: string, name: string, min: number, max: number): number[] {
  if (!Array.isArray(v) || v.length !== channels) {
    throw new ResNetError(
      'E_ARG',
      `${op}: preprocessing.${name} must be an array of ${channels} numbers (one per input channel), got ${validate.describe(v)}`,
    );
  }
  return v.map((x, i) => validate.number(x, op, `preprocessing.${name}[${i}]`, min, max));
}

const MAX_CLASS_NAME = 1024;

/** Checks class names from a user or a file: one non-empty string per class. Returns a frozen copy. */
export function checkClassNames(v: unknown, classes: number, op: string): readonly string[] {
  if (!Array.isArray(v) || v.length !== classes) {
    throw new ResNetError('E_ARG', `${op}: classNames must be an array of ${classes} strings (one per class), got ${validate.describe(v)}`);
  }
  return Object.freeze(
    v.map((name, i) => {
      if (typeof name !== 'string' || name.length === 0 || name.length > MAX_CLASS_NAME) {
        validate.invalid(name, op, `classNames[${i}]`, `a string of 1 to ${MAX_CLASS_NAME} characters`);
      }
      return name;
    }),
  );
}
