// The `models` namespace: each builder makes a spec (builders.ts) and initialises a Model.
import { ResNetError } from '../errors.js';
import * as builders from './builders.js';
import { Model, type ModelInitOptions } from './model.js';
import type { ModelDescriptionOptions } from './preprocessing.js';
import type { ModelSpec } from './spec.js';

export type {
  ResNetOptions,
  ResNetPresetOptions,
  ResNetV1Options,
  ResNetCifarOptions,
  StageOptions,
  StemOptions,
  HeadOptions,
  BlockType,
} from './builders.js';

export type { ModelDescriptionOptions } from './preprocessing.js';

function build<O extends object>(make: (o: O) => ModelSpec, options: O & ModelInitOptions & ModelDescriptionOptions): Model {
  if (options === undefined || options === null || typeof options !== 'object' || Array.isArray(options)) {
    // Let the builder name what is missing (e.g. resnetCifar's depth) or reject the value.
    if (options === undefined || options === null) return Model.fromSpec(make(options as unknown as O));
    throw new ResNetError('E_ARG', `model options must be an object, got ${Array.isArray(options) ? 'an array' : typeof options}`);
  }
  const { seed, zeroInitResidual, device, precision, allowTf32, lossScale, memoryBudget, preprocessing, classNames, ...rest } = options;
  const init: ModelInitOptions = {};
  if (seed !== undefined) init.seed = seed;
  if (zeroInitResidual !== undefined) init.zeroInitResidual = zeroInitResidual;
  if (device !== undefined) init.device = device;
  if (precision !== undefined) init.precision = precision;
  if (allowTf32 !== undefined) init.allowTf32 = allowTf32;
  if (lossScale !== undefined) init.lossScale = lossScale;
  if (memoryBudget !== undefined) init.memoryBudget = memoryBudget;
  const model = Model.fromSpec(make(rest as O), init);
  try {
    if (preprocessing !== undefined) model.preprocessing = preprocessing;
    if (classNames !== undefined) model.classNames = classNames;
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}

type Init = ModelInitOptions & ModelDescriptionOptions;
type Preset = builders.ResNetPresetOptions & Init;
type V1 = builders.ResNetV1Options & Init;

/** The generic builder every other one is made from. */
export const resnet = (o: builders.ResNetOptions & Init) => build(builders.resnetSpec, o);
export const resnet18 = (o: Preset = {}) => build(builders.resnet18, o);
export const resnet34 = (o: Preset = {}) => build(builders.resnet34, o);
/** torchvision "v1.5" (stride on the 3×3); `variant: 'v1'` strides the first 1×1 as Keras' ResNet50. */
export const resnet50 = (o: V1 = {}) => build(builders.resnet50, o);
export const resnet101 = (o: V1 = {}) => build(builders.resnet101, o);
export const resnet152 = (o: V1 = {}) => build(builders.resnet152, o);
export const resnet50v2 = (o: Preset = {}) => build(builders.resnet50v2, o);
export const resnet101v2 = (o: Preset = {}) => build(builders.resnet101v2, o);
export const resnet152v2 = (o: Preset = {}) => build(builders.resnet152v2, o);
export const resnext50_32x4d = (o: Preset = {}) => build(builders.resnext50_32x4d, o);
export const resnext101_32x8d = (o: Preset = {}) => build(builders.resnext101_32x8d, o);
export const resnext101_64x4d = (o: Preset = {}) => build(builders.resnext101_64x4d, o);
export const wideResnet50_2 = (o: Preset = {}) => build(builders.wideResnet50_2, o);
export const wideResnet101_2 = (o: Preset = {}) => build(builders.wideResnet101_2, o);
export const seResnet50 = (o: Preset = {}) => build(builders.seResnet50, o);
/** The CIFAR family: v1 = 6n+2 basic blocks, v2 = 9n+2 pre-activation bottlenecks (Keras' CIFAR-10 example). */
export const resnetCifar = (o: builders.ResNetCifarOptions & Init) => build(builders.resnetCifar, o);

/** torchvision's pretrained ImageNet weights by name (async: may download); see pretrained.ts. */
export { pretrained, type PretrainedOptions } from './pretrained.js';
export { PRETRAINED_WEIGHTS as pretrainedWeights, type WeightSet, type WeightsName } from './pretrained_weights.js';

/** The spec builders alone (pure functions, no native memory), e.g. to edit a spec before Model.fromSpec. */
export const specs = builders;
