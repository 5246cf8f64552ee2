// Checkpoints: a model's parameters, its optimizer state and the trainer's progress in one
// safetensors file, written atomically, and read back with every tensor and every piece of
// metadata checked before anything is trusted.
//
// Tensors: every parameter under its own name (layouts as in lib/model/spec.ts: conv HWIO,
// dense [in, out], batch-norm running statistics included), F32; with the optimizer, its state
// as `optimizer.${slot}.${parameter}` for each trainable parameter, slot 'momentum_buffer'
// (SGD with momentum) or 'exp_avg' and 'exp_avg_sq' (AdamW), named as in PyTorch.
//
// Metadata (all strings, as the format requires):
//   format          'resnet-native/checkpoint'
//   version         '1'
//   spec            JSON of the ModelSpec
//   mode            'train' | 'eval' (Model.training)
//   optimizer       JSON of the compile options (RegExp matches as { regexp, flags }, name lists as { names }; compile_options_json.ts)
//   optimizerSteps  decimal step count of the optimizer (AdamW's bias correction, SGD's first step)
//   learningRate    the learning rate in force (a schedule may have moved it from optimizer.lr)
//   training        JSON of the trainer's state ({ epoch, step, rngState, history?, … }), when given
//   preprocessing   JSON of Model.preprocessing ({ imageSize, resizeTo?, channelOrder, mean, std }), when set
//   classNames      JSON array of Model.classNames, when set
//
// preprocessing and classNames are optional additions to version 1: older files without them
// still load (a trainer's state with `normalize` / `imageShape` / `classNames`, as the
// checkpoint callback and the CLI stored them before, stands in for them), and older readers
// ignore them.
//
// What goes in comes from Model.exportState and goes back through Model's own setters: nothing
// here touches the native handle. Model.save reaches this module by dynamic import (no cycle).
import { ResNetError } from '../errors.js';
import { memoryBudgetOption, Model, type ModelInitOptions, type Parameter } from '../model/model.js';
import { minimumParameterCount } from '../model/parameter_bound.js';
import type { ModelSpec } from '../model/spec.js';
import { type CompileOptions, resolveCompileOptions } from '../train/optimizers.js';
import * as validate from '../validate.js';
import { isPlainObject, type Precision, sameShape } from '../validate.js';
import type { SaveModelOptions, TrainingState } from './checkpoint_types.js';
import { deserializeCompileOptions } from './compile_options_json.js';
import { jsonDepth, MAX_JSON_DEPTH } from './json_text.js';
import { storedDescription } from './model_description.js';
import {
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSION,
  type CheckpointSnapshot,
  checkSaveOptions,
  checkTrainingState,
  encodeState,
  OPTIMIZER_PREFIX,
  slotNames,
  writeCheckpoint,
} from './checkpoint_writer.js';
import { SafetensorsReader } from './safetensors.js';
import { describeFile, wrongFormatErrorFor } from './file_kind.js';

export type { SaveModelOptions, TrainingState } from './checkpoint_types.js';
export { deserializeCompileOptions, serializeCompileOptions } from './compile_options_json.js';
/** @internal (tests import it from here) */
export { minimumParameterCount } from '../model/parameter_bound.js';
export { CHECKPOINT_FORMAT, CHECKPOINT_VERSION, type CheckpointSnapshot, saveModelState, writeCheckpoint } from './checkpoint_writer.js';

export interface LoadModelOptions {
  /** Compile the model with the stored optimizer and restore its state (when the file has one). Default true. */
  optimizer?: boolean;
  /** Where the loaded model lives: 'cpu' (default), 'cuda', 'cuda:N' (see Model.fromSpec). */
  device?: string;
  /** Let fp32 convolutions on the GPU use TF32 tensor cores. Default false. */
  allowTf32?: boolean;
  /** Arithmetic on the GPU: 'fp32' (default), 'fp16' or 'bf16' mixed precision (see ModelInitOptions). */
  precision?: Precision;
  /**
   * The most bytes one of the model's compiled plans may take (see ModelInitOptions). Without
   * it a file whose spec asks for absurd activations (a zeroPad of thousands) is refused.
   */
  memoryBudget?: number;
}

export interface Checkpoint {
  model: Model;
  /** The `training` given to saveModel, if any. */
  training: (TrainingState & Record<string, unknown>) | undefined;
  /** Whether the model came back compiled with its optimizer state. */
  optimizerRestored: boolean;
  /** The file's metadata, as stored. */
  metadata: Record<string, string>;
}

// ---------------------------------------------------------------------------------------------
// Saving (the encoding itself is checkpoint_writer.ts's)

/**
 * Copies everything a checkpoint holds, synchronously: call it between steps (Model.save does,
 * through the model's queue) so that parameters and optimizer state belong to the same step.
 */
export function snapshotModel(model: Model, options: SaveModelOptions = {}, op = 'saveModel'): CheckpointSnapshot {
  if (!(model instanceof Model)) throw new ResNetError('E_ARG', `${op}: model must be a Model`);
  const saved = checkSaveOptions(options, op);
  if (model.isDisposed) throw new ResNetError('E_DISPOSED', `${op}: the model was disposed`);
  return encodeState(model.exportState({ optimizer: saved.withOptimizer }), saved, op);
}

/**
 * Saves the model's spec and parameters and, when it is compiled and `optimizer` is not false,
 * its optimizer settings and state, plus the trainer's `training` state, to a safetensors file,
 * atomically (an existing file is replaced only by a complete new one). E_IO naming the path.
 */
export async function saveModel(model: Model, path: string, options: SaveModelOptions = {}): Promise<void> {
  if (typeof path !== 'string' || path.length === 0) throw new ResNetError('E_ARG', 'saveModel: path must be a non-empty string');
  await writeCheckpoint(path, snapshotModel(model, options));
}

// ---------------------------------------------------------------------------------------------
// Loading

function fmt(path: string, what: string): ResNetError {
  return new ResNetError('E_FORMAT', `checkpoint '${path}': ${what}`);
}

/** Parses and builds the stored spec; any failure is E_FORMAT. */
function buildModel(path: string, specJson: string | undefined, storedFloats: number, placement: ModelInitOptions): Model {
  if (specJson === undefined) throw fmt(path, "metadata has no 'spec'");
  let spec: unknown;
  try {
    spec = JSON.parse(specJson);
  } catch (err) {
    throw fmt(path, `metadata 'spec' is not valid JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(spec)) throw fmt(path, "metadata 'spec' must be a JSON object (a ModelSpec)");
  if (spec.format !== 'resnet-native/model') throw fmt(path, `spec format must be 'resnet-native/model', got ${JSON.stringify(spec.format)}`);
  if (spec.version !== 1) throw fmt(path, `spec version ${JSON.stringify(spec.version)} is not supported (expected 1)`);
  if (!Array.isArray(spec.layers)) throw fmt(path, 'spec layers must be an array');
  // Well past what the file holds: refuse before allocating (a near miss is named exactly below).
  const needed = minimumParameterCount(spec as unknown as ModelSpec);
  if (needed > 2 * storedFloats + 1_000_000) {
    throw fmt(path, `spec describes at least ${needed} parameter values but the file stores ${storedFloats}`);
  }
  try {
    return Model.fromSpec(spec as unknown as ModelSpec, { seed: 0, ...placement });
  } catch (err) {
    // The file is fine when the device is what failed, or the memory its spec asks for was
    // refused (E_ALLOC names the layer and the bytes): keep that error's own code.
    if (err instanceof ResNetError && (err.code === 'E_DEVICE' || err.code === 'E_ALLOC')) throw err;
    throw fmt(path, `spec does not build a model: ${(err as Error)?.message ?? String(err)}`);
  }
}

function checkValues(path: string, name: string, values: Float32Array, nonNegative: boolean): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) throw fmt(path, `tensor '${name}' has a non-finite value (${v}) at index ${i}`);
    if (nonNegative && v < 0) throw fmt(path, `tensor '${name}' has a negative value (${v}) at index ${i}, where only non-negative ones are valid`);
  }
}

async function readF32(reader: SafetensorsReader, path: string, name: string, shape: readonly number[], nonNegative: boolean): Promise<Float32Array> {
  const e = reader.header.tensors.get(name);
  if (!e) throw fmt(path, `tensor '${name}' is missing`);
  if (e.dtype !== 'F32') throw fmt(path, `tensor '${name}' is ${e.dtype}; checkpoints store F32`);
  if (!sameShape(e.shape, shape)) throw fmt(path, `tensor '${name}' has shape [${e.shape.join(', ')}]; the model's is [${shape.join(', ')}]`);
  const values = await reader.readFloat32(name);
  checkValues(path, name, values, nonNegative);
  return values;
}

function parseCount(path: string, key: string, s: string | undefined): number {
  if (s === undefined || !/^(0|[1-9][0-9]{0,15})$/.test(s) || !Number.isSafeInteger(Number(s))) {
    throw fmt(path, `metadata '${key}' must be a non-negative integer, got ${JSON.stringify(s)}`);
  }
  return Number(s);
}

/** LoadModelOptions, checked: whether to restore the optimizer, and where the model goes. */
function checkLoadOptions(options: LoadModelOptions, op: string): { restoreOptimizer: boolean; placement: ModelInitOptions } {
  validate.keys(options, op, ['optimizer', 'device', 'allowTf32', 'precision', 'memoryBudget']);
  const restoreOptimizer = options.optimizer === undefined ? true : validate.boolean(options.optimizer, op, 'optimizer');
  const placement: ModelInitOptions = {};
  if (options.device !== undefined) placement.device = validate.string(options.device, op, 'device');
  if (options.allowTf32 !== undefined) placement.allowTf32 = validate.boolean(options.allowTf32, op, 'allowTf32');
  if (options.precision !== undefined) placement.precision = options.precision; // Model.fromSpec validates it
  if (options.memoryBudget !== undefined) placement.memoryBudget = memoryBudgetOption(options.memoryBudget, op);
  return { restoreOptimizer, placement };
}

/** What the metadata says beyond the spec, every piece checked (E_FORMAT). */
interface StoredMetadata {
  training: (TrainingState & Record<string, unknown>) | undefined;
  /** With steps and learningRate, when the file has an optimizer. */
  compileOptions: CompileOptions | undefined;
  steps: number;
  learningRate: number | undefined;
}

function readMetadata(path: string, meta: Record<string, string>): StoredMetadata {
  if (meta.format !== CHECKPOINT_FORMAT) {
    throw fmt(
      path,
      `metadata format is ${JSON.stringify(meta.format)}, not '${CHECKPOINT_FORMAT}' (to load plain weights into a model use loadWeightsInto)`,
    );
  }
  if (meta.version !== CHECKPOINT_VERSION)
    throw fmt(path, `version ${JSON.stringify(meta.version)} is not supported (this library reads version ${CHECKPOINT_VERSION})`);
  // The JSON documents end up in the model and the trainer, which walk them recursively.
  for (const key of ['spec', 'optimizer', 'training', 'preprocessing', 'classNames']) {
    const depth = meta[key] === undefined ? 0 : jsonDepth(meta[key]);
    if (depth > MAX_JSON_DEPTH)
      throw fmt(path, `metadata '${key}' nests arrays and objects ${depth} levels deep, above the limit of ${MAX_JSON_DEPTH}`);
  }
  if (meta.mode !== undefined && meta.mode !== 'train' && meta.mode !== 'eval')
    throw fmt(path, `metadata 'mode' must be 'train' or 'eval', got ${JSON.stringify(meta.mode)}`);

  let training: (TrainingState & Record<string, unknown>) | undefined;
  if (meta.training !== undefined) {
    let t: unknown;
    try {
      t = JSON.parse(meta.training);
    } catch (err) {
      throw fmt(path, `metadata 'training' is not valid JSON (${(err as Error).message})`);
    }
    training = checkTrainingState(t, (what) => fmt(path, `metadata 'training' ${what}`));
  }

  let compileOptions: CompileOptions | undefined;
  let steps = 0;
  let learningRate: number | undefined;
  if (meta.optimizer !== undefined) {
    compileOptions = deserializeCompileOptions(meta.optimizer, path);
    steps = parseCount(path, 'optimizerSteps', meta.optimizerSteps);
    if (meta.learningRate !== undefined) {
      learningRate = Number(meta.learningRate);
      if (meta.learningRate.trim() === '' || !Number.isFinite(learningRate) || learningRate < 0) {
        throw fmt(path, `metadata 'learningRate' must be a non-negative number, got ${JSON.stringify(meta.learningRate)}`);
      }
    }
  } else if (meta.optimizerSteps !== undefined || meta.learningRate !== undefined) {
    throw fmt(path, "metadata has optimizerSteps or learningRate but no 'optimizer'");
  }
  return { training, compileOptions, steps, learningRate };
}

/** Exactly the expected tensors: every parameter, and the optimizer's slots for every trainable one. */
function checkTensorNames(path: string, reader: SafetensorsReader, params: readonly Omit<Parameter, 'values'>[], slots: readonly string[]): void {
  const expected = new Set(params.map((p) => p.name));
  for (const slot of slots) for (const p of params) if (p.trainable) expected.add(`${OPTIMIZER_PREFIX}${slot}.${p.name}`);
  for (const name of reader.header.tensors.keys()) {
    if (!expected.has(name)) {
      const why = name.startsWith(OPTIMIZER_PREFIX) ? 'the stored optimizer keeps no such state' : 'the model has no such parameter';
      throw fmt(path, `unexpected tensor '${name}' (${why})`);
    }
  }
  for (const name of expected) if (!reader.has(name)) throw fmt(path, `tensor '${name}' is missing`);
}

/** Reads and checks every parameter, then sets them all. */
async function restoreParameters(path: string, reader: SafetensorsReader, model: Model, params: readonly Omit<Parameter, 'values'>[]): Promise<void> {
  const values = new Map<string, Float32Array>();
  for (const p of params) values.set(p.name, await readF32(reader, path, p.name, p.shape, p.name.endsWith('.running_var')));
  for (const [name, v] of values) {
    try {
      model.setParameter(name, v);
    } catch (err) {
      throw fmt(path, `tensor '${name}': ${(err as Error)?.message ?? String(err)}`);
    }
  }
}

/** Compiles the model with the stored options, then sets its state slots, step count and learning rate. */
async function restoreOptimizer(
  path: string,
  reader: SafetensorsReader,
  model: Model,
  params: readonly Omit<Parameter, 'values'>[],
  slots: readonly string[],
  stored: StoredMetadata & { compileOptions: CompileOptions },
): Promise<void> {
  try {
    model.compile(stored.compileOptions);
  } catch (err) {
    throw fmt(path, `metadata 'optimizer' does not compile: ${(err as Error)?.message ?? String(err)}`);
  }
  const info = model.optimizerStateInfo();
  if (info.slots !== slots.length) throw fmt(path, `the stored optimizer keeps ${info.slots} state slots, the file implies ${slots.length}`);
  for (let index = 0; index < slots.length; index++) {
    for (const p of params) {
      if (!p.trainable) continue;
      const name = `${OPTIMIZER_PREFIX}${slots[index]}.${p.name}`;
      const v = await readF32(reader, path, name, p.shape, slots[index] === 'exp_avg_sq');
      try {
        model.setOptimizerState(p.name, index, v);
      } catch (err) {
        throw fmt(path, `tensor '${name}': ${(err as Error)?.message ?? String(err)}`);
      }
    }
  }
  try {
    model.setOptimizerSteps(stored.steps);
    if (stored.learningRate !== undefined) model.setLearningRate(stored.learningRate);
  } catch (err) {
    throw fmt(path, `optimizer state: ${(err as Error)?.message ?? String(err)}`);
  }
  // Model.compileOptions now holds the stored options.
}

/**
 * Opens a checkpoint's safetensors; where that fails on a file of another format (a Keras
 * model, a PyTorch file, a SavedModel folder, …), the E_FORMAT says what the file is and what
 * to call instead (file_kind.ts).
 */
async function openSafetensors(path: string, op: string, expected: string): Promise<SafetensorsReader> {
  try {
    return await SafetensorsReader.open(path);
  } catch (err) {
    if (err instanceof ResNetError && (err.code === 'E_FORMAT' || err.code === 'E_IO')) {
      const kind = await describeFile(path);
      if (!['unknown', 'empty', 'directory', 'safetensors', 'checkpoint'].includes(kind.kind)) {
        throw wrongFormatErrorFor(op, path, kind, expected);
      }
    }
    throw err;
  }
}

/**
 * Reads a checkpoint written by saveModel: checks the file, the metadata and every tensor,
 * builds the model from the stored spec, sets its parameters and — when the file has an
 * optimizer and `optimizer` is not false — compiles it with the stored options and restores
 * the optimizer's state, step count and learning rate. Returns the trainer's state as saved.
 * E_FORMAT for anything malformed or inconsistent, E_IO when the file cannot be read.
 */
export async function loadCheckpoint(path: string, options: LoadModelOptions = {}): Promise<Checkpoint> {
  const op = 'loadCheckpoint';
  if (typeof path !== 'string' || path.length === 0) throw new ResNetError('E_ARG', `${op}: path must be a non-empty string`);
  const { restoreOptimizer: withOptimizer, placement } = checkLoadOptions(options, op);
  const reader = await openSafetensors(path, op, 'a resnet-native checkpoint (safetensors written by saveModel)');
  let model: Model | undefined;
  try {
    const meta = reader.metadata;
    const stored = readMetadata(path, meta);

    let storedFloats = 0;
    for (const e of reader.header.tensors.values()) if (!e.name.startsWith(OPTIMIZER_PREFIX)) storedFloats += e.numel;
    model = buildModel(path, meta.spec, storedFloats, placement);

    const params = model.parameterInfo();
    const { compileOptions } = stored;
    if (compileOptions) {
      try {
        resolveCompileOptions(compileOptions, params); // checks them (compile does the same)
      } catch (err) {
        throw fmt(path, `metadata 'optimizer' does not compile: ${(err as Error)?.message ?? String(err)}`);
      }
    }
    const slots = compileOptions ? slotNames(compileOptions.optimizer) : [];
    checkTensorNames(path, reader, params, slots);
    await restoreParameters(path, reader, model, params);
    if (meta.mode === 'eval') model.eval();
    const described = storedDescription(path, meta, stored.training, model.inputShape, model.classes);
    if (described.preprocessing) model.preprocessing = described.preprocessing;
    if (described.classNames) model.classNames = described.classNames;

    let optimizerRestored = false;
    if (compileOptions && withOptimizer) {
      await restoreOptimizer(path, reader, model, params, slots, { ...stored, compileOptions });
      optimizerRestored = true;
    }
    const result: Checkpoint = { model, training: stored.training, optimizerRestored, metadata: { ...meta } };
    model = undefined;
    return result;
  } catch (err) {
    model?.dispose();
    if (err instanceof ResNetError) throw err;
    throw fmt(path, (err as Error)?.message ?? String(err));
  } finally {
    await reader.close();
  }
}

/** loadCheckpoint(path).model: the model, compiled and with its optimizer state when the file has one. */
export async function loadModel(path: string, options: LoadModelOptions = {}): Promise<Model> {
  return (await loadCheckpoint(path, options)).model;
}

export interface LoadWeightsOptions {
  /**
   * Every parameter of the model must be in the file and every tensor of the file must be a
   * parameter (a checkpoint's `optimizer.*` tensors aside). Default true; false loads those
   * that are there and reports the rest.
   */
  strict?: boolean;
}

/**
 * Sets the model's parameters from a safetensors file (a checkpoint, or any file whose tensor
 * names and shapes match the model's: F32, or F16/BF16/F64 converted). All tensors are read and
 * checked (shape: E_SHAPE; missing, unexpected, non-finite or malformed: E_FORMAT) before any
 * parameter is set. The optimizer state, if any, is left alone.
 */
export async function loadWeightsInto(
  model: Model,
  path: string,
  options: LoadWeightsOptions = {},
): Promise<{ loaded: string[]; missing: string[]; unexpected: string[] }> {
  const op = 'loadWeightsInto';
  if (!(model instanceof Model)) throw new ResNetError('E_ARG', `${op}: model must be a Model`);
  if (typeof path !== 'string' || path.length === 0) throw new ResNetError('E_ARG', `${op}: path must be a non-empty string`);
  validate.keys(options, op, ['strict']);
  const strict = options.strict === undefined ? true : validate.boolean(options.strict, op, 'strict');
  if (model.isDisposed) throw new ResNetError('E_DISPOSED', `${op}: the model was disposed`);
  const params = model.parameterInfo();
  const reader = await openSafetensors(path, op, 'a safetensors weights file');
  try {
    const isCheckpoint = reader.metadata.format === CHECKPOINT_FORMAT;
    const known = new Set(params.map((p) => p.name));
    const unexpected = reader.names().filter((n) => !known.has(n) && !(isCheckpoint && n.startsWith(OPTIMIZER_PREFIX)));
    const missing = params.filter((p) => !reader.has(p.name)).map((p) => p.name);
    if (strict && missing.length > 0) {
      throw fmt(
        path,
        `has no tensor for parameter${missing.length > 1 ? 's' : ''} ${missing
          .slice(0, 5)
          .map((n) => `'${n}'`)
          .join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}`,
      );
    }
    if (strict && unexpected.length > 0) {
      throw fmt(
        path,
        `has tensor${unexpected.length > 1 ? 's' : ''} ${unexpected
          .slice(0, 5)
          .map((n) => `'${n}'`)
          .join(
            ', ',
          )}${unexpected.length > 5 ? ` and ${unexpected.length - 5} more` : ''} that the model has no parameter for (strict: false to ignore)`,
      );
    }
    const values = new Map<string, Float32Array>();
    for (const p of params) {
      const e = reader.header.tensors.get(p.name);
      if (!e) continue;
      if (!sameShape(e.shape, p.shape)) {
        throw new ResNetError(
          'E_SHAPE',
          `${op}: '${path}': tensor '${p.name}' has shape [${e.shape.join(', ')}]; the model's parameter is [${p.shape.join(', ')}]`,
        );
      }
      if (e.dtype !== 'F32' && e.dtype !== 'F16' && e.dtype !== 'BF16' && e.dtype !== 'F64') {
        throw fmt(path, `tensor '${p.name}' is ${e.dtype}; parameters must be F32, F16, BF16 or F64`);
      }
      const v = await reader.readFloat32(p.name);
      checkValues(path, p.name, v, p.name.endsWith('.running_var'));
      values.set(p.name, v);
    }
    for (const [name, v] of values) model.setParameter(name, v);
    return { loaded: [...values.keys()], missing, unexpected };
  } finally {
    await reader.close();
  }
}
