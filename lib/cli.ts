#!/usr/bin/env node
// The `resnet-native` command: train | eval | predict | summary | bench | doctor.
// Arguments are parsed with node:util parseArgs before the library (and its native addon) is
// loaded, so that --threads can size the native thread pool (RESNET_NUM_THREADS).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';

import type { Dataset } from './data/dataset.js';
import type { Model } from './model/model.js';
import type { TrainerState } from './train/callbacks.js';
import type { CompileOptions } from './train/optimizers.js';

const NAME = 'resnet-native';

/** A usage error: printed as one line, exit status 2. */
class UsageError extends Error {}

// ---------------------------------------------------------------------------------------
// Help texts

const GLOBAL_HELP = `Usage: ${NAME} <command> [options]

Train and run ResNet image classifiers at native speed.

Commands:
  train     train a model on a dataset; writes <out>/model.safetensors and best.safetensors
  eval      loss, top-1 and top-5 accuracy of a checkpoint on a dataset
  predict   the top-5 classes of image files, with probabilities
  summary   a model's layers, output shapes and parameter counts
  bench     images/s of training and inference on random data
  doctor    which native addon loaded (prebuild or source build), CPU features, threads, CUDA

Options:
  -h, --help     show this help (or a command's: ${NAME} <command> --help)
  -v, --version  show the version

Example:
  ${NAME} train --model resnet20 --dataset mnist --epochs 4 --out runs/mnist
`;

const MODELS_HELP = `Models:
  resnet20, resnet32, resnet44, resnet56, resnet110 (any 6n+2: CIFAR ResNet v1, He et al.),
  resnet29v2, resnet56v2, … (9n+2: CIFAR pre-activation v2),
  resnet18, resnet34, resnet50, resnet101, resnet152, resnet50v2, resnet101v2, resnet152v2,
  resnext50_32x4d, resnext101_32x8d, wide_resnet50_2, wide_resnet101_2, se_resnet50`;

const DATA_HELP = `  --dataset <name>       mnist (default) | cifar10 | cifar100 | folder
  --data <dir>           cifar10/cifar100: the binary archive's folder (or its parent);
                         folder: a folder with train/ and test/ (or val/) subfolders, one
                         subfolder per class inside each (or --test-data for the test set)
  --test-data <dir>      folder: the test images' folder (class subfolders)
  --image-size <n>       folder: images are resized to n×n (default 64)`;

const TRAIN_HELP = `Usage: ${NAME} train [options]

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
  --threads <n>          native threads (default: all cores)
  --device <name>        cpu (default) | cuda | cuda:N (an NVIDIA GPU; see doctor)
  --allow-tf32           on a GPU, let fp32 convolutions use TF32 tensor cores
  --precision P          on a GPU: fp32 (default), or fp16 / bf16 mixed precision
  --limit <n>            train on n examples only (a seeded random subset)
  --test-limit <n>       evaluate on n test examples only (a fixed random subset)
  --progress <mode>      auto (default: a live bar on a terminal) | bar | log | none
  -h, --help             show this help

${MODELS_HELP}
`;

const EVAL_HELP = `Usage: ${NAME} eval --checkpoint <file> [options]

Prints loss, top-1 and top-5 accuracy of a checkpoint on a dataset (the input normalisation
is the one stored in the checkpoint by train).

  --checkpoint <file>    a checkpoint written by train (or saveModel)
${DATA_HELP}
  --split <name>         test (default) | train
  --batch-size <n>       default 256
  --limit <n>            evaluate on n examples only (the same ones as train --test-limit n)
  --threads <n>          native threads (default: all cores)
  --device <name>        cpu (default) | cuda | cuda:N (an NVIDIA GPU; see doctor)
  --allow-tf32           on a GPU, let fp32 convolutions use TF32 tensor cores
  --precision P          on a GPU: fp32 (default), or fp16 / bf16 mixed precision
  -h, --help             show this help
`;

const PREDICT_HELP = `Usage: ${NAME} predict --checkpoint <file> [options] <image> [<image> …]

Decodes each image (JPEG or PNG; resized to cover the model's input size and centre-cropped)
and prints its top classes with their probabilities.

  --checkpoint <file>    a checkpoint written by train (or saveModel)
  --top <k>              how many classes to print (default 5)
  --threads <n>          native threads (default: all cores)
  --device <name>        cpu (default) | cuda | cuda:N (an NVIDIA GPU; see doctor)
  --allow-tf32           on a GPU, let fp32 convolutions use TF32 tensor cores
  --precision P          on a GPU: fp32 (default), or fp16 / bf16 mixed precision
  -h, --help             show this help
`;

const SUMMARY_HELP = `Usage: ${NAME} summary --model <name> [options]

Prints the model's layers (type, output shape, parameters, inputs) and its totals.

  --model <name>         see below
  --input-shape <h,w,c>  default: 32,32,3 for CIFAR models, 224,224,3 for ImageNet ones
  --classes <n>          default: 10 for CIFAR models, 1000 for ImageNet ones
  -h, --help             show this help

${MODELS_HELP}
`;

const BENCH_HELP = `Usage: ${NAME} bench [options]

Measures images/s of trainStep (forward, backward, SGD update) and of predict on random data.

  --model <name>         default resnet20 (see summary --help)
  --input-shape <h,w,c>  default: 32,32,3 for CIFAR models, 224,224,3 for ImageNet ones
  --classes <n>          default: 10 / 1000
  --batch-size <n>       default 128
  --steps <n>            timed steps of each (default 10, after 2 untimed ones)
  --threads <n>          native threads (default: all cores)
  --device <name>        cpu (default) | cuda | cuda:N (an NVIDIA GPU; see doctor)
  --allow-tf32           on a GPU, let fp32 convolutions use TF32 tensor cores
  --precision P          on a GPU: fp32 (default), or fp16 / bf16 mixed precision
  -h, --help             show this help
`;

const DOCTOR_HELP = `Usage: ${NAME} doctor [options]

Prints what this installation runs with: the addon file that loaded and whether it is a
prebuild or a source build, Node and Node-API versions, platform and glibc, the CPU features
the kernels use, threads, and the CUDA plugin's state (driver, GPUs, cuDNN) or why it is
unavailable. Exits with status 1 when the addon does not load.

  --json                 print the report as JSON
  -h, --help             show this help
`;

// ---------------------------------------------------------------------------------------
// Argument helpers

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | undefined>;

const COMMON: Options = { help: { type: 'boolean', short: 'h' } };
const THREADS: Options = { threads: { type: 'string' } };
/** Where models run (train, eval, predict, bench). */
const DEVICE: Options = { device: { type: 'string' }, 'allow-tf32': { type: 'boolean' }, precision: { type: 'string' } };
const DATA: Options = {
  dataset: { type: 'string' },
  data: { type: 'string' },
  'test-data': { type: 'string' },
  'image-size': { type: 'string' },
};

function parse(command: string, args: string[], options: Options, positionals = false): { values: Values; positionals: string[] } {
  try {
    const r = parseArgs({ args, options: { ...COMMON, ...options }, strict: true, allowPositionals: positionals });
    return { values: r.values as Values, positionals: r.positionals };
  } catch (err) {
    const e = err as Error & { code?: string };
    const where = command ? `${NAME} ${command}` : NAME;
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const flag = /'([^']+)'/.exec(e.message)?.[1] ?? e.message;
      throw new UsageError(`unknown option '${flag}' for '${where}' (see ${where} --help)`);
    }
    if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const flag = /'([^']+)'/.exec(e.message)?.[1];
      throw new UsageError(flag ? `option '${flag.replace(/^-\w, /, '').replace(/ <value>$/, '')}' needs a value` : e.message.split('\n')[0]!);
    }
    if (e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      const arg = /'([^']+)'/.exec(e.message)?.[1] ?? '';
      throw new UsageError(`unexpected argument '${arg}' for '${where}' (see ${where} --help)`);
    }
    throw err;
  }
}

function str(v: Values, key: string): string | undefined {
  const s = v[key];
  return typeof s === 'string' ? s : undefined;
}

function int(v: Values, key: string, min = 1, max = 2 ** 31 - 1): number | undefined {
  const s = str(v, key);
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!/^-?\d+$/.test(s.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${key} must be an integer ≥ ${min}${max < 2 ** 31 - 1 ? ` and ≤ ${max}` : ''}, got '${s}'`);
  }
  return n;
}

function num(v: Values, key: string, min = 0, max = Number.MAX_VALUE): number | undefined {
  const s = str(v, key);
  if (s === undefined) return undefined;
  const n = Number(s);
  if (s.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`--${key} must be a number in [${min}, ${max === Number.MAX_VALUE ? '∞' : max}], got '${s}'`);
  }
  return n;
}

function oneOf<T extends string>(v: Values, key: string, allowed: readonly T[], dflt: T): T {
  const s = str(v, key) ?? dflt;
  if (!(allowed as readonly string[]).includes(s)) {
    throw new UsageError(`--${key} must be ${allowed.map((a) => `'${a}'`).join(', ').replace(/, ([^,]*)$/, ' or $1')}, got '${s}'`);
  }
  return s as T;
}

function shapeArg(v: Values, key: string): [number, number, number] | undefined {
  const s = str(v, key);
  if (s === undefined) return undefined;
  const parts = s.split(/[,x×]/).map((p) => Number(p.trim()));
  if (parts.length !== 3 || !parts.every((p) => Number.isInteger(p) && p >= 1 && p <= 16384)) {
    throw new UsageError(`--${key} must be height,width,channels (e.g. 32,32,3), got '${s}'`);
  }
  return parts as [number, number, number];
}

function required(v: Values, key: string, command: string): string {
  const s = str(v, key);
  if (s === undefined || s === '') throw new UsageError(`${command} needs --${key} (see ${NAME} ${command} --help)`);
  return s;
}

/** --device / --allow-tf32 / --precision as model options (the library checks them itself: E_DEVICE / E_ARG). */
function deviceOptions(v: Values): { device?: string; allowTf32?: boolean; precision?: 'fp32' | 'fp16' | 'bf16' } {
  const o: { device?: string; allowTf32?: boolean; precision?: 'fp32' | 'fp16' | 'bf16' } = {};
  const device = str(v, 'device');
  if (device !== undefined) o.device = device;
  if (v['allow-tf32']) o.allowTf32 = true;
  const precision = str(v, 'precision');
  if (precision !== undefined) {
    if (precision !== 'fp32' && precision !== 'fp16' && precision !== 'bf16') {
      throw new UsageError(`--precision must be fp32, fp16 or bf16, got '${precision}'`);
    }
    o.precision = precision;
  }
  return o;
}

/** Sets the native thread count; must run before the library is imported. */
function applyThreads(v: Values): void {
  const threads = int(v, 'threads', 1, 1024);
  if (threads !== undefined) process.env.RESNET_NUM_THREADS = String(threads);
}

function say(line = ''): void {
  process.stdout.write(`${line}\n`);
}

// ---------------------------------------------------------------------------------------
// Models

interface ModelChoice {
  /** 'cifar' models default to 32×32×3 / 10 classes, 'imagenet' ones to 224×224×3 / 1000. */
  family: 'cifar' | 'imagenet';
  build(o: { classes: number; inputShape: [number, number, number]; seed: number; device?: string; allowTf32?: boolean; precision?: 'fp32' | 'fp16' | 'bf16' }): Promise<Model>;
}

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

function modelChoice(name: string): ModelChoice {
  const key = name.toLowerCase();
  const builder = IMAGENET[key];
  if (builder) {
    return {
      family: 'imagenet',
      async build(o) {
        const models = await import('./model/models.js');
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
          const models = await import('./model/models.js');
          return models.resnetCifar({ depth, version: version as 1 | 2, ...o });
        },
      };
    }
  }
  throw new UsageError(`unknown model '${name}' (see ${NAME} summary --help for the list)`);
}

// ---------------------------------------------------------------------------------------
// Datasets

type DatasetName = 'mnist' | 'cifar10' | 'cifar100' | 'folder';
const DATASETS: readonly DatasetName[] = ['mnist', 'cifar10', 'cifar100', 'folder'];

interface Normalisation {
  mean: number[];
  std: number[];
}

const NORMALISATION: Record<DatasetName, Normalisation> = {
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

async function loadDataset(v: Values, name: DatasetName, split: 'train' | 'test', command: string): Promise<Dataset> {
  const { datasets } = await import('./data/index.js');
  switch (name) {
    case 'mnist':
      return datasets.mnist({ split });
    case 'cifar10':
      return datasets.cifar10(required(v, 'data', `${command} --dataset cifar10`), { split });
    case 'cifar100':
      return datasets.cifar100(required(v, 'data', `${command} --dataset cifar100`), { split });
    case 'folder': {
      const size = int(v, 'image-size', 1, 16384) ?? 64;
      const testData = str(v, 'test-data');
      const root = str(v, 'data');
      let dir: string | undefined;
      if (split === 'test' && testData) dir = testData;
      else if (!root) throw new UsageError(`${command} --dataset folder needs --data <dir> (see ${NAME} ${command} --help)`);
      else if (await exists(join(root, 'train'))) {
        if (split === 'train') dir = join(root, 'train');
        else if (await exists(join(root, 'test'))) dir = join(root, 'test');
        else if (await exists(join(root, 'val'))) dir = join(root, 'val');
        else throw new UsageError(`${root} has train/ but no test/ or val/ folder; pass --test-data <dir>`);
      } else if (split === 'train' || command === 'eval') dir = root;
      else throw new UsageError(`--data ${root} has no train/ and test/ subfolders; pass --test-data <dir> for the test images`);
      return datasets.imageFolder(dir, { size });
    }
  }
}

/** --test-limit (train) and --limit (eval) pick the same examples: a subset drawn with this seed. */
const TEST_SUBSET_SEED = 0;

/** The first n examples of a seeded random subset (the same for the same seed). */
async function limitDataset(ds: Dataset, n: number | undefined, seed: number): Promise<Dataset> {
  if (n === undefined || n >= ds.length) return ds;
  const { SeededRandom } = await import('./train/trainer.js');
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

// ---------------------------------------------------------------------------------------
// train

async function train(args: string[]): Promise<void> {
  const { values: v } = parse('train', args, {
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
  });
  if (v.help) return void process.stdout.write(TRAIN_HELP);
  // Everything is checked before the (slow) data and model loading.
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
  if (datasetName !== 'folder' && (str(v, 'test-data') !== undefined || str(v, 'image-size') !== undefined)) {
    throw new UsageError('--test-data and --image-size apply to --dataset folder only');
  }
  if (isMnist && str(v, 'data') !== undefined) throw new UsageError('--dataset mnist takes no --data (the digits come with the mnist package)');
  applyThreads(v);

  const started = performance.now();
  const trainSet = await limitDataset(await loadDataset(v, datasetName, 'train', 'train'), limit, seed);
  const testSet = await limitDataset(await loadDataset(v, datasetName, 'test', 'train'), testLimit, TEST_SUBSET_SEED);
  const [{ Trainer }, { checkpoint }, schedules, { runtimeInfo }, { loadModel }] = await Promise.all([
    import('./train/trainer.js'),
    import('./train/callbacks.js'),
    import('./train/schedules.js'),
    import('./runtime.js'),
    import('./io/checkpoint.js'),
  ]);

  const model = resume
    ? await loadModel(resume, deviceOptions(v))
    : await choice.build({ classes: trainSet.classes, inputShape: [...trainSet.imageShape], seed, ...deviceOptions(v) });
  const compile: CompileOptions = {
    optimizer:
      optimizer === 'sgd'
        ? { type: 'sgd', lr, momentum, nesterov: momentum > 0, weightDecay }
        : { type: 'adamw', lr, weightDecay },
    ...(labelSmoothing > 0 ? { labelSmoothing } : {}),
  };
  const stepsPerEpoch = Math.floor(trainSet.length / batchSize);
  if (stepsPerEpoch < 1) throw new UsageError(`--batch-size ${batchSize} is larger than the ${trainSet.length} training examples`);
  const totalSteps = epochs * stepsPerEpoch;
  const warmupSteps = Math.min(totalSteps - 1, Math.round(warmupEpochs * stepsPerEpoch));
  const schedule =
    scheduleName === 'cosine'
      ? schedules.cosine({ lr, totalSteps, warmupSteps, warmupStartLr: lr / 25 })
      : scheduleName === 'onecycle'
        ? schedules.oneCycle({ maxLr: lr, totalSteps })
        : scheduleName === 'step'
          ? schedules.multiStep({ lr, milestones: [Math.round(totalSteps * 0.5), Math.round(totalSteps * 0.75)] })
          : schedules.constant(lr);
  const norm = NORMALISATION[datasetName];
  const channels = trainSet.imageShape[2];
  const mean = norm.mean.length === channels ? norm.mean : new Array<number>(channels).fill(norm.mean[0]!);
  const std = norm.std.length === channels ? norm.std : new Array<number>(channels).fill(norm.std[0]!);
  const padding = augmentOn ? (isMnist ? 2 : Math.max(1, Math.round(trainSet.imageShape[0] / 8))) : 0;
  const flip = augmentOn && !isMnist;

  const info = runtimeInfo();
  say(
    `${NAME}: ${resume ? 'resuming' : 'training'} ${model.name} (${model.paramCount().toLocaleString('en-US')} parameters) on ${datasetName}: ` +
      `${trainSet.length} train / ${testSet.length} test images [${trainSet.imageShape.join('×')}], ${trainSet.classes} classes`,
  );
  say(
    `${epochs} epochs × ${stepsPerEpoch} steps of ${batchSize}, ${optimizer} lr ${lr} ${scheduleName}` +
      `${scheduleName === 'cosine' && warmupSteps > 0 ? ` (warmup ${warmupSteps} steps)` : ''}, weight decay ${weightDecay}, ` +
      `augment ${augmentOn ? `padding ${padding}${flip ? ' + flip' : ''}` : 'off'}, seed ${seed}, ${model.device === 'cpu' ? `${info.threads} threads (${info.simd})` : model.device}`,
  );

  await mkdir(out, { recursive: true });
  const trainer = new Trainer(model, { compile, progress });
  let history;
  try {
    history = await trainer.fit(trainSet, {
      epochs,
      batchSize,
      validation: testSet,
      validationBatchSize: Math.max(batchSize, 256),
      seed,
      augment: { padding, flip, mean, std },
      schedule,
      callbacks: [checkpoint({ dir: out, saveLast: true, saveBest: 'valAccuracy' })],
      ...(resume ? { resumeFrom: resume } : {}),
    });
  } finally {
    model.dispose();
  }
  await writeFile(join(out, 'history.json'), `${JSON.stringify(history, null, 2)}\n`);
  const last = history[history.length - 1]!;
  const best = history.reduce((b, h) => (h.valAccuracy! > b.valAccuracy! ? h : b), history[0]!);
  const minutes = (performance.now() - started) / 1000;
  say(`saved ${join(out, 'model.safetensors')} (last) and ${join(out, 'best.safetensors')} (epoch ${best.epoch}, test accuracy ${best.valAccuracy!.toFixed(4)}); ${minutes.toFixed(1)} s in all`);
  say(`test accuracy: ${last.valAccuracy!.toFixed(4)}`);
}

// ---------------------------------------------------------------------------------------
// Checkpoints for eval / predict

interface LoadedCheckpoint {
  model: Model;
  normalize: Normalisation | undefined;
  classNames: string[] | undefined;
}

async function openCheckpoint(path: string, placement: { device?: string; allowTf32?: boolean; precision?: 'fp32' | 'fp16' | 'bf16' } = {}): Promise<LoadedCheckpoint> {
  const { loadCheckpoint } = await import('./io/checkpoint.js');
  const { model, training } = await loadCheckpoint(path, { optimizer: false, ...placement });
  const t = training as Partial<TrainerState> | undefined;
  const c = model.inputShape[2]!;
  const okList = (a: unknown, positive: boolean): a is number[] =>
    Array.isArray(a) && a.length === c && a.every((x) => typeof x === 'number' && Number.isFinite(x) && (!positive || x > 0));
  const normalize = t?.normalize && okList(t.normalize.mean, false) && okList(t.normalize.std, true) ? { mean: t.normalize.mean, std: t.normalize.std } : undefined;
  const classNames = Array.isArray(t?.classNames) && t.classNames.length === model.classes && t.classNames.every((s) => typeof s === 'string') ? t.classNames : undefined;
  return { model, normalize, classNames };
}

// ---------------------------------------------------------------------------------------
// eval

async function evaluate(args: string[]): Promise<void> {
  const { values: v } = parse('eval', args, {
    ...DATA,
    ...THREADS,
    ...DEVICE,
    checkpoint: { type: 'string' },
    split: { type: 'string' },
    'batch-size': { type: 'string' },
    limit: { type: 'string' },
  });
  if (v.help) return void process.stdout.write(EVAL_HELP);
  const path = required(v, 'checkpoint', 'eval');
  const datasetName = oneOf(v, 'dataset', DATASETS, 'mnist');
  const split = oneOf(v, 'split', ['test', 'train'] as const, 'test');
  const batchSize = int(v, 'batch-size') ?? 256;
  const limit = int(v, 'limit');
  applyThreads(v);
  const { evaluateModel } = await import('./train/trainer.js');
  const { model, normalize } = await openCheckpoint(path, deviceOptions(v));
  try {
    let ds = await loadDataset(v, datasetName, split, 'eval');
    ds = await limitDataset(ds, limit, TEST_SUBSET_SEED);
    if (!normalize) process.stderr.write(`${NAME}: warning: ${path} stores no input normalisation; evaluating on raw [0, 1] inputs\n`);
    const t0 = performance.now();
    const r = await evaluateModel(model, ds, { batchSize, ...(normalize ?? {}) });
    const seconds = (performance.now() - t0) / 1000;
    say(
      `${datasetName} ${split}: ${r.count} images, loss ${r.loss.toFixed(4)}, accuracy ${r.accuracy.toFixed(4)}` +
        `${r.top5 !== undefined ? `, top-5 ${r.top5.toFixed(4)}` : ''} (${seconds.toFixed(1)} s, ${(r.count / seconds).toFixed(1)} img/s)`,
    );
    say(`accuracy: ${r.accuracy.toFixed(4)}`);
  } finally {
    model.dispose();
  }
}

// ---------------------------------------------------------------------------------------
// predict

type Sharp = typeof import('sharp').default;

async function loadSharp(): Promise<Sharp> {
  try {
    return (await import('sharp')).default;
  } catch (err) {
    throw new Error(`the 'sharp' image decoder could not be loaded: ${(err as Error).message}`);
  }
}

/** Decodes an image file to [h, w, c] floats in [0, 1]: scaled to cover h×w, centre-cropped, RGB or grey. */
async function decodeImage(sharp: Sharp, file: string, [h, w, c]: readonly number[], out: Float32Array, offset: number): Promise<void> {
  // The file is read as datasets.imageFolder reads it (regular files only, size and pixel limits).
  const { readImageFile, sharpInputOptions } = await import('./data/image_folder.js');
  const bytes = await readImageFile(file, 'predict');
  try {
    let p = sharp(bytes, sharpInputOptions(bytes.length)).resize({ width: w, height: h, fit: 'cover', position: 'centre' }).removeAlpha();
    p = c === 1 ? p.toColourspace('b-w') : p.toColourspace('srgb');
    const { data, info } = await p.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.width !== w || info.height !== h || info.channels !== c) throw new Error(`decoded to ${info.width}×${info.height}×${info.channels}`);
    for (let i = 0; i < h * w * c; i++) out[offset + i] = data[i]! / 255;
  } catch (err) {
    throw new Error(`cannot decode ${file} as an image: ${(err as Error).message}`);
  }
}

/** How many images predict sends through the model at once. */
const PREDICT_BATCH = 64;

async function predict(args: string[]): Promise<void> {
  const { values: v, positionals: files } = parse('predict', args, { ...THREADS, ...DEVICE, checkpoint: { type: 'string' }, top: { type: 'string' } }, true);
  if (v.help) return void process.stdout.write(PREDICT_HELP);
  const path = required(v, 'checkpoint', 'predict');
  if (files.length === 0) throw new UsageError(`predict needs at least one image file (see ${NAME} predict --help)`);
  const top = int(v, 'top', 1) ?? 5;
  applyThreads(v);
  const sharp = await loadSharp();
  const [{ Tensor }, { topK }, validate] = await Promise.all([import('./tensor.js'), import('./train/metrics.js'), import('./validate.js')]);
  const { model, normalize, classNames } = await openCheckpoint(path, deviceOptions(v));
  try {
    const shape = model.inputShape;
    const per = shape[0]! * shape[1]! * shape[2]!;
    const k = Math.min(top, model.classes);
    // Images go through the model PREDICT_BATCH at a time, so memory stays bounded however many
    // files are named (one batch of decoded pixels, one of probabilities).
    const batch = Math.min(PREDICT_BATCH, files.length);
    const images = validate.allocate(Float32Array, batch * per, 'predict', 'the image batch');
    for (let start = 0; start < files.length; start += batch) {
      const chunk = files.slice(start, start + batch);
      const view = images.subarray(0, chunk.length * per);
      for (let i = 0; i < chunk.length; i++) await decodeImage(sharp, chunk[i]!, shape, view, i * per);
      if (normalize) {
        const c = shape[2]!;
        for (let i = 0; i < view.length; i++) view[i] = (view[i]! - normalize.mean[i % c]!) / normalize.std[i % c]!;
      }
      const x = Tensor.fromArray(view, [chunk.length, ...shape]);
      let p: Float32Array;
      try {
        const probs = await model.predict(x, { softmax: true });
        p = probs.toFloat32Array();
        probs.dispose();
      } finally {
        x.dispose();
      }
      chunk.forEach((file, i) => {
        say(file);
        topK(p, model.classes, i, k).forEach((e, rank) => {
          const name = classNames?.[e.index] ?? String(e.index);
          say(`  ${rank + 1}. ${name.padEnd(12)} ${e.value.toFixed(4)}`);
        });
      });
    }
  } finally {
    model.dispose();
  }
}

// ---------------------------------------------------------------------------------------
// summary, bench

function modelShape(v: Values, choice: ModelChoice): { inputShape: [number, number, number]; classes: number } {
  const inputShape = shapeArg(v, 'input-shape') ?? (choice.family === 'cifar' ? [32, 32, 3] : [224, 224, 3]);
  const classes = int(v, 'classes') ?? (choice.family === 'cifar' ? 10 : 1000);
  return { inputShape, classes };
}

async function summary(args: string[]): Promise<void> {
  const { values: v } = parse('summary', args, { model: { type: 'string' }, 'input-shape': { type: 'string' }, classes: { type: 'string' } });
  if (v.help) return void process.stdout.write(SUMMARY_HELP);
  const name = required(v, 'model', 'summary');
  const choice = modelChoice(name);
  const model = await choice.build({ ...modelShape(v, choice), seed: 0 });
  try {
    say(model.summary());
  } finally {
    model.dispose();
  }
}

async function bench(args: string[]): Promise<void> {
  const { values: v } = parse('bench', args, {
    ...THREADS,
    ...DEVICE,
    model: { type: 'string' },
    'input-shape': { type: 'string' },
    classes: { type: 'string' },
    'batch-size': { type: 'string' },
    steps: { type: 'string' },
  });
  if (v.help) return void process.stdout.write(BENCH_HELP);
  const name = str(v, 'model') ?? 'resnet20';
  const choice = modelChoice(name);
  const { inputShape, classes } = modelShape(v, choice);
  const batchSize = int(v, 'batch-size') ?? 128;
  const steps = int(v, 'steps') ?? 10;
  applyThreads(v);
  const [{ Tensor }, { runtimeInfo }, { SeededRandom }, validate] = await Promise.all([
    import('./tensor.js'),
    import('./runtime.js'),
    import('./train/trainer.js'),
    import('./validate.js'),
  ]);
  const model = await choice.build({ classes, inputShape, seed: 1, ...deviceOptions(v) });
  const rng = new SeededRandom(1);
  const data = validate.allocate(Float32Array, batchSize * inputShape[0] * inputShape[1] * inputShape[2], 'bench', 'the input batch');
  for (let i = 0; i < data.length; i++) data[i] = rng.next() * 2 - 1;
  const labels = new Int32Array(batchSize);
  for (let i = 0; i < batchSize; i++) labels[i] = rng.nextInt(classes);
  const x = Tensor.fromArray(data, [batchSize, ...inputShape]);
  try {
    model.compile({ optimizer: { type: 'sgd', lr: 0.01, momentum: 0.9, nesterov: true, weightDecay: 5e-4 } });
    const info = runtimeInfo();
    say(`${model.name}: input [${inputShape.join(', ')}], ${classes} classes, ${model.paramCount().toLocaleString('en-US')} parameters; batch ${batchSize}, ${model.device === 'cpu' ? `${info.threads} threads (${info.simd})` : `${model.device} ${model.precision}`}`);
    const time = async (what: string, run: () => Promise<unknown>) => {
      for (let i = 0; i < 2; i++) await run();
      const t0 = performance.now();
      for (let i = 0; i < steps; i++) await run();
      const seconds = (performance.now() - t0) / 1000;
      say(`${what.padEnd(8)} ${((steps * batchSize) / seconds).toFixed(1).padStart(9)} img/s  (${((seconds / steps) * 1000).toFixed(1)} ms per batch of ${batchSize})`);
    };
    await time('train', () => model.trainStep(x, labels));
    await time('predict', async () => (await model.predict(x)).dispose());
  } finally {
    x.dispose();
    model.dispose();
  }
}

// ---------------------------------------------------------------------------------------
// doctor

async function doctorCommand(args: string[]): Promise<void> {
  const { values: v } = parse('doctor', args, { json: { type: 'boolean' } });
  if (v.help) return void process.stdout.write(DOCTOR_HELP);
  const { doctor, formatDoctorReport } = await import('./doctor.js');
  const report = await doctor();
  process.stdout.write(v.json ? `${JSON.stringify(report, null, 2)}\n` : formatDoctorReport(report));
  if (!report.addon.loaded) throw new Error('the native addon did not load (see the report above)');
}

// ---------------------------------------------------------------------------------------
// main

async function version(): Promise<string> {
  const pkg = join(dirname(fileURLToPath(import.meta.url)), '..', 'package.json');
  return (JSON.parse(await readFile(pkg, 'utf8')) as { version: string }).version;
}

const COMMANDS: Record<string, (args: string[]) => Promise<void>> = { train, eval: evaluate, predict, summary, bench, doctor: doctorCommand };

export async function main(argv: string[]): Promise<number> {
  try {
    const [first, ...rest] = argv;
    if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
      if (first === 'help' && rest[0] && COMMANDS[rest[0]]) return main([rest[0], '--help']);
      process.stdout.write(GLOBAL_HELP);
      return first === undefined ? 2 : 0;
    }
    if (first === '-v' || first === '--version') {
      say(await version());
      return 0;
    }
    if (first.startsWith('-')) throw new UsageError(`unknown option '${first}' (see ${NAME} --help)`);
    const command = COMMANDS[first];
    if (!command) throw new UsageError(`unknown command '${first}' (commands: ${Object.keys(COMMANDS).join(', ')}; see ${NAME} --help)`);
    await command(rest);
    return 0;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${NAME}: error: ${message.split('\n')[0]}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}

// Run when executed (node dist/cli.js, the npm bin link), not when imported.
const self = fileURLToPath(import.meta.url);
const invoked = process.argv[1];
let isMain = false;
if (invoked) {
  try {
    const { realpathSync } = await import('node:fs');
    isMain = realpathSync(invoked) === realpathSync(self);
  } catch {
    isMain = false;
  }
}
if (isMain) {
  process.exitCode = await main(process.argv.slice(2));
}
