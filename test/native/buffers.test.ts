// Typed arrays that change under a native call. A typed array's memory belongs to JS, which can
// shrink it (a resizable ArrayBuffer), detach and free it (a transfer) or write it (a
// SharedArrayBuffer, from any thread) while a kernel runs on a libuv thread — and an option's
// getter is JS that runs in the middle of a synchronous call. Every binding copies a typed
// array, at its current length, after its other arguments are read (args.hpp,
// read_typed_array); augmentBatch used to keep a pointer into src, and Tensor.fromArray to take
// data's pointer before reading the shape, and both crashed.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

import { beforeAll, describe, expect, it } from 'vitest';

import { models, Tensor } from '../../lib/index.js';
import { ensureDist, packageRoot } from '../support/dist.js';
import { expectCode } from '../support/expect_error.js';

// The ES2022 lib the tests compile against predates resizable ArrayBuffers.
type Resizable = ArrayBuffer & { resize(bytes: number): void };
const resizable = (bytes: number) =>
  new (ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => Resizable)(bytes, { maxByteLength: bytes });

beforeAll(ensureDist, 300_000);

const dist = (file: string) => JSON.stringify(pathToFileURL(join(packageRoot, 'dist', file)).href);

// Each case runs in a child process: before the fix they crashed (SIGSEGV) instead of failing.
// UV_THREADPOOL_SIZE=1 and a long conv2d queued first keep the call under test waiting, so JS
// changes the buffer before its kernel runs, every time. The images take 34 MB, more than
// malloc's largest mmap threshold (32 MiB), so a freed src is unmapped rather than reused.
const CHILD = `
import { augmentBatch, ops, Tensor } from ${dist('index.js')};
import { native } from ${dist('native.js')};

const [h, w, c] = [32, 32, 3];
const count = 2800;
const n = count * h * w * c;
const options = { count, imageShape: [h, w, c], padding: 4, flip: true, seed: 7, step: 3 };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function pattern(a) {
  for (let i = 0; i < n; i++) a[i] = Math.sin(i * 0.01);
  return a;
}
function holdThreadPool() {
  const x = Tensor.fill([4, 64, 64, 64], 0.5);
  const f = Tensor.fill([3, 3, 64, 64], 0.01);
  return ops.conv2d(x, f, { padding: 'same' });
}
async function collect() {
  for (let i = 0; i < 4; i++) {
    gc();
    await sleep(20);
  }
}
async function augmented(src) {
  const dst = Tensor.zeros([count, h, w, c]);
  await augmentBatch(src, dst, options);
  return dst.toFloat32Array();
}
// augmentBatch on src while change(src) runs before the kernel; is dst what the values
// src held at the call give?
async function changedUnderAugment(src, change) {
  const expected = await augmented(pattern(new Float32Array(n)));
  const dst = Tensor.zeros([count, h, w, c]);
  const busy = holdThreadPool();
  const done = augmentBatch(src, dst, options);
  await change();
  await busy;
  await done;
  const got = dst.toFloat32Array();
  return { same: got.length === expected.length && got.every((v, i) => v === expected[i]) };
}
const failure = (f) => {
  try {
    const r = f();
    return r instanceof Promise ? r.then(() => ({ resolved: true }), (e) => ({ code: e.code, message: e.message })) : { returned: true };
  } catch (e) {
    return { code: e.code, message: e.message };
  }
};

const cases = {
  resized() {
    const buf = new ArrayBuffer(n * 4, { maxByteLength: n * 4 });
    return changedUnderAugment(pattern(new Float32Array(buf)), () => buf.resize(0));
  },
  transferred() {
    let buf = new ArrayBuffer(n * 4);
    return changedUnderAugment(pattern(new Float32Array(buf)), async () => {
      let moved = structuredClone(buf, { transfer: [buf] });
      moved = buf = null;
      await collect();
    });
  },
  shared() {
    const src = pattern(new Float32Array(new SharedArrayBuffer(n * 4)));
    return changedUnderAugment(src, () => src.fill(1e6));
  },
  // Synchronous calls: an argument's getter shrinks the array before the binding reads it.
  optionGetter() {
    const buf = new ArrayBuffer(n * 4, { maxByteLength: n * 4 });
    const dst = Tensor.zeros([count, h, w, c]);
    const o = { ...options, mean: null, std: null, get step() { buf.resize(0); return 3; } };
    return failure(() => native.augmentBatch(new Float32Array(buf), dst.handle, o));
  },
  shapeGetter() {
    const buf = new ArrayBuffer(n * 4, { maxByteLength: n * 4 });
    const shape = [count, h, w, c];
    Object.defineProperty(shape, 3, { get() { buf.resize(0); return c; } });
    return failure(() => new native.NativeTensor(new Float32Array(buf, 0, n), shape));
  },
};
process.stdout.write(JSON.stringify(await cases[process.argv[1]]()));
`;

/** Runs one case of CHILD; its JSON answer, or a failure naming how the child ended. */
async function child(name: string): Promise<Record<string, unknown>> {
  const run = promisify(execFile)(process.execPath, ['--expose-gc', '--input-type=module', '-e', CHILD, name], {
    cwd: packageRoot,
    env: { ...process.env, UV_THREADPOOL_SIZE: '1' },
  });
  const { stdout } = await run.catch((err: { code?: number; signal?: string; stderr?: string }) => {
    throw new Error(`case '${name}': the child ended with ${err.signal ?? `exit code ${err.code}`}: ${err.stderr?.slice(-2000)}`);
  });
  return JSON.parse(stdout) as Record<string, unknown>;
}

describe('typed arrays that JS changes under a native call', () => {
  it('augmentBatch: src’s resizable buffer shrunk to 0 before the kernel runs — dst gets the values src held at the call', async () => {
    expect(await child('resized')).toEqual({ same: true });
  }, 60_000);

  it('augmentBatch: src’s buffer transferred away and collected before the kernel runs — dst gets the values src held at the call', async () => {
    expect(await child('transferred')).toEqual({ same: true });
  }, 60_000);

  it('augmentBatch: a SharedArrayBuffer-backed src overwritten before the kernel runs — dst gets the values src held at the call', async () => {
    expect(await child('shared')).toEqual({ same: true });
  }, 60_000);

  it('augmentBatch at the binding: an option getter that shrinks src to 0 gives E_SHAPE (src is read after the options)', async () => {
    const r = await child('optionGetter');
    expect(r.code, String(r.message)).toBe('E_SHAPE');
    expect(r.message).toContain('src has 0 floats');
  }, 60_000);

  it('NativeTensor at the binding: a shape getter that shrinks data’s buffer gives E_SHAPE (data is read after the shape)', async () => {
    const r = await child('shapeGetter');
    expect(r.code, String(r.message)).toBe('E_SHAPE');
    expect(r.message).toContain('data has 0 elements');
  }, 60_000);
});

describe('resizable and shared typed arrays are read at their current length', () => {
  it('Tensor.fromArray, setParameter and trainStep labels', async () => {
    const buf = resizable(16 * 4);
    const view = new Float32Array(buf); // tracks the buffer's length
    view.set(Array.from({ length: 16 }, (_, i) => i));
    expect(Array.from(Tensor.fromArray(view, [4, 4]).toFloat32Array())).toEqual(Array.from({ length: 16 }, (_, i) => i));
    buf.resize(8 * 4);
    expect(Array.from(Tensor.fromArray(view, [2, 4]).toFloat32Array())).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    await expectCode(() => Tensor.fromArray(view, [4, 4]), 'E_SHAPE', 'data has 8 elements');

    const model = models.resnetCifar({ depth: 8, inputShape: [8, 8, 3], classes: 4, seed: 1 });
    model.compile({ optimizer: { type: 'adamw', lr: 0.01 } });
    const p = model.parameterInfo().find((q) => q.trainable)!;
    const size = p.shape.reduce((a, b) => a * b, 1);
    const shared = new Float32Array(new SharedArrayBuffer(size * 4)).fill(0.25);
    model.setParameter(p.name, shared);
    expect(model.getParameter(p.name).every((v) => v === 0.25)).toBe(true);
    const grow = resizable(size * 4);
    const tracking = new Float32Array(grow).fill(0.5);
    grow.resize((size - 1) * 4);
    await expectCode(() => model.setParameter(p.name, tracking), 'E_SHAPE', String(size - 1));

    const labels = new Int32Array(new SharedArrayBuffer(2 * 4));
    labels.set([1, 3]);
    const metrics = await model.trainStep(Tensor.fill([2, 8, 8, 3], 0.5), labels);
    expect(Number.isFinite(metrics.loss)).toBe(true);
    model.dispose();
  });
});
