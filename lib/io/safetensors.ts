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
// opened or read, or is not a regular file (a FIFO, a device, a directory), is 'E_IO'. Files
// are read with positional reads, each tensor when asked for.
//
// Checksum: files this module writes record the CRC-32 of their data section in the metadata
// (`dataCrc32`, 8 hex digits; the reader returns it as header.dataCrc32, not with the rest of
// the metadata), and a file that records one is verified when it is opened (one sequential
// read of the data section) or decoded: a changed bit is an E_FORMAT, not weights that load
// silently. Files from elsewhere have no checksum and load as they are.
//
// The writer lays tensors out in the order given, pads the header with spaces so the data
// section starts at a multiple of 8, and writes atomically (lib/io/atomic_write.ts).
import type { FileHandle } from 'node:fs/promises';

import { ResNetError } from '../errors.js';
import { isPlainObject } from '../validate.js';
import { atomicWrite } from './atomic_write.js';
import { crc32 } from './crc32.js';
import { bfloat16ToFloat32, float16ToFloat32 } from './half_float.js';
import { parseJsonText } from './json_text.js';
import { openRegularFile, readExactly } from './read_file.js';

export { bfloat16ToFloat32, float16ToFloat32 } from './half_float.js';

/** Element types of the format (sub-byte and 8-bit float types are read as raw bytes). */
export type SafetensorsDtype =
  'BOOL' | 'U8' | 'I8' | 'F8_E5M2' | 'F8_E4M3' | 'I16' | 'U16' | 'F16' | 'BF16' | 'I32' | 'U32' | 'F32' | 'F64' | 'I64' | 'U64';

/** What `read` returns for each dtype (F16/BF16 as their raw 16-bit patterns; `readFloat32` converts). */
export type SafetensorsArray =
  Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | BigInt64Array | Uint8Array | Uint16Array | Uint32Array | BigUint64Array;

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
/** The metadata key holding the data section's CRC-32 as 8 lowercase hex digits. */
export const CHECKSUM_KEY = 'dataCrc32';
const CHECKSUM_PATTERN = /^[0-9a-f]{8}$/;
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
  /** The data section's CRC-32 as the file records it (files we write), else undefined; not in `metadata`. */
  dataCrc32: number | undefined;
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
    s = Array.isArray(v) ? `array(${v.length})` : typeof v; // String() of a deep array recurses too
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
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
  const json = parseJsonText(text, `safetensors '${source}': the header`);
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
      throw formatError(
        source,
        `tensor '${e.name}': data_offsets [${e.begin}, ${e.end}] overlap tensor '${previous!.name}' [${previous!.begin}, ${previous!.end}]`,
      );
    }
    if (e.begin > cursor) {
      throw formatError(
        source,
        `tensor '${e.name}': data_offsets [${e.begin}, ${e.end}] leave a gap of ${e.begin - cursor} bytes after offset ${cursor}`,
      );
    }
    cursor = e.end;
    previous = e;
  }
  if (cursor !== dataBytes) {
    throw formatError(
      source,
      `the tensors cover ${cursor} of the ${dataBytes} bytes of the data section (${dataBytes - cursor} bytes belong to no tensor)`,
    );
  }
  const tensors = new Map<string, SafetensorsEntry>();
  for (const e of entries) tensors.set(e.name, e);
  // The checksum belongs to the file, not to what its writer was given: it is not returned
  // with the metadata, so that decoding, editing and encoding again cannot carry a stale one.
  const recorded = metadata[CHECKSUM_KEY];
  if (recorded !== undefined && !CHECKSUM_PATTERN.test(recorded)) {
    throw formatError(source, `${METADATA_KEY} '${CHECKSUM_KEY}' must be 8 lowercase hex digits (a CRC-32), got ${jsonPreview(recorded)}`);
  }
  delete metadata[CHECKSUM_KEY];
  const dataCrc32 = recorded === undefined ? undefined : parseInt(recorded, 16);
  return { tensors, metadata: { ...metadata }, headerBytes: headerBytes.length, dataStart: 8 + headerBytes.length, dataBytes, dataCrc32 };
}

/** E_FORMAT when the header records a checksum that `actual` (the data section's CRC-32) is not. */
function checkChecksum(header: SafetensorsHeader, actual: number, source: string): void {
  if (header.dataCrc32 === undefined || header.dataCrc32 === actual) return;
  throw formatError(
    source,
    `the data section is corrupt: its CRC-32 is ${hex8(actual)} but the file records ${hex8(header.dataCrc32)} (changed after it was written: a bad disk, copy or transfer?)`,
  );
}

function hex8(v: number): string {
  return v.toString(16).padStart(8, '0');
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
    if (!safeNonNegativeInt(d))
      throw formatError(
        source,
        `${where}: shape ${jsonPreview(shape)} has dimension ${i} = ${jsonPreview(d)}; dimensions must be non-negative integers`,
      );
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

  /**
   * Opens `path` (a regular file) and checks its header; when the file records a checksum
   * and `verify` is not false, reads the data section once to check it. Tensors are read
   * when asked for. E_IO / E_FORMAT.
   */
  static async open(path: string, options: { verify?: boolean } = {}): Promise<SafetensorsReader> {
    if (typeof path !== 'string' || path.length === 0) throw new ResNetError('E_ARG', 'safetensors: path must be a non-empty string');
    const { handle: fh, size } = await openRegularFile(path, 'safetensors');
    try {
      const prefix = await readExactly(fh, 0, Math.min(8, size), 'safetensors', path);
      const n = headerLength(prefix, size, path);
      const headerBytes = await readExactly(fh, 8, n, 'safetensors', path);
      const header = parseSafetensorsHeader(headerBytes, size - 8 - n, path);
      if (options.verify !== false && header.dataCrc32 !== undefined) checkChecksum(header, await dataCrc32(fh, header, path), path);
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
    return readExactly(this.#fh, this.header.dataStart + e.begin, e.end - e.begin, 'safetensors', this.path);
  }

  async close(): Promise<void> {
    const fh = this.#fh;
    this.#fh = undefined;
    if (fh) await fh.close().catch(() => undefined);
  }
}

/** The CRC-32 of the data section, read in chunks of at most 4 MiB. */
async function dataCrc32(fh: FileHandle, header: SafetensorsHeader, path: string): Promise<number> {
  const chunk = Math.min(header.dataBytes, 4 << 20);
  let crc = 0;
  for (let done = 0; done < header.dataBytes; done += chunk) {
    const length = Math.min(chunk, header.dataBytes - done);
    crc = crc32(await readExactly(fh, header.dataStart + done, length, 'safetensors', path), crc);
  }
  return crc;
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
  if (header.dataCrc32 !== undefined) checkChecksum(header, crc32(bytes.subarray(header.dataStart)), source);
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

/**
 * Validates tensors and metadata and builds the (padded) header. With `checksum`, the
 * metadata records a placeholder CRC-32 whose 8 digits start at header[checksumAt]: the writer
 * fills them in once the data is written.
 */
function plan(
  tensors: readonly SafetensorsTensorInput[],
  metadata: Record<string, string>,
  op: string,
  checksum = false,
): { header: Uint8Array; planned: Planned[]; dataBytes: number; checksumAt: number } {
  if (!Array.isArray(tensors)) throw new ResNetError('E_ARG', `${op}: tensors must be an array of { name, shape, data }`);
  if (!isPlainObject(metadata)) throw new ResNetError('E_ARG', `${op}: metadata must be an object of strings`);
  const head: Record<string, unknown> = {};
  const meta: Record<string, string> = {};
  for (const k of Object.keys(metadata).sort()) {
    const v = metadata[k];
    if (typeof v !== 'string') throw new ResNetError('E_ARG', `${op}: metadata '${k}' must be a string, got ${typeof v}`);
    if (checksum && k === CHECKSUM_KEY)
      throw new ResNetError('E_ARG', `${op}: metadata '${CHECKSUM_KEY}' is the writer's own (the data section's CRC-32)`);
    meta[k] = v;
  }
  if (checksum) meta[CHECKSUM_KEY] = PLACEHOLDER;
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
  const text = JSON.stringify(head);
  const json = new TextEncoder().encode(text);
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded > MAX_HEADER_BYTES) throw new ResNetError('E_ARG', `${op}: the header would be ${padded} bytes, above the limit of ${MAX_HEADER_BYTES}`);
  const header = new Uint8Array(8 + padded).fill(0x20);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(json, 8);
  // Inside JSON strings every '"' is escaped and tensor entries hold only dtype, shape and
  // offsets, so the one `"dataCrc32":"00000000"` in the text is the metadata entry itself.
  let checksumAt = -1;
  if (checksum) {
    const entry = `${JSON.stringify(CHECKSUM_KEY)}:"${PLACEHOLDER}"`;
    const at = text.indexOf(entry) + entry.length - 1 - PLACEHOLDER.length;
    checksumAt = 8 + new TextEncoder().encode(text.slice(0, at)).length;
  }
  return { header, planned, dataBytes: offset, checksumAt };
}

const PLACEHOLDER = '00000000';

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
 * Writes a safetensors file atomically (lib/io/atomic_write.ts: a temporary file in the same
 * directory, fsync, rename over `path`, fsync the directory), recording the data section's
 * CRC-32 in the metadata unless `checksum` is false. On any failure the temporary file is
 * removed, an existing `path` is left as it was, and the error is E_IO naming the path (E_ARG
 * for bad tensors, before anything is written, or from a `data` function once writing has begun).
 */
export async function writeSafetensors(
  path: string,
  tensors: readonly SafetensorsTensorInput[],
  metadata: Record<string, string> = {},
  options: { op?: string; checksum?: boolean } = {},
): Promise<void> {
  const op = options.op ?? 'writeSafetensors';
  if (typeof path !== 'string' || path.length === 0) throw new ResNetError('E_ARG', `${op}: path must be a non-empty string`);
  const checksum = options.checksum === undefined ? true : options.checksum === true;
  const { header, planned, checksumAt } = plan(tensors, metadata, op, checksum);
  await atomicWrite(path, op, async (fh) => {
    let position = await writeAll(fh, header, 0);
    let crc = 0;
    for (const p of planned) {
      const data = typeof p.input.data === 'function' ? p.input.data() : p.input.data;
      const numel = p.bytes / DTYPES[p.dtype].size;
      const bytes = bytesOf(checkData(data, p.dtype, numel, `${op}: tensor '${p.input.name}'`), p.dtype);
      if (checksum) crc = crc32(bytes, crc);
      position = await writeAll(fh, bytes, position);
    }
    if (checksum) await writeAll(fh, new TextEncoder().encode(hex8(crc)), checksumAt);
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
