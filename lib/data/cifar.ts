// CIFAR-10 and CIFAR-100 from the official binary distributions
// (https://www.cs.toronto.edu/~kriz/cifar.html), read from a local folder:
//   cifar-10-batches-bin/  data_batch_1.bin … data_batch_5.bin, test_batch.bin, batches.meta.txt
//     each record: 1 label byte, then 3072 bytes: the red, green and blue 32×32 planes
//   cifar-100-binary/      train.bin, test.bin, fine_label_names.txt, coarse_label_names.txt
//     each record: 1 coarse label byte, 1 fine label byte, then the same 3072 bytes
// The raw bytes stay in memory (150 MB for a training split); fill() converts the records
// it is asked for to NHWC float32 in [0, 1].
import { type FileHandle, stat } from 'node:fs/promises';
import { join } from 'node:path';

import { ResNetError } from '../errors.js';
import { openRegularFile, readInto, readRegularFile } from '../io/read_file.js';
import * as validate from '../validate.js';
import { checkFill } from './checks.js';
import type { Dataset } from './dataset.js';

export interface CifarOptions {
  /** Default 'train'. */
  split?: 'train' | 'test';
}

export interface Cifar100Options extends CifarOptions {
  /** The 100 fine classes (default) or the 20 coarse superclasses. */
  labels?: 'fine' | 'coarse';
}

const SIDE = 32;
const PLANE = SIDE * SIDE;
const PIXELS = PLANE * 3;
/** The official files are 31 MB (a CIFAR-10 batch) and 154 MB (CIFAR-100's train.bin). */
const MAX_BATCH_BYTES = 1 << 30;
/** A class-names file: one short name per line. */
const MAX_NAMES_BYTES = 1 << 20;

/** byte / 255 as float32, indexed by the byte. */
const UNIT = Float32Array.from({ length: 256 }, (_, v) => v / 255);

interface Layout {
  op: string;
  /** Subfolder name of the official archive, accepted below `dir`. */
  folder: string;
  files: string[];
  /** Label bytes before the pixels of each record. */
  labelBytes: number;
  /** Which of them is the label, and how many classes each has. */
  labelByte: number;
  classCounts: number[];
  namesFile: string;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** `dir` itself or its official subfolder, whichever holds the split's first file. */
async function resolveFolder(dir: string, layout: Layout): Promise<string> {
  if (typeof dir !== 'string' || dir.length === 0) validate.fail('E_ARG', `${layout.op}: dir must be a folder path, got ${String(dir)}`);
  if (!(await isDirectory(dir))) throw new ResNetError('E_IO', `${layout.op}: folder not found: ${dir}`);
  const first = layout.files[0]!;
  for (const candidate of [dir, join(dir, layout.folder)]) {
    if (await isFile(join(candidate, first))) return candidate;
  }
  throw new ResNetError(
    'E_IO',
    `${layout.op}: neither ${dir} nor ${join(dir, layout.folder)} holds ${first} (expected the official binary files: ${layout.files.join(', ')})`,
  );
}

/** Reads every file of the split into one buffer, checking each is whole records. */
async function readRecords(
  folder: string,
  layout: Layout,
  record: number,
): Promise<{ bytes: Uint8Array; parts: { path: string; records: number }[] }> {
  const paths = layout.files.map((f) => join(folder, f));
  // All files are opened (regular files only) and their sizes checked before any is read.
  const files: { path: string; handle: FileHandle; size: number }[] = [];
  try {
    for (const path of paths) {
      const file = { path, ...(await openRegularFile(path, layout.op)) };
      files.push(file);
      if (file.size === 0 || file.size % record !== 0 || file.size > MAX_BATCH_BYTES) {
        throw new ResNetError(
          'E_FORMAT',
          `${layout.op}: ${path} has ${file.size} bytes, not a whole number of ${record}-byte records up to ${MAX_BATCH_BYTES} bytes (truncated or not a CIFAR binary file?)`,
        );
      }
    }
    const all = new Uint8Array(files.reduce((a, f) => a + f.size, 0));
    let at = 0;
    for (const f of files) {
      await readInto(f.handle, all.subarray(at, at + f.size), 0, layout.op, f.path);
      at += f.size;
    }
    return { bytes: all, parts: files.map((f) => ({ path: f.path, records: f.size / record })) };
  } finally {
    await Promise.all(files.map((f) => f.handle.close().catch(() => undefined)));
  }
}

/** One name per line (blank lines ignored); undefined when the file is absent (a FIFO or a folder of that name is an E_IO). */
async function readNames(folder: string, layout: Layout, classes: number, file: string): Promise<string[] | undefined> {
  const path = join(folder, file);
  const absent = await stat(path).then(
    () => false,
    (err: NodeJS.ErrnoException) => err.code === 'ENOENT',
  );
  if (absent) return undefined;
  const text = (await readRegularFile(path, { op: layout.op, maxBytes: MAX_NAMES_BYTES, what: 'a class-names file' })).toString('utf8');
  const names = text
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (names.length !== classes) {
    throw new ResNetError('E_FORMAT', `${layout.op}: ${path} lists ${names.length} class names; expected ${classes}`);
  }
  return names;
}

async function load(dir: string, layout: Layout, split: 'train' | 'test'): Promise<Dataset> {
  const folder = await resolveFolder(dir, layout);
  const record = layout.labelBytes + PIXELS;
  const { bytes, parts } = await readRecords(folder, layout, record);
  const length = bytes.length / record;

  // Every label byte is checked (not only the one used), so a corrupt file never loads.
  const labels = new Int32Array(length);
  for (let k = 0; k < length; k++) {
    for (let b = 0; b < layout.labelBytes; b++) {
      const v = bytes[k * record + b]!;
      if (v >= layout.classCounts[b]!) {
        let file = 0;
        let first = 0;
        while (k >= first + parts[file]!.records) first += parts[file++]!.records;
        const which = layout.labelBytes === 2 ? (b === 0 ? 'coarse label' : 'fine label') : 'label';
        throw new ResNetError(
          'E_FORMAT',
          `${layout.op}: record ${k - first} of ${parts[file]!.path} has ${which} ${v}, outside [0, ${layout.classCounts[b]})`,
        );
      }
    }
    labels[k] = bytes[k * record + layout.labelByte]!;
  }
  const classes = layout.classCounts[layout.labelByte]!;
  const classNames = await readNames(folder, layout, classes, layout.namesFile);

  const op = `${layout.op}(${split}).fill`;
  const dataset: Dataset = {
    length,
    imageShape: [SIDE, SIDE, 3] as const,
    classes,
    fill(indices, images, out) {
      checkFill(op, length, PIXELS, indices, images, out);
      for (let i = 0; i < indices.length; i++) {
        const k = indices[i]!;
        const src = k * record + layout.labelBytes;
        const dst = i * PIXELS;
        // CHW planes → HWC: pixel p of plane ch goes to dst + 3p + ch.
        for (let ch = 0; ch < 3; ch++) {
          const plane = src + ch * PLANE;
          for (let p = 0; p < PLANE; p++) images[dst + 3 * p + ch] = UNIT[bytes[plane + p]!]!;
        }
        out[i] = labels[k]!;
      }
    },
  };
  return classNames ? { ...dataset, classNames } : dataset;
}

function splitOption(options: CifarOptions, op: string): 'train' | 'test' {
  return validate.oneOf(options.split ?? 'train', op, 'split', ['train', 'test'] as const);
}

/**
 * CIFAR-10 (binary version) from `dir` — the cifar-10-batches-bin folder or its parent.
 * 50,000 train / 10,000 test images, imageShape [32, 32, 3], 10 classes; class names from
 * batches.meta.txt when present. Missing files: E_IO naming the path; a file that is not
 * whole 3073-byte records or holds a label ≥ 10: E_FORMAT.
 */
export async function cifar10(dir: string, options?: CifarOptions): Promise<Dataset> {
  const op = 'datasets.cifar10';
  const o = validate.options<CifarOptions>(options, op);
  validate.keys(o, op, ['split']);
  const split = splitOption(o, op);
  const files = split === 'train' ? [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`) : ['test_batch.bin'];
  return load(
    dir,
    { op, folder: 'cifar-10-batches-bin', files, labelBytes: 1, labelByte: 0, classCounts: [10], namesFile: 'batches.meta.txt' },
    split,
  );
}

/**
 * CIFAR-100 (binary version) from `dir` — the cifar-100-binary folder or its parent.
 * 50,000 train / 10,000 test images, imageShape [32, 32, 3]; 100 fine classes (names from
 * fine_label_names.txt) or 20 coarse ones (coarse_label_names.txt). Errors as cifar10.
 */
export async function cifar100(dir: string, options?: Cifar100Options): Promise<Dataset> {
  const op = 'datasets.cifar100';
  const o = validate.options<Cifar100Options>(options, op);
  validate.keys(o, op, ['split', 'labels']);
  const split = splitOption(o, op);
  const kind = validate.oneOf(o.labels ?? 'fine', op, 'labels', ['fine', 'coarse'] as const);
  return load(
    dir,
    {
      op,
      folder: 'cifar-100-binary',
      files: [split === 'train' ? 'train.bin' : 'test.bin'],
      labelBytes: 2,
      labelByte: kind === 'coarse' ? 0 : 1,
      classCounts: [20, 100],
      namesFile: kind === 'coarse' ? 'coarse_label_names.txt' : 'fine_label_names.txt',
    },
    split,
  );
}
