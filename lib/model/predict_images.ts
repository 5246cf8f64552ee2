// model.predictImages: image files (or their bytes) → each image's top classes with their
// probabilities. The CLI's predict prints exactly these answers (it calls predictImageBatches),
// so a script and the command line agree.
//
// Images are decoded with the model's preprocessing (io/decode_image.ts) into one batch buffer,
// `batchSize` at a time, so memory stays bounded however many sources are given.
import { decodeImageInto, type ImageSource, imageRecipe } from '../io/decode_image.js';
import { ResNetError } from '../errors.js';
import { Tensor } from '../tensor.js';
import { topK } from '../train/metrics.js';
import * as validate from '../validate.js';
import type { Model } from './model.js';

export interface PredictImagesOptions {
  /** How many classes to return per image, most probable first. Default 5 (at most the model's classes). */
  topK?: number;
  /** Images decoded and sent through the model at once. Default 64. */
  batchSize?: number;
}

export interface ImagePrediction {
  /** The class index (the model's output row). */
  index: number;
  /** model.classNames[index], or the index as a string when the model has no class names. */
  className: string;
  /** Softmax probability. */
  probability: number;
}

const DEFAULT_BATCH = 64;

/**
 * @internal Predicts `sources` batch by batch and hands each image's answer to `each` (in
 * order) as soon as its batch is done: model.predictImages and the CLI's predict.
 */
export async function predictImageBatches(
  model: Model,
  sources: readonly ImageSource[],
  options: PredictImagesOptions,
  op: string,
  each: (i: number, predictions: ImagePrediction[]) => void,
): Promise<void> {
  if (!Array.isArray(sources)) validate.invalid(sources, op, 'sources', 'an array of image paths or Buffers');
  validate.keys(options, op, ['topK', 'batchSize']);
  const k = Math.min(validate.integer(options.topK ?? 5, op, 'topK', 1), model.classes);
  const batchSize = validate.integer(options.batchSize ?? DEFAULT_BATCH, op, 'batchSize', 1, 1 << 16);
  const recipe = imageRecipe({ model }, op);
  const [h, w] = recipe.preprocessing.imageSize;
  const per = h * w * recipe.channels;
  const batch = Math.min(batchSize, sources.length);
  if (batch === 0) return;
  const images = validate.allocate(Float32Array, batch * per, op, 'the image batch');
  const names = model.classNames;
  for (let start = 0; start < sources.length; start += batch) {
    const chunk = sources.slice(start, start + batch);
    const view = images.subarray(0, chunk.length * per);
    for (let i = 0; i < chunk.length; i++) await decodeImageInto(chunk[i]!, recipe, view, i * per, op);
    const x = Tensor.fromArray(view, [chunk.length, h, w, recipe.channels]);
    let p: Float32Array;
    try {
      const probs = await model.predict(x, { softmax: true });
      p = probs.toFloat32Array();
      probs.dispose();
    } finally {
      x.dispose();
    }
    if (p.length !== chunk.length * model.classes) {
      throw new ResNetError(
        'E_INTERNAL',
        `${op}: the model returned ${p.length} probabilities for ${chunk.length} images of ${model.classes} classes`,
      );
    }
    for (let i = 0; i < chunk.length; i++) {
      each(
        start + i,
        topK(p, model.classes, i, k).map((e) => ({ index: e.index, className: names?.[e.index] ?? String(e.index), probability: e.value })),
      );
    }
  }
}

/** See Model.predictImages. */
export async function predictImages(model: Model, sources: readonly ImageSource[], options: PredictImagesOptions = {}): Promise<ImagePrediction[][]> {
  const out: ImagePrediction[][] = [];
  await predictImageBatches(model, sources, options, 'predictImages', (i, predictions) => {
    out[i] = predictions;
  });
  return out;
}
