// A folder of images, one subfolder per class (torchvision's ImageFolder layout):
//   dir/cat/001.jpg, dir/cat/002.png, …, dir/dog/…
// Class labels follow the sorted subfolder names; JPEG and PNG files are decoded with
// sharp (on libuv's threads, `workers` at a time) when fill() asks, or ahead of it for the
// examples the trainer says come next (prefetch), resized to a fixed size (the stored size:
// e.g. 256 for random-resized-crops to 224 at batch time), and written as NHWC float32 in [0, 1].
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
  /**
   * Images decoded at once (sharp decodes on libuv's thread pool, off the JS thread; raise
   * UV_THREADPOOL_SIZE, default 4, to use more). Default: the CPU count, 2 to 16.
   */
  workers?: number;
  /**
   * Batches decoded ahead of the one being filled, when the trainer says which come next
   * (Dataset.prefetch): a bounded queue, so training does not wait on decoding when decoding
   * keeps up. 0: decode in fill only. Default 2.
   */
  prefetch?: number;
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
  validate.keys(o, OP, ['size', 'resize', 'channels', 'resizeTo', 'workers', 'prefetch']);
  const [height, width] = validate.pair(o.size, OP, 'size');
  if (height > 16384 || width > 16384) validate.fail('E_ARG', `${OP}: size [${height}, ${width}] is above 16384`);
  const resize = validate.oneOf(o.resize ?? 'shorterSide', OP, 'resize', ['shorterSide', 'stretch'] as const);
  const channels = validate.oneOf(o.channels ?? 3, OP, 'channels', [1, 3] as const);
  const resizeTo = o.resizeTo === undefined ? undefined : validate.integer(o.resizeTo, OP, 'resizeTo', Math.min(height, width), 65536);
  if (resizeTo !== undefined && resize === 'stretch') validate.fail('E_ARG', `${OP}: resizeTo applies to resize 'shorterSide' only`);
  const workers = validate.integer(o.workers ?? Math.max(2, Math.min(16, availableParallelism())), OP, 'workers', 1, 256);
  const prefetchBatches = validate.integer(o.prefetch ?? 2, OP, 'prefetch', 0, 64);

  const { classNames, files, fileLabels } = await listImages(dir);

  const length = files.length;
  const perImage = height * width * channels;
  const fit = resize === 'stretch' ? 'fill' : 'cover';
  const queue = new DecodeQueue((k) => decodePixels(k), workers);

  /** files[k] decoded to height × width × channels bytes. */
  async function decodePixels(k: number): Promise<Buffer> {
    const sharp = await loadSharp();
    const file = files[k]!;
    const bytes = await readImageFile(file, OP);
    try {
      const input = () => sharp(bytes, sharpInputOptions(bytes.length));
      let pipeline =
        resizeTo === undefined ? input().resize({ width, height, fit, position: 'centre' }) : await resizeAndCrop(input, [height, width], resizeTo);
      pipeline = channels === 3 ? pipeline.removeAlpha().toColourspace('srgb') : pipeline.removeAlpha().toColourspace('b-w');
      const { data, info } = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
      if (info.width !== width || info.height !== height || info.channels !== channels) {
        throw new Error(`decoded to ${info.width}×${info.height}×${info.channels}, expected ${width}×${height}×${channels}`);
      }
      return data;
    } catch (err) {
      throw new ResNetError('E_FORMAT', `${OP}: cannot decode ${file} as a JPEG or PNG image: ${(err as Error).message}`);
    }
  }

  const fillOp = `${OP}.fill`;
  return {
    length,
    imageShape: [height, width, channels] as const,
    classes: classNames.length,
    classNames,
    async fill(indices, images, labels) {
      checkFill(fillOp, length, perImage, indices, images, labels);
      // Taken before anything is awaited, so that this batch's decodes go ahead of any
      // prefetch the caller hints next. Decodes write only their own buffers, so a failure
      // can reject at once without anything writing into the caller's buffers afterwards.
      const decoded = queue.take(Array.from(indices));
      for (const d of decoded) d.catch(() => undefined); // the first failure (in order) is the one reported
      for (let i = 0; i < decoded.length; i++) {
        const pixels = await decoded[i]!;
        const at = i * perImage;
        for (let p = 0; p < perImage; p++) images[at + p] = pixels[p]! / 255;
        labels[i] = fileLabels[indices[i]!]!;
      }
    },
    prefetch(upcoming, batchSize) {
      queue.ahead(upcoming.subarray(0, Math.min(upcoming.length, prefetchBatches * batchSize)));
    },
  };
}

/**
 * Decodes by example index, at most `workers` at a time: take() for the batch being filled
 * (first in line), ahead() for the examples that come next (the bounded prefetch queue).
 * A result is handed out once; an error is kept for the fill that takes its example.
 */
export class DecodeQueue<T> {
  readonly #decode: (k: number) => Promise<T>;
  readonly #workers: number;
  /** Started decodes not yet handed out (the prefetched examples). */
  readonly #results = new Map<number, Promise<T>>();
  /** Takers waiting for an example's decode to start. */
  readonly #claims = new Map<number, ((p: Promise<T>) => void)[]>();
  /** Examples to start, first in line first. */
  #waiting: number[] = [];
  #active = 0;

  constructor(decode: (k: number) => Promise<T>, workers: number) {
    this.#decode = decode;
    this.#workers = workers;
  }

  /** Decoded (or decoding) examples held for a later take: at most the last hint's length. */
  get held(): number {
    return this.#results.size;
  }

  /** Decodes running now. */
  get active(): number {
    return this.#active;
  }

  /** The decoded examples `ks` (in order); those not started yet go first in line. */
  take(ks: readonly number[]): Promise<T>[] {
    const first: number[] = [];
    const out = ks.map((k) => {
      const ready = this.#results.get(k);
      if (ready) {
        this.#results.delete(k);
        return ready;
      }
      return new Promise<T>((resolve, reject) => {
        const claim = (p: Promise<T>) => p.then(resolve, reject);
        const list = this.#claims.get(k);
        if (list) list.push(claim);
        else {
          this.#claims.set(k, [claim]);
          first.push(k);
        }
      });
    });
    const claimed = new Set(first);
    this.#waiting = [...first, ...this.#waiting.filter((k) => !claimed.has(k))];
    this.#pump();
    return out;
  }

  /**
   * The examples to decode ahead, replacing the previous hint: held results no longer hinted
   * are freed and unstarted ones dropped. An empty hint stops the prefetch (a fit that ends).
   */
  ahead(ks: ArrayLike<number>): void {
    const want = new Set(Array.from(ks));
    for (const k of [...this.#results.keys()]) if (!want.has(k)) this.#results.delete(k);
    const claimed = this.#waiting.filter((k) => this.#claims.has(k));
    this.#waiting = [...claimed, ...[...want].filter((k) => !this.#results.has(k) && !this.#claims.has(k))];
    this.#pump();
  }

  #pump(): void {
    while (this.#active < this.#workers && this.#waiting.length > 0) {
      const k = this.#waiting.shift()!;
      if (this.#results.has(k)) continue;
      this.#active++;
      const p = this.#decode(k).finally(() => {
        this.#active--;
        this.#pump();
      });
      p.catch(() => undefined); // an error is kept for the fill that takes this example
      const claims = this.#claims.get(k);
      if (claims) {
        this.#claims.delete(k);
        for (const c of claims) c(p);
      } else {
        this.#results.set(k, p);
      }
    }
  }
}
