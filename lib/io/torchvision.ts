// Weights from torchvision: a ResNet / ResNeXt / Wide-ResNet state_dict saved as safetensors
// (`safetensors.torch.save_file(model.state_dict(), path)`) or by torch.save (.pth / .pt,
// lib/io/torch_file.ts; which of the two is told by the file's first bytes, not its name),
// onto a Model whose spec has the same architecture (models.resnet18(),
// models.resnext50_32x4d(), models.resnet({...}), …).
//
// Our parameter names are torchvision's state_dict keys (lib/model/spec.ts), so the mapping
// is a lookup; only the layouts differ and are converted here:
//   conv weight     torch [out, in/groups, kh, kw] (OIHW)  → ours [kh, kw, in/groups, out] (HWIO)
//   linear weight   torch [out, in]                        → ours [in, out]
//   squeeze-excite  fc1/fc2 weights as linear ([out, in]) or as 1×1 convs ([out, in, 1, 1],
//                   torchvision.ops.SqueezeExcitation)     → ours [in, out]
//   biases, batch-norm weight / bias / running_mean / running_var: unchanged.
// `*.num_batches_tracked` (an integer counter PyTorch keeps per batch norm) is ignored; so is a
// 'module.' prefix on every key (nn.DataParallel / DistributedDataParallel checkpoints).
// `exclude` (a RegExp on our parameter names, e.g. /^fc\./ to keep a replaced head) leaves
// the parameters it matches as they are and skips the file's tensors of those names, whatever
// their shapes.
//
// Checks, all before any parameter is changed (a failed load leaves the model as it was):
// every parameter of the model has a tensor, every tensor of the file is a parameter (unless
// `strict: false`, as PyTorch's load_state_dict), every shape is the torch layout of ours, every
// dtype is F32, F16, BF16 or F64 (converted to float32 exactly, F64 rounded). Problems are one
// ResNetError 'E_FORMAT' listing them with names and shapes; a file that cannot be opened or
// read is 'E_IO'; a malformed file is 'E_FORMAT' (lib/io/safetensors.ts checks it strictly).
import { ResNetError } from '../errors.js';
import { Model } from '../model/model.js';
import type { LayerSpec } from '../model/spec.js';
import * as validate from '../validate.js';
import { checkParameterValues } from './parameter_values.js';
import { openTensorFile, type TensorSource } from './torch_file.js';

export interface LoadTorchvisionOptions {
  /**
   * As PyTorch's `load_state_dict(strict)`. true (default): the file must hold exactly the
   * model's parameters. false: parameters the file lacks keep their values and tensors the
   * model lacks are skipped (listed in the result); shapes and dtypes are still checked.
   */
  strict?: boolean;
  /**
   * Parameters whose names match are not loaded (they keep their values, and a file's tensors
   * of those names are skipped whatever their shapes, listed in `excluded`): e.g. /^fc\./ to
   * keep a replaced classifier head. Tested against our parameter names, which are
   * torchvision's state_dict keys.
   */
  exclude?: RegExp;
}

export interface LoadTorchvisionResult {
  /** Our parameter names that were set, in the model's parameter order. */
  loaded: string[];
  /** Parameters the file lacks (always empty when strict). */
  missing: string[];
  /** Tensors of the file that are no parameter of the model (always empty when strict). */
  unexpected: string[];
  /** Tensors skipped on purpose: every `*.num_batches_tracked`. */
  ignored: string[];
  /** File tensors skipped because `exclude` matched their names (empty without it). */
  excluded: string[];
}

const OP = 'loadTorchvision';
const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);
/** Problems listed per kind in an error message; the rest are counted. */
const LIST_MAX = 12;

/** How one parameter is laid out in torch relative to ours. */
type Layout = 'conv' | 'linear' | 'seLinear' | 'same';

function fmt(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function listed(items: string[]): string {
  const shown = items.slice(0, LIST_MAX).join('; ');
  return items.length > LIST_MAX ? `${shown}; … and ${items.length - LIST_MAX} more` : shown;
}

function layoutOf(layer: LayerSpec | undefined, suffix: string, rank: number): Layout {
  if (!layer || rank < 2) return 'same';
  if (layer.type === 'conv2d' && suffix === 'weight' && rank === 4) return 'conv';
  if (layer.type === 'dense' && suffix === 'weight' && rank === 2) return 'linear';
  if (layer.type === 'squeezeExcite' && (suffix === 'fc1.weight' || suffix === 'fc2.weight') && rank === 2) return 'seLinear';
  return 'same';
}

/** The torch shapes that hold our parameter of shape `ours` (the first is the canonical one). */
function torchShapes(layout: Layout, ours: readonly number[]): number[][] {
  switch (layout) {
    case 'conv': {
      const [kh, kw, cin, cout] = ours as [number, number, number, number];
      return [[cout, cin, kh, kw]];
    }
    case 'linear': {
      const [cin, cout] = ours as [number, number];
      return [[cout, cin]];
    }
    case 'seLinear': {
      const [cin, cout] = ours as [number, number];
      return [
        [cout, cin],
        [cout, cin, 1, 1],
      ];
    }
    case 'same':
      return [[...ours]];
  }
}

/** OIHW → HWIO. */
function convToHwio(src: Float32Array, o: number, i: number, kh: number, kw: number): Float32Array {
  const dst = new Float32Array(src.length);
  const k = kh * kw;
  for (let oc = 0; oc < o; oc++) {
    for (let ic = 0; ic < i; ic++) {
      const s = (oc * i + ic) * k;
      for (let p = 0; p < k; p++) dst[(p * i + ic) * o + oc] = src[s + p]!;
    }
  }
  return dst;
}

/** [out, in] → [in, out]. */
function transpose2d(src: Float32Array, rows: number, cols: number): Float32Array {
  const dst = new Float32Array(src.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) dst[c * rows + r] = src[r * cols + c]!;
  }
  return dst;
}

function toOurs(layout: Layout, data: Float32Array, ours: readonly number[]): Float32Array {
  switch (layout) {
    case 'conv': {
      const [kh, kw, cin, cout] = ours as [number, number, number, number];
      return convToHwio(data, cout, cin, kh, kw);
    }
    case 'linear':
    case 'seLinear': {
      const [cin, cout] = ours as [number, number];
      return transpose2d(data, cout, cin);
    }
    case 'same':
      return data;
  }
}

/** What keeps the file from fitting the model, one sentence per kind (empty: it fits). */
function fitProblems(
  reader: TensorSource,
  { badShapes, badDtypes, missing, others }: { badShapes: string[]; badDtypes: string[]; missing: string[]; others: string[] },
): string[] {
  const problems: string[] = [];
  if (badShapes.length > 0) problems.push(`${badShapes.length} shape mismatch${badShapes.length === 1 ? '' : 'es'}: ${listed(badShapes)}`);
  if (badDtypes.length > 0)
    problems.push(`${badDtypes.length} tensor(s) of a non-float dtype (F32, F16, BF16 or F64 expected): ${listed(badDtypes)}`);
  if (missing.length > 0) problems.push(`${missing.length} parameter(s) of the model missing from the file: ${listed(missing)}`);
  if (others.length > 0) {
    problems.push(
      `${others.length} unexpected tensor(s) that are no parameter of the model: ` +
        listed(others.map((k) => `'${k}' ${fmt(reader.entry(k).shape)}`)),
    );
  }
  return problems;
}

/**
 * Sets every parameter of `model` from a torchvision state_dict saved as safetensors or with
 * torch.save (`file`, .safetensors / .pth / .pt, told apart by content). Returns what was loaded and skipped. Throws ResNetError: 'E_ARG' for bad
 * arguments, 'E_IO' when the file cannot be read, 'E_FORMAT' for a malformed file or one
 * whose tensors do not fit the model (names and shapes listed); nothing is set then.
 */
export async function loadTorchvision(model: Model, file: string, options: LoadTorchvisionOptions = {}): Promise<LoadTorchvisionResult> {
  if (!(model instanceof Model)) throw new ResNetError('E_ARG', `${OP}: model must be a Model`);
  validate.string(file, OP, 'file');
  validate.keys(options, OP, ['strict', 'exclude']);
  const strict = options.strict === undefined ? true : validate.boolean(options.strict, OP, 'strict');
  const exclude = options.exclude;
  if (exclude !== undefined && !(exclude instanceof RegExp)) validate.invalid(exclude, OP, 'exclude', 'a RegExp (e.g. /^fc\\./)');
  // A /g or /y RegExp keeps state between test() calls; a fresh copy without those flags does not.
  const re = exclude === undefined ? undefined : new RegExp(exclude.source, exclude.flags.replace(/[gy]/g, ''));
  const excludes = (name: string): boolean => re !== undefined && re.test(name);
  if (model.isDisposed) throw new ResNetError('E_DISPOSED', `${OP}: the model was disposed`);

  const layers = new Map(model.spec.layers.map((l) => [l.name, l]));
  const params = model.parameterInfo().filter((p) => !excludes(p.name));

  const reader = await openTensorFile(file, OP);
  try {
    const names = reader.names();
    const prefix = names.length > 0 && names.every((n) => n.startsWith('module.')) ? 'module.' : '';
    const byKey = new Map<string, string>(); // our name → file key
    const ignored: string[] = [];
    const excluded: string[] = [];
    const others: string[] = [];
    const ours = new Set(params.map((p) => p.name));
    for (const key of names) {
      const name = key.slice(prefix.length);
      if (name === 'num_batches_tracked' || name.endsWith('.num_batches_tracked')) ignored.push(key);
      else if (excludes(name)) excluded.push(key);
      else if (ours.has(name)) byKey.set(name, key);
      else others.push(key);
    }

    const missing: string[] = [];
    const badShapes: string[] = [];
    const badDtypes: string[] = [];
    const plan: { name: string; key: string; layout: Layout; shape: readonly number[] }[] = [];
    for (const p of params) {
      const key = byKey.get(p.name);
      if (key === undefined) {
        missing.push(p.name);
        continue;
      }
      const e = reader.entry(key);
      const layout = layoutOf(layers.get(p.layer), p.name.slice(p.layer.length + 1), p.shape.length);
      const accepted = torchShapes(layout, p.shape);
      if (!accepted.some((s) => validate.sameShape(s, e.shape))) {
        const how = layout === 'conv' ? ' (OIHW; ours is HWIO)' : layout === 'same' ? '' : ' ([out, in]; ours is [in, out])';
        badShapes.push(`'${key}' is ${fmt(e.shape)} but the model's '${p.name}' ${fmt(p.shape)} needs ${accepted.map(fmt).join(' or ')}${how}`);
      }
      if (!FLOAT_DTYPES.has(e.dtype)) badDtypes.push(`'${key}' is ${e.dtype}`);
      plan.push({ name: p.name, key, layout, shape: p.shape });
    }

    const problems = fitProblems(reader, { badShapes, badDtypes, missing: strict ? missing : [], others: strict ? others : [] });
    if (problems.length > 0) {
      const hint =
        missing.length > 0 || others.length > 0 || badShapes.length > 0
          ? ` (is the model built with the same architecture as the checkpoint: block type, stage depths and widths, groups, widthPerGroup, classes?)`
          : '';
      throw new ResNetError('E_FORMAT', `${OP}: '${file}' does not fit model '${model.name}': ${problems.join('. ')}${hint}`);
    }

    // Everything checked: convert, then set.
    const values: { name: string; data: Float32Array }[] = [];
    for (const step of plan) {
      const data = await reader.readFloat32(step.key);
      values.push({ name: step.name, data: toOurs(step.layout, data, step.shape) });
    }
    for (const v of values) checkParameterValues(OP, `'${file}'`, v.name, v.data);
    for (const v of values) model.setParameter(v.name, v.data);
    return {
      loaded: plan.map((s) => s.name),
      missing: strict ? [] : missing,
      unexpected: strict ? [] : others,
      ignored,
      excluded,
    };
  } finally {
    await reader.close();
  }
}
