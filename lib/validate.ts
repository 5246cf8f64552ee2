// Argument checks and normalisation for the public API: wrong JS types and values become
// a ResNetError naming the function and the argument before anything reaches native code.
import { ResNetError } from './errors.js';
import { Tensor } from './tensor.js';

export type Pair = number | [number, number];
export type Padding = 'same' | 'valid' | number | [number, number, number, number];

function describe(v: unknown): string {
  if (v === null) return 'null';
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

export function tensor(v: unknown, op: string, name: string): Tensor {
  if (!(v instanceof Tensor)) fail('E_ARG', `${op}: ${name} must be a Tensor, got ${describe(v)}`);
  if (v.isDisposed) fail('E_DISPOSED', `${op}: ${name} was disposed`);
  return v;
}

export function optionalTensor(v: unknown, op: string, name: string): Tensor | undefined {
  return v === undefined || v === null ? undefined : tensor(v, op, name);
}

export function integer(v: unknown, op: string, name: string, min: number, max = 2 ** 31 - 1): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    fail('E_ARG', `${op}: ${name} must be an integer in [${min}, ${max}], got ${describe(v)}`);
  }
  return v;
}

export function number(v: unknown, op: string, name: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    fail('E_ARG', `${op}: ${name} must be a finite number in [${min}, ${max}], got ${describe(v)}`);
  }
  return v;
}

export function string(v: unknown, op: string, name: string): string {
  if (typeof v !== 'string' || v.length === 0) fail('E_ARG', `${op}: ${name} must be a non-empty string, got ${typeof v === 'string' ? "''" : typeof v}`);
  return v;
}

export function boolean(v: unknown, op: string, name: string): boolean {
  if (typeof v !== 'boolean') fail('E_ARG', `${op}: ${name} must be a boolean, got ${describe(v)}`);
  return v;
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

/** Class labels as an Int32Array (from an Int32Array or an array of integers). */
export function labels(v: unknown, op: string): Int32Array {
  if (v instanceof Int32Array) return v;
  if (Array.isArray(v)) {
    const out = new Int32Array(v.length);
    v.forEach((l, i) => {
      if (typeof l !== 'number' || !Number.isInteger(l)) {
        fail('E_ARG', `${op}: label at index ${i} must be an integer, got ${describe(l)}`);
      }
      out[i] = l;
    });
    return out;
  }
  fail('E_DTYPE', `${op}: labels must be an Int32Array or an array of integers, got ${describe(v)}`);
}

/** An options object whose keys are all in `allowed` (a typo is an error, not a silent default). */
export function keys(v: unknown, op: string, allowed: readonly string[]): void {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail('E_ARG', `${op}: options must be an object, got ${describe(v)}`);
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k)) fail('E_ARG', `${op}: unknown option '${k}' (known: ${allowed.join(', ')})`);
  }
}
