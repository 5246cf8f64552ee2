// Argument checks and normalisation for the public API: wrong JS types and values become
// a ResNetError naming the function and the argument before anything reaches native code.
//
// This module imports nothing from lib but errors.ts, so any module may use it (tensor.ts
// included). Every check takes `(value, op, name, ...range)` and says
// "`op`: `name` must be <expected>, got <describe(value)>".
import { ResNetError } from './errors.js';

export type Pair = number | [number, number];
export type Padding = 'same' | 'valid' | number | [number, number, number, number];

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return `string ${v.length > 40 ? `'${v.slice(0, 37)}...'` : `'${v}'`}`;
  if (Array.isArray(v)) return `array(${v.length})`;
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${String(v)}`;
  return typeof v;
}

export function fail(code: ConstructorParameters<typeof ResNetError>[0], message: string): never {
  throw new ResNetError(code, message);
}

export function options<T extends object>(v: unknown, op: string): Partial<T> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) fail('E_ARG', `${op}: options must be an object, got ${describe(v)}`);
  return v as Partial<T>;
}

export function integer(v: unknown, op: string, name: string, min: number, max = 2 ** 31 - 1): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    fail('E_ARG', `${op}: ${name} must be an integer in [${min}, ${max}], got ${describe(v)}`);
  }
  return v;
}

/**
 * A finite number in [min, max]; `open` excludes an end: 'min' → (min, max], 'max' → [min, max),
 * 'both' → (min, max). The message names the interval as written here.
 */
export function number(v: unknown, op: string, name: string, min: number, max: number, open?: 'min' | 'max' | 'both'): number {
  const openMin = open === 'min' || open === 'both';
  const openMax = open === 'max' || open === 'both';
  if (typeof v !== 'number' || !Number.isFinite(v) || (openMin ? v <= min : v < min) || (openMax ? v >= max : v > max)) {
    fail('E_ARG', `${op}: ${name} must be a finite number in ${openMin ? '(' : '['}${min}, ${max}${openMax ? ')' : ']'}, got ${describe(v)}`);
  }
  return v;
}

export function string(v: unknown, op: string, name: string): string {
  if (typeof v !== 'string' || v.length === 0)
    fail('E_ARG', `${op}: ${name} must be a non-empty string, got ${typeof v === 'string' ? "''" : typeof v}`);
  return v;
}

export function boolean(v: unknown, op: string, name: string): boolean {
  if (typeof v !== 'boolean') fail('E_ARG', `${op}: ${name} must be a boolean, got ${describe(v)}`);
  return v;
}

/** E_ARG: `op: name must be <expected>, got <value>` — for checks with no helper here. */
export function invalid(v: unknown, op: string, name: string, expected: string): never {
  fail('E_ARG', `${op}: ${name} must be ${expected}, got ${describe(v)}`);
}

/** One of `allowed` (strings, numbers or booleans), compared with ===. */
export function oneOf<T extends string | number | boolean>(v: unknown, op: string, name: string, allowed: readonly T[]): T {
  if (!allowed.includes(v as T)) {
    invalid(v, op, name, `one of ${allowed.map((a) => (typeof a === 'string' ? `'${a}'` : String(a))).join(', ')}`);
  }
  return v as T;
}

/** A number or [height, width] of integers ≥ min. */
export function pair(v: unknown, op: string, name: string, min = 1): [number, number] {
  if (typeof v === 'number') {
    integer(v, op, name, min, 2 ** 24);
    return [v, v];
  }
  if (!Array.isArray(v) || v.length !== 2) {
    fail('E_ARG', `${op}: ${name} must be a number or [height, width], got ${describe(v)}`);
  }
  return [integer(v[0], op, `${name}[0]`, min, 2 ** 24), integer(v[1], op, `${name}[1]`, min, 2 ** 24)];
}

/** 'same' | 'valid' | n | [top, bottom, left, right] → the native form. */
export function padding(v: unknown, op: string): 'same' | 'valid' | [number, number, number, number] {
  if (v === 'same' || v === 'valid') return v;
  if (typeof v === 'number') {
    integer(v, op, 'padding', 0, 2 ** 24);
    return [v, v, v, v];
  }
  if (Array.isArray(v) && v.length === 4) {
    return v.map((p, i) => integer(p, op, `padding[${i}]`, 0, 2 ** 24)) as [number, number, number, number];
  }
  fail('E_ARG', `${op}: padding must be 'same', 'valid', a number or [top, bottom, left, right], got ${describe(v)}`);
}

/** Shape as a fresh array of positive integers whose product stays within limits. */
export function shape(v: unknown, op: string): number[] {
  if (!Array.isArray(v)) fail('E_SHAPE', `${op}: shape must be an array of positive integers, got ${describe(v)}`);
  if (v.length > 8) fail('E_SHAPE', `${op}: rank ${v.length} is above the limit of 8`);
  let size = 1;
  const out = v.map((d, i) => {
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 1) {
      fail('E_SHAPE', `${op}: shape [${v.join(', ')}] has dimension ${i} = ${String(d)}; every dimension must be a positive integer`);
    }
    size *= d;
    return d;
  });
  if (size > 2 ** 36) fail('E_SHAPE', `${op}: shape [${v.join(', ')}] has ${size} elements, above the limit of 2^36`);
  return out;
}

/**
 * Class labels as an Int32Array (from an Int32Array or an array of integers). A label outside
 * [0, 2^31) is refused here, before Int32Array would wrap it (2^32 + 1 → 1); the op checks it
 * against its class count.
 */
export function labels(v: unknown, op: string): Int32Array {
  if (v instanceof Int32Array) return v;
  if (Array.isArray(v)) {
    const out = allocate(Int32Array, v.length, op, 'labels');
    for (let i = 0; i < v.length; i++) {
      const l: unknown = v[i];
      if (typeof l !== 'number' || !Number.isInteger(l) || l < 0 || l > 2 ** 31 - 1) {
        fail('E_ARG', `${op}: label at index ${i} must be an integer in [0, ${2 ** 31 - 1}], got ${describe(l)}`);
      }
      out[i] = l;
    }
    return out;
  }
  fail('E_DTYPE', `${op}: labels must be an Int32Array or an array of integers, got ${describe(v)}`);
}

/** Values as a Float32Array: the one given, or an array of numbers copied (any other element is E_DTYPE, not NaN). */
export function float32(v: unknown, op: string, name: string): Float32Array {
  if (v instanceof Float32Array) return v;
  if (!Array.isArray(v)) fail('E_DTYPE', `${op}: ${name} must be a Float32Array or an array of numbers, got ${describe(v)}`);
  const out = allocate(Float32Array, v.length, op, name);
  for (let i = 0; i < v.length; i++) {
    const x: unknown = v[i];
    if (typeof x !== 'number') fail('E_DTYPE', `${op}: ${name}[${i}] must be a number, got ${x === undefined ? 'undefined (a hole?)' : describe(x)}`);
    out[i] = x;
  }
  return out;
}

/**
 * `new Type(length)` for a length that follows from the caller's input: a length the engine
 * cannot hold, or memory it cannot get, is E_ALLOC naming `what` and the size, not a RangeError.
 */
export function allocate<T>(Type: new (length: number) => T, length: number, op: string, what: string): T {
  try {
    return new Type(length);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    fail('E_ALLOC', `${op}: cannot allocate ${what} of ${length} elements (${err.message})`);
  }
}

/** An options object whose keys are all in `allowed` (a typo is an error, not a silent default). */
export function keys(v: unknown, op: string, allowed: readonly string[]): void {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail('E_ARG', `${op}: options must be an object, got ${describe(v)}`);
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k)) fail('E_ARG', `${op}: unknown option '${k}' (known: ${allowed.join(', ')})`);
  }
}

/** A non-null object that is not an array (a JSON object, an options bag). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Whether two shapes have the same rank and dimensions. */
export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Arithmetic precisions a model can run in: 'fp32', or fp16 / bf16 mixed precision. */
export const PRECISIONS = ['fp32', 'fp16', 'bf16'] as const;
export type Precision = (typeof PRECISIONS)[number];
