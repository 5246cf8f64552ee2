// PyTorch's torch.save files (.pth / .pt): a zip archive
//   <name>/data.pkl      the pickled object (lib/io/pytorch_pickle.ts unpickles it, restricted)
//   <name>/data/<key>    the bytes of each storage, little-endian
//   <name>/byteorder     'little' (absent in older files: little)
//   <name>/version       the archive format version
// read as a state_dict: names → tensors, each read as float32 on demand. Tensors may be views
// (any strides, an offset into a storage shared with others); they are copied out in
// row-major order.
//
// Which dict is the state_dict: the top-level object when it is a dict of tensors (what
// torch.save(model.state_dict()) writes); otherwise the first of the keys in NESTED_KEYS
// whose value is one (training checkpoints: {'state_dict': …, 'epoch': …}, {'model': …}).
// The key that was used is `picked`.
//
// Refused with E_FORMAT naming the file: the legacy (pre-1.6, non-zip) format, TorchScript
// archives (torch.jit.save), anything the unpickler refuses, storages missing from the
// archive or whose size disagrees with the pickle, tensors reaching past their storage,
// big-endian archives.
import { constants as bufferConstants } from 'node:buffer';

import { ResNetError } from '../errors.js';
import { bfloat16ToFloat32, float16ToFloat32 } from './half_float.js';
import { TorchStorage, TorchTensor, type PickleValue, STORAGE_TYPES, unpickle } from './pytorch_pickle.js';
import { openRegularFile, readExactly, readRegularFile } from './read_file.js';
import { SafetensorsReader } from './safetensors.js';
import { looksLikeZip, ZipArchive } from './zip_archive.js';
import { describeFile, wrongFormatErrorFor } from './file_kind.js';

/** Keys of a training checkpoint that may hold the state_dict, tried in this order. */
export const NESTED_KEYS = ['state_dict', 'model_state_dict', 'model', 'module', 'net', 'weights'] as const;

/** The largest .pth read (torchvision's largest ResNet file is 485 MB). */
const MAX_FILE_BYTES = Math.min(8 * 1024 ** 3, bufferConstants.MAX_LENGTH);
/** data.pkl of a state_dict is a few hundred KB. */
const MAX_PICKLE_BYTES = 64 * 1024 * 1024;
/** Tensors listed in an error. */
const LIST_MAX = 12;

/** The hint given for the pre-1.6 format. */
export const LEGACY_HINT = 'legacy format: re-save with torch.save(..., _use_new_zipfile_serialization=True)';

/**
 * The first bytes of the legacy torch.save format: PROTO 2, then LONG1 of 10 bytes holding its
 * magic number 0x1950a86a20f9469cfc6c (all 14 bytes compared: a safetensors file starts with
 * its header's length, whose first byte may well be 0x80).
 */
const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
export const SNIFF_BYTES = LEGACY_MAGIC.length;

function isLegacyTorch(head: Uint8Array): boolean {
  return head.length >= LEGACY_MAGIC.length && LEGACY_MAGIC.every((b, i) => head[i] === b);
}

/**
 * True when the first SNIFF_BYTES bytes are those of a .pth: a zip's local header signature
 * (torch's writer leaves the rest of the header's first bytes zero; a safetensors file would
 * need a header of exactly 67,324,752 bytes to start so) or the legacy magic.
 */
export function looksLikeTorchFile(head: Uint8Array): boolean {
  return looksLikeZip(head) || isLegacyTorch(head);
}

export interface TorchEntry {
  shape: readonly number[];
  /** 'F32', 'F16', 'BF16', 'F64', 'I64', … */
  dtype: string;
}

export class TorchFile {
  readonly path: string;
  /** The checkpoint key the state_dict came from ('' when it is the top-level object). */
  readonly picked: string;
  readonly #zip: ZipArchive;
  readonly #prefix: string;
  readonly #tensors: Map<string, TorchTensor>;
  readonly #where: string;
  /** Converted storages that more than one tensor views (the others are not kept: a 500 MB file stays one copy). */
  readonly #storages = new Map<string, Float32Array>();
  readonly #shared = new Set<string>();

  private constructor(path: string, zip: ZipArchive, prefix: string, tensors: Map<string, TorchTensor>, picked: string, where: string) {
    this.path = path;
    this.#zip = zip;
    this.#prefix = prefix;
    this.#tensors = tensors;
    this.picked = picked;
    this.#where = where;
    const seen = new Set<string>();
    for (const t of tensors.values()) {
      if (seen.has(t.storage.key)) this.#shared.add(t.storage.key);
      seen.add(t.storage.key);
    }
  }

  /** Reads and checks `path` (E_IO when it cannot be read, E_FORMAT when it is no state_dict .pth). */
  static async open(path: string, op: string): Promise<TorchFile> {
    const bytes = await readRegularFile(path, { op, maxBytes: MAX_FILE_BYTES, what: 'a PyTorch file' });
    return TorchFile.fromBytes(bytes, path, `${op}: '${path}'`);
  }

  /** As open, from the file's bytes; `where` starts every error message. */
  static fromBytes(bytes: Uint8Array, path: string, where: string): TorchFile {
    const fail: (what: string) => never = (what) => {
      throw new ResNetError('E_FORMAT', `${where} ${what}`);
    };
    if (isLegacyTorch(bytes)) fail(`is in PyTorch's ${LEGACY_HINT}`);
    if (!looksLikeZip(bytes)) fail('is not a PyTorch zip archive (torch.save since PyTorch 1.6) nor safetensors');
    const zip = new ZipArchive(bytes, where);
    const names = zip.names();
    const pickles = names.filter((n) => /^[^/]+\/data\.pkl$/.test(n));
    const prefix = pickles.length === 1 ? pickles[0]!.slice(0, -'data.pkl'.length) : '';
    if (names.some((n) => /^[^/]+\/(constants\.pkl|code\/)/.test(n))) {
      fail(
        'is a TorchScript archive (torch.jit.save), not a state_dict; in Python, save its weights with ' +
          "torch.save(torch.jit.load(path).state_dict(), 'weights.pth') and load that",
      );
    }
    if (pickles.length !== 1)
      fail(pickles.length === 0 ? 'has no <name>/data.pkl: it is a zip but not a torch.save archive' : 'has more than one data.pkl');
    if (zip.has(`${prefix}byteorder`)) {
      const order = new TextDecoder().decode(zip.read(`${prefix}byteorder`, 16));
      if (order !== 'little')
        fail(`is stored ${order === 'big' ? 'big-endian' : `in byte order '${order.slice(0, 16)}'`}; only little-endian files are read`);
    }
    const top = unpickle(zip.read(pickles[0]!, MAX_PICKLE_BYTES), where);
    const { dict, picked } = pickStateDict(top, fail);

    const tensors = new Map<string, TorchTensor>();
    for (const [key, value] of dict) {
      if (typeof key !== 'string') fail(`has a state_dict key that is not a string (${typeof key})`);
      if (!(value instanceof TorchTensor)) fail(`has a state_dict entry '${key}' that is not a tensor`);
      const s = value.storage;
      const entryName = `${prefix}data/${s.key}`;
      const e = zip.entry(entryName);
      if (!e) fail(`has no storage '${entryName}' for tensor '${key}'`);
      const bytesPer = STORAGE_TYPES[storageTypeOf(s.dtype)]!.bytes;
      if (s.numel * bytesPer !== e.size) {
        fail(`storage '${entryName}' declares ${s.numel} ${s.dtype} elements (${s.numel * bytesPer} bytes) but holds ${e.size} bytes`);
      }
      tensors.set(key, value);
    }
    return new TorchFile(path, zip, prefix, tensors, picked, where);
  }

  /** State_dict keys in the file's order. */
  names(): string[] {
    return [...this.#tensors.keys()];
  }

  has(name: string): boolean {
    return this.#tensors.has(name);
  }

  entry(name: string): TorchEntry {
    const t = this.#tensor(name);
    return { shape: t.shape, dtype: t.storage.dtype };
  }

  /** The tensor as float32, row-major (F32 as is; F16, BF16, F64 converted). Other dtypes: E_DTYPE. */
  async readFloat32(name: string): Promise<Float32Array> {
    return Promise.resolve(this.readFloat32Sync(name));
  }

  readFloat32Sync(name: string): Float32Array {
    const t = this.#tensor(name);
    const values = this.#storage(t.storage, name);
    return gather(values, t);
  }

  async close(): Promise<void> {
    this.#storages.clear();
    return Promise.resolve();
  }

  #tensor(name: string): TorchTensor {
    const t = this.#tensors.get(name);
    if (!t) throw new ResNetError('E_ARG', `${this.#where}: no tensor named '${name}'`);
    return t;
  }

  /** A storage's values as float32 (read once when tensors share it). */
  #storage(s: TorchStorage, tensor: string): Float32Array {
    const cached = this.#storages.get(s.key);
    if (cached) return cached;
    if (s.dtype !== 'F32' && s.dtype !== 'F16' && s.dtype !== 'BF16' && s.dtype !== 'F64') {
      throw new ResNetError('E_DTYPE', `${this.#where}: tensor '${tensor}' is ${s.dtype}; only F32, F16, BF16 and F64 convert to float32`);
    }
    const raw = this.#zip.read(`${this.#prefix}data/${s.key}`, s.numel * STORAGE_TYPES[storageTypeOf(s.dtype)]!.bytes);
    // Typed arrays need aligned offsets; torch aligns its entries to 64 bytes, other writers may not.
    const bytes = raw.byteOffset % 8 === 0 ? raw : new Uint8Array(raw); // a copy (Buffer.slice would be a view)
    let values: Float32Array;
    switch (s.dtype) {
      case 'F32':
        values = new Float32Array(bytes.buffer, bytes.byteOffset, s.numel);
        break;
      case 'F64':
        values = Float32Array.from(new Float64Array(bytes.buffer, bytes.byteOffset, s.numel));
        break;
      case 'F16':
        values = float16ToFloat32(new Uint16Array(bytes.buffer, bytes.byteOffset, s.numel));
        break;
      default:
        values = bfloat16ToFloat32(new Uint16Array(bytes.buffer, bytes.byteOffset, s.numel));
    }
    if (this.#shared.has(s.key)) this.#storages.set(s.key, values);
    return values;
  }
}

function storageTypeOf(dtype: string): string {
  for (const [name, t] of Object.entries(STORAGE_TYPES)) if (t.dtype === dtype) return name;
  return 'FloatStorage';
}

/** The state_dict inside `top` (see the header), or E_FORMAT saying what the file holds. */
function pickStateDict(top: PickleValue, fail: (what: string) => never): { dict: Map<PickleValue, PickleValue>; picked: string } {
  const isStateDict = (v: PickleValue | undefined): v is Map<PickleValue, PickleValue> =>
    v instanceof Map && v.size > 0 && [...v.values()].every((x) => x instanceof TorchTensor);
  if (isStateDict(top)) return { dict: top, picked: '' };
  if (top instanceof Map) {
    for (const key of NESTED_KEYS) {
      const v = top.get(key);
      if (isStateDict(v)) return { dict: v, picked: key };
    }
    const keys = [...top.keys()].map((k) => (typeof k === 'string' ? `'${k.slice(0, 60)}'` : typeof k));
    const shown = keys.slice(0, LIST_MAX).join(', ') + (keys.length > LIST_MAX ? `, … (${keys.length} keys)` : '');
    fail(
      `holds a dict that is no state_dict (keys: ${shown || 'none'}); expected a dict of tensors, or a checkpoint with one under ` +
        NESTED_KEYS.map((k) => `'${k}'`).join(', '),
    );
  }
  return fail(
    `holds ${top === null ? 'None' : Array.isArray(top) ? 'a list' : typeof top === 'object' ? top.constructor.name : typeof top}, not a state_dict`,
  );
}

/** Copies the view `t` of `values` out in row-major order. */
function gather(values: Float32Array, t: TorchTensor): Float32Array {
  const { shape, stride, offset } = t;
  const numel = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(numel);
  if (numel === 0) return out;
  let contiguous = true;
  for (let d = shape.length - 1, step = 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== step) contiguous = false;
    step *= shape[d]!;
  }
  if (contiguous) {
    out.set(values.subarray(offset, offset + numel));
    return out;
  }
  // An odometer over the indices; `at` follows the storage position.
  const rank = shape.length;
  const index = new Array<number>(rank).fill(0);
  let at = offset;
  for (let i = 0; i < numel; i++) {
    out[i] = values[at]!;
    for (let d = rank - 1; d >= 0; d--) {
      index[d]!++;
      at += stride[d]!;
      if (index[d]! < shape[d]!) break;
      at -= index[d]! * stride[d]!;
      index[d] = 0;
    }
  }
  return out;
}

/** A reader of named tensors: a SafetensorsReader or a TorchFile. */
export interface TensorSource {
  names(): string[];
  entry(name: string): { shape: readonly number[]; dtype: string };
  readFloat32(name: string): Promise<Float32Array>;
  close(): Promise<void>;
}

/**
 * Opens a state_dict file by its content, not its name: a zip (or legacy pickle) is PyTorch's
 * format, anything else is tried as safetensors. `op` names the caller in errors.
 */
const STATE_DICT = 'a torchvision state_dict (torch.save .pth / .pt, or safetensors)';

export async function openTensorFile(path: string, op: string): Promise<TensorSource> {
  const { handle, size } = await openRegularFile(path, op);
  let head: Uint8Array;
  try {
    head = await readExactly(handle, 0, Math.min(size, SNIFF_BYTES), op, path);
  } finally {
    await handle.close().catch(() => undefined);
  }
  if (looksLikeTorchFile(head)) {
    try {
      return await TorchFile.open(path, op);
    } catch (err) {
      // A zip of another kind (a Keras 3 .keras file, TorchScript's archive): say what it is.
      const d = err instanceof ResNetError && err.code === 'E_FORMAT' && looksLikeZip(head) ? await describeFile(path) : undefined;
      if (d && d.kind !== 'pytorch' && d.kind !== 'zip' && d.kind !== 'torchscript') throw wrongFormatErrorFor(op, path, d, STATE_DICT);
      throw err;
    }
  }
  // Other formats we know (Keras .h5, our own checkpoints, ONNX, TFLite, …) get their own words
  // instead of safetensors' complaint about a header.
  const d = await describeFile(path);
  if (d.kind !== 'safetensors' && d.kind !== 'unknown' && d.kind !== 'pickle') throw wrongFormatErrorFor(op, path, d, STATE_DICT);
  try {
    return await SafetensorsReader.open(path);
  } catch (err) {
    // A file meant as PyTorch's that is neither of its formats (a bare pickle.dump, a tar): say so.
    if (err instanceof ResNetError && err.code === 'E_FORMAT' && (/\.pth?$/i.test(path) || head[0] === 0x80)) {
      throw new ResNetError(
        'E_FORMAT',
        `${op}: '${path}' is neither a PyTorch file (torch.save's zip archive, or its ${LEGACY_HINT.split(':')[0]}) nor safetensors (${err.message})`,
      );
    }
    throw err;
  }
}
