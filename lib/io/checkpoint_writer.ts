// Writing a checkpoint: a model's state (Model.exportState) → safetensors tensors and metadata,
// written atomically. Apart from checkpoint.ts (which reads files back into a Model) so that
// Model.save can use it without a cycle: this module imports no Model, only its state's type.
import type { ModelState } from '../model/model.js';
import type { CompileOptions } from '../train/optimizers.js';
import { ResNetError } from '../errors.js';
import * as validate from '../validate.js';
import { isPlainObject } from '../validate.js';
import type { SaveModelOptions, TrainingState } from './checkpoint_types.js';
import { serializeCompileOptions } from './compile_options_json.js';
import { type SafetensorsTensorInput, writeSafetensors } from './safetensors.js';

export const CHECKPOINT_FORMAT = 'resnet-native/checkpoint';
export const CHECKPOINT_VERSION = '1';
export const OPTIMIZER_PREFIX = 'optimizer.';

/** The tensors and metadata of a checkpoint, captured at one instant (see snapshotModel). */
export interface CheckpointSnapshot {
  tensors: SafetensorsTensorInput[];
  metadata: Record<string, string>;
}

export function slotNames(optimizer: { type?: unknown; momentum?: unknown }): string[] {
  if (optimizer.type === 'adamw') return ['exp_avg', 'exp_avg_sq'];
  if (optimizer.type === 'sgd' && typeof optimizer.momentum === 'number' && optimizer.momentum !== 0) return ['momentum_buffer'];
  return [];
}

export function checkTrainingState(v: unknown, fail: (what: string) => ResNetError): TrainingState & Record<string, unknown> {
  if (!isPlainObject(v)) throw fail('must be an object { epoch, step, rngState, … }');
  if (typeof v.epoch !== 'number' || !Number.isSafeInteger(v.epoch) || v.epoch < 0) throw fail('epoch must be a non-negative integer');
  if (typeof v.step !== 'number' || !Number.isSafeInteger(v.step) || v.step < 0) throw fail('step must be a non-negative integer');
  return v as TrainingState & Record<string, unknown>;
}

/** SaveModelOptions, checked: whether to store the optimizer, and the trainer's state as JSON. */
export function checkSaveOptions(options: SaveModelOptions, op: string): { withOptimizer: boolean; training: string | undefined } {
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
  return { withOptimizer, training };
}

/** A model's state (Model.exportState) as a checkpoint's tensors and metadata. */
export function encodeState(state: ModelState, saved: { withOptimizer: boolean; training: string | undefined }, op: string): CheckpointSnapshot {
  const metadata: Record<string, string> = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    spec: JSON.stringify(state.spec),
    mode: state.training ? 'train' : 'eval',
  };
  if (saved.training !== undefined) metadata.training = saved.training;
  if (state.preprocessing) metadata.preprocessing = JSON.stringify(state.preprocessing);
  if (state.classNames) metadata.classNames = JSON.stringify(state.classNames);
  const tensors: SafetensorsTensorInput[] = state.parameters.map((p) => ({ name: p.name, shape: [...p.shape], dtype: 'F32', data: p.values }));

  const optimizer = saved.withOptimizer ? state.optimizer : undefined;
  if (optimizer) {
    const compileOptions = optimizer.options as CompileOptions | undefined;
    if (compileOptions === undefined) {
      throw new ResNetError('E_ARG', `${op}: the model is compiled but its compile options are not available; save with { optimizer: false }`);
    }
    metadata.optimizer = serializeCompileOptions(compileOptions, op);
    metadata.optimizerSteps = String(optimizer.steps);
    metadata.learningRate = String(optimizer.learningRate);
    const slots = slotNames(compileOptions.optimizer);
    if (slots.length !== optimizer.slots.length) {
      throw new ResNetError('E_INTERNAL', `${op}: the optimizer keeps ${optimizer.slots.length} state slots, its options imply ${slots.length}`);
    }
    slots.forEach((slot, index) => {
      for (const p of state.parameters) {
        if (!p.trainable) continue;
        tensors.push({ name: `${OPTIMIZER_PREFIX}${slot}.${p.name}`, shape: [...p.shape], dtype: 'F32', data: optimizer.slots[index]!.get(p.name)! });
      }
    });
  }
  return { tensors, metadata };
}

/**
 * @internal Model.save's second half: `state` was copied in call order (undefined: the model was
 * disposed); checks the options as snapshotModel does, encodes and writes atomically.
 */
export async function saveModelState(path: string, state: ModelState | undefined, options: SaveModelOptions, op: string): Promise<void> {
  const saved = checkSaveOptions(options, op);
  if (state === undefined) throw new ResNetError('E_DISPOSED', `${op}: the model was disposed`);
  await writeCheckpoint(path, encodeState(state, saved, op), op);
}

/** Writes a snapshot atomically (see writeSafetensors). */
export async function writeCheckpoint(path: string, snapshot: CheckpointSnapshot, op = 'saveModel'): Promise<void> {
  await writeSafetensors(path, snapshot.tensors, snapshot.metadata, { op });
}
