// models.pretrained(name, { weights }): a torchvision architecture with torchvision's published
// ImageNet weights (pretrained_weights.ts), fetched into the cache once (io/weights_cache.ts),
// loaded with io.loadTorchvision, and described: preprocessing (torchvision's evaluation
// transform) and the 1,000 ImageNet class names.
import { ResNetError } from '../errors.js';
import { loadTorchvision } from '../io/torchvision.js';
import { fetchWeights } from '../io/weights_cache.js';
import * as validate from '../validate.js';
import type { ResNetPresetOptions } from './builder_options.js';
import * as builders from './builders.js';
import { IMAGENET_CLASSES } from './imagenet_classes.js';
import { Model, type ModelInitOptions } from './model.js';
import { findWeightSet, PRETRAINED_WEIGHTS, type WeightSet } from './pretrained_weights.js';
import type { ModelSpec } from './spec.js';

const OP = 'models.pretrained';

export interface PretrainedOptions extends ResNetPresetOptions, ModelInitOptions {
  /** torchvision's weight set name: 'IMAGENET1K_V1', 'IMAGENET1K_V2' or 'DEFAULT' (the default: the best published). */
  weights?: string;
  /** Download progress on stderr (default true). */
  progress?: boolean;
}

/** torchvision builder names → our spec builders (the camelCase names of ours are accepted too). */
const BUILDERS: Readonly<Record<string, (o: ResNetPresetOptions) => ModelSpec>> = {
  resnet18: builders.resnet18,
  resnet34: builders.resnet34,
  resnet50: builders.resnet50,
  resnet101: builders.resnet101,
  resnet152: builders.resnet152,
  resnext50_32x4d: builders.resnext50_32x4d,
  resnext101_32x8d: builders.resnext101_32x8d,
  resnext101_64x4d: builders.resnext101_64x4d,
  wide_resnet50_2: builders.wideResnet50_2,
  wide_resnet101_2: builders.wideResnet101_2,
};
const ALIASES: Readonly<Record<string, string>> = { wideResnet50_2: 'wide_resnet50_2', wideResnet101_2: 'wide_resnet101_2' };
const INIT_KEYS = ['seed', 'zeroInitResidual', 'device', 'precision', 'allowTf32', 'lossScale', 'memoryBudget'] as const;

/**
 * Builds torchvision's `name` ('resnet50', 'resnext50_32x4d', 'wide_resnet50_2', …) and loads
 * its published ImageNet weights `weights` ('IMAGENET1K_V1', 'IMAGENET1K_V2', default
 * 'DEFAULT'), downloading the file into the cache the first time ($RESNET_NATIVE_HOME/weights,
 * default ~/.cache/resnet-native/weights; $RESNET_WEIGHTS_URL names a mirror). The model's
 * preprocessing is the weights' evaluation transform (resize, center crop, ImageNet mean/std)
 * and its classNames the ImageNet classes. Other options go to the builder (inputShape, …) and
 * to the model (seed, device, precision, …); `classes` must stay 1000 (replace the head after
 * loading to fine-tune on other classes).
 */
export async function pretrained(name: string, options: PretrainedOptions = {}): Promise<Model> {
  validate.string(name, OP, 'name');
  if (!validate.isPlainObject(options as unknown)) validate.invalid(options, OP, 'options', 'an object');
  const arch = ALIASES[name] ?? name;
  const builder = Object.prototype.hasOwnProperty.call(BUILDERS, arch) ? BUILDERS[arch] : undefined;
  if (!builder) {
    throw new ResNetError('E_ARG', `${OP}: no pretrained weights for '${name}'; known: ${Object.keys(PRETRAINED_WEIGHTS).join(', ')}`);
  }
  const { weights = 'DEFAULT', progress, ...rest } = options;
  validate.string(weights, OP, 'weights');
  if (progress !== undefined) validate.boolean(progress, OP, 'progress');
  const set = findWeightSet(arch, weights);
  if (!set) {
    const known = ['DEFAULT', ...Object.keys(PRETRAINED_WEIGHTS[arch]!.sets)].map((w) => `'${w}'`).join(', ');
    throw new ResNetError('E_ARG', `${OP}: '${arch}' has no weight set '${weights}'; torchvision publishes ${known}`);
  }
  if (rest.classes !== undefined && rest.classes !== 1000) {
    throw new ResNetError(
      'E_ARG',
      `${OP}: the ImageNet weights have 1000 classes, not ${String(rest.classes)}; load them, then replace the head (or build the model and use io.loadTorchvision with exclude: /^fc\\./)`,
    );
  }

  const init: ModelInitOptions = {};
  const specOptions: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(rest)) {
    if (v === undefined) continue;
    if ((INIT_KEYS as readonly string[]).includes(k)) (init as Record<string, unknown>)[k] = v;
    else specOptions[k] = v;
  }
  const spec = builder(specOptions as ResNetPresetOptions); // checks the options before anything is fetched
  const file = await fetchWeights(set.url, set.fileName, { op: OP, ...(progress !== undefined ? { progress } : {}) });
  const model = Model.fromSpec(spec, init);
  try {
    await loadTorchvision(model, file);
    model.preprocessing = preprocessingOf(set, model.spec.inputShape);
    model.classNames = IMAGENET_CLASSES;
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}

/**
 * torchvision's transform for `set` at the model's input size: resize the shorter side to
 * resizeSize, center-crop cropSize. A model built for another input size keeps the ratio.
 */
function preprocessingOf(set: WeightSet, inputShape: readonly number[]): Model['preprocessing'] & object {
  const [h, w] = inputShape as [number, number, number];
  const side = Math.min(h, w);
  const resizeTo = side === set.cropSize ? set.resizeSize : Math.round((set.resizeSize * side) / set.cropSize);
  return { imageSize: [h, w], resizeTo, channelOrder: 'rgb', mean: [...set.mean], std: [...set.std] };
}
