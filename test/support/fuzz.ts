// Fuzzing support for the file readers' tests (test/fuzz_*.test.ts): seeded byte-level
// mutations of a valid file, structural mutations of JSON values, a guard that records the
// largest buffer JavaScript code asks for while a reader runs (so a test can check that no
// reader allocates more than the file it was given justifies), and the hostile families every
// reader must answer at once with a ResNetError: special files where a file is expected,
// JSON nested deeper than any walker's stack, and calls that must settle within a time.
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, openSync, symlinkSync } from 'node:fs';

import { expect } from 'vitest';

import { ResNetError } from '../../lib/index.js';
import { expectCode } from './expect_error.js';
import { Rng } from './random.js';

/** Values that break size arithmetic, types and parsers. */
export const HOSTILE_NUMBERS: readonly unknown[] = [
  -1,
  0,
  1,
  2 ** 31,
  2 ** 32 + 1,
  2 ** 53,
  2 ** 53 + 2,
  1e308,
  -1e308,
  1.5,
  Number.MAX_SAFE_INTEGER,
  65537,
  1e9,
];
export const HOSTILE_VALUES: readonly unknown[] = [
  ...HOSTILE_NUMBERS,
  null,
  true,
  'x',
  '',
  '9'.repeat(400),
  [],
  [1, 2],
  {},
  { a: 1 },
  [[[[]]]],
  [-1],
  [1e12, 1e12],
];

/** One mutation of `bytes`, chosen at random: truncation, bit flips, byte overwrites, splices. */
export function mutateBytes(bytes: Uint8Array, rng: Rng, focus?: { start: number; end: number }): { data: Uint8Array; how: string } {
  const n = bytes.length;
  // Most mutations land where the structure lives (the header) when a focus is given.
  const at = () => (focus && rng.next() < 0.8 ? rng.int(focus.start, Math.max(focus.start, focus.end - 1)) : rng.int(0, Math.max(0, n - 1)));
  switch (rng.int(0, 5)) {
    case 0: {
      const len = rng.next() < 0.3 ? rng.int(0, Math.min(n, 16)) : rng.int(0, n - 1);
      return { data: bytes.slice(0, len), how: `truncated to ${len} bytes` };
    }
    case 1: {
      const out = bytes.slice();
      const flips = rng.int(1, 8);
      for (let k = 0; k < flips; k++) out[at()] ^= 1 << rng.int(0, 7);
      return { data: out, how: `${flips} bit flips` };
    }
    case 2: {
      const out = bytes.slice();
      const value = rng.pick([0x00, 0xff, 0x7f, 0x80, 0x22, 0x7b, 0x7d, 0x5b, 0x2c, 0x39, 0x2d, 0x30]);
      const count = rng.int(1, 4);
      const p = at();
      out.fill(value, p, Math.min(n, p + count));
      return { data: out, how: `${count} bytes at ${p} set to 0x${value.toString(16)}` };
    }
    case 3: {
      // Duplicate or drop a run: shifts everything after it.
      const p = at();
      const len = Math.min(rng.int(1, 64), n - p);
      const head = bytes.subarray(0, p + len);
      const tail = bytes.subarray(p + len);
      const dup = rng.next() < 0.5;
      const out = new Uint8Array(dup ? n + len : n - len);
      if (dup) {
        out.set(head, 0);
        out.set(bytes.subarray(p, p + len), head.length);
        out.set(tail, head.length + len);
      } else {
        out.set(bytes.subarray(0, p), 0);
        out.set(tail, p);
      }
      return { data: out, how: `run of ${len} at ${p} ${dup ? 'duplicated' : 'dropped'}` };
    }
    case 4: {
      const len = rng.int(1, 32);
      const extra = new Uint8Array(len);
      for (let i = 0; i < len; i++) extra[i] = rng.int(0, 255);
      const out = new Uint8Array(n + len);
      out.set(bytes, 0);
      out.set(extra, n);
      return { data: out, how: `${len} random bytes appended` };
    }
    default: {
      const out = bytes.slice();
      const p = at();
      const len = rng.int(1, 16);
      for (let i = p; i < Math.min(n, p + len); i++) out[i] = rng.int(0, 255);
      return { data: out, how: `${len} random bytes at ${p}` };
    }
  }
}

/**
 * A copy of the JSON value `v` with one node somewhere inside replaced by a hostile value
 * (or removed, or given an extra key). `path` says where, for failure messages.
 */
export function mutateJson(v: unknown, rng: Rng): { value: unknown; path: string } {
  const copy = JSON.parse(JSON.stringify(v)) as unknown;
  // Collect container slots, then change one.
  const slots: { parent: Record<string, unknown> | unknown[]; key: string | number; path: string }[] = [];
  const visit = (node: unknown, path: string) => {
    if (Array.isArray(node)) {
      node.forEach((c, i) => {
        slots.push({ parent: node, key: i, path: `${path}[${i}]` });
        visit(c, `${path}[${i}]`);
      });
    } else if (typeof node === 'object' && node !== null) {
      for (const [k, c] of Object.entries(node)) {
        slots.push({ parent: node as Record<string, unknown>, key: k, path: `${path}.${k}` });
        visit(c, `${path}.${k}`);
      }
    }
  };
  visit(copy, '$');
  if (slots.length === 0) return { value: rng.pick(HOSTILE_VALUES), path: '$' };
  const slot = rng.pick(slots);
  const r = rng.next();
  if (r < 0.15 && !Array.isArray(slot.parent)) {
    delete (slot.parent as Record<string, unknown>)[slot.key as string];
    return { value: copy, path: `${slot.path} removed` };
  }
  if (r < 0.2 && !Array.isArray(slot.parent)) {
    (slot.parent as Record<string, unknown>)[`${String(slot.key)}_extra`] = rng.pick(HOSTILE_VALUES);
    return { value: copy, path: `${slot.path}_extra added` };
  }
  const old = (slot.parent as Record<string | number, unknown>)[slot.key];
  const replacement = typeof old === 'number' && r < 0.7 ? rng.pick(HOSTILE_NUMBERS) : rng.pick(HOSTILE_VALUES);
  (slot.parent as Record<string | number, unknown>)[slot.key] = replacement;
  return { value: copy, path: `${slot.path} = ${JSON.stringify(replacement)?.slice(0, 40)}` };
}

/**
 * Runs `body` with the global typed-array and ArrayBuffer constructors wrapped so that every
 * buffer JavaScript code creates is measured; returns the largest, in bytes. (Node's own
 * internals keep their original constructors, so fs.readFile's buffer of the file is not
 * counted: its size is the file's.) Synchronous install/uninstall around an async body: run
 * one guarded body at a time.
 */
export async function largestAllocation<T>(body: () => Promise<T>): Promise<{ result: T | undefined; error: unknown; largest: number }> {
  const names = [
    'ArrayBuffer',
    'Uint8Array',
    'Int8Array',
    'Uint16Array',
    'Int16Array',
    'Uint32Array',
    'Int32Array',
    'Float32Array',
    'Float64Array',
    'BigInt64Array',
    'BigUint64Array',
  ] as const;
  const g = globalThis as unknown as Record<string, unknown>;
  const saved = new Map<string, unknown>();
  let largest = 0;
  const measure = (ctor: { BYTES_PER_ELEMENT?: number }, args: unknown[]) => {
    const a = args[0];
    const per = ctor.BYTES_PER_ELEMENT ?? 1;
    // new T(length) and new ArrayBuffer(bytes); new T(buffer, offset, length) views existing memory.
    if (typeof a === 'number') largest = Math.max(largest, a * per);
    else if (a && typeof a === 'object' && 'length' in a) {
      largest = Math.max(largest, Number((a as { length: number }).length) * per);
    }
  };
  for (const name of names) {
    const ctor = g[name] as new (...args: unknown[]) => unknown;
    saved.set(name, ctor);
    g[name] = new Proxy(ctor, {
      construct(target, args, newTarget) {
        measure(target as { BYTES_PER_ELEMENT?: number }, args);
        return Reflect.construct(target, args, newTarget === g[name] ? target : newTarget);
      },
    });
  }
  try {
    return { result: await body(), error: undefined, largest };
  } catch (error) {
    return { result: undefined, error, largest };
  } finally {
    for (const [name, ctor] of saved) g[name] = ctor;
  }
}

/** A short description of a thrown value that is not a ResNetError (a fuzz failure). */
export function describeUnexpected(err: unknown): string {
  if (err instanceof ResNetError) return `ResNetError ${err.code}: ${err.message}`;
  if (err instanceof Error) return `${err.constructor.name}: ${err.message}\n${err.stack ?? ''}`;
  return String(err);
}

// ---------------------------------------------------------------------------------------------
// Special files

export type SpecialKind = 'FIFO' | 'symlink to /dev/zero' | 'directory' | 'symlink loop';
export const SPECIAL_KINDS: readonly SpecialKind[] = ['FIFO', 'symlink to /dev/zero', 'directory', 'symlink loop'];

const fifos: string[] = [];

/** Puts a special file of `kind` at `path` (POSIX only). */
export function makeSpecialFile(kind: SpecialKind, path: string): void {
  switch (kind) {
    case 'FIFO':
      execFileSync('mkfifo', [path]);
      fifos.push(path);
      break;
    case 'symlink to /dev/zero':
      symlinkSync('/dev/zero', path);
      break;
    case 'directory':
      mkdirSync(path);
      break;
    case 'symlink loop':
      symlinkSync(`${path}.other`, path);
      symlinkSync(path, `${path}.other`);
      break;
  }
}

/**
 * Releases any reader blocked in open() on a FIFO made here (opening the write end lets it
 * through), so that a failing test does not leave a libuv thread stuck and the worker hung.
 * Call it in afterEach.
 */
export function releaseFifos(): void {
  for (const p of fifos.splice(0)) {
    try {
      closeSync(openSync(p, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // no reader waiting (ENXIO), or gone
    }
  }
}

/** `f` as a call that rejects when it has not settled within `ms` (a reader blocked on a FIFO never does). */
export function within<T>(ms: number, f: () => Promise<T>): () => Promise<T> {
  return () =>
    Promise.race([
      f(),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms: the reader blocks`)), ms).unref()),
    ]);
}

/**
 * One hostile case of a fuzz family: `call` must answer within `limitMs` (a reader that blocks
 * is cut off after `timeoutMs`), with a ResNetError of `code` whose message holds every mention,
 * or, when `code` is undefined, by succeeding. Any other outcome fails the test naming `where`.
 */
export async function expectPromptAnswer<T>(
  where: string,
  call: () => Promise<T>,
  expected: { code?: string; mentions?: readonly string[]; limitMs: number; timeoutMs: number },
): Promise<T | undefined> {
  const started = performance.now();
  let result: T | undefined;
  if (expected.code === undefined) result = await within(expected.timeoutMs, call)();
  else {
    await expectCode(within(expected.timeoutMs, call), expected.code, ...(expected.mentions ?? [])).catch((err: unknown) => {
      throw new Error(`${where}: ${describeUnexpected(err)}`);
    });
  }
  expect(performance.now() - started, `${where}: time`).toBeLessThan(expected.limitMs);
  return result;
}

// ---------------------------------------------------------------------------------------------
// Deep nesting

/**
 * JSON text of `inner` wrapped in `depth` levels of arrays and objects, chosen at random:
 * valid JSON that JSON.parse accepts, but that any recursive walk of the value (JSON.stringify,
 * String(array), a reader's own walker) overflows the stack on when `depth` is large.
 */
export function nestJson(inner: string, depth: number, rng: Rng): string {
  const open: string[] = [];
  const close: string[] = [];
  for (let i = 0; i < depth; i++) {
    const object = rng.next() < 0.5;
    open.push(object ? '{"k":' : '[');
    close.push(object ? '}' : ']');
  }
  return open.join('') + inner + close.reverse().join('');
}

/** Nesting depths that span the readers' limit (256) and the stack's (about 10,000 frames). */
export const NESTING_DEPTHS: readonly number[] = [257, 1000, 20_000, 100_000];
