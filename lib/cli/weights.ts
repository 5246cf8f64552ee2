// `train --weights`: start a fresh run from torchvision's ImageNet weights, by name
// (IMAGENET1K_V1, IMAGENET1K_V2, DEFAULT: models.pretrained, downloaded once into the cache) or
// from a torchvision-format file (.pth / .pt / .safetensors: io.loadTorchvision). The head is
// replaced when the data has other classes than ImageNet's 1000, and the run keeps the weights'
// preprocessing: their resize + centre-crop ratio and ImageNet's mean / std.
//
// Checked before the data is loaded (readWeightsOption): a name the model's torchvision builder
// does not publish, or a model torchvision has no weights for, is a usage error naming the
// valid choices. Nothing here loads the native addon until the model is built.
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';

import type { Dataset } from '../data/dataset.js';
import type { Model } from '../model/model.js';
import { findWeightSet, overrideWeightSet, PRETRAINED_WEIGHTS, type WeightSet } from '../model/pretrained_weights.js';
import { type Placement, UsageError } from './args.js';

/** A torchvision-format file, by its extension (anything else is a weight set name). */
const WEIGHTS_FILE = /\.(pth|pt|safetensors)$/i;

/** CLI model names (lib/cli/models.ts) → torchvision's builder names, for the models torchvision publishes weights of. */
const TORCHVISION_NAMES: Readonly<Record<string, string>> = {
  resnet18: 'resnet18',
  resnet34: 'resnet34',
  resnet50: 'resnet50',
  resnet101: 'resnet101',
  resnet152: 'resnet152',
  resnext50_32x4d: 'resnext50_32x4d',
  resnext101_32x8d: 'resnext101_32x8d',
  wide_resnet50_2: 'wide_resnet50_2',
  wide_resnet101_2: 'wide_resnet101_2',
  wideresnet50_2: 'wide_resnet50_2',
  wideresnet101_2: 'wide_resnet101_2',
};

/** torchvision's evaluation transform of a file given by path: Resize(256) + CenterCrop(224), ImageNet statistics. */
const FILE_TRANSFORM = { resizeSize: 256, cropSize: 224, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } as const;

export type WeightsChoice =
  { kind: 'name'; arch: string; set: WeightSet; transform: Transform } | { kind: 'file'; path: string; transform: Transform };

interface Transform {
  resizeSize: number;
  cropSize: number;
  mean: readonly number[];
  std: readonly number[];
}

/** What run.json records for --weights: the resolved set name (DEFAULT → its set) or the file's absolute path. */
export function weightsSetting(w: WeightsChoice | undefined): string | undefined {
  return w === undefined ? undefined : w.kind === 'name' ? w.set.weights : w.path;
}

/** How the settings line names the weights. */
export function describeWeights(w: WeightsChoice): string {
  return w.kind === 'name' ? `weights ${w.arch} ${w.set.weights}` : `weights ${w.path}`;
}

/**
 * @internal Test-only: RESNET_WEIGHTS_TABLE_OVERRIDE holds a JSON array of
 * { model, weights, fileName, url? } entries that replace those fields of torchvision's table
 * (as overrideWeightSet does in process), so that a CLI child process of a test resolves a weight
 * set to a generated file served by a local mirror. Never set it outside tests.
 */
function applyTestOverrides(): void {
  const text = process.env.RESNET_WEIGHTS_TABLE_OVERRIDE;
  if (text === undefined || text === '') return;
  let entries: unknown;
  try {
    entries = JSON.parse(text);
  } catch {
    throw new UsageError('RESNET_WEIGHTS_TABLE_OVERRIDE (test-only) is not valid JSON');
  }
  if (!Array.isArray(entries)) throw new UsageError('RESNET_WEIGHTS_TABLE_OVERRIDE (test-only) must be a JSON array');
  for (const e of entries as Record<string, unknown>[]) {
    const real = typeof e.model === 'string' && typeof e.weights === 'string' ? findWeightSet(e.model, e.weights) : undefined;
    if (!real || typeof e.fileName !== 'string')
      throw new UsageError('RESNET_WEIGHTS_TABLE_OVERRIDE (test-only): each entry needs a known model, weights and a fileName');
    overrideWeightSet({ ...real, fileName: e.fileName, url: typeof e.url === 'string' ? e.url : real.url.replace(/[^/]*$/, e.fileName) });
  }
}

/**
 * --weights checked against --model (before the data is loaded); undefined when not given.
 * Resuming (`resuming`), a file need not exist any more: the checkpoint's weights win.
 */
export async function readWeightsOption(value: string | undefined, modelName: string, resuming = false): Promise<WeightsChoice | undefined> {
  if (value === undefined) return undefined;
  if (value === '') throw new UsageError('--weights needs a weight set name (e.g. IMAGENET1K_V1) or a .pth / .safetensors file');
  if (WEIGHTS_FILE.test(value)) {
    const isFile = await stat(value).then(
      (st) => st.isFile(),
      () => false,
    );
    if (!isFile && !resuming) throw new UsageError(`--weights ${value}: no such file`);
    return { kind: 'file', path: resolve(value), transform: FILE_TRANSFORM };
  }
  const arch = TORCHVISION_NAMES[modelName.toLowerCase()];
  if (arch === undefined) {
    const withWeights = Object.keys(PRETRAINED_WEIGHTS)
      .filter((m) => Object.values(TORCHVISION_NAMES).includes(m))
      .join(', ');
    throw new UsageError(
      `--weights ${value}: torchvision publishes no weights for --model ${modelName}; models with weights: ${withWeights} ` +
        `(or pass a torchvision-format .pth / .safetensors file)`,
    );
  }
  applyTestOverrides();
  const set = findWeightSet(arch, value);
  if (!set) {
    const known = ['DEFAULT', ...Object.keys(PRETRAINED_WEIGHTS[arch]!.sets)].join(', ');
    throw new UsageError(`--weights ${value}: ${arch} has no such weight set; torchvision publishes ${known} (or pass a .pth / .safetensors file)`);
  }
  return { kind: 'name', arch, set, transform: set };
}

/** The shorter side images are resized to before the centre crop to `side`, keeping the weights' ratio (256 → 224). */
export function weightsResizeTo(w: WeightsChoice, side: number): number {
  const t = w.transform;
  return side === t.cropSize ? t.resizeSize : Math.round((t.resizeSize * side) / t.cropSize);
}

/**
 * The fresh model of a --weights run: the weights loaded into `build`'s architecture (a name:
 * models.pretrained; a file: io.loadTorchvision, skipping fc when the classes differ), the head
 * replaced for the data's classes when they are not ImageNet's 1000, and the weights'
 * preprocessing at `inputShape`.
 */
export async function modelFromWeights(
  w: WeightsChoice,
  o: {
    build: () => Promise<Model>;
    trainSet: Dataset;
    inputShape: [number, number, number];
    seed: number;
    placement: Placement;
    progress: boolean;
  },
): Promise<Model> {
  const classes = o.trainSet.classes;
  const [h, wd] = o.inputShape;
  const preprocessing = {
    imageSize: [h, wd] as [number, number],
    resizeTo: weightsResizeTo(w, Math.min(h, wd)),
    channelOrder: 'rgb' as const,
    mean: [...w.transform.mean],
    std: [...w.transform.std],
  };
  if (w.kind === 'file') {
    const { loadTorchvision } = await import('../io/torchvision.js');
    const model = await o.build();
    try {
      await loadTorchvision(model, w.path, classes === 1000 ? {} : { exclude: /^fc\./ });
      model.preprocessing = preprocessing;
    } catch (err) {
      model.dispose();
      throw err;
    }
    return model;
  }
  const { pretrained } = await import('../model/pretrained.js');
  const base = await pretrained(w.arch, { weights: w.set.weights, inputShape: o.inputShape, seed: o.seed, progress: o.progress, ...o.placement });
  base.preprocessing = preprocessing;
  if (classes === 1000) return base;
  try {
    const names = o.trainSet.classNames;
    return base.replaceHead({ classes, ...(names && names.length === classes ? { classNames: names } : {}), seed: o.seed });
  } finally {
    base.dispose();
  }
}
