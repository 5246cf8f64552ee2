// Reading HDF5 files (Keras' .h5 and the model.weights.h5 inside a .keras zip) with h5wasm: the
// HDF5 C library itself compiled to WebAssembly. Why h5wasm rather than jsfive (a pure-JS
// reader): it is the reference implementation, so every layout, B-tree, heap, filter and
// datatype that h5py writes is read the way h5py reads it; its memory is a wasm heap with a
// hard ceiling (2 GiB), and it is actively maintained (the HDF5 2.x releases).
//
// Why in a worker thread: measured here, the C library is not hardened against hostile files.
// Flipped bytes make it trap ('memory access out of bounds') — a WebAssembly trap is a caught
// exception, not a crash, but it leaves the library's global state broken, and every later
// call in that instance traps too. A malformed B-tree may also loop. So each file is read in a
// fresh worker (its own wasm instance), which is terminated after a time limit: whatever the
// file does, the caller gets an E_FORMAT, the next file a clean library, and the process lives.
//
// Why h5wasm's browser build (an in-memory file system) and not 'h5wasm/node': the Node build
// opens files on the real disk, so an HDF5 external link in a hostile file would make the C
// library open any path it names (a FIFO, /dev/zero, another user's file). Here the bytes are
// written into the instance's private in-memory file system and nothing else exists there.
//
// The worker returns the whole tree: groups, attributes (strings and numbers), and each
// dataset's shape, type and, for floating-point datasets within the byte budget, its values
// as float32. Limits: depth, object count, and decoded bytes (compressed bombs stop there).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

import { ResNetError } from '../errors.js';

/** The 8-byte HDF5 signature; a file may start with a user block of 512·2^k bytes before it. */
const SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

export type Hdf5Attribute = string | number | boolean | null | Hdf5Attribute[];

export interface Hdf5Dataset {
  kind: 'dataset';
  path: string;
  attrs: Record<string, Hdf5Attribute>;
  shape: number[];
  /** 'float' | 'int' | 'string' | 'other' (HDF5's type class, simplified). */
  type: 'float' | 'int' | 'string' | 'other';
  /** Bytes per element as stored. */
  size: number;
  /** The values as float32 (floating-point datasets only). */
  data?: Float32Array;
}

export interface Hdf5Group {
  kind: 'group';
  path: string;
  attrs: Record<string, Hdf5Attribute>;
  /** Child names in the file's order. */
  children: string[];
}

export interface Hdf5Other {
  kind: 'link' | 'other';
  path: string;
  attrs: Record<string, Hdf5Attribute>;
}

export type Hdf5Node = Hdf5Group | Hdf5Dataset | Hdf5Other;

export interface Hdf5ReadOptions {
  /** Most bytes of decoded dataset values in all. Default: twice the file's size plus 64 MiB. */
  maxDataBytes?: number;
  /** Abandon a file that takes longer (ms). Default: 30 s plus 1 s per 10 MB. */
  timeoutMs?: number;
}

/** The walk's bounds: far beyond any Keras file (a ResNet-152 .keras has ~3,000 objects, depth 6). */
const MAX_DEPTH = 64;
const MAX_OBJECTS = 500_000;
const MAX_ATTRIBUTE_BYTES = 64 << 20;

/** True when `bytes` holds the HDF5 signature at 0 or at a user-block offset (512, 1024, …). */
export function looksLikeHdf5(bytes: Uint8Array): boolean {
  for (let at = 0; at + 8 <= bytes.length; at = at === 0 ? 512 : at * 2) {
    if (SIGNATURE.every((b, i) => bytes[at + i] === b)) return true;
  }
  return false;
}

let moduleUrl: string | undefined;

/** h5wasm's in-memory (browser) build, found the way Node finds packages from here. */
function h5wasmUrl(op: string): string {
  if (moduleUrl) return moduleUrl;
  const require = createRequire(import.meta.url);
  for (const dir of require.resolve.paths('h5wasm') ?? []) {
    const file = join(dir, 'h5wasm', 'dist', 'esm', 'hdf5_hl.js');
    if (existsSync(file)) return (moduleUrl = pathToFileURL(file).href);
  }
  throw new ResNetError('E_IO', `${op}: the HDF5 reader (npm package h5wasm) is not installed`);
}

// The worker's code: plain JavaScript, run with `eval` so that it needs no file of its own
// (the same code then works from the TypeScript sources under test and from dist/). It
// answers one request at a time: { bytes, maxDataBytes } → { nodes } or { error, trap }.
const WORKER = String.raw`
const { parentPort, workerData } = require('node:worker_threads');
const { url, maxDepth, maxObjects, maxAttributeBytes } = workerData;
const started = (async () => {
  const h5 = await import(url);
  await h5.ready;
  // The C library prints its error stack to stderr: send this instance's stderr to /dev/null.
  try { h5.FS.close(h5.FS.streams[2]); h5.FS.open('/dev/null', 'w'); } catch (e) {}
  return h5;
})();
const read = (h5, bytes, maxDataBytes) => {
  const FS = h5.FS;
  const T = h5.Module.H5T_class_t;
  const typeOf = (m) =>
    m.type === T.H5T_FLOAT.value ? 'float' : m.type === T.H5T_INTEGER.value ? 'int' : m.type === T.H5T_STRING.value ? 'string' : 'other';
  const total = (shape) => shape.reduce((a, b) => a * Number(b), 1);
  const nodes = [];
  const transfer = [];
  let dataBytes = 0;
  let file;
  const attrsOf = (obj) => {
    const out = {};
    for (const [name, a] of Object.entries(obj.attrs)) {
      const m = a.metadata;
      const n = m.shape ? total(m.shape) : 1;
      if (n * m.size > maxAttributeBytes) throw new Error('attribute ' + JSON.stringify(name).slice(0, 80) + ' of ' + obj.path.slice(0, 200) + ' declares ' + n * m.size + ' bytes');
      const t = typeOf(m);
      if (t !== 'string' && t !== 'float' && t !== 'int') { out[name] = null; continue; }
      let v = a.json_value;
      if (typeof v === 'bigint') v = Number(v);
      if (ArrayBuffer.isView(v)) v = Array.from(v, Number);
      if (Array.isArray(v)) v = v.map((x) => (typeof x === 'bigint' ? Number(x) : x));
      out[name] = v;
    }
    return out;
  };
  const visit = (path, depth) => {
    if (nodes.length >= maxObjects) throw new Error('more than ' + maxObjects + ' objects (a cyclic or absurd file?)');
    if (depth > maxDepth) throw new Error('groups nested deeper than ' + maxDepth + ' (a cyclic file?)');
    const obj = path === '/' ? file : file.get(path);
    if (obj instanceof h5.Group) {
      const children = obj.keys();
      nodes.push({ kind: 'group', path, attrs: attrsOf(obj), children });
      for (const c of children) visit(path === '/' ? '/' + c : path + '/' + c, depth + 1);
    } else if (obj instanceof h5.Dataset) {
      const m = obj.metadata;
      const shape = (m.shape || []).map(Number);
      const type = typeOf(m);
      const node = { kind: 'dataset', path, attrs: attrsOf(obj), shape, type, size: m.size };
      if (type === 'float') {
        dataBytes += total(shape) * (m.size + 4);
        if (!(dataBytes <= maxDataBytes)) throw new Error('dataset ' + path.slice(0, 200) + ' [' + shape.join(', ') + '] takes the decoded data past ' + maxDataBytes + ' bytes');
        const v = obj.value;
        const f = v instanceof Float32Array ? v : Float32Array.from(v, Number);
        node.data = f;
        transfer.push(f.buffer);
      }
      nodes.push(node);
    } else {
      nodes.push({ kind: obj === null ? 'other' : 'link', path, attrs: {} });
    }
  };
  try {
    FS.writeFile('/file.h5', bytes);
    file = new h5.File('/file.h5', 'r');
    visit('/', 0);
    return { reply: { nodes }, transfer };
  } finally {
    try { if (file) file.close(); } catch (e) {}
    try { FS.unlink('/file.h5'); } catch (e) {}
  }
};
parentPort.on('message', async ({ bytes, maxDataBytes }) => {
  let h5;
  try {
    h5 = await started;
  } catch (e) {
    parentPort.postMessage({ fatal: 'cannot start the HDF5 reader (h5wasm): ' + (e && e.message) });
    return;
  }
  try {
    const { reply, transfer } = read(h5, bytes, maxDataBytes);
    parentPort.postMessage(reply, transfer);
  } catch (e) {
    const trap = e instanceof WebAssembly.RuntimeError;
    parentPort.postMessage({ error: String((e && e.message) || e), trap });
  }
});
`;

/**
 * The reader's worker, kept warm between files (starting h5wasm takes a second or two) and
 * discarded after a trap, a time-out, or 10 s idle. Files are read one at a time.
 */
interface Reader {
  worker: Worker;
  idle: NodeJS.Timeout | undefined;
}
let reader: Reader | undefined;
let queue: Promise<unknown> = Promise.resolve();
const IDLE_MS = 10_000;

function discard(r: Reader): void {
  if (r.idle) clearTimeout(r.idle);
  if (reader === r) reader = undefined;
  void r.worker.terminate();
}

function startReader(op: string): Reader {
  const worker = new Worker(WORKER, {
    eval: true,
    workerData: { url: h5wasmUrl(op), maxDepth: MAX_DEPTH, maxObjects: MAX_OBJECTS, maxAttributeBytes: MAX_ATTRIBUTE_BYTES },
    stderr: true, // the worker's own output stays out of the user's terminal
    stdout: true,
  });
  worker.stderr.resume();
  worker.stdout.resume();
  return { worker, idle: undefined };
}

interface Reply {
  nodes?: Hdf5Node[];
  error?: string;
  trap?: boolean;
  fatal?: string;
}

async function request(
  bytes: Uint8Array,
  maxDataBytes: number,
  timeoutMs: number,
  where: string,
  fail: (why: string) => ResNetError,
): Promise<Reply> {
  const r = reader ?? (reader = startReader(where.split(':')[0] ?? 'hdf5'));
  if (r.idle) clearTimeout(r.idle);
  r.worker.ref();
  const copy = new Uint8Array(bytes.length); // a copy of its own, transferred to the worker (Buffer.slice would share)
  copy.set(bytes);
  try {
    const reply = await new Promise<Reply>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        r.worker.off('message', onMessage);
        r.worker.off('error', onError);
        r.worker.off('exit', onExit);
      };
      const onMessage = (m: Reply) => {
        done();
        resolve(m);
      };
      const onError = (err: unknown) => {
        done();
        discard(r);
        reject(fail(`could not be read: ${clean(String((err as Error)?.message ?? err))}`));
      };
      const onExit = (code: number) => {
        done();
        discard(r);
        reject(fail(`could not be read (the HDF5 reader stopped with code ${code})`));
      };
      const timer = setTimeout(() => {
        done();
        discard(r);
        reject(fail(`took longer than ${Math.round(timeoutMs / 1000)} s to read (a malformed or cyclic HDF5 file?)`));
      }, timeoutMs);
      r.worker.on('message', onMessage);
      r.worker.on('error', onError);
      r.worker.on('exit', onExit);
      r.worker.postMessage({ bytes: copy, maxDataBytes }, [copy.buffer]);
    });
    if (reply.trap || reply.fatal) discard(r);
    return reply;
  } finally {
    if (reader === r) {
      r.worker.unref();
      r.idle = setTimeout(() => discard(r), IDLE_MS);
      r.idle.unref();
    }
  }
}

/** The first line of a library message, printable characters only, cut short. */
function clean(message: string): string {
  const line = message.split('\n').find((l) => l.trim().length > 0) ?? message;
  const printable = line.replace(/[^\x20-\x7e]/g, '?').trim();
  return printable.length > 200 ? `${printable.slice(0, 200)}…` : printable;
}

/**
 * Reads the HDF5 file in `bytes` (left unchanged) in a worker thread and returns its objects
 * by path ('/', '/model_weights', …). `where` names the file in errors ("loadKeras: 'm.h5'").
 * E_FORMAT for anything that is not a readable HDF5 file within the limits.
 */
export async function readHdf5(bytes: Uint8Array, where: string, options: Hdf5ReadOptions = {}): Promise<Map<string, Hdf5Node>> {
  const fail = (why: string) => new ResNetError('E_FORMAT', `${where} ${why}`);
  if (!looksLikeHdf5(bytes)) throw fail('is not an HDF5 file (no HDF5 signature)');
  const maxDataBytes = options.maxDataBytes ?? 2 * bytes.length + (64 << 20);
  const timeoutMs = options.timeoutMs ?? 30_000 + bytes.length / 10_000;
  const run = queue.then(() => request(bytes, maxDataBytes, timeoutMs, where, fail));
  queue = run.catch(() => undefined);
  const reply = await run;
  if (reply.fatal) throw new ResNetError('E_IO', `${where}: ${clean(reply.fatal)}`);
  if (reply.error !== undefined || !reply.nodes) {
    const why = clean(reply.error ?? 'no reply');
    throw fail(reply.trap ? `is not a readable HDF5 file (the HDF5 library failed on it: ${why})` : `is not a readable HDF5 file: ${why}`);
  }
  return new Map(reply.nodes.map((n) => [n.path, n]));
}
