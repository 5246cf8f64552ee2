// Reading zip archives from memory: PyTorch's torch.save files (.pth / .pt) and Keras 3's
// .keras files are both zips. Only what those writers produce is needed: stored and deflated
// entries, ZIP64 sizes and offsets; no encryption, no multi-disk archives.
//
// Why our own central-directory parser instead of fflate's unzipSync: a hostile archive lies
// about sizes. Here every size and offset is checked against the buffer before it is used, an
// entry's output is capped by the caller and by the size its header declares (a deflate bomb is
// stopped after at most 64 KiB of input past that), and every entry's CRC-32 is verified, so a
// truncated or altered file is E_FORMAT naming the file and the entry, never a crash or a hang.
import { Inflate } from 'fflate';

import { ResNetError } from '../errors.js';
import { crc32 } from './crc32.js';

const EOCD_SIGNATURE = 0x06054b50;
const ZIP64_EOCD_SIGNATURE = 0x06064b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
const EOCD_SIZE = 22;
// The end record's comment is at most 65535 bytes, so the record starts within this many of the end.
const EOCD_SEARCH = EOCD_SIZE + 0xffff;
const ZIP64_EXTRA_ID = 0x0001;
const STORED = 0;
const DEFLATED = 8;
/** More entries than any model file has; a bound on the work of listing a hostile archive. */
const MAX_ENTRIES = 1_000_000;
const INFLATE_CHUNK = 64 * 1024;

export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflated (others are refused when read). */
  method: number;
  compressedSize: number;
  /** The uncompressed size the archive declares. */
  size: number;
  crc32: number;
  /** Offset of the entry's local header in the archive. */
  localHeaderOffset: number;
}

/** True when `bytes` starts like a zip archive (a local file header, or an empty archive's end record). */
export function looksLikeZip(bytes: Uint8Array): boolean {
  if (bytes.length < 4) return false;
  const sig = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
  return sig === LOCAL_SIGNATURE || sig === EOCD_SIGNATURE;
}

export class ZipArchive {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #entries = new Map<string, ZipEntry>();
  readonly #where: string;

  /**
   * Parses the central directory of the archive in `bytes`. `where` names the archive in errors
   * ("loadKeras: model.keras"). E_FORMAT for anything that is not a well-formed zip.
   */
  constructor(bytes: Uint8Array, where: string) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#where = where;
    this.#readCentralDirectory();
  }

  /** Entry names in archive order. */
  names(): string[] {
    return [...this.#entries.keys()];
  }

  has(name: string): boolean {
    return this.#entries.has(name);
  }

  entry(name: string): ZipEntry | undefined {
    return this.#entries.get(name);
  }

  /**
   * The uncompressed bytes of entry `name`, CRC-checked. A stored entry is a view into the archive
   * (no copy). E_FORMAT when missing, larger than `maxBytes`, truncated, or corrupt.
   */
  read(name: string, maxBytes: number): Uint8Array {
    const e = this.#entries.get(name);
    if (!e) this.#fail(`has no entry '${name}'`);
    if (e.size > maxBytes) this.#fail(`entry '${name}' declares ${e.size} bytes, more than the ${maxBytes} allowed for it`);
    const start = this.#dataOffset(e);
    if (start + e.compressedSize > this.#bytes.length) this.#fail(`entry '${name}' runs past the end of the archive (truncated?)`);
    const raw = this.#bytes.subarray(start, start + e.compressedSize);
    let data: Uint8Array;
    if (e.method === STORED) {
      if (e.compressedSize !== e.size) this.#fail(`stored entry '${name}' declares ${e.size} bytes but holds ${e.compressedSize}`);
      data = raw;
    } else if (e.method === DEFLATED) {
      data = this.#inflate(raw, e);
    } else {
      this.#fail(`entry '${name}' uses compression method ${e.method}; only stored (0) and deflate (8) are read`);
    }
    if (crc32(data) !== e.crc32) this.#fail(`entry '${name}' fails its CRC-32 check (the file is corrupt or was altered)`);
    return data;
  }

  #inflate(raw: Uint8Array, e: ZipEntry): Uint8Array {
    const out = new Uint8Array(e.size);
    let written = 0;
    let overflow = false;
    const inflater = new Inflate((chunk) => {
      if (written + chunk.length > out.length) {
        overflow = true;
        return;
      }
      out.set(chunk, written);
      written += chunk.length;
    });
    try {
      for (let i = 0; i < raw.length && !overflow; i += INFLATE_CHUNK) {
        inflater.push(raw.subarray(i, Math.min(raw.length, i + INFLATE_CHUNK)), i + INFLATE_CHUNK >= raw.length);
      }
      if (raw.length === 0) inflater.push(new Uint8Array(0), true);
    } catch (err) {
      this.#fail(`entry '${e.name}' is not valid deflate data (${(err as Error).message})`);
    }
    if (overflow) this.#fail(`entry '${e.name}' inflates to more than the ${e.size} bytes it declares`);
    if (written !== e.size) this.#fail(`entry '${e.name}' inflates to ${written} bytes but declares ${e.size} (truncated?)`);
    return out;
  }

  #dataOffset(e: ZipEntry): number {
    const at = e.localHeaderOffset;
    if (at + 30 > this.#bytes.length || this.#view.getUint32(at, true) !== LOCAL_SIGNATURE) {
      this.#fail(`entry '${e.name}' has no local header at offset ${at}`);
    }
    return at + 30 + this.#view.getUint16(at + 26, true) + this.#view.getUint16(at + 28, true);
  }

  #readCentralDirectory(): void {
    const v = this.#view;
    const n = this.#bytes.length;
    let eocd = -1;
    for (let i = n - EOCD_SIZE; i >= Math.max(0, n - EOCD_SEARCH); i--) {
      if (v.getUint32(i, true) === EOCD_SIGNATURE) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) this.#fail('is not a zip archive, or is truncated (no end-of-central-directory record)');
    let count = v.getUint16(eocd + 10, true);
    let dirSize = v.getUint32(eocd + 12, true);
    let dirOffset = v.getUint32(eocd + 16, true);
    if (count === 0xffff || dirSize === 0xffffffff || dirOffset === 0xffffffff) {
      const locator = eocd - 20;
      if (locator < 0 || v.getUint32(locator, true) !== ZIP64_LOCATOR_SIGNATURE) this.#fail('declares ZIP64 sizes but has no ZIP64 locator');
      const at = this.#safeNumber(v.getBigUint64(locator + 8, true), 'ZIP64 end record offset');
      if (at + 56 > n || v.getUint32(at, true) !== ZIP64_EOCD_SIGNATURE) this.#fail('has a ZIP64 locator pointing outside the file');
      count = this.#safeNumber(v.getBigUint64(at + 32, true), 'entry count');
      dirSize = this.#safeNumber(v.getBigUint64(at + 40, true), 'central directory size');
      dirOffset = this.#safeNumber(v.getBigUint64(at + 48, true), 'central directory offset');
    }
    if (count > MAX_ENTRIES) this.#fail(`declares ${count} entries (more than ${MAX_ENTRIES})`);
    if (dirOffset + dirSize > n) this.#fail('has a central directory that runs past the end of the file (truncated?)');
    let p = dirOffset;
    const names = new TextDecoder('utf-8', { fatal: false });
    for (let i = 0; i < count; i++) {
      if (p + 46 > dirOffset + dirSize || v.getUint32(p, true) !== CENTRAL_SIGNATURE) this.#fail(`has a damaged central directory (entry ${i})`);
      const method = v.getUint16(p + 10, true);
      const crc = v.getUint32(p + 16, true);
      let compressedSize = v.getUint32(p + 20, true);
      let size = v.getUint32(p + 24, true);
      const nameLength = v.getUint16(p + 28, true);
      const extraLength = v.getUint16(p + 30, true);
      const commentLength = v.getUint16(p + 32, true);
      let localHeaderOffset = v.getUint32(p + 42, true);
      const end = p + 46 + nameLength + extraLength + commentLength;
      if (end > dirOffset + dirSize) this.#fail(`has a damaged central directory (entry ${i} runs past it)`);
      const name = names.decode(this.#bytes.subarray(p + 46, p + 46 + nameLength));
      // ZIP64: the extra field holds, in this order, whichever of the three were 0xffffffff.
      let x = p + 46 + nameLength;
      const extraEnd = x + extraLength;
      while (x + 4 <= extraEnd) {
        const id = v.getUint16(x, true);
        const len = v.getUint16(x + 2, true);
        if (id === ZIP64_EXTRA_ID) {
          let q = x + 4;
          const take = (): number => {
            if (q + 8 > x + 4 + len) this.#fail(`entry '${name}' has a short ZIP64 extra field`);
            const value = this.#safeNumber(v.getBigUint64(q, true), `entry '${name}' size`);
            q += 8;
            return value;
          };
          if (size === 0xffffffff) size = take();
          if (compressedSize === 0xffffffff) compressedSize = take();
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = take();
        }
        x += 4 + len;
      }
      if (localHeaderOffset >= n) this.#fail(`entry '${name}' points outside the file`);
      if (this.#entries.has(name)) this.#fail(`has two entries named '${name}'`);
      this.#entries.set(name, { name, method, compressedSize, size, crc32: crc, localHeaderOffset });
      p = end;
    }
  }

  #safeNumber(v: bigint, what: string): number {
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.#fail(`has an absurd ${what} (${v})`);
    return Number(v);
  }

  #fail(what: string): never {
    throw new ResNetError('E_FORMAT', `${this.#where} ${what}`);
  }
}
