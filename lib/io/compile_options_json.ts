// Compile options in a checkpoint's 'optimizer' metadata: JSON both ways. RegExp matches of
// parameter groups are stored as { regexp, flags } (only patterns the linear-time SafePattern
// takes, within the limits below), name lists as { names }; functions cannot be stored.
import { ResNetError } from '../errors.js';
import type { CompileOptions, ParamGroup } from '../train/optimizers.js';
import { SafePattern } from '../train/safe_pattern.js';
import { isPlainObject } from '../validate.js';

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
    throw new ResNetError(
      'E_ARG',
      `${op}: paramGroups[${i}].match ${SafePattern.whyRefused(source, flags)}; a checkpoint stores only such patterns: ${WHAT_TO_DO}`,
    );
  }
  used.size += pattern.size;
  if (used.size > MAX_STORED_PATTERN_SIZE) {
    throw new ResNetError(
      'E_ARG',
      `${op}: the patterns up to paramGroups[${i}] compile to ${used.size} instructions, above the ${MAX_STORED_PATTERN_SIZE} a checkpoint may hold: ${WHAT_TO_DO}`,
    );
  }
  return { regexp: source, flags };
}

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
      if (v.length > MAX_STORED_GROUPS)
        throw new ResNetError('E_ARG', `${op}: ${v.length} paramGroups are more than the ${MAX_STORED_GROUPS} a checkpoint may hold`);
      const used = { size: 0 };
      out[k] = (v as readonly ParamGroup[]).map((g, i) => {
        const group: Record<string, unknown> = {};
        for (const [gk, gv] of Object.entries(g)) if (gv !== undefined && gk !== 'match') group[gk] = gv;
        const m = g.match as unknown;
        let match: StoredMatch;
        if (m instanceof RegExp) match = storedPattern(m.source, m.flags, i, op, used);
        else if (Array.isArray(m) && m.every((s) => typeof s === 'string')) match = { names: [...(m as string[])] };
        else if (isPlainObject(m) && typeof m.regexp === 'string' && typeof m.flags === 'string')
          match = storedPattern(m.regexp, m.flags, i, op, used);
        else if (isPlainObject(m) && Array.isArray(m.names) && m.names.every((s) => typeof s === 'string'))
          match = { names: [...(m.names as string[])] };
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
        if (used > MAX_STORED_PATTERN_SIZE)
          throw bad(`has patterns that compile to ${used} instructions up to paramGroups[${i}], above the limit of ${MAX_STORED_PATTERN_SIZE}`);
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
