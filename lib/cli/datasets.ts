// Which dataset --dataset / --data / --test-data / --image-size name (train, eval), its
// input normalisation, and the seeded subsets of --limit / --test-limit.
import { join } from 'node:path';

import type { Dataset } from '../data/dataset.js';
import { int, required, str, UsageError, type Options, type Values } from './args.js';
import { NAME } from './output.js';

export const DATA_HELP = `  --dataset <name>       mnist (default) | cifar10 | cifar100 | folder
  --data <dir>           cifar10/cifar100: the binary archive's folder (or its parent);
                         folder: a folder with train/ and test/ (or val/) subfolders, one
                         subfolder per class inside each (or --test-data for the test set)
  --test-data <dir>      folder: the test images' folder (class subfolders)
  --image-size <n>       folder: images are resized to n×n (default: train 64, eval the
                         checkpoint's image size)`;

export const DATA: Options = {
  dataset: { type: 'string' },
  data: { type: 'string' },
  'test-data': { type: 'string' },
  'image-size': { type: 'string' },
};

export type DatasetName = 'mnist' | 'cifar10' | 'cifar100' | 'folder';
export const DATASETS: readonly DatasetName[] = ['mnist', 'cifar10', 'cifar100', 'folder'];

export interface Normalisation {
  mean: number[];
  std: number[];
}

export const NORMALISATION: Record<DatasetName, Normalisation> = {
  mnist: { mean: [0.1307], std: [0.3081] },
  cifar10: { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] },
  cifar100: { mean: [0.5071, 0.4865, 0.4409], std: [0.2673, 0.2564, 0.2762] },
  folder: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
};

async function exists(path: string): Promise<boolean> {
  const { stat } = await import('node:fs/promises');
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** The image folder of one split: --test-data, <data>/train, <data>/test or val, or <data> itself. */
async function folderDir(v: Values, split: 'train' | 'test', command: string): Promise<string> {
  const testData = str(v, 'test-data');
  const root = str(v, 'data');
  if (split === 'test' && testData) return testData;
  if (!root) throw new UsageError(`${command} --dataset folder needs --data <dir> (see ${NAME} ${command} --help)`);
  if (await exists(join(root, 'train'))) {
    if (split === 'train') return join(root, 'train');
    if (await exists(join(root, 'test'))) return join(root, 'test');
    if (await exists(join(root, 'val'))) return join(root, 'val');
    throw new UsageError(`${root} has train/ but no test/ or val/ folder; pass --test-data <dir>`);
  }
  if (split === 'train' || command === 'eval') return root;
  throw new UsageError(`--data ${root} has no train/ and test/ subfolders; pass --test-data <dir> for the test images`);
}

/**
 * `defaultSize`: folder images' [height, width] without --image-size (default 64×64); with it,
 * `resizeTo`: the shorter side before the centre crop (a checkpoint's preprocessing).
 * `folder`: imageFolder's size and resizeTo exactly (then the two above are not used).
 */
export async function loadDataset(
  v: Values,
  name: DatasetName,
  split: 'train' | 'test',
  command: string,
  defaultSize: number | readonly [number, number] = 64,
  resizeTo?: number,
  folder?: { size: number; resizeTo?: number },
): Promise<Dataset> {
  const { datasets } = await import('../data/index.js');
  switch (name) {
    case 'mnist':
      return datasets.mnist({ split });
    case 'cifar10':
      return datasets.cifar10(required(v, 'data', `${command} --dataset cifar10`), { split });
    case 'cifar100':
      return datasets.cifar100(required(v, 'data', `${command} --dataset cifar100`), { split });
    case 'folder': {
      // train's own size and resize rule (--weights, --random-resized-crop), used as given.
      if (folder) return datasets.imageFolder(await folderDir(v, split, command), folder);
      const size = int(v, 'image-size', 1, 16384) ?? (typeof defaultSize === 'number' ? defaultSize : ([...defaultSize] as [number, number]));
      // A checkpoint's resizeTo goes with its own image size (defaultSize), not with --image-size.
      const withResize = resizeTo !== undefined && str(v, 'image-size') === undefined;
      return datasets.imageFolder(await folderDir(v, split, command), { size, ...(withResize ? { resizeTo } : {}) });
    }
  }
}

/** --test-limit (train) and --limit (eval) pick the same examples: a subset drawn with this seed. */
export const TEST_SUBSET_SEED = 0;

/** The first n examples of a seeded random subset (the same for the same seed). */
export async function limitDataset(ds: Dataset, n: number | undefined, seed: number): Promise<Dataset> {
  if (n === undefined || n >= ds.length) return ds;
  const { SeededRandom } = await import('../train/trainer.js');
  const order = new Int32Array(ds.length);
  for (let i = 0; i < ds.length; i++) order[i] = i;
  new SeededRandom(seed).shuffle(order);
  const subset = order.slice(0, n);
  const buffers = new Map<number, Int32Array>();
  return {
    length: n,
    imageShape: ds.imageShape,
    classes: ds.classes,
    ...(ds.classNames ? { classNames: ds.classNames } : {}),
    fill(indices, images, labels) {
      let mapped = buffers.get(indices.length);
      if (!mapped) buffers.set(indices.length, (mapped = new Int32Array(indices.length)));
      for (let i = 0; i < indices.length; i++) {
        const k = indices[i]!;
        if (!Number.isInteger(k) || k < 0 || k >= n) throw new UsageError(`index ${k} outside the ${n} examples of --limit`);
        mapped[i] = subset[k]!;
      }
      return ds.fill(mapped, images, labels);
    },
  };
}
