// JSON from files: parsed only after a linear scan has checked its nesting depth.
//
// JSON.parse itself copes with any depth, but everything after it that walks the value
// recursively (JSON.stringify, String(array), the importers' walkers, Model.fromSpec) throws
// RangeError: Maximum call stack size exceeded on a value nested 100,000 deep — a few hundred
// kilobytes of '['. Refusing such text up front (E_FORMAT) keeps every walker safe.
import { ResNetError } from '../errors.js';

/** Far deeper than files nest (a safetensors header: 3; a tfjs model.json: about 10, and 3 more per nested model). */
export const MAX_JSON_DEPTH = 256;

/** The deepest nesting of arrays and objects in `text`, brackets inside strings not counted. */
export function jsonDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > deepest) deepest = depth;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return deepest;
}

/**
 * JSON.parse for text read from a file: E_FORMAT `${where} is not valid JSON (…)` or
 * `${where} nests N levels deep, above the limit of …`.
 */
export function parseJsonText(text: string, where: string, maxDepth = MAX_JSON_DEPTH): unknown {
  const depth = jsonDepth(text);
  if (depth > maxDepth) throw new ResNetError('E_FORMAT', `${where} nests arrays and objects ${depth} levels deep, above the limit of ${maxDepth}`);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ResNetError('E_FORMAT', `${where} is not valid JSON (${(err as Error).message})`);
  }
}
