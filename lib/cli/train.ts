// `resnet-native train`: trains a model on a dataset, evaluating on its test split after every
// epoch; writes <out>/model.safetensors, best.safetensors and history.json.
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
import { NAME, printHelp, say } from './output.js';

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
  --out <dir>            where checkpoints go (default runs/<dataset>-<model>)
  --resume <file>        continue the run saved in this checkpoint (same data and options)
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
  seed: { type: 'string' },
  limit: { type: 'string' },
  'test-limit': { type: 'string' },
  progress: { type: 'string' },
  freeze: { type: 'string' },
};

/** Every train option, checked and with its default. */
interface TrainOptions {
  datasetName: DatasetName;
  isMnist: boolean;
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
  /** --freeze: a glob of layer names (checked here, matched once the model exists). */
  freeze: string | undefined;
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
  const freeze = freezeOption(v);
  if (datasetName !== 'folder' && (str(v, 'test-data') !== undefined || str(v, 'image-size') !== undefined)) {
    throw new UsageError('--test-data and --image-size apply to --dataset folder only');
  }
  if (isMnist && str(v, 'data') !== undefined) throw new UsageError('--dataset mnist takes no --data (the digits come with the mnist package)');
  return {
    datasetName,
    isMnist,
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
    freeze,
  };
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

/** Random crops and flips, and the dataset's normalisation (one value per channel). */
function augmentation(o: TrainOptions, trainSet: Dataset): { padding: number; flip: boolean; mean: number[]; std: number[] } {
  const norm = NORMALISATION[o.datasetName];
  const channels = trainSet.imageShape[2];
  const mean = norm.mean.length === channels ? norm.mean : new Array<number>(channels).fill(norm.mean[0]!);
  const std = norm.std.length === channels ? norm.std : new Array<number>(channels).fill(norm.std[0]!);
  const padding = o.augmentOn ? (o.isMnist ? 2 : Math.max(1, Math.round(trainSet.imageShape[0] / 8))) : 0;
  const flip = o.augmentOn && !o.isMnist;
  return { padding, flip, mean, std };
}

/** The two lines that say what is about to run. */
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
  say(
    `${o.epochs} epochs × ${stepsPerEpoch} steps of ${o.batchSize}, ${o.optimizer} lr ${o.lr} ${o.scheduleName}` +
      `${o.scheduleName === 'cosine' && warmupSteps > 0 ? ` (warmup ${warmupSteps} steps)` : ''}, weight decay ${o.weightDecay}, ` +
      `augment ${o.augmentOn ? `padding ${aug.padding}${aug.flip ? ' + flip' : ''}` : 'off'}, seed ${o.seed}, ${model.device === 'cpu' ? `${info.threads} threads (${info.simd})` : model.device}`,
  );
}

export async function run(args: string[]): Promise<void> {
  const { values: v } = parse('train', args, TRAIN_OPTIONS);
  if (v.help) return printHelp(TRAIN_HELP);
  // Everything is checked before the (slow) data and model loading.
  const o = readOptions(v);
  applyThreads(v);

  const started = performance.now();
  const trainSet = await limitDataset(await loadDataset(v, o.datasetName, 'train', 'train'), o.limit, o.seed);
  const testSet = await limitDataset(await loadDataset(v, o.datasetName, 'test', 'train'), o.testLimit, TEST_SUBSET_SEED);
  const [{ Trainer }, { checkpoint }, schedules, { runtimeInfo }, { loadModel }] = await Promise.all([
    import('../train/trainer.js'),
    import('../train/callbacks.js'),
    import('../train/schedules.js'),
    import('../runtime.js'),
    import('../io/checkpoint.js'),
  ]);

  // --precision is checked here, after the data, as it always was (the first error reported stays the same).
  const model = o.resume
    ? await loadModel(o.resume, deviceOptions(v))
    : await o.choice.build({ classes: trainSet.classes, inputShape: [...trainSet.imageShape], seed: o.seed, ...deviceOptions(v) });
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
  if (stepsPerEpoch < 1) throw new UsageError(`--batch-size ${o.batchSize} is larger than the ${trainSet.length} training examples`);
  const { schedule, warmupSteps } = makeSchedule(schedules, o, stepsPerEpoch);
  const aug = augmentation(o, trainSet);
  printPlan(o, model, trainSet, testSet, stepsPerEpoch, warmupSteps, aug, runtimeInfo());

  await mkdir(o.out, { recursive: true });
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
      callbacks: [checkpoint({ dir: o.out, saveLast: true, saveBest: 'valAccuracy' })],
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
