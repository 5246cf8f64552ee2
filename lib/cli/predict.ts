// `resnet-native predict`: the top classes of image files, with probabilities.
import type { Model } from '../model/model.js';
import { applyThreads, DEVICE, deviceOptions, int, parse, PLACEMENT_HELP, required, THREADS, UsageError } from './args.js';
import { openCheckpoint, type LoadedCheckpoint } from './checkpoints.js';
import { NAME, printHelp, say } from './output.js';

export const PREDICT_HELP = `Usage: ${NAME} predict --checkpoint <file> [options] <image> [<image> …]

Decodes each image (JPEG or PNG; resized to cover the model's input size and centre-cropped)
and prints its top classes with their probabilities.

  --checkpoint <file>    a checkpoint written by train (or saveModel)
  --top <k>              how many classes to print (default 5)
${PLACEMENT_HELP}
  -h, --help             show this help
`;

type Sharp = typeof import('sharp').default;

async function loadSharp(): Promise<Sharp> {
  try {
    return (await import('sharp')).default;
  } catch (err) {
    throw new Error(`the 'sharp' image decoder could not be loaded: ${(err as Error).message}`);
  }
}

/** Decodes an image file to [h, w, c] floats in [0, 1]: scaled to cover h×w, centre-cropped, RGB or grey. */
async function decodeImage(sharp: Sharp, file: string, [h, w, c]: readonly number[], out: Float32Array, offset: number): Promise<void> {
  // The file is read as datasets.imageFolder reads it (regular files only, size and pixel limits).
  const { readImageFile, sharpInputOptions } = await import('../data/image_folder.js');
  const bytes = await readImageFile(file, 'predict');
  try {
    let p = sharp(bytes, sharpInputOptions(bytes.length)).resize({ width: w, height: h, fit: 'cover', position: 'centre' }).removeAlpha();
    p = c === 1 ? p.toColourspace('b-w') : p.toColourspace('srgb');
    const { data, info } = await p.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.width !== w || info.height !== h || info.channels !== c) throw new Error(`decoded to ${info.width}×${info.height}×${info.channels}`);
    for (let i = 0; i < h * w * c; i++) out[offset + i] = data[i]! / 255;
  } catch (err) {
    throw new Error(`cannot decode ${file} as an image: ${(err as Error).message}`);
  }
}

/** How many images predict sends through the model at once. */
const PREDICT_BATCH = 64;

/** Decodes and normalises `files` into `view` (one image after the other). */
async function decodeBatch(
  sharp: Sharp,
  files: string[],
  shape: readonly number[],
  view: Float32Array,
  normalize: LoadedCheckpoint['normalize'],
): Promise<void> {
  const per = shape[0]! * shape[1]! * shape[2]!;
  for (let i = 0; i < files.length; i++) await decodeImage(sharp, files[i]!, shape, view, i * per);
  if (normalize) {
    const c = shape[2]!;
    for (let i = 0; i < view.length; i++) view[i] = (view[i]! - normalize.mean[i % c]!) / normalize.std[i % c]!;
  }
}

/** Softmax probabilities of a batch of n images, [n, classes] row after row. */
async function probabilities(model: Model, view: Float32Array, n: number): Promise<Float32Array> {
  const { Tensor } = await import('../tensor.js');
  const x = Tensor.fromArray(view, [n, ...model.inputShape]);
  try {
    const probs = await model.predict(x, { softmax: true });
    const p = probs.toFloat32Array();
    probs.dispose();
    return p;
  } finally {
    x.dispose();
  }
}

export async function run(args: string[]): Promise<void> {
  const { values: v, positionals: files } = parse(
    'predict',
    args,
    { ...THREADS, ...DEVICE, checkpoint: { type: 'string' }, top: { type: 'string' } },
    true,
  );
  if (v.help) return printHelp(PREDICT_HELP);
  const path = required(v, 'checkpoint', 'predict');
  if (files.length === 0) throw new UsageError(`predict needs at least one image file (see ${NAME} predict --help)`);
  const top = int(v, 'top', 1) ?? 5;
  applyThreads(v);
  const sharp = await loadSharp();
  const [{ topK }, validate] = await Promise.all([import('../train/metrics.js'), import('../validate.js')]);
  const { model, normalize, classNames } = await openCheckpoint(path, deviceOptions(v));
  try {
    const shape = model.inputShape;
    const per = shape[0]! * shape[1]! * shape[2]!;
    const k = Math.min(top, model.classes);
    // Images go through the model PREDICT_BATCH at a time, so memory stays bounded however many
    // files are named (one batch of decoded pixels, one of probabilities).
    const batch = Math.min(PREDICT_BATCH, files.length);
    const images = validate.allocate(Float32Array, batch * per, 'predict', 'the image batch');
    for (let start = 0; start < files.length; start += batch) {
      const chunk = files.slice(start, start + batch);
      const view = images.subarray(0, chunk.length * per);
      await decodeBatch(sharp, chunk, shape, view, normalize);
      const p = await probabilities(model, view, chunk.length);
      chunk.forEach((file, i) => {
        say(file);
        topK(p, model.classes, i, k).forEach((e, rank) => {
          const name = classNames?.[e.index] ?? String(e.index);
          say(`  ${rank + 1}. ${name.padEnd(12)} ${e.value.toFixed(4)}`);
        });
      });
    }
  } finally {
    model.dispose();
  }
}
