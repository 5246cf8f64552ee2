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
//   optimizer       JSON of the compile options (RegExp matches as { regexp, flags }, name lists as { names })
//   optimizerSteps  decimal step count of the optimizer (AdamW's bias correction, SGD's first step)
//   learningRate    the learning rate in force (a schedule may have moved it from optimizer.lr)
//   training        JSON of the trainer's state ({ epoch, step, rngState, history?, … }), when given
import { ResNetError } from '../errors.js';
import { memoryBudgetOption, Model, type ModelInitOptions } from '../model/model.js';
import type { LayerSpec, ModelSpec } from '../model/spec.js';
import { type CompileOptions, type ParamGroup, resolveCompileOptions } from '../train/optimizers.js';
import { SafePattern } from '../train/safe_pattern.js';
import * as validate from '../validate.js';
import { jsonDepth, MAX_JSON_DEPTH } from './json_text.js';
import { SafetensorsReader, type SafetensorsTensorInput, writeSafetensors } from './safetensors.js';

export const CHECKPOINT_FORMAT = 'resnet-native/checkpoint';
export const CHECKPOINT_VERSION = '1';
const OPTIMIZER_PREFIX = 'optimizer.';

/**
 * What a trainer needs to resume: its counters, its random state and anything else it keeps,
 * as long as JSON can hold it (extra fields are stored and returned too).
 */
export interface TrainingState {
  /** Epochs completed. */
  epoch: number;
  /** Optimizer steps taken. */
  step: number;
  /** The trainer's random generator state (shuffling, augmentation), in any JSON form. */
  rngState?: unknown;
  history?: unknown;
}

export interface SaveModelOptions {
  /** Save the optimizer's state and settings too (when the model is compiled). Default true. */
  optimizer?: boolean;
  /** The trainer's state, stored as JSON for loadCheckpoint. */
  training?: TrainingState;
}

export interface LoadModelOptions {
  /** Compile the model with the stored optimizer and restore its state (when the file has one). Default true. */
  optimizer?: boolean;
  /** Where the loaded model lives: 'cpu' (default), 'cuda', 'cuda:N' (see Model.fromSpec). */
  device?: string;
  /** Let fp32 convolutions on the GPU use TF32 tensor cores. Default false. */
  allowTf32?: boolean;
  /** Arithmetic on the GPU: 'fp32' (default), 'fp16' or 'bf16' mixed precision (see ModelInitOptions). */
  precision?: 'fp32' | 'fp16' | 'bf16';
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

/** The tensors and metadata of a checkpoint, captured at one instant (see snapshotModel). */
export interface CheckpointSnapshot {
  tensors: SafetensorsTensorInput[];
  metadata: Record<string, string>;
}

/** A stored parameter group: what `match` was, in a form JSON can hold. */
type StoredMatch = { regexp: string; flags: string } | { names: string[] };

// Limits on the parameter groups of a file, so that resolving them stays fast whatever the file
// holds: each group is tested against every parameter name, and the patterns' instructions in
// all bound the matcher's steps per character of a name (see SafePattern).
const MAX_STORED_GROUPS = 256;
const MAX_STORED_PATTERN_SIZE = 4096;
const WHAT_TO_DO = 'use a simpler RegExp or a list of parameter names, or save with { optimizer: false } (weights only)';

/**
 * A RegExp match as stored. Only patterns the linear-time matcher takes (SafePattern), within the
 * limits above, are written, since only those are read back. `used` counts their instructions.
 */
function storedPattern(source: string, flags: string, i: number, op: string, used: { size: number }): StoredMatch {
  const pattern = SafePattern.tryCompile(source, flags);
  if (!pattern) {
    throw new ResNetError('E_ARG', `${op}: paramGroups[${i}].match ${SafePattern.whyRefused(source, flags)}; a checkpoint stores only such patterns: ${WHAT_TO_DO}`);
  }
  used.size += pattern.size;
  if (used.size > MAX_STORED_PATTERN_SIZE) {
    throw new ResNetError('E_ARG', `${op}: the patterns up to paramGroups[${i}] compile to ${used.size} instructions, above the ${MAX_STORED_PATTERN_SIZE} a checkpoint may hold: ${WHAT_TO_DO}`);
  }
  return { regexp: source, flags };
}

function slotNames(optimizer: { type?: unknown; momentum?: unknown }): string[] {
  if (optimizer.type === 'adamw') return ['exp_avg', 'exp_avg_sq'];
  if (optimizer.type === 'sgd' && typeof optimizer.momentum === 'number' && optimizer.momentum !== 0) return ['momentum_buffer'];
  return [];
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---------------------------------------------------------------------------------------------
// Saving

/**
 * Compile options → JSON. A RegExp match is stored as { regexp, flags }, a list of names as
 * { names } (either form is also accepted as given); a function cannot be stored: E_ARG naming the group.
 */
export function serializeCompileOptions(options: CompileOptions, op = 'saveModel'): string {
  if (!isPlainObject(options)) throw new ResNetError('E_ARG', `${op}: compile options must be an object`);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) {
    if (v === undefined) continue;
    if (k === 'paramGroups') {
      if (!Array.isArray(v)) throw new ResNetError('E_ARG', `${op}: paramGroups must be an array`);
      if (v.length > MAX_STORED_GROUPS) throw new ResNetError('E_ARG', `${op}: ${v.length} paramGroups are more than the ${MAX_STORED_GROUPS} a checkpoint may hold`);
      const used = { size: 0 };
      out[k] = (v as readonly ParamGroup[]).map((g, i) => {
        const group: Record<string, unknown> = {};
        for (const [gk, gv] of Object.entries(g)) if (gv !== undefined && gk !== 'match') group[gk] = gv;
        const m = g.match as unknown;
        let match: StoredMatch;
        if (m instanceof RegExp) match = storedPattern(m.source, m.flags, i, op, used);
        else if (Array.isArray(m) && m.every((s) => typeof s === 'string')) match = { names: [...(m as string[])] };
        else if (isPlainObject(m) && typeof m.regexp === 'string' && typeof m.flags === 'string') match = storedPattern(m.regexp, m.flags, i, op, used);
        else if (isPlainObject(m) && Array.isArray(m.names) && m.names.every((s) => typeof s === 'string')) match = { names: [...(m.names as string[])] };
        else if (typeof m === 'function') {
          throw new ResNetError(
            'E_ARG',
            `${op}: paramGroups[${i}].match is a function, which a checkpoint cannot store; ` +
              'use a RegExp or a list of parameter names, or save with { optimizer: false } (weights only)',
          );
        } else throw new ResNetError('E_ARG', `${op}: paramGroups[${i}].match must be a RegExp, a list of names or a function`);
        return { match, ...group };
      });
    } else if (k === 'optimizer') {
      if (!isPlainObject(v)) throw new ResNetError('E_ARG', `${op}: compile options have no optimizer object`);
      out[k] = { ...v };
    } else {
      out[k] = v;
    }
  }
  // compile accepted these, so they are numbers, booleans and strings: JSON holds them exactly.
  return JSON.stringify(out);
}

/**
 * JSON from serializeCompileOptions → compile options (RegExps rebuilt, each checked to be one
 * the optimizer matches in linear time, see SafePattern). E_FORMAT when malformed.
 */
export function deserializeCompileOptions(json: string, source: string): CompileOptions {
  const bad = (what: string) => new ResNetError('E_FORMAT', `checkpoint '${source}': metadata 'optimizer' ${what}`);
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (err) {
    throw bad(`is not valid JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(v) || !isPlainObject(v.optimizer)) throw bad('must be an object with an optimizer object');
  const out: Record<string, unknown> = { ...v, optimizer: { ...v.optimizer } };
  if (v.paramGroups !== undefined) {
    if (!Array.isArray(v.paramGroups)) throw bad('has paramGroups that are not an array');
    if (v.paramGroups.length > MAX_STORED_GROUPS) throw bad(`has ${v.paramGroups.length} paramGroups, above the limit of ${MAX_STORED_GROUPS}`);
    let used = 0;
    out.paramGroups = v.paramGroups.map((g: unknown, i: number) => {
      if (!isPlainObject(g) || !isPlainObject(g.match)) throw bad(`has a malformed paramGroups[${i}]`);
      const m = g.match;
      let match: ParamGroup['match'];
      if (typeof m.regexp === 'string' && typeof m.flags === 'string' && Object.keys(m).length === 2) {
        const pattern = SafePattern.tryCompile(m.regexp, m.flags);
        if (!pattern) throw bad(`paramGroups[${i}].match: ${SafePattern.whyRefused(m.regexp, m.flags)}`);
        used += pattern.size;
        if (used > MAX_STORED_PATTERN_SIZE) throw bad(`has patterns that compile to ${used} instructions up to paramGroups[${i}], above the limit of ${MAX_STORED_PATTERN_SIZE}`);
        match = new RegExp(m.regexp, m.flags); // the optimizer matches it with SafePattern, never as a RegExp
      } else if (Array.isArray(m.names) && m.names.every((s) => typeof s === 'string') && Object.keys(m).length === 1) {
        match = m.names as string[];
      } else {
        throw bad(`has a malformed paramGroups[${i}].match`);
      }
      return { ...g, match };
    });
  }
  return out as unknown as CompileOptions;
}

function checkTrainingState(v: unknown, fail: (what: string) => ResNetError): TrainingState & Record<string, unknown> {
  if (!isPlainObject(v)) throw fail('must be an object { epoch, step, rngState, … }');
  if (typeof v.epoch !== 'number' || !Number.isSafeInteger(v.epoch) || v.epoch < 0) throw fail('epoch must be a non-negative integer');
  if (typeof v.step !== 'number' || !Number.isSafeInteger(v.step) || v.step < 0) throw fail('step must be a non-negative integer');
  return v as TrainingState & Record<string, unknown>;
}

/** The model's optimizer { slots, steps }, or undefined when it has not been compiled. */
function optimizerInfo(model: Model): { slots: number; steps: number } | undefined {
  if (model.isDisposed) return undefined;
  try {
    return model.network.optimizerStateInfo();
  } catch {
    return undefined;
  }
}

/**
 * Copies everything a checkpoint holds, synchronously: call it between steps (Model.save does,
 * through the model's queue) so that parameters and optimizer state belong to the same step.
 */
export function snapshotModel(model: Model, options: SaveModelOptions = {}, op = 'saveModel'): CheckpointSnapshot {
  if (!(model instanceof Model)) throw new ResNetError('E_ARG', `${op}: model must be a Model`);
  validate.keys(options, op, ['optimizer', 'training']);
  const withOptimizer = options.optimizer === undefined ? true : validate.boolean(options.optimizer, op, 'optimizer');
  let training: string | undefined;
  if (options.training !== undefined) {
    checkTrainingState(options.training, (what) => new ResNetError('E_ARG', `${op}: training ${what}`));
    try {
      training = JSON.stringify(options.training);
    } catch (err) {
      throw new ResNetError('E_ARG', `${op}: training is not JSON-serialisable (${(err as Error).message})`);
    }
  }
  if (model.isDisposed) throw new ResNetError('E_DISPOSED', `${op}: the model was disposed`);

  const metadata: Record<string, string> = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    spec: JSON.stringify(model.spec),
    mode: model.training ? 'train' : 'eval',
  };
  if (training !== undefined) metadata.training = training;

  const info = model.parameterInfo();
  const tensors: SafetensorsTensorInput[] = info.map((p) => ({ name: p.name, shape: [...p.shape], dtype: 'F32', data: model.getParameter(p.name) }));

  const state = withOptimizer ? optimizerInfo(model) : undefined;
  if (state) {
    const compileOptions = model.compileOptions as CompileOptions | undefined;
    if (compileOptions === undefined) {
      throw new ResNetError('E_ARG', `${op}: the model is compiled but its compile options are not available; save with { optimizer: false }`);
    }
    metadata.optimizer = serializeCompileOptions(compileOptions, op);
    metadata.optimizerSteps = String(state.steps);
    metadata.learningRate = String(model.learningRate);
    const slots = slotNames(compileOptions.optimizer);
    if (slots.length !== state.slots) {
      throw new ResNetError('E_INTERNAL', `${op}: the optimizer keeps ${state.slots} state slots, its options imply ${slots.length}`);
    }
    slots.forEach((slot, index) => {
      for (const p of info) {
        if (!p.trainable) continue;
        tensors.push({ name: `${OPTIMIZER_PREFIX}${slot}.${p.name}`, shape: [...p.shape], dtype: 'F32', data: model.network.getOptimizerState(p.name, index) });
      }
    });
  }
  return { tensors, metadata };
}

/** Writes a snapshot atomically (see writeSafetensors). */
export async function writeCheckpoint(path: string, snapshot: CheckpointSnapshot, op = 'saveModel'): Promise<void> {
  await writeSafetensors(path, snapshot.tensors, snapshot.metadata, { op });
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

/**
 * A lower bound on the parameter values the spec's network would allocate, computed without
 * building it, so that a hostile spec (a layer with 10^12 filters) is refused before native
 * memory is asked for. Unreadable fields count as small as they could be. Exact for valid specs.
 * @internal
 */
export function minimumParameterCount(spec: ModelSpec): number {
  const pos = (v: unknown, dflt: number): number => (typeof v === 'number' && Number.isFinite(v) && v >= 1 ? Math.floor(v) : dflt);
  const pair = (v: unknown, dflt: number): [number, number] =>
    Array.isArray(v) && v.length === 2 ? [pos(v[0], dflt), pos(v[1], dflt)] : typeof v === 'number' ? [pos(v, dflt), pos(v, dflt)] : [dflt, dflt];
  type Shape = { h: number; w: number; c: number };
  const input = Array.isArray(spec.inputShape) ? spec.inputShape : [];
  const shapes = new Map<string, Shape>([['input', { h: pos(input[0], 1), w: pos(input[1], 1), c: pos(input[2], 1) }]]);
  const windowed = (x: Shape, l: Record<string, unknown>, k: [number, number]): Shape => {
    const s = pair(l.strides, 1);
    const d = pair(l.dilations, 1);
    const pad = l.padding;
    let pads = [0, 0, 0, 0];
    if (typeof pad === 'number') pads = [pad, pad, pad, pad].map((p) => Math.max(0, Math.floor(p)));
    else if (Array.isArray(pad) && pad.length === 4) pads = pad.map((p) => (typeof p === 'number' && p > 0 ? Math.floor(p) : 0));
    const out = (n: number, i: 0 | 1) => {
      if (pad === 'same') return Math.ceil(n / s[i]);
      const eff = (k[i] - 1) * d[i] + 1;
      return Math.floor((n + pads[i * 2]! + pads[i * 2 + 1]! - eff) / s[i]) + 1;
    };
    return { h: Math.max(1, out(x.h, 0)), w: Math.max(1, out(x.w, 1)), c: x.c };
  };
  let total = 0;
  const layers = Array.isArray(spec.layers) ? spec.layers : [];
  for (const layer of layers as unknown[]) {
    if (!isPlainObject(layer)) continue;
    const l = layer as Record<string, unknown> & Partial<LayerSpec>;
    const first = Array.isArray(l.inputs) && typeof l.inputs[0] === 'string' ? shapes.get(l.inputs[0]) : undefined;
    const x = first ?? { h: 1, w: 1, c: 1 };
    let y: Shape = x;
    switch (l.type) {
      case 'conv2d': {
        const k = pair(l.kernelSize, 1);
        const filters = pos(l.filters, 1);
        const groups = pos(l.groups, 1);
        total += k[0] * k[1] * Math.max(1, Math.floor(x.c / groups)) * filters + (l.useBias === true ? filters : 0);
        y = { ...windowed(x, l, k), c: filters };
        break;
      }
      case 'maxPool':
      case 'avgPool':
        y = windowed(x, l, pair(l.poolSize, 1));
        break;
      case 'batchNorm':
        total += 4 * x.c;
        break;
      case 'squeezeExcite': {
        const hidden = pos(l.hidden, 1);
        total += 2 * x.c * hidden + hidden + x.c;
        break;
      }
      case 'globalAvgPool':
        y = { h: 1, w: 1, c: x.c };
        break;
      case 'flatten':
        y = { h: 1, w: 1, c: x.h * x.w * x.c };
        break;
      case 'dense': {
        const units = pos(l.units, 1);
        total += x.c * units + (l.useBias === true ? units : 0);
        y = { h: 1, w: 1, c: units };
        break;
      }
      case 'zeroPad': {
        const p = Array.isArray(l.padding) && l.padding.length === 4 ? l.padding.map((v) => (typeof v === 'number' && v > 0 ? Math.floor(v) : 0)) : [0, 0, 0, 0];
        y = { h: x.h + p[0]! + p[1]!, w: x.w + p[2]! + p[3]!, c: x.c };
        break;
      }
      case 'zeroPadShortcut': {
        const s = pair(l.strides, 1);
        y = { h: Math.floor((x.h - 1) / s[0]) + 1, w: Math.floor((x.w - 1) / s[1]) + 1, c: pos(l.filters, 1) };
        break;
      }
      default:
        break;
    }
    if (typeof l.name === 'string') shapes.set(l.name, y);
  }
  return total;
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

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
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
  validate.keys(options, op, ['optimizer', 'device', 'allowTf32', 'precision', 'memoryBudget']);
  const restoreOptimizer = options.optimizer === undefined ? true : validate.boolean(options.optimizer, op, 'optimizer');
  const placement: ModelInitOptions = {};
  if (options.device !== undefined) placement.device = validate.string(options.device, op, 'device');
  if (options.allowTf32 !== undefined) placement.allowTf32 = validate.boolean(options.allowTf32, op, 'allowTf32');
  if (options.precision !== undefined) placement.precision = options.precision;  // Model.fromSpec validates it
  if (options.memoryBudget !== undefined) placement.memoryBudget = memoryBudgetOption(options.memoryBudget, op);
  const reader = await SafetensorsReader.open(path);
  let model: Model | undefined;
  try {
    const meta = reader.metadata;
    if (meta.format !== CHECKPOINT_FORMAT) {
      throw fmt(path, `metadata format is ${JSON.stringify(meta.format)}, not '${CHECKPOINT_FORMAT}' (to load plain weights into a model use loadWeightsInto)`);
    }
    if (meta.version !== CHECKPOINT_VERSION) throw fmt(path, `version ${JSON.stringify(meta.version)} is not supported (this library reads version ${CHECKPOINT_VERSION})`);
    // The JSON documents end up in the model and the trainer, which walk them recursively.
    for (const key of ['spec', 'optimizer', 'training']) {
      const depth = meta[key] === undefined ? 0 : jsonDepth(meta[key]);
      if (depth > MAX_JSON_DEPTH) throw fmt(path, `metadata '${key}' nests arrays and objects ${depth} levels deep, above the limit of ${MAX_JSON_DEPTH}`);
    }
    if (meta.mode !== undefined && meta.mode !== 'train' && meta.mode !== 'eval') throw fmt(path, `metadata 'mode' must be 'train' or 'eval', got ${JSON.stringify(meta.mode)}`);

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

    let storedFloats = 0;
    for (const e of reader.header.tensors.values()) if (!e.name.startsWith(OPTIMIZER_PREFIX)) storedFloats += e.numel;
    model = buildModel(path, meta.spec, storedFloats, placement);

    const params = model.parameterInfo();
    if (compileOptions) {
      try {
        resolveCompileOptions(compileOptions, params); // checks them (compile does the same)
      } catch (err) {
        throw fmt(path, `metadata 'optimizer' does not compile: ${(err as Error)?.message ?? String(err)}`);
      }
    }
    // Exactly the expected tensors: every parameter, and the optimizer's slots for every trainable one.
    const slots = compileOptions ? slotNames(compileOptions.optimizer) : [];
    const expected = new Set(params.map((p) => p.name));
    for (const slot of slots) for (const p of params) if (p.trainable) expected.add(`${OPTIMIZER_PREFIX}${slot}.${p.name}`);
    for (const name of reader.header.tensors.keys()) {
      if (!expected.has(name)) {
        const why = name.startsWith(OPTIMIZER_PREFIX) ? 'the stored optimizer keeps no such state' : 'the model has no such parameter';
        throw fmt(path, `unexpected tensor '${name}' (${why})`);
      }
    }
    for (const name of expected) if (!reader.has(name)) throw fmt(path, `tensor '${name}' is missing`);

    const values = new Map<string, Float32Array>();
    for (const p of params) values.set(p.name, await readF32(reader, path, p.name, p.shape, p.name.endsWith('.running_var')));
    for (const [name, v] of values) {
      try {
        model.setParameter(name, v);
      } catch (err) {
        throw fmt(path, `tensor '${name}': ${(err as Error)?.message ?? String(err)}`);
      }
    }
    if (meta.mode === 'eval') model.eval();

    let optimizerRestored = false;
    if (compileOptions && restoreOptimizer) {
      try {
        model.compile(compileOptions);
      } catch (err) {
        throw fmt(path, `metadata 'optimizer' does not compile: ${(err as Error)?.message ?? String(err)}`);
      }
      const info = model.network.optimizerStateInfo();
      if (info.slots !== slots.length) throw fmt(path, `the stored optimizer keeps ${info.slots} state slots, the file implies ${slots.length}`);
      for (let index = 0; index < slots.length; index++) {
        for (const p of params) {
          if (!p.trainable) continue;
          const name = `${OPTIMIZER_PREFIX}${slots[index]}.${p.name}`;
          const v = await readF32(reader, path, name, p.shape, slots[index] === 'exp_avg_sq');
          try {
            model.network.setOptimizerState(p.name, index, v);
          } catch (err) {
            throw fmt(path, `tensor '${name}': ${(err as Error)?.message ?? String(err)}`);
          }
        }
      }
      try {
        model.network.setOptimizerState(null, -1, steps);
        if (learningRate !== undefined) model.setLearningRate(learningRate);
      } catch (err) {
        throw fmt(path, `optimizer state: ${(err as Error)?.message ?? String(err)}`);
      }
      // Model.compileOptions (when Model records them) now holds the stored options.
      optimizerRestored = true;
    }
    const result: Checkpoint = { model, training, optimizerRestored, metadata: { ...meta } };
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
  const reader = await SafetensorsReader.open(path);
  try {
    const isCheckpoint = reader.metadata.format === CHECKPOINT_FORMAT;
    const known = new Set(params.map((p) => p.name));
    const unexpected = reader.names().filter((n) => !known.has(n) && !(isCheckpoint && n.startsWith(OPTIMIZER_PREFIX)));
    const missing = params.filter((p) => !reader.has(p.name)).map((p) => p.name);
    if (strict && missing.length > 0) {
      throw fmt(path, `has no tensor for parameter${missing.length > 1 ? 's' : ''} ${missing.slice(0, 5).map((n) => `'${n}'`).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}`);
    }
    if (strict && unexpected.length > 0) {
      throw fmt(path, `has tensor${unexpected.length > 1 ? 's' : ''} ${unexpected.slice(0, 5).map((n) => `'${n}'`).join(', ')}${unexpected.length > 5 ? ` and ${unexpected.length - 5} more` : ''} that the model has no parameter for (strict: false to ignore)`);
    }
    const values = new Map<string, Float32Array>();
    for (const p of params) {
      const e = reader.header.tensors.get(p.name);
      if (!e) continue;
      if (!sameShape(e.shape, p.shape)) {
        throw new ResNetError('E_SHAPE', `${op}: '${path}': tensor '${p.name}' has shape [${e.shape.join(', ')}]; the model's parameter is [${p.shape.join(', ')}]`);
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
