// A folder of images, one subfolder per class (torchvision's ImageFolder layout):
//   dir/cat/001.jpg, dir/cat/002.png, …, dir/dog/…
// Class labels follow the sorted subfolder names; JPEG and PNG files are decoded with
// sharp on fill(), resized to a fixed size, and written as NHWC float32 in [0, 1].
import { readdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { extname, join } from 'node:path';

import { ResNetError } from '../errors.js';
import { resizeAndCrop } from '../io/image_geometry.js';
import { readError, readRegularFile } from '../io/read_file.js';
import * as validate from '../validate.js';
import { checkFill } from './checks.js';
import type { Dataset } from './dataset.js';

export interface ImageFolderOptions {
  /** Output size: [height, width], or one number for square images. */
  size: number | [number, number];
  /**
   * 'shorterSide' (default): scale so the image covers the size (for a square size: the
   * shorter side becomes the size), then crop the centre. 'stretch': scale each axis to fit
   * exactly, ignoring the aspect ratio.
   */
  resize?: 'shorterSide' | 'stretch';
  /** 3 (RGB, default; grey images are replicated, alpha is dropped) or 1 (grey). */
  channels?: 1 | 3;
  /**
   * With 'shorterSide': scale the shorter side to this many pixels, then crop the centre
   * (torchvision's Resize(resizeTo) + CenterCrop(size), as a model's preprocessing.resizeTo
   * says; io.decodeImage prepares images the same way). Default: just cover the size.
   */
  resizeTo?: number;
}

const OP = 'datasets.imageFolder';
const EXTENSIONS = new Set(['.jpg', '.jpeg', '.png']);
/** Pixels any image may declare, whatever its file size (2048 × 2048). */
const MIN_PIXEL_LIMIT = 2048 * 2048;
/** The largest image file read: far above any real photo (a 100-megapixel JPEG is some 50 MB). */
export const MAX_IMAGE_BYTES = 256 << 20;

/**
 * The bytes of an image file: a regular file (not a FIFO, a device such as /dev/zero behind a
 * symlink, or a directory: E_IO naming it) of at most MAX_IMAGE_BYTES (E_FORMAT).
 */
export function readImageFile(path: string, op: string): Promise<Buffer> {
  return readRegularFile(path, { op, maxBytes: MAX_IMAGE_BYTES, what: 'an image' });
}

/**
 * sharp's input options for an image file of `byteLength` bytes. A few hundred bytes of PNG
 * can declare a billion pixels: the decoder refuses images larger than the file can plausibly
 * hold (4 Mpx always; more at ≥ 1 byte per 1024 px, beyond any real photo's compression)
 * before it allocates for them, and fails on corrupt data rather than decoding part of it.
 */
export function sharpInputOptions(byteLength: number): { failOn: 'error'; limitInputPixels: number } {
  return { failOn: 'error', limitInputPixels: Math.max(MIN_PIXEL_LIMIT, byteLength * 1024) };
}

type Sharp = typeof import('sharp').default;
let sharpModule: Promise<Sharp> | undefined;

/** sharp is loaded on first use, so the rest of the package works where it is absent. */
function loadSharp(): Promise<Sharp> {
  sharpModule ??= import('sharp')
    .then((m) => m.default)
    .catch((err: unknown) => {
      sharpModule = undefined;
      throw new ResNetError('E_NATIVE', `${OP}: the 'sharp' image decoder could not be loaded: ${(err as Error).message}`);
    });
  return sharpModule;
}

const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** `dir`'s class subfolders (sorted: label order) and their image files (sorted), with each file's label. */
async function listImages(dir: string): Promise<{ classNames: string[]; files: string[]; fileLabels: number[] }> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    throw readError(OP, dir, err);
  }
  const classNames = entries
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort(byCodePoint);
  if (classNames.length === 0) throw new ResNetError('E_FORMAT', `${OP}: ${dir} has no class subfolders (expected dir/<class>/<image>.jpg)`);

  const files: string[] = [];
  const fileLabels: number[] = [];
  for (let label = 0; label < classNames.length; label++) {
    const classDir = join(dir, classNames[label]!);
    let names: string[];
    try {
      names = (await readdir(classDir, { withFileTypes: true }))
        .filter((e) => !e.isDirectory() && !e.name.startsWith('.') && EXTENSIONS.has(extname(e.name).toLowerCase()))
        .map((e) => e.name)
        .sort(byCodePoint);
    } catch (err) {
      throw readError(OP, classDir, err);
    }
    if (names.length === 0) throw new ResNetError('E_FORMAT', `${OP}: class folder ${classDir} holds no .jpg, .jpeg or .png files`);
    for (const name of names) {
      files.push(join(classDir, name));
      fileLabels.push(label);
    }
  }
  return { classNames, files, fileLabels };
}

/**
 * Lists `dir`'s class subfolders (sorted by name → labels 0, 1, …) and their JPEG/PNG
 * files (sorted by name; other files and names starting with '.' are skipped). Decoding
 * happens in fill(): a corrupt or unsupported file is an E_FORMAT naming it then; an
 * unreadable one, E_IO. An empty class folder or a folder without subfolders is E_FORMAT.
 */
export async function imageFolder(dir: string, options: ImageFolderOptions): Promise<Dataset> {
  if (typeof dir !== 'string' || dir.length === 0) validate.fail('E_ARG', `${OP}: dir must be a folder path, got ${String(dir)}`);
  if (options === undefined || options === null) validate.fail('E_ARG', `${OP}: options with a size are required`);
  const o = validate.options<ImageFolderOptions>(options, OP);
  validate.keys(o, OP, ['size', 'resize', 'channels', 'resizeTo']);
  const [height, width] = validate.pair(o.size, OP, 'size');
  if (height > 16384 || width > 16384) validate.fail('E_ARG', `${OP}: size [${height}, ${width}] is above 16384`);
  const resize = validate.oneOf(o.resize ?? 'shorterSide', OP, 'resize', ['shorterSide', 'stretch'] as const);
  const channels = validate.oneOf(o.channels ?? 3, OP, 'channels', [1, 3] as const);
  const resizeTo = o.resizeTo === undefined ? undefined : validate.integer(o.resizeTo, OP, 'resizeTo', Math.min(height, width), 65536);
  if (resizeTo !== undefined && resize === 'stretch') validate.fail('E_ARG', `${OP}: resizeTo applies to resize 'shorterSide' only`);

  const { classNames, files, fileLabels } = await listImages(dir);

  const length = files.length;
  const perImage = height * width * channels;
  const fit = resize === 'stretch' ? 'fill' : 'cover';
  const concurrency = Math.max(2, Math.min(16, availableParallelism()));

  /** Decodes files[k] into images at example slot i. */
  async function decode(sharp: Sharp, k: number, i: number, images: Float32Array): Promise<void> {
    const file = files[k]!;
    const bytes = await readImageFile(file, OP);
    let pixels: Buffer;
    try {
      const input = () => sharp(bytes, sharpInputOptions(bytes.length));
      let pipeline =
        resizeTo === undefined ? input().resize({ width, height, fit, position: 'centre' }) : await resizeAndCrop(input, [height, width], resizeTo);
      pipeline = channels === 3 ? pipeline.removeAlpha().toColourspace('srgb') : pipeline.removeAlpha().toColourspace('b-w');
      const { data, info } = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
      if (info.width !== width || info.height !== height || info.channels !== channels) {
        throw new Error(`decoded to ${info.width}×${info.height}×${info.channels}, expected ${width}×${height}×${channels}`);
      }
      pixels = data;
    } catch (err) {
      throw new ResNetError('E_FORMAT', `${OP}: cannot decode ${file} as a JPEG or PNG image: ${(err as Error).message}`);
    }
    const at = i * perImage;
    for (let p = 0; p < perImage; p++) images[at + p] = pixels[p]! / 255;
  }

  const fillOp = `${OP}.fill`;
  return {
    length,
    imageShape: [height, width, channels] as const,
    classes: classNames.length,
    classNames,
    async fill(indices, images, labels) {
      checkFill(fillOp, length, perImage, indices, images, labels);
      const sharp = await loadSharp();
      const n = indices.length;
      let next = 0;
      let failed = false;
      // A few decodes in flight at a time (sharp decodes on libuv's threads). After a
      // failure no new decode starts, and fill settles only once none is in flight, so
      // nothing writes into the caller's buffers after it rejects.
      const worker = async () => {
        while (next < n && !failed) {
          const i = next++;
          try {
            await decode(sharp, indices[i]!, i, images);
          } catch (err) {
            failed = true;
            throw err;
          }
          labels[i] = fileLabels[indices[i]!]!;
        }
      };
      const results = await Promise.allSettled(Array.from({ length: Math.min(concurrency, n) }, worker));
      const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (rejected) throw rejected.reason;
    },
  };
}
