// Small PNG pictures of dataset examples, for eval.json and the HTML report. They are drawn
// from the dataset itself (its fill(): the [0, 1] pixels the model saw before normalisation),
// so MNIST, CIFAR and image folders all work the same way and no source file is reopened: an
// MNIST digit is 28×28 grey, a CIFAR image 32×32 RGB, a folder image the --image-size it was
// resized to. Small images are enlarged by a whole factor with nearest-neighbour (sharp pixels,
// no blur), large ones shrunk to fit.
import type { Dataset } from '../data/dataset.js';
import { ResNetError } from '../errors.js';

/** Thumbnails are at least this many pixels on their longer side (when the image is smaller)… */
const MIN_SIDE = 56;
/** …and at most this many. */
const MAX_SIDE = 96;

/** Pixels as 8-bit channels sharp can encode: 1 (grey), 3 (RGB) or 4 (RGBA); other counts keep the first channel. */
function toBytes(pixels: Float32Array, h: number, w: number, c: number): { bytes: Buffer; channels: 1 | 3 | 4 } {
  const channels: 1 | 3 | 4 = c === 3 || c === 4 ? c : 1;
  const bytes = Buffer.alloc(h * w * channels);
  for (let p = 0; p < h * w; p++) {
    for (let k = 0; k < channels; k++) {
      const v = pixels[p * c + k]!;
      bytes[p * channels + k] = Number.isFinite(v) ? Math.round(Math.min(1, Math.max(0, v)) * 255) : 0;
    }
  }
  return { bytes, channels };
}

/**
 * Base64 PNG thumbnails of examples `indices` of `ds`, in order. Examples are read one at a
 * time (a few image buffers, whatever the dataset's size).
 */
export async function datasetThumbnails(ds: Dataset, indices: readonly number[], op: string): Promise<string[]> {
  if (indices.length === 0) return [];
  let sharp: typeof import('sharp').default;
  try {
    sharp = (await import('sharp')).default;
  } catch (err) {
    throw new ResNetError('E_NATIVE', `${op}: the 'sharp' image encoder could not be loaded: ${(err as Error).message}`);
  }
  const [h, w, c] = ds.imageShape;
  const pixels = new Float32Array(h * w * c);
  const label = new Int32Array(1);
  const index = new Int32Array(1);
  const longer = Math.max(h, w);
  const factor = longer < MIN_SIDE ? Math.ceil(MIN_SIDE / longer) : 1;
  const out: string[] = [];
  for (const i of indices) {
    index[0] = i;
    await ds.fill(index, pixels, label);
    const { bytes, channels } = toBytes(pixels, h, w, c);
    let image = sharp(bytes, { raw: { width: w, height: h, channels } });
    if (factor > 1) image = image.resize(w * factor, h * factor, { kernel: 'nearest' });
    else if (longer > MAX_SIDE) image = image.resize(MAX_SIDE, MAX_SIDE, { fit: 'inside' });
    if (channels === 1) image = image.toColourspace('b-w');
    out.push((await image.png({ compressionLevel: 9 }).toBuffer()).toString('base64'));
  }
  return out;
}
