// Which model a --model name builds, and the input shape / classes it defaults to.
// The model builders (and the native addon) are imported only when a model is built.
import type { Model } from '../model/model.js';
import { int, shapeArg, UsageError, type Placement, type Values } from './args.js';
import { NAME } from './output.js';

export const MODELS_HELP = `Models:
  resnet20, resnet32, resnet44, resnet56, resnet110 (any 6n+2: CIFAR ResNet v1, He et al.),
  resnet29v2, resnet56v2, … (9n+2: CIFAR pre-activation v2),
  resnet18, resnet34, resnet50, resnet101, resnet152, resnet50v2, resnet101v2, resnet152v2,
  resnext50_32x4d, resnext101_32x8d, wide_resnet50_2, wide_resnet101_2, se_resnet50`;

export interface ModelChoice {
  /** 'cifar' models default to 32×32×3 / 10 classes, 'imagenet' ones to 224×224×3 / 1000. */
  family: 'cifar' | 'imagenet';
  build(o: { classes: number; inputShape: [number, number, number]; seed: number } & Placement): Promise<Model>;
}

/** CLI name → the builder's name in lib/model/models.ts. */
const IMAGENET: Record<string, string> = {
  resnet18: 'resnet18',
  resnet34: 'resnet34',
  resnet50: 'resnet50',
  resnet101: 'resnet101',
  resnet152: 'resnet152',
  resnet50v2: 'resnet50v2',
  resnet101v2: 'resnet101v2',
  resnet152v2: 'resnet152v2',
  resnext50_32x4d: 'resnext50_32x4d',
  resnext101_32x8d: 'resnext101_32x8d',
  wide_resnet50_2: 'wideResnet50_2',
  wide_resnet101_2: 'wideResnet101_2',
  wideresnet50_2: 'wideResnet50_2',
  wideresnet101_2: 'wideResnet101_2',
  se_resnet50: 'seResnet50',
  seresnet50: 'seResnet50',
};

export function modelChoice(name: string): ModelChoice {
  const key = name.toLowerCase();
  const builder = IMAGENET[key];
  if (builder) {
    return {
      family: 'imagenet',
      async build(o) {
        const models = await import('../model/models.js');
        return (models as unknown as Record<string, (o: object) => Model>)[builder]!(o);
      },
    };
  }
  const m = /^resnet(\d+)(v2)?$/.exec(key);
  if (m) {
    const depth = Number(m[1]);
    const version = m[2] ? 2 : 1;
    if (version === 1 ? depth >= 8 && (depth - 2) % 6 === 0 : depth >= 11 && (depth - 2) % 9 === 0) {
      return {
        family: 'cifar',
        async build(o) {
          const models = await import('../model/models.js');
          return models.resnetCifar({ depth, version: version as 1 | 2, ...o });
        },
      };
    }
  }
  throw new UsageError(`unknown model '${name}' (see ${NAME} summary --help for the list)`);
}

/** --input-shape and --classes (summary, bench), defaulting by the model's family. */
export function modelShape(v: Values, choice: ModelChoice): { inputShape: [number, number, number]; classes: number } {
  const inputShape = shapeArg(v, 'input-shape') ?? (choice.family === 'cifar' ? [32, 32, 3] : [224, 224, 3]);
  const classes = int(v, 'classes') ?? (choice.family === 'cifar' ? 10 : 1000);
  return { inputShape, classes };
}
