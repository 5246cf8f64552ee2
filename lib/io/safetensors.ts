// A strict reader and writer of the safetensors format (https://github.com/huggingface/safetensors):
//
//   8 bytes   N, unsigned 64-bit little-endian: the length of the header
//   N bytes   UTF-8 JSON object, starting with '{' and possibly padded with trailing spaces:
//               { "__metadata__": { string: string }, name: { dtype, shape, data_offsets: [begin, end] }, … }
//   the rest  the data section; offsets are relative to its start, tensors are row-major, little-endian
//
// The reader checks the whole header before it allocates anything the size of a tensor: the
// file size, the header length (≤ 100 MB and within the file), the JSON, every entry (a known
// dtype, a shape of non-negative integers, offsets inside the data section whose length is
// numel · dtype size) and that the tensors tile the data section exactly (no overlap, no gap,
// nothing after the last one), as the reference implementation requires. Anything else is a
// ResNetError 'E_FORMAT' naming the file, the tensor and what is wrong; a file that cannot be
// opened or read is 'E_IO'. Files are read with positional reads: opening a 1 GB file reads
// its header only, and each tensor is read when asked for.
//
// The writer lays tensors out in the order given, pads the header with spaces so the data
// section starts at a multiple of 8, and writes atomically: a temporary file in the target's
// directory, fsync, rename over the target, fsync of the directory.
import { randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

import { ResNetError } from '../errors.js';

/** Element types of the format (sub-byte and 8-bit float types are read as raw bytes). */
export type SafetensorsDtype =
  | 'BOOL'
  | 'U8'
  | 'I8'
  | 'F8_E5M2'
  | 'F8_E4M3'
  | 'I16'
  | 'U16'
  | 'F16'
  | 'BF16'
  | 'I32'
  | 'U32'
  | 'F32'
  | 'F64'
  | 'I64'
  | 'U64';

/** What `read` returns for each dtype (F16/BF16 as their raw 16-bit patterns; `readFloat32` converts). */
export type SafetensorsArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array;

type ArrayCtor = { new (buffer: ArrayBuffer, byteOffset?: number, length?: number): SafetensorsArray; readonly BYTES_PER_ELEMENT: number };

const DTYPES: Record<SafetensorsDtype, { size: number; ctor: ArrayCtor }> = {
  BOOL: { size: 1, ctor: Uint8Array },
  U8: { size: 1, ctor: Uint8Array },
  I8: { size: 1, ctor: Int8Array },
  F8_E5M2: { size: 1, ctor: Uint8Array },
  F8_E4M3: { size: 1, ctor: Uint8Array },
  I16: { size: 2, ctor: Int16Array },
  U16: { size: 2, ctor: Uint16Array },
  F16: { size: 2, ctor: Uint16Array },
  BF16: { size: 2, ctor: Uint16Array },
  I32: { size: 4, ctor: Int32Array },
  U32: { size: 4, ctor: Uint32Array },
  F32: { size: 4, ctor: Float32Array },
  F64: { size: 8, ctor: Float64Array },
  I64: { size: 8, ctor: BigInt64Array },
  U64: { size: 8, ctor: BigUint64Array },
};

/** The reference implementation's cap on the header length. */
export const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = '__metadata__';
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function isSafetensorsDtype(v: unknown): v is SafetensorsDtype {
  return typeof v === 'string' && Object.prototype.hasOwnProperty.call(DTYPES, v);
}

/** Bytes per element of a dtype. */
export function dtypeSize(dtype: SafetensorsDtype): number {
  return DTYPES[dtype].size;
}

/** One header entry, checked. `begin`/`end` are byte offsets in the data section. */
export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Product of the shape (1 for a scalar, shape []). */
  numel: number;
  begin: number;
  end: number;
}

/** A checked header. */
export interface SafetensorsHeader {
  /** Entries ordered by their position in the data section. */
  tensors: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
  /** N, the header length. */
  headerBytes: number;
  /** Offset of the data section in the file: 8 + N. */
  dataStart: number;
  /** Length of the data section. */
  dataBytes: number;
}

/** A tensor to write. `data` may be a function, called when the tensor's turn to be written comes. */
export interface SafetensorsTensorInput {
  name: string;
  shape: readonly number[];
  /** Default: from the array type (Float32Array → F32, Int32Array → I32, BigInt64Array → I64, Uint8Array → U8, …). Required for F16/BF16 (Uint16Array of bit patterns). */
  dtype?: SafetensorsDtype;
  data: SafetensorsArray | (() => SafetensorsArray);
}

/** A tensor as read. */
export interface SafetensorsTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: SafetensorsArray;
}

function formatError(source: string, what: string): ResNetError {
  return new ResNetError('E_FORMAT', `safetensors '${source}': ${what}`);
}

function jsonPreview(v: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function safeNonNegativeInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** The header length from the first 8 bytes, checked against the file size and the cap. */
function headerLength(prefix: Uint8Array, fileBytes: number, source: string): number {
  if (fileBytes < 8) throw formatError(source, `the file is ${fileBytes} bytes, shorter than the 8-byte header length`);
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw formatError(source, `header length ${n} is above the limit of ${MAX_HEADER_BYTES} bytes (not a safetensors file?)`);
  }
  const len = Number(n);
  if (len > fileBytes - 8) {
    throw formatError(source, `header length ${len} runs past the end of the file (${fileBytes} bytes; truncated?)`);
  }
  if (len < 2) throw formatError(source, `header length ${len} is too short for a JSON object`);
  return len;
}

/** Checks a header against a data section of `dataBytes` bytes. Pure: no I/O. */
export function parseSafetensorsHeader(headerBytes: Uint8Array, dataBytes: number, source: string): SafetensorsHeader {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    throw formatError(source, 'the header is not valid UTF-8');
  }
  if (text.charCodeAt(0) !== 0x7b) throw formatError(source, `the header must start with '{', got ${jsonPreview(text.slice(0, 16))}`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw formatError(source, `the header is not valid JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(json)) throw formatError(source, 'the header must be a JSON object');

  let metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, value] of Object.entries(json)) {
    if (name === METADATA_KEY) {
      if (!isPlainObject(value)) throw formatError(source, `${METADATA_KEY} must be an object of strings, got ${jsonPreview(value)}`);
      metadata = Object.create(null) as Record<string, string>;
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== 'string') throw formatError(source, `${METADATA_KEY} '${k}' must be a string, got ${jsonPreview(v)}`);
        metadata[k] = v;
      }
      continue;
    }
    entries.push(checkEntry(name, value, dataBytes, source));
  }

  // The tensors must tile the data section: sorted by offset, each starts where the last ended.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous: SafetensorsEntry | undefined;
  for (const e of entries) {
    if (e.begin < cursor) {
      throw formatError(source, `tensor '${e.name}': data_offsets [${e.begin}, ${e.end}] overlap tensor '${previous!.name}' [${previous!.begin}, ${previous!.end}]`);
    }
    if (e.begin > cursor) {
      throw formatError(source, `tensor '${e.name}': data_offsets [${e.begin}, ${e.end}] leave a gap of ${e.begin - cursor} bytes after offset ${cursor}`);
    }
    cursor = e.end;
    previous = e;
  }
  if (cursor !== dataBytes) {
    throw formatError(source, `the tensors cover ${cursor} of the ${dataBytes} bytes of the data section (${dataBytes - cursor} bytes belong to no tensor)`);
  }
  const tensors = new Map<string, SafetensorsEntry>();
  for (const e of entries) tensors.set(e.name, e);
  return { tensors, metadata: { ...metadata }, headerBytes: headerBytes.length, dataStart: 8 + headerBytes.length, dataBytes };
}

function checkEntry(name: string, value: unknown, dataBytes: number, source: string): SafetensorsEntry {
  const where = `tensor '${name}'`;
  if (!isPlainObject(value)) throw formatError(source, `${where}: entry must be an object, got ${jsonPreview(value)}`);
  for (const k of Object.keys(value)) {
    if (k !== 'dtype' && k !== 'shape' && k !== 'data_offsets') throw formatError(source, `${where}: unknown field '${k}'`);
  }
  const { dtype, shape, data_offsets: offsets } = value;
  if (!isSafetensorsDtype(dtype)) throw formatError(source, `${where}: unknown dtype ${jsonPreview(dtype)}`);
  if (!Array.isArray(shape)) throw formatError(source, `${where}: shape must be an array, got ${jsonPreview(shape)}`);
  let numel = 1;
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i] as unknown;
    if (!safeNonNegativeInt(d)) throw formatError(source, `${where}: shape ${jsonPreview(shape)} has dimension ${i} = ${jsonPreview(d)}; dimensions must be non-negative integers`);
    numel *= d;
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !safeNonNegativeInt(offsets[0]) || !safeNonNegativeInt(offsets[1])) {
    throw formatError(source, `${where}: data_offsets must be [begin, end] of non-negative integers, got ${jsonPreview(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw formatError(source, `${where}: data_offsets [${begin}, ${end}] end before they begin`);
  if (end > dataBytes) {
    throw formatError(source, `${where}: data_offsets [${begin}, ${end}] run past the end of the data section (${dataBytes} bytes)`);
  }
  // numel may be astronomically large (or inexact past 2^53) only if it cannot match end − begin,
  // which is below the file size; compare as such.
  const bytes = numel * DTYPES[dtype].size;
  if (!Number.isSafeInteger(bytes) || bytes !== end - begin) {
    throw formatError(
      source,
      `${where}: ${dtype} shape [${shape.join(', ')}] needs ${Number.isSafeInteger(bytes) ? bytes : 'over 2^53'} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`,
    );
  }
  return { name, dtype, shape: [...(shape as number[])], numel, begin, end };
}

/** Bytes (little-endian, as stored) → a typed array of the dtype, in a fresh aligned buffer. */
function toArray(bytes: Uint8Array, dtype: SafetensorsDtype): SafetensorsArray {
  const { size, ctor } = DTYPES[dtype];
  const buf = new ArrayBuffer(bytes.length);
  const copy = new Uint8Array(buf);
  copy.set(bytes);
  if (!LITTLE_ENDIAN && size > 1) swapBytes(copy, size);
  return new ctor(buf, 0, bytes.length / size);
}

function swapBytes(b: Uint8Array, size: number): void {
  for (let i = 0; i < b.length; i += size) {
    for (let lo = i, hi = i + size - 1; lo < hi; lo++, hi--) {
      const t = b[lo]!;
      b[lo] = b[hi]!;
      b[hi] = t;
    }
  }
}

let halfTable: Float32Array | undefined;

/** IEEE half-precision bit patterns → float32 (exact: every half is a float32). */
export function float16ToFloat32(bits: Uint16Array): Float32Array {
  if (!halfTable) {
    const t = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const sign = (h & 0x8000) << 16;
      const exp = (h >> 10) & 0x1f;
      let mant = h & 0x3ff;
      if (exp === 0) {
        if (mant === 0) {
          t[h] = sign >>> 0;
        } else {
          // Subnormal: normalise.
          let e = 113; // 127 − 15 + 1
          while ((mant & 0x400) === 0) {
            mant <<= 1;
            e--;
          }
          t[h] = (sign | (e << 23) | ((mant & 0x3ff) << 13)) >>> 0;
        }
      } else if (exp === 31) {
        t[h] = (sign | 0x7f800000 | (mant << 13)) >>> 0;
      } else {
        t[h] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
      }
    }
    halfTable = new Float32Array(t.buffer);
  }
  const out = new Float32Array(bits.length);
  const table = halfTable;
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]!]!;
  return out;
}

/** bfloat16 bit patterns → float32 (exact: the upper half of a float32). */
export function bfloat16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = bits[i]! << 16;
  return new Float32Array(out.buffer);
}

/** A typed array of a float dtype → float32 (F64 rounded to nearest). Other dtypes: E_DTYPE. */
export function toFloat32(data: SafetensorsArray, dtype: SafetensorsDtype, what = 'tensor'): Float32Array {
  switch (dtype) {
    case 'F32':
      return data as Float32Array;
    case 'F16':
      return float16ToFloat32(data as Uint16Array);
    case 'BF16':
      return bfloat16ToFloat32(data as Uint16Array);
    case 'F64':
      return Float32Array.from(data as Float64Array);
    default:
      throw new ResNetError('E_DTYPE', `${what} is ${dtype}; only F32, F16, BF16 and F64 convert to float32`);
  }
}

// ---------------------------------------------------------------------------------------------
// Reading

/** An open safetensors file whose header has been checked; tensors are read on demand. */
export class SafetensorsReader {
  readonly path: string;
  readonly header: SafetensorsHeader;
  #fh: FileHandle | undefined;

  private constructor(path: string, fh: FileHandle, header: SafetensorsHeader) {
    this.path = path;
    this.#fh = fh;
    this.header = header;
  }

  /** Opens `path` and checks its header (and nothing more is read). E_IO / E_FORMAT. */
  static async open(path: string): Promise<SafetensorsReader> {
    if (typeof path !== 'string' || path.length === 0) throw new ResNetError('E_ARG', 'safetensors: path must be a non-empty string');
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      throw ioError('cannot open', path, err);
    }
    try {
      let size: number;
      try {
        const st = await fh.stat();
        if (!st.isFile()) throw new ResNetError('E_IO', `safetensors: '${path}' is not a regular file`);
        size = st.size;
      } catch (err) {
        throw err instanceof ResNetError ? err : ioError('cannot stat', path, err);
      }
      const prefix = await readExactly(fh, 0, Math.min(8, size), path);
      const n = headerLength(prefix, size, path);
      const headerBytes = await readExactly(fh, 8, n, path);
      const header = parseSafetensorsHeader(headerBytes, size - 8 - n, path);
      return new SafetensorsReader(path, fh, header);
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }

  get metadata(): Readonly<Record<string, string>> {
    return this.header.metadata;
  }

  /** Tensor names in data-section order. */
  names(): string[] {
    return [...this.header.tensors.keys()];
  }

  has(name: string): boolean {
    return this.header.tensors.has(name);
  }

  entry(name: string): SafetensorsEntry {
    const e = this.header.tensors.get(name);
    if (!e) throw new ResNetError('E_ARG', `safetensors '${this.path}': no tensor named '${name}'`);
    return e;
  }

  /** The tensor as stored: a typed array of its dtype (F16/BF16 as raw Uint16Array bit patterns). */
  async read(name: string): Promise<SafetensorsTensor> {
    const e = this.entry(name);
    const bytes = await this.#bytes(e);
    return { dtype: e.dtype, shape: [...e.shape], data: toArray(bytes, e.dtype) };
  }

  /** The tensor as float32 (F32 as is; F16, BF16, F64 converted). Other dtypes: E_DTYPE. */
  async readFloat32(name: string): Promise<Float32Array> {
    const e = this.entry(name);
    if (e.dtype !== 'F32' && e.dtype !== 'F16' && e.dtype !== 'BF16' && e.dtype !== 'F64') {
      throw new ResNetError('E_DTYPE', `safetensors '${this.path}': tensor '${name}' is ${e.dtype}; only F32, F16, BF16 and F64 convert to float32`);
    }
    const t = await this.read(name);
    return toFloat32(t.data, t.dtype, `tensor '${name}'`);
  }

  async #bytes(e: SafetensorsEntry): Promise<Uint8Array> {
    if (!this.#fh) throw new ResNetError('E_ARG', `safetensors '${this.path}': the reader is closed`);
    return readExactly(this.#fh, this.header.dataStart + e.begin, e.end - e.begin, this.path);
  }

  async close(): Promise<void> {
    const fh = this.#fh;
    this.#fh = undefined;
    if (fh) await fh.close().catch(() => undefined);
  }
}

function ioError(what: string, path: string, err: unknown): ResNetError {
  const e = err as NodeJS.ErrnoException;
  return new ResNetError('E_IO', `safetensors: ${what} '${path}': ${e?.code ? `${e.code} ` : ''}${e?.message ?? String(err)}`);
}

async function readExactly(fh: FileHandle, position: number, length: number, path: string): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    let bytesRead: number;
    try {
      ({ bytesRead } = await fh.read(out, done, length - done, position + done));
    } catch (err) {
      throw ioError('cannot read', path, err);
    }
    if (bytesRead === 0) {
      throw formatError(path, `the file ended at byte ${position + done} while reading ${length} bytes at ${position} (truncated or changed while reading?)`);
    }
    done += bytesRead;
  }
  return out;
}

/** Checks a whole file and reads its tensors (all, or those named). */
export async function readSafetensors(
  path: string,
  options: { names?: readonly string[] } = {},
): Promise<{ metadata: Record<string, string>; tensors: Map<string, SafetensorsTensor> }> {
  const reader = await SafetensorsReader.open(path);
  try {
    const names = options.names ?? reader.names();
    const tensors = new Map<string, SafetensorsTensor>();
    for (const n of names) tensors.set(n, await reader.read(n));
    return { metadata: { ...reader.metadata }, tensors };
  } finally {
    await reader.close();
  }
}

/** Checks and decodes safetensors bytes held in memory. */
export function decodeSafetensors(
  bytes: Uint8Array,
  source = '<buffer>',
): { metadata: Record<string, string>; tensors: Map<string, SafetensorsTensor> } {
  const n = headerLength(bytes, bytes.length, source);
  const header = parseSafetensorsHeader(bytes.subarray(8, 8 + n), bytes.length - 8 - n, source);
  const tensors = new Map<string, SafetensorsTensor>();
  for (const e of header.tensors.values()) {
    const start = header.dataStart + e.begin;
    tensors.set(e.name, { dtype: e.dtype, shape: [...e.shape], data: toArray(bytes.subarray(start, start + e.end - e.begin), e.dtype) });
  }
  return { metadata: header.metadata, tensors };
}

// ---------------------------------------------------------------------------------------------
// Writing

function dtypeOf(data: SafetensorsArray, where: string): SafetensorsDtype {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Float64Array) return 'F64';
  if (data instanceof Int32Array) return 'I32';
  if (data instanceof BigInt64Array) return 'I64';
  if (data instanceof Uint8Array) return 'U8';
  if (data instanceof Int8Array) return 'I8';
  if (data instanceof Int16Array) return 'I16';
  if (data instanceof Uint32Array) return 'U32';
  if (data instanceof BigUint64Array) return 'U64';
  throw new ResNetError('E_ARG', `${where}: give a dtype for data of type ${(data as object)?.constructor?.name ?? typeof data}`);
}

interface Planned {
  input: SafetensorsTensorInput;
  dtype: SafetensorsDtype;
  bytes: number;
}

/** Validates tensors and metadata and builds the (padded) header. */
function plan(
  tensors: readonly SafetensorsTensorInput[],
  metadata: Record<string, string>,
  op: string,
): { header: Uint8Array; planned: Planned[]; dataBytes: number } {
  if (!Array.isArray(tensors)) throw new ResNetError('E_ARG', `${op}: tensors must be an array of { name, shape, data }`);
  if (!isPlainObject(metadata)) throw new ResNetError('E_ARG', `${op}: metadata must be an object of strings`);
  const head: Record<string, unknown> = {};
  const meta: Record<string, string> = {};
  for (const k of Object.keys(metadata).sort()) {
    const v = metadata[k];
    if (typeof v !== 'string') throw new ResNetError('E_ARG', `${op}: metadata '${k}' must be a string, got ${typeof v}`);
    meta[k] = v;
  }
  if (Object.keys(meta).length > 0) head[METADATA_KEY] = meta;
  const planned: Planned[] = [];
  const seen = new Set<string>();
  let offset = 0;
  for (const raw of tensors as readonly unknown[]) {
    if (!isPlainObject(raw)) throw new ResNetError('E_ARG', `${op}: each tensor must be { name, shape, data }`);
    const t = raw as unknown as SafetensorsTensorInput;
    const { name, shape } = t;
    if (typeof name !== 'string' || name.length === 0 || name === METADATA_KEY) {
      throw new ResNetError('E_ARG', `${op}: tensor name must be a non-empty string other than '${METADATA_KEY}', got ${jsonPreview(name)}`);
    }
    if (seen.has(name)) throw new ResNetError('E_ARG', `${op}: tensor '${name}' is given twice`);
    seen.add(name);
    if (!Array.isArray(shape) || !shape.every(safeNonNegativeInt)) {
      throw new ResNetError('E_ARG', `${op}: tensor '${name}': shape must be an array of non-negative integers, got ${jsonPreview(shape)}`);
    }
    const data = t.data;
    let dtype = t.dtype;
    if (dtype === undefined) {
      if (typeof data === 'function') throw new ResNetError('E_ARG', `${op}: tensor '${name}': give a dtype when data is a function`);
      dtype = dtypeOf(data, `${op}: tensor '${name}'`);
    }
    if (!isSafetensorsDtype(dtype)) throw new ResNetError('E_ARG', `${op}: tensor '${name}': unknown dtype ${jsonPreview(dtype)}`);
    const numel = shape.reduce((a: number, b: number) => a * b, 1);
    const bytes = numel * DTYPES[dtype].size;
    if (!Number.isSafeInteger(bytes)) throw new ResNetError('E_ARG', `${op}: tensor '${name}': shape [${shape.join(', ')}] is too large`);
    if (typeof data !== 'function') checkData(data, dtype, numel, `${op}: tensor '${name}'`);
    head[name] = { dtype, shape: [...shape], data_offsets: [offset, offset + bytes] };
    planned.push({ input: t, dtype, bytes });
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(head));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded > MAX_HEADER_BYTES) throw new ResNetError('E_ARG', `${op}: the header would be ${padded} bytes, above the limit of ${MAX_HEADER_BYTES}`);
  const header = new Uint8Array(8 + padded).fill(0x20);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(json, 8);
  return { header, planned, dataBytes: offset };
}

function checkData(data: unknown, dtype: SafetensorsDtype, numel: number, where: string): SafetensorsArray {
  const { ctor } = DTYPES[dtype];
  if (!(data instanceof ctor)) {
    throw new ResNetError('E_ARG', `${where}: ${dtype} data must be a ${ctor.name}, got ${(data as object)?.constructor?.name ?? typeof data}`);
  }
  if (data.length !== numel) throw new ResNetError('E_ARG', `${where}: data has ${data.length} elements, the shape needs ${numel}`);
  return data;
}

function bytesOf(data: SafetensorsArray, dtype: SafetensorsDtype): Uint8Array {
  const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const size = DTYPES[dtype].size;
  if (LITTLE_ENDIAN || size === 1) return view;
  const copy = view.slice();
  swapBytes(copy, size);
  return copy;
}

/** The file's bytes in memory (small files, tests). Lazy `data` functions are called. */
export function encodeSafetensors(tensors: readonly SafetensorsTensorInput[], metadata: Record<string, string> = {}): Uint8Array {
  const op = 'encodeSafetensors';
  const { header, planned, dataBytes } = plan(tensors, metadata, op);
  const out = new Uint8Array(header.length + dataBytes);
  out.set(header, 0);
  let at = header.length;
  for (const p of planned) {
    const data = typeof p.input.data === 'function' ? p.input.data() : p.input.data;
    const numel = p.bytes / DTYPES[p.dtype].size;
    out.set(bytesOf(checkData(data, p.dtype, numel, `${op}: tensor '${p.input.name}'`), p.dtype), at);
    at += p.bytes;
  }
  return out;
}

/**
 * Writes a safetensors file atomically: to `${path}.tmp-${pid}-${random}` in the same directory,
 * fsync, rename over `path`, fsync the directory. On any failure the temporary file is removed,
 * an existing `path` is left as it was, and the error is E_IO naming the path (E_ARG for bad
 * tensors, before anything is written, or from a `data` function once writing has begun).
 */
export async function writeSafetensors(
  path: string,
  tensors: readonly SafetensorsTensorInput[],
  metadata: Record<string, string> = {},
  options: { op?: string } = {},
): Promise<void> {
  const op = options.op ?? 'writeSafetensors';
  if (typeof path !== 'string' || path.length === 0) throw new ResNetError('E_ARG', `${op}: path must be a non-empty string`);
  const { header, planned } = plan(tensors, metadata, op);
  await atomicWrite(path, op, async (fh) => {
    let position = 0;
    position = await writeAll(fh, header, position);
    for (const p of planned) {
      const data = typeof p.input.data === 'function' ? p.input.data() : p.input.data;
      const numel = p.bytes / DTYPES[p.dtype].size;
      position = await writeAll(fh, bytesOf(checkData(data, p.dtype, numel, `${op}: tensor '${p.input.name}'`), p.dtype), position);
    }
  });
}

async function writeAll(fh: FileHandle, bytes: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, position + done);
    if (bytesWritten <= 0) throw new Error('write made no progress');
    done += bytesWritten;
  }
  return position + done;
}

/** @internal Writes through `fill` into a temporary file, then renames it over `path`. */
export async function atomicWrite(path: string, op: string, fill: (fh: FileHandle) => Promise<void>): Promise<void> {
  const target = resolve(path);
  const dir = dirname(target);
  const tmp = join(dir, `${basename(target)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  let fh: FileHandle | undefined;
  let created = false;
  try {
    fh = await open(tmp, 'wx');
    created = true;
    await fill(fh);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, target);
    created = false;
  } catch (err) {
    if (fh) await fh.close().catch(() => undefined);
    if (created) await unlink(tmp).catch(() => undefined);
    if (err instanceof ResNetError) throw err;
    const e = err as NodeJS.ErrnoException;
    throw new ResNetError('E_IO', `${op}: could not write '${path}': ${e?.code ? `${e.code} ` : ''}${e?.message ?? String(err)}`);
  }
  await syncDirectory(dir, path, op);
}

async function syncDirectory(dir: string, path: string, op: string): Promise<void> {
  let dh: FileHandle | undefined;
  try {
    dh = await open(dir, 'r');
    await dh.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException)?.code;
    // Platforms (Windows) and file systems that cannot open or fsync a directory.
    if (code === 'EISDIR' || code === 'EPERM' || code === 'EACCES' || code === 'EINVAL' || code === 'ENOTSUP' || code === 'EBADF') return;
    throw new ResNetError('E_IO', `${op}: wrote '${path}' but could not sync its directory: ${code ?? ''} ${(err as Error)?.message ?? String(err)}`);
  } finally {
    if (dh) await dh.close().catch(() => undefined);
  }
}
