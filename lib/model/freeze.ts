// Freezing layers for fine-tuning: which layers a freeze / unfreeze pattern names, and the
// options of a freeze. The native plan does the rest (native/core/plan.hpp, Freezing): frozen
// parameters get no gradient and no update, and a frozen prefix of the network no backward.
import { ResNetError } from '../errors.js';
import { SafePattern } from '../train/safe_pattern.js';
import * as validate from '../validate.js';

/**
 * Names layers by their names ('conv1', 'bn1', 'layer1.0.conv1', 'layer4.1.downsample.1', 'fc').
 *
 * - A string is a glob over the dotted name, as the CLI's `--freeze` takes it: `*` matches any
 *   characters but '.', `?` one such character, `[1-3]` / `[!0]` a set; every other character
 *   stands for itself. It names a layer when it matches the whole name or a part up to a '.'
 *   (a module and everything inside it, as torchvision's names nest): 'layer[1-3]' names every
 *   layer of layer1, layer2 and layer3; 'conv1' the stem convolution only, not 'layer1.0.conv1'.
 *   Several globs may be joined with ',' ('conv1,bn1,layer1').
 * - A RegExp is tested against each layer name (RegExp.test, its g and y flags ignored); within
 *   the subset of lib/train/safe_pattern.ts it runs in time linear in the name.
 */
export type FreezePattern = string | RegExp;

export interface FreezeOptions {
  /**
   * What frozen batch-norm layers do in training. 'frozen' (default): they normalise with their
   * running statistics (inference mode, as PyTorch's eval() on them or Keras' trainable = False)
   * and keep them as they are. 'update': they normalise with the batch's statistics and update
   * their running averages as a trainable batch-norm does; only gamma and beta stay fixed.
   */
  batchNormStatistics?: 'frozen' | 'update';
}

/** Longest glob accepted (past any real layer name, far from costly). */
const MAX_GLOB_LENGTH = 256;

/** A character that stands for itself in a RegExp when escaped with '\'. */
function escapeChar(c: string): string {
  return /[A-Za-z0-9_]/.test(c) ? c : `\\${c}`;
}

/** One glob (no ',') → a RegExp source that matches a name the glob names (whole or up to a '.'). */
function globSource(glob: string, op: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      out += '[^.]*';
    } else if (c === '?') {
      out += '[^.]';
    } else if (c === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close < 0) throw new ResNetError('E_ARG', `${op}: pattern ${JSON.stringify(glob)} has a '[' without its ']'`);
      let body = glob.slice(i + 1, close);
      let negate = false;
      if (body.startsWith('!') || body.startsWith('^')) {
        negate = true;
        body = body.slice(1);
      }
      if (body.length === 0) throw new ResNetError('E_ARG', `${op}: pattern ${JSON.stringify(glob)} has an empty set '[]'`);
      // '-' between two characters is a range; everything else is literal.
      let set = '';
      for (let k = 0; k < body.length; k++) {
        const ch = body[k]!;
        set += ch === '-' && k > 0 && k < body.length - 1 ? '-' : escapeChar(ch);
      }
      out += negate ? `[^.${set}]` : `[${set}]`;
      i = close;
    } else {
      out += escapeChar(c);
    }
  }
  return out;
}

/** The test a freeze pattern makes of a layer name; E_ARG for a malformed one. */
export function layerMatcher(pattern: unknown, op: string): (layer: string) => boolean {
  if (pattern instanceof RegExp) {
    const safe = SafePattern.tryCompile(pattern.source, pattern.flags);
    if (safe) return (name) => safe.test(name);
    // A caller's own pattern beyond the subset runs as a RegExp, without g / y (stateful test).
    const re = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
    return (name) => re.test(name);
  }
  if (typeof pattern !== 'string') throw new ResNetError('E_ARG', `${op}: pattern must be a string (a glob such as 'layer[1-3]') or a RegExp`);
  if (pattern.length === 0 || pattern.length > MAX_GLOB_LENGTH) {
    throw new ResNetError('E_ARG', `${op}: pattern must be 1 to ${MAX_GLOB_LENGTH} characters long`);
  }
  const globs = pattern.split(',').map((g) => g.trim());
  if (globs.some((g) => g.length === 0)) throw new ResNetError('E_ARG', `${op}: pattern ${JSON.stringify(pattern)} has an empty part between commas`);
  const source = `^(?:${globs.map((g) => globSource(g, op)).join('|')})(?:\\.|$)`;
  const safe = SafePattern.tryCompile(source, '');
  if (!safe) throw new ResNetError('E_ARG', `${op}: pattern ${JSON.stringify(pattern)} is too complex (${SafePattern.whyRefused(source, '')})`);
  return (name) => safe.test(name);
}

/** How a pattern reads in messages. */
export function describePattern(pattern: FreezePattern): string {
  return pattern instanceof RegExp ? String(pattern) : JSON.stringify(pattern);
}

/** FreezeOptions checked: the batch-norm statistics mode. */
export function checkFreezeOptions(options: unknown, op: string): 'frozen' | 'update' {
  if (options === undefined) return 'frozen';
  if (!validate.isPlainObject(options)) throw new ResNetError('E_ARG', `${op}: options must be an object`);
  validate.keys(options as object, op, ['batchNormStatistics']);
  const mode = (options as FreezeOptions).batchNormStatistics;
  if (mode === undefined) return 'frozen';
  if (mode !== 'frozen' && mode !== 'update') {
    throw new ResNetError('E_ARG', `${op}: batchNormStatistics must be 'frozen' or 'update', got ${JSON.stringify(mode)}`);
  }
  return mode;
}

/** The layers `pattern` names, in model order; E_ARG when it names none (a typo freezes nothing silently otherwise). */
export function matchLayers(pattern: FreezePattern, layers: readonly string[], op: string): string[] {
  const test = layerMatcher(pattern, op);
  const hits = layers.filter((name) => test(name));
  if (hits.length === 0) {
    const some = layers.slice(0, 3).concat(layers.length > 3 ? [layers[layers.length - 1]!] : []);
    throw new ResNetError(
      'E_ARG',
      `${op}: pattern ${describePattern(pattern)} matches no layer (layer names look like ${some.map((n) => `'${n}'`).join(', ')})`,
    );
  }
  return hits;
}

/** A model's frozen layers, each with its batch-norm statistics mode, in model order. */
export type FrozenLayers = ReadonlyMap<string, 'frozen' | 'update'>;

/** The layers `freeze(pattern, options)` adds to `current` (re-freezing a layer sets its mode anew). */
export function frozenAfterFreeze(
  current: FrozenLayers,
  layers: readonly string[],
  pattern: unknown,
  options: unknown,
  op: string,
): Map<string, 'frozen' | 'update'> {
  const mode = checkFreezeOptions(options, op);
  const hits = new Set(matchLayers(pattern as FreezePattern, layers, op));
  // Rebuilt in model order, whatever the order of the calls.
  return new Map(layers.filter((l) => hits.has(l) || current.has(l)).map((l) => [l, hits.has(l) ? mode : current.get(l)!]));
}

/** What is still frozen after `unfreeze(pattern)` (every layer thaws with no pattern). */
export function frozenAfterUnfreeze(
  current: FrozenLayers,
  layers: readonly string[],
  pattern: unknown,
  op: string,
): Map<string, 'frozen' | 'update'> {
  if (pattern === undefined) return new Map();
  const hits = new Set(matchLayers(pattern as FreezePattern, layers, op));
  return new Map([...current].filter(([l]) => !hits.has(l)));
}

/** The native form: the frozen layers, and those of them that are batch-norms on their running statistics. */
export function nativeFreezing(frozen: FrozenLayers, batchNormLayers: ReadonlySet<string>): [string[], string[]] {
  const running = [...frozen].filter(([l, mode]) => mode === 'frozen' && batchNormLayers.has(l)).map(([l]) => l);
  return [[...frozen.keys()], running];
}
