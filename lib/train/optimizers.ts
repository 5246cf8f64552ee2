// Optimizer and compile options, their validation, and the parameter groups that decide
// each parameter's weight decay and learning-rate multiplier. The update itself is native.
import { ResNetError } from '../errors.js';
import type { NativeOptimizerConfig } from '../native.js';
import * as validate from '../validate.js';
import { SafePattern } from './safe_pattern.js';

export interface SgdOptions {
  type: 'sgd';
  lr: number;
  /** Default 0. */
  momentum?: number;
  /** Default false. */
  nesterov?: boolean;
  /** Default 0. */
  weightDecay?: number;
  /** Decay the weights directly (p ← p·(1 − lr·wd)) instead of adding wd·p to the gradient (L2). Default false. */
  decoupledWeightDecay?: boolean;
}

export interface AdamWOptions {
  type: 'adamw';
  lr: number;
  /** Default 0.9. */
  beta1?: number;
  /** Default 0.999. */
  beta2?: number;
  /** Default 1e-8. */
  eps?: number;
  /** Decoupled, as Loshchilov & Hutter. Default 0.01 (PyTorch's). */
  weightDecay?: number;
}

export type OptimizerOptions = SgdOptions | AdamWOptions;

export interface ParameterInfo {
  name: string;
  shape: readonly number[];
  /** The layer that owns it. */
  layer: string;
}

/**
 * Parameters matched by `match` get this group's settings; the first matching group wins.
 * A RegExp is tested against the parameter's name (its g and y flags are ignored). Within the
 * subset described in lib/train/safe_pattern.ts (which covers the usual patterns) it runs in
 * time linear in the name, and only such patterns can be saved in a checkpoint.
 */
export interface ParamGroup {
  match: RegExp | readonly string[] | ((p: ParameterInfo) => boolean);
  /** Replaces the optimizer's weightDecay for these parameters. */
  weightDecay?: number;
  /** Multiplies the learning rate for these parameters. Default 1. */
  lrScale?: number;
}

export interface CompileOptions {
  optimizer: OptimizerOptions;
  /** The only loss for now. */
  loss?: 'softmaxCrossEntropy';
  /** Default 0. */
  labelSmoothing?: number;
  /** Clip gradients to this global L2 norm before the update. Default: no clipping. */
  clipGradNorm?: number;
  /** Explicit groups, checked before the default rule. */
  paramGroups?: readonly ParamGroup[];
  /** Apply weight decay to batch-norm parameters and biases too. Default false (no decay on them). */
  decayNormAndBias?: boolean;
}

const OP = 'compile';

/**
 * The smallest normal float32: the native update divides by (√v + eps) in float32, where a
 * smaller eps is 0 or a subnormal (flushed to 0 by SIMD kernels), and 0 / 0 is NaN.
 */
const MIN_EPS = 2 ** -126;
/** Largest learning rate, weight decay and lrScale accepted (well past any useful value, far from overflow). */
export const MAX_RATE = 1e6;

/** options[name] (reported as `optimizer.${name}` etc.), or its default, in the interval given. */
function optionalNumber(v: unknown, name: string, dflt: number, min: number, max: number, open?: 'max'): number {
  return v === undefined ? dflt : validate.number(v, OP, name, min, max, open);
}

/** A boolean option (reported as `name`), false when not given. */
function optionalBoolean(v: unknown, name: string): boolean {
  return v === undefined ? false : validate.boolean(v, OP, name);
}

/** Options → the native optimizer configuration, with per-parameter groups resolved. */
export function resolveCompileOptions(
  options: CompileOptions,
  params: readonly (ParameterInfo & { trainable: boolean })[],
): { config: NativeOptimizerConfig; labelSmoothing: number } {
  validate.keys(options, OP, ['optimizer', 'loss', 'labelSmoothing', 'clipGradNorm', 'paramGroups', 'decayNormAndBias']);
  if (options.loss !== undefined && options.loss !== 'softmaxCrossEntropy') {
    throw new ResNetError('E_ARG', `${OP}: loss must be 'softmaxCrossEntropy', got ${JSON.stringify(options.loss)}`);
  }
  const config = resolveOptimizer(options.optimizer);
  const labelSmoothing = optionalNumber(options.labelSmoothing, 'labelSmoothing', 0, 0, 1, 'max');
  // 0 means "no clipping" natively, so a given norm must be positive (and a float32).
  config.clipGradNorm = optionalNumber(options.clipGradNorm, 'clipGradNorm', 0, 1e-12, 3e38);
  const groups = checkParamGroups(options.paramGroups ?? []);
  const decayNormAndBias = optionalBoolean(options.decayNormAndBias, 'decayNormAndBias');

  // The native side multiplies a base decay of 1 by each parameter's absolute decay.
  const trainable = params.filter((p) => p.trainable);
  const decay = new Float32Array(trainable.length);
  const lrScale = new Float32Array(trainable.length);
  const tests = groups.map((g) => matcher(g.match));
  trainable.forEach((p, i) => {
    const group = groups[tests.findIndex((t) => t(p))];
    const isNormOrBias = p.shape.length === 1;
    const dflt = !decayNormAndBias && isNormOrBias ? 0 : config.weightDecay;
    decay[i] = group?.weightDecay ?? dflt;
    lrScale[i] = group?.lrScale ?? 1;
  });
  config.decayScale = decay;
  config.lrScale = lrScale;
  config.weightDecay = 1;
  return { config, labelSmoothing };
}

/** `optimizer` checked: the native configuration before clipping and parameter groups. */
function resolveOptimizer(o: unknown): NativeOptimizerConfig {
  if (typeof o !== 'object' || o === null) throw new ResNetError('E_ARG', `${OP}: optimizer must be { type: 'sgd' | 'adamw', lr, … }`);
  const opt = o as OptimizerOptions;
  let config: NativeOptimizerConfig;
  if (opt.type === 'sgd') {
    validate.keys(opt, `${OP} optimizer`, ['type', 'lr', 'momentum', 'nesterov', 'weightDecay', 'decoupledWeightDecay']);
    config = baseConfig('sgd', opt.lr);
    config.momentum = optionalNumber(opt.momentum, 'optimizer.momentum', 0, 0, 1, 'max');
    config.nesterov = optionalBoolean(opt.nesterov, 'optimizer.nesterov');
    if (config.nesterov && config.momentum === 0) {
      throw new ResNetError('E_ARG', `${OP}: Nesterov momentum needs optimizer.momentum > 0`);
    }
    config.weightDecay = optionalNumber(opt.weightDecay, 'optimizer.weightDecay', 0, 0, MAX_RATE);
    config.decoupledWeightDecay = optionalBoolean(opt.decoupledWeightDecay, 'optimizer.decoupledWeightDecay');
  } else if (opt.type === 'adamw') {
    validate.keys(opt, `${OP} optimizer`, ['type', 'lr', 'beta1', 'beta2', 'eps', 'weightDecay']);
    config = baseConfig('adamw', opt.lr);
    config.beta1 = optionalNumber(opt.beta1, 'optimizer.beta1', 0.9, 0, 1, 'max');
    config.beta2 = optionalNumber(opt.beta2, 'optimizer.beta2', 0.999, 0, 1, 'max');
    config.eps = optionalNumber(opt.eps, 'optimizer.eps', 1e-8, MIN_EPS, MAX_RATE);
    config.weightDecay = optionalNumber(opt.weightDecay, 'optimizer.weightDecay', 0.01, 0, MAX_RATE);
    config.decoupledWeightDecay = true;
  } else {
    throw new ResNetError('E_ARG', `${OP}: optimizer.type must be 'sgd' or 'adamw', got ${JSON.stringify((opt as { type?: unknown }).type)}`);
  }
  return config;
}

/** `paramGroups` checked (each group's keys, match, weightDecay and lrScale). */
function checkParamGroups(groups: readonly ParamGroup[]): readonly ParamGroup[] {
  if (!Array.isArray(groups)) throw new ResNetError('E_ARG', `${OP}: paramGroups must be an array`);
  groups.forEach((g, i) => {
    validate.keys(g, `${OP} paramGroups[${i}]`, ['match', 'weightDecay', 'lrScale']);
    const m = (g as ParamGroup).match as unknown;
    if (!(m instanceof RegExp || typeof m === 'function' || (Array.isArray(m) && m.every((n) => typeof n === 'string')))) {
      throw new ResNetError('E_ARG', `${OP}: paramGroups[${i}].match must be a RegExp, a list of parameter names (strings) or a function`);
    }
    if (g.weightDecay !== undefined) validate.number(g.weightDecay, OP, `paramGroups[${i}].weightDecay`, 0, MAX_RATE);
    if (g.lrScale !== undefined) validate.number(g.lrScale, OP, `paramGroups[${i}].lrScale`, 0, MAX_RATE);
  });
  return groups;
}

/** A group's `match` as a test of one parameter, prepared once for all parameters. */
function matcher(match: ParamGroup['match']): (p: ParameterInfo) => boolean {
  if (match instanceof RegExp) {
    // Names may come from a file (a loaded spec), so a pattern runs in linear time whenever it
    // can; a caller's own pattern beyond the subset runs as a RegExp. Either way without g/y:
    // RegExp.test with them is stateful (lastIndex) and would skip every other match.
    const safe = SafePattern.tryCompile(match.source, match.flags);
    if (safe) return (p) => safe.test(p.name);
    const re = new RegExp(match.source, match.flags.replace(/[gy]/g, ''));
    return (p) => re.test(p.name);
  }
  if (typeof match === 'function') return match;
  const names = new Set(match);
  return (p) => names.has(p.name);
}

function baseConfig(type: 'sgd' | 'adamw', lr: unknown): NativeOptimizerConfig {
  return {
    type,
    lr: validate.number(lr, OP, 'optimizer.lr', 0, MAX_RATE),
    momentum: 0,
    nesterov: false,
    weightDecay: 0,
    decoupledWeightDecay: false,
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    clipGradNorm: 0,
    decayScale: new Float32Array(0),
    lrScale: new Float32Array(0),
  };
}
