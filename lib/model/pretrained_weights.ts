// torchvision's published ImageNet-1K weights for the ResNet family, as its model builders
// list them (torchvision/models/resnet.py: ResNet18_Weights … Wide_ResNet101_2_Weights): the
// URL, the file name (whose part after the last '-' is the first hex digits of the file's
// SHA-256, checked after download as torchvision's check_hash does), the evaluation transform
// (ImageClassification: resize the shorter side to `resizeSize` with bilinear interpolation,
// center-crop `cropSize`, scale to [0, 1], normalise with ImageNet's mean and std) and the
// published ImageNet-1K validation accuracy. DEFAULT is torchvision's alias: the best set.
//
// Facts only, copied from torchvision; the files themselves are torchvision's (BSD-3-Clause
// code; the weights' terms are torchvision's and ImageNet's).

/** torchvision's names of the weight sets. */
export type WeightsName = 'IMAGENET1K_V1' | 'IMAGENET1K_V2';

export interface WeightSet {
  /** The torchvision builder name: 'resnet50', 'wide_resnet50_2', … */
  readonly model: string;
  readonly weights: WeightsName;
  readonly url: string;
  /** The URL's last segment: the name of the file in the cache. */
  readonly fileName: string;
  /** Shorter side after resizing (torchvision's resize_size). */
  readonly resizeSize: number;
  /** Side of the center crop, the network's input (torchvision's crop_size). */
  readonly cropSize: number;
  readonly mean: readonly [number, number, number];
  readonly std: readonly [number, number, number];
  /** Published ImageNet-1K validation accuracy, percent: top-1 and top-5. */
  readonly acc1: number;
  readonly acc5: number;
  /** Parameters (batch-norm running statistics not counted), as torchvision states. */
  readonly numParams: number;
  /** How the weights were trained. */
  readonly recipe: string;
}

export interface ModelWeights {
  /** torchvision's DEFAULT alias. */
  readonly DEFAULT: WeightsName;
  readonly sets: Readonly<Partial<Record<WeightsName, WeightSet>>>;
}

const MEAN = [0.485, 0.456, 0.406] as const;
const STD = [0.229, 0.224, 0.225] as const;
const BASE = 'https://download.pytorch.org/models/';
const V1_RECIPE = 'https://github.com/pytorch/vision/tree/main/references/classification#resnet';
const RESNEXT_RECIPE = 'https://github.com/pytorch/vision/tree/main/references/classification#resnext';
const WIDE_RECIPE = 'https://github.com/pytorch/vision/pull/912#issue-445437439';

function set(
  model: string,
  weights: WeightsName,
  fileName: string,
  resizeSize: number,
  acc1: number,
  acc5: number,
  numParams: number,
  recipe: string,
): WeightSet {
  return Object.freeze({
    model,
    weights,
    url: BASE + fileName,
    fileName,
    resizeSize,
    cropSize: 224,
    mean: MEAN,
    std: STD,
    acc1,
    acc5,
    numParams,
    recipe,
  });
}

function entry(v1: WeightSet, v2?: WeightSet): ModelWeights {
  const sets: Partial<Record<WeightsName, WeightSet>> = { IMAGENET1K_V1: v1 };
  if (v2) sets.IMAGENET1K_V2 = v2;
  return Object.freeze({ DEFAULT: v2 ? 'IMAGENET1K_V2' : 'IMAGENET1K_V1', sets: Object.freeze(sets) });
}

/** Every torchvision ResNet / ResNeXt / Wide-ResNet weight set, by torchvision builder name. */
export const PRETRAINED_WEIGHTS: Readonly<Record<string, ModelWeights>> = Object.freeze({
  resnet18: entry(set('resnet18', 'IMAGENET1K_V1', 'resnet18-f37072fd.pth', 256, 69.758, 89.078, 11689512, V1_RECIPE)),
  resnet34: entry(set('resnet34', 'IMAGENET1K_V1', 'resnet34-b627a593.pth', 256, 73.314, 91.42, 21797672, V1_RECIPE)),
  resnet50: entry(
    set('resnet50', 'IMAGENET1K_V1', 'resnet50-0676ba61.pth', 256, 76.13, 92.862, 25557032, V1_RECIPE),
    set(
      'resnet50',
      'IMAGENET1K_V2',
      'resnet50-11ad3fa6.pth',
      232,
      80.858,
      95.434,
      25557032,
      'https://github.com/pytorch/vision/issues/3995#issuecomment-1013906621',
    ),
  ),
  resnet101: entry(
    set('resnet101', 'IMAGENET1K_V1', 'resnet101-63fe2227.pth', 256, 77.374, 93.546, 44549160, V1_RECIPE),
    set(
      'resnet101',
      'IMAGENET1K_V2',
      'resnet101-cd907fc2.pth',
      232,
      81.886,
      95.78,
      44549160,
      'https://github.com/pytorch/vision/issues/3995#new-recipe',
    ),
  ),
  resnet152: entry(
    set('resnet152', 'IMAGENET1K_V1', 'resnet152-394f9c45.pth', 256, 78.312, 94.046, 60192808, V1_RECIPE),
    set(
      'resnet152',
      'IMAGENET1K_V2',
      'resnet152-f82ba261.pth',
      232,
      82.284,
      96.002,
      60192808,
      'https://github.com/pytorch/vision/issues/3995#new-recipe',
    ),
  ),
  resnext50_32x4d: entry(
    set('resnext50_32x4d', 'IMAGENET1K_V1', 'resnext50_32x4d-7cdf4587.pth', 256, 77.618, 93.698, 25028904, RESNEXT_RECIPE),
    set(
      'resnext50_32x4d',
      'IMAGENET1K_V2',
      'resnext50_32x4d-1a0047aa.pth',
      232,
      81.198,
      95.34,
      25028904,
      'https://github.com/pytorch/vision/issues/3995#new-recipe',
    ),
  ),
  resnext101_32x8d: entry(
    set('resnext101_32x8d', 'IMAGENET1K_V1', 'resnext101_32x8d-8ba56ff5.pth', 256, 79.312, 94.526, 88791336, RESNEXT_RECIPE),
    set(
      'resnext101_32x8d',
      'IMAGENET1K_V2',
      'resnext101_32x8d-110c445d.pth',
      232,
      82.834,
      96.228,
      88791336,
      'https://github.com/pytorch/vision/issues/3995#new-recipe-with-fixres',
    ),
  ),
  // Published with the new recipe only, as its V1 (resize 232).
  resnext101_64x4d: entry(
    set(
      'resnext101_64x4d',
      'IMAGENET1K_V1',
      'resnext101_64x4d-173b62eb.pth',
      232,
      83.246,
      96.454,
      83455272,
      'https://github.com/pytorch/vision/pull/5935',
    ),
  ),
  wide_resnet50_2: entry(
    set('wide_resnet50_2', 'IMAGENET1K_V1', 'wide_resnet50_2-95faca4d.pth', 256, 78.468, 94.086, 68883240, WIDE_RECIPE),
    set(
      'wide_resnet50_2',
      'IMAGENET1K_V2',
      'wide_resnet50_2-9ba9bcbe.pth',
      232,
      81.602,
      95.758,
      68883240,
      'https://github.com/pytorch/vision/issues/3995#new-recipe-with-fixres',
    ),
  ),
  wide_resnet101_2: entry(
    set('wide_resnet101_2', 'IMAGENET1K_V1', 'wide_resnet101_2-32ee1156.pth', 256, 78.848, 94.284, 126886696, WIDE_RECIPE),
    set(
      'wide_resnet101_2',
      'IMAGENET1K_V2',
      'wide_resnet101_2-d733dc28.pth',
      232,
      82.51,
      96.02,
      126886696,
      'https://github.com/pytorch/vision/issues/3995#new-recipe',
    ),
  ),
});

/** Test-only replacements of table entries (see overrideWeightSet). */
const overrides = new Map<string, WeightSet>();

/**
 * @internal For tests: makes `model`/`weights` resolve to `set` (a generated file with its own
 * hash in its name, served by a local mirror) until the returned function is called.
 */
export function overrideWeightSet(set: WeightSet): () => void {
  const key = `${set.model}/${set.weights}`;
  overrides.set(key, set);
  return () => {
    overrides.delete(key);
  };
}

/** The weight set of torchvision builder `model` named `weights` ('DEFAULT' resolved), or undefined. */
export function findWeightSet(model: string, weights: string): WeightSet | undefined {
  const m = Object.prototype.hasOwnProperty.call(PRETRAINED_WEIGHTS, model) ? PRETRAINED_WEIGHTS[model] : undefined;
  if (!m) return undefined;
  const name = weights === 'DEFAULT' ? m.DEFAULT : weights;
  if (name !== 'IMAGENET1K_V1' && name !== 'IMAGENET1K_V2') return undefined;
  return overrides.get(`${model}/${name}`) ?? m.sets[name];
}
