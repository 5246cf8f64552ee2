// `resnet-native train`: trains a model on a dataset, evaluating on its test split after every
// epoch; writes <out>/model.safetensors, best.safetensors, history.json and steps.jsonl.
//
// In phases: read and check every option (before the slow data and model loading), load the
// data, build or resume the model, derive the schedule and augmentation, print what is about
// to run, fit, and report.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { Dataset } from '../data/dataset.js';
import type { Model } from '../model/model.js';
import type { LrSchedule } from '../train/schedules.js';
import type { CompileOptions } from '../train/optimizers.js';
import {
  applyThreads,
  DEVICE,
  deviceOptions,
  int,
  num,
  oneOf,
  type Options,
  parse,
  PLACEMENT_HELP,
  str,
  THREADS,
  UsageError,
  type Values,
} from './args.js';
import { DATA, DATA_HELP, DATASETS, limitDataset, loadDataset, NORMALISATION, TEST_SUBSET_SEED, type DatasetName } from './datasets.js';
import { modelChoice, MODELS_HELP, type ModelChoice } from './models.js';
import { layerMatcher } from '../model/freeze.js';
import {
  describeImagenetAugment,
  IMAGENET_AUGMENT,
  IMAGENET_AUGMENT_HELP,
  type ImagenetAugmentFlags,
  imagenetAugmentOptions,
  imagenetFitOptions,
  storedSize,
} from './train_augment.js';
import { describeWeights, modelFromWeights, readWeightsOption, weightsResizeTo, weightsSetting, type WeightsChoice } from './weights.js';
import { NAME, printHelp, say } from './output.js';
import { differences, fillFromRun, recordedSettings, runSettings, type RunSettings, writeRunSettings } from './run_settings.js';

export const TRAIN_HELP = `Usage: ${NAME} train [options]

Trains a model and evaluates it on the dataset's test split after every epoch (the split
that also picks best.safetensors). Ends with the line "test accuracy: <last model's accuracy>".

${DATA_HELP}
  --model <name>         default resnet20 (see below); input shape and classes come from the data
  --epochs <n>           default: mnist 4, cifar 30, folder 20
  --batch-size <n>       default: mnist 64, else 128
  --lr <x>               peak learning rate (default: sgd 0.1, adamw 0.001)
  --optimizer <name>     sgd (default: Nesterov momentum 0.9) | adamw
  --momentum <x>         sgd momentum (default 0.9)
  --weight-decay <x>     default: sgd 5e-4, adamw 0.05
  --schedule <name>      cosine (default, with linear warmup) | onecycle | step | constant
  --warmup-epochs <x>    cosine warmup length in epochs (default: mnist 0.25, else 1)
  --label-smoothing <x>  default 0
  --augment              random crops (padding: mnist 2, else size/8) and, except for mnist,
                         horizontal flips (default)
  --no-augment           no augmentation (inputs are still normalised)
${IMAGENET_AUGMENT_HELP}
  --weights <name|file>  start from torchvision's ImageNet weights: a weight set of --model
                         (IMAGENET1K_V1, IMAGENET1K_V2 or DEFAULT; downloaded once into
                         $RESNET_NATIVE_HOME, default ~/.cache/resnet-native; RESNET_WEIGHTS_URL
                         names a mirror) or a torchvision-format .pth / .safetensors file.
                         The head is replaced for the data's classes; the run keeps the
                         weights' preprocessing (ImageNet mean/std, their resize + centre-crop
                         ratio; --image-size defaults to their crop size, 224)
  --out <dir>            where checkpoints go (default runs/<dataset>-<model>)
  --resume <file>        continue the run saved in this checkpoint: model and data options
                         left out are the run's (its run.json); different ones are refused
  --force                with --resume: continue although the model or data options differ
  --log <list>           also write csv (<out>/log.csv, Keras' CSVLogger columns) and/or
                         tensorboard (<out>/tensorboard: tensorboard --logdir <out>), e.g.
                         --log csv,tensorboard
  --seed <n>             seed of the weights, shuffling and augmentation (default 1)
  --freeze <glob>        freeze the layers it names: no gradient, no update, batch-norms on
                         their running statistics (e.g. 'layer[1-3]', 'conv1,bn1,layer1';
                         a glob names a layer and everything inside it)
${PLACEMENT_HELP}
  --limit <n>            train on n examples only (a seeded random subset)
  --test-limit <n>       evaluate on n test examples only (a fixed random subset)
  --progress <mode>      auto (default: a live bar on a terminal) | bar | log | none
  -h, --help             show this help

${MODELS_HELP}
`;

const TRAIN_OPTIONS: Options = {
  ...DATA,
  ...THREADS,
  ...DEVICE,
  model: { type: 'string' },
  epochs: { type: 'string' },
  'batch-size': { type: 'string' },
  lr: { type: 'string' },
  optimizer: { type: 'string' },
  momentum: { type: 'string' },
  'weight-decay': { type: 'string' },
  schedule: { type: 'string' },
  'warmup-epochs': { type: 'string' },
  'label-smoothing': { type: 'string' },
  augment: { type: 'boolean' },
  'no-augment': { type: 'boolean' },
  out: { type: 'string' },
  resume: { type: 'string' },
  force: { type: 'boolean' },
  log: { type: 'string' },
  seed: { type: 'string' },
  limit: { type: 'string' },
  'test-limit': { type: 'string' },
  progress: { type: 'string' },
  freeze: { type: 'string' },
  weights: { type: 'string' },
  ...IMAGENET_AUGMENT,
};

/** Every train option, checked and with its default. */
interface TrainOptions {
  datasetName: DatasetName;
  isMnist: boolean;
  modelName: string;
  choice: ModelChoice;
  epochs: number;
  batchSize: number;
  optimizer: 'sgd' | 'adamw';
  lr: number;
  momentum: number;
  weightDecay: number;
  scheduleName: 'cosine' | 'onecycle' | 'step' | 'constant';
  warmupEpochs: number;
  labelSmoothing: number;
  augmentOn: boolean;
  out: string;
  resume: string | undefined;
  seed: number;
  limit: number | undefined;
  testLimit: number | undefined;
  progress: 'auto' | 'bar' | 'log' | 'none';
  /** --log: the extra logs to write. */
  logs: LogFormat[];
  force: boolean;
  allowTf32: boolean;
  /** --freeze: a glob of layer names (checked here, matched once the model exists). */
  freeze: string | undefined;
  /** --random-resized-crop, --crop-scale, --color-jitter, --mixup, --cutmix. */
  imagenet: ImagenetAugmentFlags;
  /** --weights, checked against --model (set after readOptions: the check may read the disk). */
  weights?: WeightsChoice | undefined;
  /** --dataset folder: the side of the images the model takes (--image-size, or the weights' crop, or 64). */
  imageSize?: number | undefined;
}

const LOG_FORMATS = ['csv', 'tensorboard'] as const;
type LogFormat = (typeof LOG_FORMATS)[number];

/** --log csv,tensorboard (each at most once). */
function logFormats(v: Values): LogFormat[] {
  const s = str(v, 'log');
  if (s === undefined) return [];
  const items = s.split(',').map((x) => x.trim());
  for (const x of items) {
    if (!(LOG_FORMATS as readonly string[]).includes(x)) throw new UsageError(`--log takes csv and/or tensorboard, comma-separated, got '${s}'`);
  }
  return [...new Set(items)] as LogFormat[];
}

/** Reads the options in the order today's messages are checked (the first bad one is reported). */
function readOptions(v: Values): TrainOptions {
  const datasetName = oneOf(v, 'dataset', DATASETS, 'mnist');
  const modelName = str(v, 'model') ?? 'resnet20';
  const choice = modelChoice(modelName);
  const isMnist = datasetName === 'mnist';
  const epochs = int(v, 'epochs') ?? (isMnist ? 4 : datasetName === 'folder' ? 20 : 30);
  const batchSize = int(v, 'batch-size') ?? (isMnist ? 64 : 128);
  const optimizer = oneOf(v, 'optimizer', ['sgd', 'adamw'] as const, 'sgd');
  const lr = num(v, 'lr', 0, 1e6) ?? (optimizer === 'adamw' ? 1e-3 : 0.1);
  const momentum = num(v, 'momentum', 0, 0.999999) ?? 0.9;
  const weightDecay = num(v, 'weight-decay', 0, 1e6) ?? (optimizer === 'adamw' ? 0.05 : 5e-4);
  const scheduleName = oneOf(v, 'schedule', ['cosine', 'onecycle', 'step', 'constant'] as const, 'cosine');
  const warmupEpochs = num(v, 'warmup-epochs', 0, 1e6) ?? (isMnist ? 0.25 : 1);
  const labelSmoothing = num(v, 'label-smoothing', 0, 0.999) ?? 0;
  if (v.augment && v['no-augment']) throw new UsageError('--augment and --no-augment contradict each other');
  const augmentOn = !v['no-augment'];
  const out = str(v, 'out') ?? join('runs', `${datasetName}-${modelName}`);
  const resume = str(v, 'resume');
  const seed = int(v, 'seed', 0, 2 ** 32 - 1) ?? 1;
  const limit = int(v, 'limit');
  const testLimit = int(v, 'test-limit');
  const progress = oneOf(v, 'progress', ['auto', 'bar', 'log', 'none'] as const, 'auto');
  const logs = logFormats(v);
  const force = v.force === true;
  if (force && resume === undefined) throw new UsageError('--force applies to --resume only');
  const freeze = freezeOption(v);
  const imagenet = imagenetAugmentOptions(v);
  if (!augmentOn && (imagenet.randomResizedCrop || imagenet.colorJitter || imagenet.mixup !== undefined || imagenet.cutmix !== undefined)) {
    throw new UsageError('--no-augment contradicts --random-resized-crop, --color-jitter, --mixup and --cutmix');
  }
  if (datasetName !== 'folder' && (str(v, 'test-data') !== undefined || str(v, 'image-size') !== undefined)) {
    throw new UsageError('--test-data and --image-size apply to --dataset folder only');
  }
  if (isMnist && str(v, 'data') !== undefined) throw new UsageError('--dataset mnist takes no --data (the digits come with the mnist package)');
  return {
    datasetName,
    isMnist,
    modelName,
    choice,
    epochs,
    batchSize,
    optimizer,
    lr,
    momentum,
    weightDecay,
    scheduleName,
    warmupEpochs,
    labelSmoothing,
    augmentOn,
    out,
    resume,
    seed,
    limit,
    testLimit,
    progress,
    logs,
    force,
    allowTf32: v['allow-tf32'] === true,
    freeze,
    imagenet,
  };
}

/** The model and data options as run.json records them. */
function settingsOf(o: TrainOptions, v: Values): RunSettings {
  return runSettings({
    modelName: o.modelName,
    datasetName: o.datasetName,
    data: o.isMnist ? undefined : str(v, 'data'),
    testData: str(v, 'test-data'),
    imageSize: o.imageSize,
    batchSize: o.batchSize,
    limit: o.limit,
    testLimit: o.testLimit,
    seed: o.seed,
    weights: weightsSetting(o.weights),
  });
}

/** With --resume: the run's recorded settings (run.json beside the checkpoint), filled into the options the command line leaves out. */
async function resumeSettings(v: Values): Promise<RunSettings | undefined> {
  const resume = str(v, 'resume');
  const recorded = resume === undefined ? undefined : await recordedSettings(resume);
  if (recorded) fillFromRun(v, recorded);
  return recorded;
}

/** --freeze checked for its form (a malformed glob is reported before the slow loading). */
function freezeOption(v: Values): string | undefined {
  const glob = str(v, 'freeze');
  if (glob === undefined) return undefined;
  try {
    layerMatcher(glob, '--freeze');
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  return glob;
}

function compileOptions(o: TrainOptions): CompileOptions {
  return {
    optimizer:
      o.optimizer === 'sgd'
        ? { type: 'sgd', lr: o.lr, momentum: o.momentum, nesterov: o.momentum > 0, weightDecay: o.weightDecay }
        : { type: 'adamw', lr: o.lr, weightDecay: o.weightDecay },
    ...(o.labelSmoothing > 0 ? { labelSmoothing: o.labelSmoothing } : {}),
  };
}

/** The learning-rate schedule over the whole run, and the cosine warmup's length in steps. */
function makeSchedule(
  schedules: typeof import('../train/schedules.js'),
  o: TrainOptions,
  stepsPerEpoch: number,
): { schedule: LrSchedule; warmupSteps: number } {
  const { lr } = o;
  const totalSteps = o.epochs * stepsPerEpoch;
  const warmupSteps = Math.min(totalSteps - 1, Math.round(o.warmupEpochs * stepsPerEpoch));
  const schedule =
    o.scheduleName === 'cosine'
      ? schedules.cosine({ lr, totalSteps, warmupSteps, warmupStartLr: lr / 25 })
      : o.scheduleName === 'onecycle'
        ? schedules.oneCycle({ maxLr: lr, totalSteps })
        : o.scheduleName === 'step'
          ? schedules.multiStep({ lr, milestones: [Math.round(totalSteps * 0.5), Math.round(totalSteps * 0.75)] })
          : schedules.constant(lr);
  return { schedule, warmupSteps };
}

/**
 * Random crops (padded, or random-resized to `side`) and flips, the ImageNet-style flags, and
 * the normalisation (the weights', else the dataset's; one value per channel).
 */
function augmentation(o: TrainOptions, trainSet: Dataset, side: number): { padding: number; flip: boolean; mean: number[]; std: number[] } {
  const norm = o.weights ? { mean: [...o.weights.transform.mean], std: [...o.weights.transform.std] } : NORMALISATION[o.datasetName];
  const channels = trainSet.imageShape[2];
  const mean = norm.mean.length === channels ? norm.mean : new Array<number>(channels).fill(norm.mean[0]!);
  const std = norm.std.length === channels ? norm.std : new Array<number>(channels).fill(norm.std[0]!);
  const padding = o.augmentOn && !o.imagenet.randomResizedCrop ? (o.isMnist ? 2 : Math.max(1, Math.round(trainSet.imageShape[0] / 8))) : 0;
  const flip = o.augmentOn && !o.isMnist;
  return { padding, flip, mean, std, ...imagenetFitOptions(o.imagenet, side, trainSet.imageShape[0]) };
}

/** The two lines that say what is about to run: the data and model, then every training option. */
function printPlan(
  o: TrainOptions,
  model: Model,
  trainSet: Dataset,
  testSet: Dataset,
  stepsPerEpoch: number,
  warmupSteps: number,
  aug: { padding: number; flip: boolean },
  info: { threads: number; simd: string },
): void {
  say(
    `${NAME}: ${o.resume ? 'resuming' : 'training'} ${model.name} (${model.paramCount().toLocaleString('en-US')} parameters) on ${o.datasetName}: ` +
      `${trainSet.length} train / ${testSet.length} test images [${trainSet.imageShape.join('×')}], ${trainSet.classes} classes`,
  );
  const optimizer = o.optimizer === 'sgd' ? `sgd momentum ${o.momentum}${o.momentum > 0 ? ' nesterov' : ''}` : 'adamw';
  const placement =
    model.device === 'cpu'
      ? `${info.threads} threads (${info.simd})`
      : `${model.device}${model.precision !== 'fp32' ? ` ${model.precision}` : ''}${o.allowTf32 ? ' tf32' : ''}`;
  say(
    `${o.epochs} epochs × ${stepsPerEpoch} steps of ${o.batchSize}, ${optimizer} lr ${o.lr} ${o.scheduleName}` +
      `${o.scheduleName === 'cosine' && warmupSteps > 0 ? ` (warmup ${warmupSteps} steps)` : ''}, weight decay ${o.weightDecay}, ` +
      `label smoothing ${o.labelSmoothing}, augment ${augmentWords(o, aug, trainSet)}, seed ${o.seed}, ` +
      `${placement}, out ${o.out}${o.logs.length > 0 ? `, logs ${o.logs.join(' + ')}` : ''}${o.freeze !== undefined ? `, freeze '${o.freeze}'` : ''}` +
      `${o.weights ? `, ${describeWeights(o.weights)}` : ''}`,
  );
}

/** The settings line's augmentation: padded crops or random-resized ones, flips, jitter, mixing. */
function augmentWords(o: TrainOptions, aug: { padding: number; flip: boolean }, trainSet: Dataset): string {
  if (!o.augmentOn) return 'off';
  const crops = o.imagenet.randomResizedCrop ? '' : `padding ${aug.padding}`;
  const words = [crops, describeImagenetAugment(o.imagenet, trainSet.imageShape[0]), aug.flip ? 'flip' : ''].filter((w) => w !== '');
  return words.join(' + ');
}

/** --dataset folder: imageFolder's size and resize rule for --image-size, --weights and --random-resized-crop. */
function folderLoading(o: TrainOptions): { size: number; resizeTo?: number } | undefined {
  if (o.datasetName !== 'folder' || o.imageSize === undefined) return undefined;
  const side = o.imageSize;
  if (o.imagenet.randomResizedCrop) return { size: o.weights ? weightsResizeTo(o.weights, side) : storedSize(side) };
  return o.weights ? { size: side, resizeTo: weightsResizeTo(o.weights, side) } : { size: side };
}

export async function run(args: string[]): Promise<void> {
  const { values: v } = parse('train', args, TRAIN_OPTIONS);
  if (v.help) return printHelp(TRAIN_HELP);
  // Everything is checked before the (slow) data and model loading.
  const givenModel = str(v, 'model') !== undefined;
  const recorded = await resumeSettings(v);
  const o = readOptions(v);
  o.weights = await readWeightsOption(str(v, 'weights'), o.modelName, o.resume !== undefined);
  if (o.weights && o.isMnist) throw new UsageError('--weights needs colour images: mnist is greyscale (use cifar10, cifar100 or folder)');
  if (o.datasetName === 'folder') o.imageSize = int(v, 'image-size', 1, 16384) ?? (o.weights ? o.weights.transform.cropSize : 64);
  const settings = settingsOf(o, v);
  if (recorded && !o.force) {
    const differ = differences(recorded, settings);
    if (differ.length > 0) {
      throw new UsageError(
        `--resume ${o.resume} continues a run with other model or data options: ${differ.join(', ')}; resume with the run's options, or pass --force`,
      );
    }
  }
  applyThreads(v);

  const started = performance.now();
  const folder = folderLoading(o);
  const trainSet = await limitDataset(await loadDataset(v, o.datasetName, 'train', 'train', 64, undefined, folder), o.limit, o.seed);
  const testSet = await limitDataset(await loadDataset(v, o.datasetName, 'test', 'train', 64, undefined, folder), o.testLimit, TEST_SUBSET_SEED);
  const { stepLog, STEP_LOG_FILE } = await import('../train/step_log.js');
  const [{ Trainer }, { checkpoint }, schedules, { runtimeInfo }, { loadModel }, { csvLogger }, { tensorBoard }] = await Promise.all([
    import('../train/trainer.js'),
    import('../train/callbacks.js'),
    import('../train/schedules.js'),
    import('../runtime.js'),
    import('../io/checkpoint.js'),
    import('../train/csv_logger.js'),
    import('../train/tensorboard.js'),
  ]);

  // --precision is checked here, after the data, as it always was (the first error reported stays the same).
  // Resuming, a --model given is built and the checkpoint's state copied into it, which fit
  // refuses (naming both models) when they differ; without --model, the checkpoint's own model.
  // The model's input: the data's images, or with --random-resized-crop the crops of them.
  const side = o.imageSize ?? trainSet.imageShape[0];
  const inputShape: [number, number, number] = o.imagenet.randomResizedCrop ? [side, side, trainSet.imageShape[2]] : [...trainSet.imageShape];
  const build = () => o.choice.build({ classes: trainSet.classes, inputShape, seed: o.seed, ...deviceOptions(v) });
  // --weights initialise a fresh run only: resuming, the checkpoint's weights win.
  const model =
    o.resume && !givenModel
      ? await loadModel(o.resume, deviceOptions(v))
      : o.weights && !o.resume
        ? await modelFromWeights(o.weights, {
            build,
            trainSet,
            inputShape,
            seed: o.seed,
            placement: deviceOptions(v),
            progress: o.progress !== 'none',
          })
        : await build();
  if (o.freeze !== undefined) {
    try {
      model.freeze(o.freeze);
    } catch (err) {
      model.dispose();
      throw new UsageError(`--freeze: ${(err as Error).message.replace(/^freeze: /, '')}`);
    }
    say(`${NAME}: frozen ${model.frozen.length} layers (${model.frozenParameters().length} parameter tensors) matching --freeze '${o.freeze}'`);
  }
  const stepsPerEpoch = Math.floor(trainSet.length / o.batchSize);
  if (stepsPerEpoch < 1) {
    model.dispose();
    throw new UsageError(`--batch-size ${o.batchSize} is larger than the ${trainSet.length} training examples`);
  }
  const { schedule, warmupSteps } = makeSchedule(schedules, o, stepsPerEpoch);
  const aug = augmentation(o, trainSet, side);
  printPlan(o, model, trainSet, testSet, stepsPerEpoch, warmupSteps, aug, runtimeInfo());

  await mkdir(o.out, { recursive: true });
  await writeRunSettings(o.out, settings, args);
  // steps.jsonl before the checkpoint: a resumed run trims the lines past the checkpoint's step.
  const callbacks = [stepLog(join(o.out, STEP_LOG_FILE)), checkpoint({ dir: o.out, saveLast: true, saveBest: 'valAccuracy' })];
  if (o.logs.includes('csv')) callbacks.push(csvLogger({ path: join(o.out, LOG_FILES.csv), append: o.resume !== undefined }));
  if (o.logs.includes('tensorboard')) callbacks.push(tensorBoard({ logDir: join(o.out, LOG_FILES.tensorboard) }));
  const trainer = new Trainer(model, { compile: compileOptions(o), progress: o.progress });
  let history;
  try {
    history = await trainer.fit(trainSet, {
      epochs: o.epochs,
      batchSize: o.batchSize,
      validation: testSet,
      validationBatchSize: Math.max(o.batchSize, 256),
      seed: o.seed,
      augment: aug,
      schedule,
      callbacks,
      ...(o.resume ? { resumeFrom: o.resume } : {}),
    });
  } finally {
    model.dispose();
  }
  await writeFile(join(o.out, 'history.json'), `${JSON.stringify(history, null, 2)}\n`);
  const last = history[history.length - 1]!;
  const best = history.reduce((b, h) => (h.valAccuracy! > b.valAccuracy! ? h : b), history[0]!);
  const minutes = (performance.now() - started) / 1000;
  say(
    `saved ${join(o.out, 'model.safetensors')} (last) and ${join(o.out, 'best.safetensors')} (epoch ${best.epoch}, test accuracy ${best.valAccuracy!.toFixed(4)}); ${minutes.toFixed(1)} s in all`,
  );
  say(`test accuracy: ${last.valAccuracy!.toFixed(4)}`);
}

/** Where --log writes, inside --out. */
export const LOG_FILES = { csv: 'log.csv', tensorboard: 'tensorboard' } as const;
