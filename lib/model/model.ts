// Model: a ModelSpec plus its native network (parameters, optimizer, compiled plans).
// Every numeric call is one N-API call that runs off the JS thread and returns a Promise;
// a training step is forward + backward + update in that one call.
import { ResNetError } from '../errors.js';
import { type LossScaleOptions, native, type NativeNetworkHandle, type NativeStepResult } from '../native.js';
import { Tensor } from '../tensor.js';
import { type CompileOptions, MAX_RATE, resolveCompileOptions } from '../train/optimizers.js';
import * as validate from '../validate.js';
import type { Precision } from '../validate.js';
import type { SaveModelOptions } from '../io/checkpoint_types.js';
import { saveModelState } from '../io/checkpoint_writer.js';
import { checkOnnxOptions, type OnnxExportOptions, writeOnnx } from '../io/onnx_export.js';
import type { ModelSpec } from './spec.js';
import { formatSummary } from './summary.js';
import { checkClassNames, checkPreprocessing, type Preprocessing } from './preprocessing.js';
import { type ImagePrediction, predictImages, type PredictImagesOptions } from './predict_images.js';
import { replaceHead, type ReplaceHeadOptions } from './replace_head.js';
import type { ImageSource } from '../io/decode_image.js';
import { type FreezeOptions, type FreezePattern, type FrozenLayers, frozenAfterFreeze, frozenAfterUnfreeze, nativeFreezing } from './freeze.js';
import { type LabelMix, labelMix } from './label_mix.js';
import { type PredictProfile, predictProfile, type ProfilePredictOptions, profileRuns } from './profile_predict.js';

export interface ModelInitOptions {
  /** Seed of the initial weights. Default: random. */
  seed?: number;
  /** Start the last batch-norm scale of every residual branch at 0 (Goyal et al.). Default false. */
  zeroInitResidual?: boolean;
  /**
   * Where the model lives and runs: 'cpu' (default), or 'cuda' / 'cuda:N' for an NVIDIA
   * GPU through the CUDA plugin (see cudaStatus()). E_DEVICE says what is missing.
   */
  device?: string;
  /**
   * Arithmetic on the GPU. 'fp32' (default): full single precision, TF32 tensor cores off
   * unless allowTf32. 'fp16' / 'bf16': mixed precision — activations, their gradients and the
   * convolutions (on tensor cores, accumulating in fp32) in the half type; weights, their
   * gradients, batch-norm statistics, the optimizer and the loss in fp32. fp16 uses dynamic
   * loss scaling (see lossScale). The CPU computes in fp32 only (E_ARG otherwise).
   */
  precision?: Precision;
  /**
   * Loss scaling for mixed precision. Default for fp16: dynamic, from 65536, halved (and the
   * step skipped) when the scaled gradients overflow, doubled after 2000 good steps; for bf16
   * and fp32: a fixed 1. `{ dynamic: false, initial: S }` fixes it at S.
   */
  lossScale?: LossScaleOptions;
  /** Let fp32 convolutions on the GPU use TF32 tensor cores (faster, ~1e-3 relative error). Default false. */
  allowTf32?: boolean;
  /**
   * The most bytes one compiled plan (the activations, gradients and scratch of one input
   * shape) may take; a call whose plan needs more fails with E_ALLOC naming both. Default: no
   * budget, but a layer whose output is absurd for its input (over 64× its elements beyond
   * the channels its weights add, e.g. a zeroPad of thousands) is refused with E_ALLOC; a
   * model that means it sets a budget, which then bounds it instead.
   */
  memoryBudget?: number;
}

export interface Parameter {
  /** `${layer}.weight`, `${layer}.bias`, `${layer}.running_mean`, … (see lib/model/spec.ts). */
  name: string;
  shape: readonly number[];
  /** False for batch-norm running statistics. */
  trainable: boolean;
  /** The layer that owns it. */
  layer: string;
  /** A copy of the current values. */
  values: Float32Array;
}

export interface StepMetrics {
  /** Mean loss over the batch (before the update). */
  loss: number;
  /** Fraction of the batch whose top-1 prediction was right (before the update). */
  accuracy: number;
  /** Fraction whose label was among the five highest logits (models with 5 or more classes). */
  top5Accuracy?: number;
}

export interface TrainStepMetrics extends StepMetrics {
  /** Global L2 norm of the gradients before clipping (0 for a skipped step). */
  gradNorm: number;
  /** fp16: the loss-scaled gradients overflowed, so the scale was halved and nothing was updated. */
  skipped: boolean;
  /** The loss scale the step used (1 unless fp16). */
  lossScale: number;
}

export interface LayerSummary {
  name: string;
  type: string;
  /** With the batch dimension first (1). */
  outputShape: number[];
  params: number;
  nonTrainable: number;
  inputs: string[];
}

export type { LossScaleOptions };

/**
 * @internal Everything a checkpoint holds of a model, copied at one instant (Model.exportState);
 * the file format is lib/io/checkpoint.ts's.
 */
export interface ModelState {
  spec: Readonly<ModelSpec>;
  /** Model.training when copied ('train' / 'eval' mode). */
  training: boolean;
  /** Every parameter, batch-norm running statistics included, in parameterInfo order. */
  parameters: Parameter[];
  /** When the model was compiled (and the optimizer was asked for). */
  optimizer?: OptimizerState;
  /** Model.preprocessing and Model.classNames, when set. */
  preprocessing?: Readonly<Preprocessing>;
  classNames?: readonly string[];
}

/** @internal The optimizer part of a ModelState. */
export interface OptimizerState {
  /** The options of the last compile(). */
  options: Readonly<CompileOptions> | undefined;
  /** Optimizer steps taken (AdamW's bias correction, SGD's first step). */
  steps: number;
  /** The learning rate in force (a schedule may have moved it from the compiled one). */
  learningRate: number;
  /** slots[k].get(name): state slot k of each trainable parameter, in parameter order. */
  slots: Map<string, Float32Array>[];
}

/** ModelInitOptions.memoryBudget: a positive whole number of bytes (up to 2^52, i.e. no practical limit). */
export function memoryBudgetOption(v: unknown, op: string): number {
  return validate.integer(v, op, 'memoryBudget', 1, 2 ** 52);
}

function lossScaleOptions(v: unknown, op: string): LossScaleOptions {
  if (!validate.isPlainObject(v)) throw new ResNetError('E_ARG', `${op}: lossScale must be an object`);
  validate.keys(v as object, `${op} lossScale`, ['dynamic', 'initial', 'growthInterval']);
  const o = v as LossScaleOptions;
  const out: LossScaleOptions = {};
  if (o.dynamic !== undefined) out.dynamic = validate.boolean(o.dynamic, op, 'lossScale.dynamic');
  if (o.initial !== undefined) out.initial = validate.number(o.initial, op, 'lossScale.initial', 1, 2 ** 24);
  if (o.growthInterval !== undefined) out.growthInterval = validate.integer(o.growthInterval, op, 'lossScale.growthInterval', 1, 1e9);
  return out;
}

function metrics(r: NativeStepResult, classes: number): StepMetrics {
  const m: StepMetrics = { loss: r.loss, accuracy: r.count > 0 ? r.correct / r.count : 0 };
  if (classes >= 5) m.top5Accuracy = r.count > 0 ? r.correct5 / r.count : 0;
  return m;
}

export class Model {
  readonly spec: Readonly<ModelSpec>;
  /** @internal */
  readonly network: NativeNetworkHandle;
  #training = true;
  #compiled = false;
  #lr = 0;
  // Numeric calls run one at a time in call order, even when not awaited one by one.
  #tail: Promise<unknown> = Promise.resolve();
  #pending = 0;
  #compileOptions: CompileOptions | undefined;
  #preprocessing: Readonly<Preprocessing> | undefined;
  #classNames: readonly string[] | undefined;
  #frozen: FrozenLayers = new Map();

  /** @internal Use the builders in `models`, or Model.fromSpec. */
  constructor(spec: ModelSpec, network: NativeNetworkHandle) {
    this.spec = Object.freeze(structuredClone(spec));
    this.network = network;
  }

  /** A model from a spec (e.g. a saved one, or one from models.*Spec builders), freshly initialised. */
  static fromSpec(spec: ModelSpec, options: ModelInitOptions = {}): Model {
    validate.keys(options, 'Model.fromSpec', ['seed', 'zeroInitResidual', 'device', 'precision', 'allowTf32', 'lossScale', 'memoryBudget']);
    if (typeof spec !== 'object' || spec === null || (spec as ModelSpec).format !== 'resnet-native/model') {
      throw new ResNetError('E_ARG', "Model.fromSpec: spec must be a ModelSpec (format 'resnet-native/model')");
    }
    const seed =
      options.seed === undefined ? Math.floor(Math.random() * 2 ** 32) : validate.integer(options.seed, 'Model.fromSpec', 'seed', 0, 2 ** 53 - 1);
    const zeroInitResidual =
      options.zeroInitResidual === undefined ? false : validate.boolean(options.zeroInitResidual, 'Model.fromSpec', 'zeroInitResidual');
    const device = options.device === undefined ? 'cpu' : validate.string(options.device, 'Model.fromSpec', 'device');
    const allowTf32 = options.allowTf32 === undefined ? false : validate.boolean(options.allowTf32, 'Model.fromSpec', 'allowTf32');
    const precision = options.precision === undefined ? 'fp32' : options.precision;
    if (precision !== 'fp32' && precision !== 'fp16' && precision !== 'bf16') {
      throw new ResNetError('E_ARG', `Model.fromSpec: precision must be 'fp32', 'fp16' or 'bf16', got ${String(precision)}`);
    }
    if (precision !== 'fp32' && device === 'cpu') {
      throw new ResNetError(
        'E_ARG',
        `Model.fromSpec: precision '${precision}' (mixed precision) needs a CUDA device ('cuda'); the CPU engine computes in fp32`,
      );
    }
    const lossScale = options.lossScale === undefined ? undefined : lossScaleOptions(options.lossScale, 'Model.fromSpec');
    const memoryBudget = options.memoryBudget === undefined ? undefined : memoryBudgetOption(options.memoryBudget, 'Model.fromSpec');
    const network = new native.NativeNetwork(spec, {
      device,
      allowTf32,
      precision,
      ...(lossScale ? { lossScale } : {}),
      ...(memoryBudget !== undefined ? { memoryBudget } : {}),
    });
    network.initialize({ seed, zeroInitResidual });
    return new Model(spec, network);
  }

  #enqueue<T>(run: () => Promise<T>): Promise<T> {
    let next: Promise<T>;
    if (this.#pending === 0) {
      // Idle: start now, so the native step is in flight when this call returns.
      try {
        next = run();
      } catch (err) {
        next = Promise.reject(err);
      }
    } else {
      next = this.#tail.then(run, run);
    }
    this.#pending++;
    this.#tail = next.then(
      () => void this.#pending--,
      () => void this.#pending--,
    );
    return next;
  }

  get name(): string {
    return this.spec.name;
  }

  get classes(): number {
    return this.spec.classes;
  }

  get inputShape(): readonly number[] {
    return this.spec.inputShape;
  }

  /**
   * How images become this model's inputs (size, resize / crop, channel order, mean / std), or
   * undefined when nobody said: then image inputs are only scaled to [0, 1] and the CLI warns.
   * Set by builders' options, pretrained weights and Trainer.fit; saved in every file we write.
   */
  get preprocessing(): Readonly<Preprocessing> | undefined {
    return this.#preprocessing;
  }

  set preprocessing(value: Preprocessing | undefined) {
    const channels = this.spec.inputShape[this.spec.inputShape.length - 1] ?? 0;
    this.#preprocessing = value === undefined ? undefined : checkPreprocessing(value, channels, 'Model.preprocessing');
  }

  /** One name per class (the dataset's, or ImageNet's for pretrained weights), or undefined. */
  get classNames(): readonly string[] | undefined {
    return this.#classNames;
  }

  set classNames(value: readonly string[] | undefined) {
    this.#classNames = value === undefined ? undefined : checkClassNames(value, this.spec.classes, 'Model.classNames');
  }

  /** Trainable parameters, counted as torchvision does (batch-norm running statistics excluded unless asked). */
  paramCount(options: { includeNonTrainable?: boolean } = {}): number {
    const s = this.network.stats();
    return options.includeNonTrainable ? s.trainable + s.nonTrainable : s.trainable;
  }

  /** Every layer with its output shape for an input of `inputShape` (default: the model's). */
  layers(inputShape: readonly number[] = this.spec.inputShape): LayerSummary[] {
    return this.network.describe(imageShape(inputShape, this.spec, 'layers'));
  }

  /** A Keras-like table: layer (type), output shape, parameters, inputs; totals at the end. */
  summary(inputShape: readonly number[] = this.spec.inputShape): string {
    return formatSummary(this.spec.name, this.network.describe(imageShape(inputShape, this.spec, 'summary')));
  }

  /** All parameters in a stable order, with copies of their values. */
  parameters(): Parameter[] {
    return this.network.parameterTable().map((p) => ({ ...p, values: this.network.getParameter(p.name) }));
  }

  /** Names, shapes and trainability, without copying values. */
  parameterInfo(): Omit<Parameter, 'values'>[] {
    return this.network.parameterTable();
  }

  getParameter(name: string): Float32Array {
    return this.network.getParameter(name);
  }

  setParameter(name: string, values: Float32Array | readonly number[]): void {
    this.network.setParameter(name, validate.float32(values, 'setParameter', 'values'));
  }

  /** The gradient left by the last trainStep / computeGradients. */
  getGradient(name: string): Float32Array {
    return this.network.getGradient(name);
  }

  /** Sets the optimizer, loss options and parameter groups (resets optimizer state). */
  compile(options: CompileOptions): this {
    const { config, labelSmoothing } = resolveCompileOptions(options, this.network.parameterTable());
    this.network.setOptimizer(config, labelSmoothing);
    this.#compiled = true;
    this.#lr = config.lr;
    // A shallow copy (RegExps and functions kept): later edits by the caller don't change what is saved.
    this.#compileOptions = {
      ...options,
      optimizer: { ...options.optimizer },
      ...(options.paramGroups && { paramGroups: options.paramGroups.map((g) => ({ ...g })) }),
    };
    return this;
  }

  /** The options of the last compile() (as given), or undefined before compile. */
  get compileOptions(): Readonly<CompileOptions> | undefined {
    return this.#compileOptions;
  }

  get learningRate(): number {
    return this.#lr;
  }

  /** Learning rate for the following steps (schedules call this each step or epoch). */
  setLearningRate(lr: number): void {
    if (!this.#compiled) throw new ResNetError('E_ARG', 'setLearningRate: compile the model first');
    this.network.setLearningRate(validate.number(lr, 'setLearningRate', 'lr', 0, MAX_RATE));
    this.#lr = lr;
  }

  /** Training mode: batch-norm uses and updates batch statistics in trainStep (the default). */
  train(): this {
    this.network.setTraining(true);
    this.#training = true;
    return this;
  }

  /** Evaluation mode: trainStep keeps batch-norm on its running statistics (frozen). predict always does. */
  eval(): this {
    this.network.setTraining(false);
    this.#training = false;
    return this;
  }

  get training(): boolean {
    return this.#training;
  }

  /**
   * Freezes the layers `pattern` names (see FreezePattern: a glob such as 'layer[1-3]', or a
   * RegExp tested against layer names) on top of those already frozen. Their parameters get no
   * gradient and no update (no weight decay; their optimizer state is kept for unfreeze), and a
   * frozen prefix of the network (every layer from the input up to the first trainable one)
   * costs no backward work at all. Frozen batch-norms keep their running statistics unless
   * `batchNormStatistics: 'update'`. E_ARG when the pattern names no layer.
   */
  freeze(pattern: FreezePattern, options?: FreezeOptions): this {
    this.#setFrozen(frozenAfterFreeze(this.#frozen, this.#layerNames(), pattern, options, 'freeze'));
    return this;
  }

  /** Unfreezes the layers `pattern` names, or every layer when no pattern is given. */
  unfreeze(pattern?: FreezePattern): this {
    this.#setFrozen(frozenAfterUnfreeze(this.#frozen, this.#layerNames(), pattern, 'unfreeze'));
    return this;
  }

  /** The frozen layers' names, in model order. */
  get frozen(): readonly string[] {
    return [...this.#frozen.keys()];
  }

  /** The trainable parameters of frozen layers (which get no gradient or update), in parameter order. */
  frozenParameters(): string[] {
    return this.network
      .parameterTable()
      .filter((p) => p.trainable && this.#frozen.has(p.layer))
      .map((p) => p.name);
  }

  #layerNames(): string[] {
    return this.spec.layers.map((l) => l.name);
  }

  #setFrozen(frozen: FrozenLayers): void {
    const batchNorms = new Set(this.spec.layers.filter((l) => l.type === 'batchNorm').map((l) => l.name));
    const [layers, running] = nativeFreezing(frozen, batchNorms);
    this.network.setFrozen(layers, running);
    this.#frozen = frozen;
  }

  /** Forward, backward and one optimizer update: one native call. Metrics are of the batch before the update. */
  async trainStep(images: Tensor, labels: Int32Array, options: { lr?: number; mix?: LabelMix } = {}): Promise<TrainStepMetrics> {
    validate.keys(options, 'trainStep', ['lr', 'mix']);
    if (!this.#compiled) throw new ResNetError('E_ARG', 'trainStep: compile the model with an optimizer first');
    const x = Tensor.check(images, 'trainStep', 'images');
    const y = int32Labels(labels, 'trainStep');
    const lr = options.lr === undefined ? undefined : validate.number(options.lr, 'trainStep', 'lr', 0, MAX_RATE);
    const mix = labelMix(options.mix, y.length, 'trainStep');
    const r = await this.#enqueue(() => {
      if (lr !== undefined) this.setLearningRate(lr);
      return mix ? this.network.trainStep(x.handle, y, mix.labels, mix.lambda) : this.network.trainStep(x.handle, y);
    });
    return { ...metrics(r, this.spec.classes), gradNorm: r.gradNorm, skipped: r.skipped, lossScale: r.lossScale };
  }

  /**
   * Loss and the gradient of every trainable parameter (frozen ones left out), without an update (training-mode
   * batch-norm statistics, and their running averages, as a trainStep would).
   */
  async computeGradients(
    images: Tensor,
    labels: Int32Array,
    options: { labelSmoothing?: number; mix?: LabelMix } = {},
  ): Promise<StepMetrics & { gradients: Map<string, Float32Array> }> {
    validate.keys(options, 'computeGradients', ['labelSmoothing', 'mix']);
    const x = Tensor.check(images, 'computeGradients', 'images');
    const y = int32Labels(labels, 'computeGradients');
    const smoothing =
      options.labelSmoothing === undefined ? 0 : validate.number(options.labelSmoothing, 'computeGradients', 'labelSmoothing', 0, 1, 'max');
    const mix = labelMix(options.mix, y.length, 'computeGradients');
    const r = await this.#enqueue(() =>
      mix ? this.network.computeGradients(x.handle, y, smoothing, mix.labels, mix.lambda) : this.network.computeGradients(x.handle, y, smoothing),
    );
    const gradients = new Map<string, Float32Array>();
    for (const p of this.network.parameterTable()) {
      if (p.trainable && !this.#frozen.has(p.layer)) gradients.set(p.name, this.network.getGradient(p.name));
    }
    return { ...metrics(r, this.spec.classes), gradients };
  }

  /** Logits [n, classes] (or probabilities with softmax: true), batch-norm in inference mode. */
  async predict(images: Tensor, options: { softmax?: boolean } = {}): Promise<Tensor> {
    validate.keys(options, 'predict', ['softmax']);
    const x = Tensor.check(images, 'predict', 'images');
    const softmax = options.softmax === undefined ? false : validate.boolean(options.softmax, 'predict', 'softmax');
    return new Tensor(await this.#enqueue(() => this.network.predict(x.handle, softmax)));
  }

  /**
   * Where predict's time goes, per step of the compiled inference plan. Runs predict once
   * untimed (it compiles the plan for this input shape and prepares the weights), then `runs`
   * (default 10) more, reading a steady clock natively around each plan step; nothing is timed
   * in an ordinary predict. Each step runs one layer with what the plan fused into it (a
   * convolution with its batch-norm, residual add and ReLU: op 'conv2d+batchNorm+add+relu',
   * named after the convolution). Returns every step's mean milliseconds and its share of
   * their sum, the mean wall time of a whole predict (totalMs, a little above the steps' sum),
   * and the last call's logits (exactly predict's; dispose them). On a GPU every step is
   * synchronised, so the steps run slower than in predict. E_ARG: runs not an integer in
   * [1, 100000] or an unknown option.
   */
  async profilePredict(images: Tensor, options: ProfilePredictOptions = {}): Promise<PredictProfile> {
    const runs = profileRuns(options);
    const x = Tensor.check(images, 'profilePredict', 'images');
    return predictProfile(await this.#enqueue(() => this.network.profilePredict(x.handle, runs)), runs);
  }

  /**
   * The top classes of image files (paths, or Buffers of their bytes; PNG, JPEG, WebP, GIF),
   * decoded with this model's preprocessing (see io.decodeImage): per image, `topK` (default 5)
   * `{ index, className, probability }`, most probable first — what the CLI's predict prints.
   */
  predictImages(sources: readonly ImageSource[], options: PredictImagesOptions = {}): Promise<ImagePrediction[][]> {
    return predictImages(this, sources, options);
  }

  /**
   * A new model with a fresh classifier of `classes` outputs in place of the last dense layer
   * (initialised from `seed`), every other parameter and batch-norm statistic copied from this
   * one, and this one's preprocessing; `classNames` are the new model's. This model is left as
   * it was (still usable; dispose it when done). The new model is not compiled and has no
   * frozen layers (call freeze on it after replaceHead).
   */
  replaceHead(options: ReplaceHeadOptions): Model {
    return replaceHead(this, options, (spec, init) => Model.fromSpec(spec, init));
  }

  /** Loss and accuracy in inference mode (no update). */
  async evaluate(images: Tensor, labels: Int32Array): Promise<StepMetrics> {
    const x = Tensor.check(images, 'evaluate', 'images');
    const y = int32Labels(labels, 'evaluate');
    return metrics(await this.#enqueue(() => this.network.evaluate(x.handle, y)), this.spec.classes);
  }

  /** Where the model lives: 'cpu' or 'cuda:N'. */
  get device(): string {
    return this.network.stats().device;
  }

  /** 'fp32', or the mixed-precision activation type ('fp16' / 'bf16'). */
  get precision(): Precision {
    return this.network.stats().precision;
  }

  /** The loss scale the next training step will use, and how many steps were skipped for overflow. */
  get lossScale(): { scale: number; skippedSteps: number } {
    const s = this.network.stats();
    return { scale: s.lossScale, skippedSteps: s.skippedSteps };
  }

  /** Compiled plans cached (one per input shape and mode) and the bytes their arenas hold. */
  stats(): { plans: number; arenaBytes: number } {
    const s = this.network.stats();
    return { plans: s.plans, arenaBytes: s.arenaBytes };
  }

  /**
   * Saves spec, parameters, optimizer state (when compiled) and options.training to a
   * safetensors checkpoint, atomically (temporary file, fsync, rename). The copy is taken
   * in call order with the model's steps, so it never mixes two steps.
   */
  async save(path: string, options: SaveModelOptions = {}): Promise<void> {
    if (typeof path !== 'string' || path.length === 0) throw new ResNetError('E_ARG', 'save: path must be a non-empty string');
    const optimizer = !(validate.isPlainObject(options) && options.optimizer === false);
    // The copy is taken here, in call order (undefined: disposed, which the writer reports after
    // checking the options, as saveModel does)...
    const state = await this.#enqueue(async () => (this.isDisposed ? undefined : this.exportState({ optimizer })));
    // ...and encoded and written by io's checkpoint writer (which knows the state's type, not Model).
    await saveModelState(path, state, options, 'save');
  }

  /**
   * Writes the model as an ONNX inference graph (onnxruntime, TensorRT, OpenVINO, …), atomically:
   * input 'input' (NHWC by default, as predict takes it), outputs 'logits' and 'probabilities';
   * batch-norms that follow a convolution are folded into it. See lib/io/onnx_export.ts.
   */
  async exportOnnx(path: string, options: OnnxExportOptions = {}): Promise<void> {
    if (typeof path !== 'string' || path.length === 0) throw new ResNetError('E_ARG', 'exportOnnx: path must be a non-empty string');
    const checked = checkOnnxOptions(options, 'exportOnnx');
    // The parameters are copied in call order, as save's are.
    const parameters = await this.#enqueue(async () =>
      this.isDisposed ? undefined : new Map(this.parameters().map((p) => [p.name, p.values] as const)),
    );
    if (parameters === undefined) throw new ResNetError('E_DISPOSED', 'exportOnnx: the model was disposed');
    const source = { spec: this.spec, parameters, preprocessing: this.#preprocessing, classNames: this.#classNames };
    await writeOnnx(path, source, checked, 'exportOnnx');
  }

  /**
   * @internal The optimizer's state slots per trainable parameter (0: plain SGD, 1: SGD with
   * momentum, 2: AdamW) and its step count. E_ARG before compile.
   */
  optimizerStateInfo(): { slots: number; steps: number } {
    return this.network.optimizerStateInfo();
  }

  /** @internal A copy of state slot `slot` of trainable parameter `name` (see optimizerStateInfo). */
  getOptimizerState(name: string, slot: number): Float32Array {
    return this.network.getOptimizerState(name, slot);
  }

  /** @internal Sets state slot `slot` of trainable parameter `name` (checked natively: E_ARG / E_SHAPE). */
  setOptimizerState(name: string, slot: number, values: Float32Array): void {
    this.network.setOptimizerState(name, slot, values);
  }

  /** @internal Sets the optimizer's step count (a non-negative integer; E_ARG otherwise or before compile). */
  setOptimizerSteps(steps: number): void {
    this.network.setOptimizerState(null, -1, steps);
  }

  /**
   * @internal Copies spec, mode, parameters and (unless `optimizer` is false, when compiled)
   * the optimizer's options, steps, learning rate and state, synchronously: call it between
   * steps (save does, through the model's queue) so that all of it belongs to one step.
   */
  exportState(options: { optimizer?: boolean } = {}): ModelState {
    const state: ModelState = { spec: this.spec, training: this.#training, parameters: this.parameters() };
    if (this.#preprocessing) state.preprocessing = this.#preprocessing;
    if (this.#classNames) state.classNames = this.#classNames;
    if (options.optimizer === false) return state;
    let info: { slots: number; steps: number };
    try {
      info = this.network.optimizerStateInfo();
    } catch {
      return state; // not compiled
    }
    const slots: Map<string, Float32Array>[] = [];
    for (let k = 0; k < info.slots; k++) {
      const slot = new Map<string, Float32Array>();
      for (const p of state.parameters) if (p.trainable) slot.set(p.name, this.network.getOptimizerState(p.name, k));
      slots.push(slot);
    }
    state.optimizer = { options: this.#compileOptions, steps: info.steps, learningRate: this.#lr, slots };
    return state;
  }

  /** Frees the native memory now (a step in flight finishes first). Later calls throw E_DISPOSED. Idempotent. */
  dispose(): void {
    this.network.dispose();
  }

  get isDisposed(): boolean {
    return this.network.isDisposed();
  }

  toJSON(): ModelSpec {
    return structuredClone(this.spec) as ModelSpec;
  }
}

/**
 * An image shape [height, width, channels] with the model's channel count (other sizes are the
 * layers' to judge), as predict requires of its images: E_SHAPE otherwise.
 */
function imageShape(v: unknown, spec: Readonly<ModelSpec>, op: string): number[] {
  const dims = validate.shape(v, op);
  const channels = spec.inputShape[spec.inputShape.length - 1];
  if (dims.length !== 3 || dims[2] !== channels) {
    throw new ResNetError('E_SHAPE', `${op}: input shape must be [height, width, ${channels}] for model '${spec.name}', got [${dims.join(', ')}]`);
  }
  return dims;
}

function int32Labels(v: unknown, op: string): Int32Array {
  if (!(v instanceof Int32Array)) {
    throw new ResNetError(
      'E_DTYPE',
      `${op}: labels must be an Int32Array, got ${v === null ? 'null' : ((v as object)?.constructor?.name ?? typeof v)}`,
    );
  }
  return v;
}
