// Image files → model-ready tensors: decode (PNG, JPEG, WebP, GIF's first frame; sharp), drop
// alpha, convert to the model's channels (grey or RGB), resize and centre-crop as the model's
// preprocessing says, and normalise ((x / 255 − mean) / std, in the model's channel order).
//
// Geometry (Preprocessing.resizeTo): see image_geometry.ts — torchvision's Resize(resizeTo) +
// CenterCrop(imageSize); a square imageSize with resizeTo equal to its side gives exactly the
// pixels datasets.imageFolder trains on. Without resizeTo, the image is stretched to imageSize.
//
// Hostile input: a path is read through read_file.ts (regular files only, a size cap: E_IO /
// E_FORMAT naming it), sharp refuses images that declare more pixels than the file can hold
// and fails on truncated or corrupt data; every decoding failure is E_FORMAT naming the source.
import { MAX_IMAGE_BYTES, readImageFile, sharpInputOptions } from '../data/image_folder.js';
import { ResNetError } from '../errors.js';
import { checkPreprocessing, type Preprocessing } from '../model/preprocessing.js';
import { Tensor } from '../tensor.js';
import { resizeAndCrop } from './image_geometry.js';
import * as validate from '../validate.js';

/** A file path, or the bytes of an image file. */
export type ImageSource = string | Uint8Array;

/** What decodeImage needs of a model: its input shape and its preprocessing (a Model has both). */
export interface ImageModel {
  readonly inputShape: readonly number[];
  readonly preprocessing?: Readonly<Preprocessing> | undefined;
}

export interface DecodeImageOptions {
  /** How to prepare the image. Takes precedence over `model`'s. */
  preprocessing?: Preprocessing;
  /**
   * The model the image is for: its preprocessing, and its input channels (1: grey, 3: RGB).
   * A model without preprocessing gets its input size, resized to cover and centre-cropped,
   * with values in [0, 1].
   */
  model?: ImageModel;
}

type Sharp = typeof import('sharp').default;
let sharpModule: Promise<Sharp> | undefined;

function loadSharp(op: string): Promise<Sharp> {
  sharpModule ??= import('sharp')
    .then((m) => m.default)
    .catch((err: unknown) => {
      sharpModule = undefined;
      throw new ResNetError('E_NATIVE', `${op}: the 'sharp' image decoder could not be loaded: ${(err as Error).message}`);
    });
  return sharpModule;
}

/** A resolved recipe: the preprocessing and the number of channels to produce. */
export interface ImageRecipe {
  preprocessing: Readonly<Preprocessing>;
  channels: 1 | 3;
}

function channelCount(c: unknown, op: string): 1 | 3 {
  if (c !== 1 && c !== 3)
    throw new ResNetError('E_ARG', `${op}: images can be decoded for 1 (grey) or 3 (RGB) channels, the model takes ${String(c)}`);
  return c;
}

/** The recipe of `options` ({ preprocessing } or { model }). */
export function imageRecipe(given: DecodeImageOptions | Preprocessing, op: string): ImageRecipe {
  // A Preprocessing itself (decodeImage(src, model.preprocessing)) stands for { preprocessing }.
  const options = validate.isPlainObject(given) && 'imageSize' in given ? { preprocessing: given as unknown as Preprocessing } : given;
  if (!validate.isPlainObject(options)) validate.invalid(options, op, 'options', 'an object { preprocessing } or { model }');
  validate.keys(options, op, ['preprocessing', 'model']);
  const model = (options as DecodeImageOptions).model;
  if (model !== undefined && (typeof model !== 'object' || model === null || !Array.isArray(model.inputShape))) {
    validate.invalid(model, op, 'model', 'a Model');
  }
  const p = (options as DecodeImageOptions).preprocessing as unknown;
  if (p !== undefined) {
    const c = model ? model.inputShape[model.inputShape.length - 1] : validate.isPlainObject(p) && Array.isArray(p.mean) ? p.mean.length : 3;
    const channels = channelCount(c, op);
    return { preprocessing: checkPreprocessing(p, channels, op), channels };
  }
  if (model === undefined) throw new ResNetError('E_ARG', `${op}: options need preprocessing or a model`);
  const shape = model.inputShape;
  const channels = channelCount(shape[shape.length - 1], op);
  if (model.preprocessing) return { preprocessing: model.preprocessing, channels };
  const size: [number, number] = [shape[0]!, shape[1]!];
  return {
    preprocessing: checkPreprocessing(
      { imageSize: size, resizeTo: Math.max(...size), channelOrder: 'rgb', mean: new Array(channels).fill(0), std: new Array(channels).fill(1) },
      channels,
      op,
    ),
    channels,
  };
}

/** How `source` is named in errors. */
function sourceName(source: ImageSource): string {
  return typeof source === 'string' ? source : `the image buffer (${source.byteLength} bytes)`;
}

async function sourceBytes(source: ImageSource, op: string): Promise<Uint8Array> {
  if (typeof source === 'string') {
    if (source.length === 0) throw new ResNetError('E_ARG', `${op}: the image path is empty`);
    return readImageFile(source, op);
  }
  if (!(source instanceof Uint8Array)) validate.invalid(source, op, 'source', 'a file path or a Buffer / Uint8Array of image bytes');
  if (source.byteLength > MAX_IMAGE_BYTES) {
    throw new ResNetError(
      'E_FORMAT',
      `${op}: the image buffer is ${source.byteLength} bytes, above the limit of ${MAX_IMAGE_BYTES} bytes for an image`,
    );
  }
  return source;
}

/** Decodes, converts and crops to [h, w, channels] bytes (0–255), as the recipe says. */
async function decodePixels(bytes: Uint8Array, recipe: ImageRecipe, name: string, op: string): Promise<Uint8Array> {
  const sharp = await loadSharp(op);
  const { imageSize, resizeTo } = recipe.preprocessing;
  const [h, w] = imageSize;
  const c = recipe.channels;
  try {
    const input = () => sharp(bytes, sharpInputOptions(bytes.length));
    let p = await resizeAndCrop(input, [h, w], resizeTo);
    p = c === 3 ? p.removeAlpha().toColourspace('srgb') : p.removeAlpha().toColourspace('b-w');
    const { data, info } = await p.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.width !== w || info.height !== h || info.channels !== c) {
      throw new Error(`decoded to ${info.width}×${info.height}×${info.channels}, expected ${w}×${h}×${c}`);
    }
    return data;
  } catch (err) {
    throw new ResNetError('E_FORMAT', `${op}: cannot decode ${name} as a PNG, JPEG, WebP or GIF image: ${(err as Error)?.message ?? String(err)}`);
  }
}

/**
 * @internal Decodes `source` into `out` at `offset` ([h, w, c] floats, normalised), as
 * `recipe` says: the batch form of decodeImage (model.predictImages fills one buffer).
 */
export async function decodeImageInto(source: ImageSource, recipe: ImageRecipe, out: Float32Array, offset: number, op: string): Promise<void> {
  const bytes = await sourceBytes(source, op);
  const pixels = await decodePixels(bytes, recipe, sourceName(source), op);
  const { mean, std, channelOrder } = recipe.preprocessing;
  const c = recipe.channels;
  const n = pixels.length / c;
  // mean[k] / std[k] belong to the model's input channel k (after any reordering).
  const reverse = channelOrder === 'bgr' && c === 3;
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < c; k++) {
      const from = reverse ? c - 1 - k : k;
      out[offset + i * c + k] = (pixels[i * c + from]! / 255 - mean[k]!) / std[k]!;
    }
  }
}

/**
 * Decodes an image (a file path, or a Buffer / Uint8Array of its bytes; PNG, JPEG, WebP, or
 * GIF's first frame) into a model-ready Tensor [1, height, width, channels]: alpha dropped,
 * grey or RGB as the model takes, resized and centre-cropped and normalised as `preprocessing`
 * (or `model.preprocessing`) says; a Preprocessing may be passed in place of the options. E_IO when the file cannot be read, E_FORMAT when it is not
 * a (whole, plausible) image, both naming it.
 */
export async function decodeImage(source: ImageSource, options: DecodeImageOptions | Preprocessing): Promise<Tensor> {
  const op = 'io.decodeImage';
  const recipe = imageRecipe(options, op);
  const [h, w] = recipe.preprocessing.imageSize;
  const out = validate.allocate(Float32Array, h * w * recipe.channels, op, 'the image');
  await decodeImageInto(source, recipe, out, 0, op);
  return Tensor.fromArray(out, [1, h, w, recipe.channels]);
}

/**
 * Several images into one batch Tensor [n, height, width, channels] (see decodeImage): the form
 * model.predict and model.evaluate take. E_ARG for an empty list.
 */
export async function decodeImages(sources: readonly ImageSource[], options: DecodeImageOptions | Preprocessing): Promise<Tensor> {
  const op = 'io.decodeImages';
  const recipe = imageRecipe(options, op);
  if (!Array.isArray(sources) || sources.length === 0) validate.invalid(sources, op, 'sources', 'a non-empty array of image paths or Buffers');
  const [h, w] = recipe.preprocessing.imageSize;
  const per = h * w * recipe.channels;
  const out = validate.allocate(Float32Array, sources.length * per, op, 'the image batch');
  for (let i = 0; i < sources.length; i++) await decodeImageInto(sources[i]!, recipe, out, i * per, op);
  return Tensor.fromArray(out, [sources.length, h, w, recipe.channels]);
}
