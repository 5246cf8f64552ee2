// CRC-32 (IEEE 802.3, the one zlib, gzip and PNG use), incrementally: crc32(b, crc32(a)) is
// the CRC of a followed by b. Node ≥ 20.15 / 22.2 computes it natively (zlib.crc32, about
// 6 GB/s); older Node gets the same function from a slicing-by-8 table in JavaScript (about
// 1.2 GB/s). Checkpoints carry it over their data section (lib/io/safetensors.ts).
import * as zlib from 'node:zlib';

/**
 * A table-driven (slicing-by-8) CRC for the reversed polynomial `poly`, incrementally: f(b, f(a))
 * is the CRC of a followed by b. Tables are built on first use. crc32c.ts makes CRC-32C with it.
 */
export function slicingCrc(poly: number): (bytes: Uint8Array, crc?: number) => number {
  let tables: Uint32Array | undefined;
  /** Eight 256-entry tables: [k][b] is the CRC of byte b followed by k zero bytes. */
  const slicingTables = (): Uint32Array => {
    if (tables) return tables;
    const t = new Uint32Array(8 * 256);
    for (let b = 0; b < 256; b++) {
      let c = b;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
      t[b] = c >>> 0;
    }
    for (let b = 0; b < 256; b++) {
      let c = t[b]!;
      for (let k = 1; k < 8; k++) {
        c = t[c & 0xff]! ^ (c >>> 8);
        t[k * 256 + b] = c;
      }
    }
    return (tables = t);
  };
  return (bytes, crc = 0) => {
    const t = slicingTables();
    let c = ~crc >>> 0;
    const n = bytes.length;
    let i = 0;
    for (; i + 8 <= n; i += 8) {
      const lo = (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24)) ^ c;
      c =
        t[1792 + (lo & 0xff)]! ^
        t[1536 + ((lo >>> 8) & 0xff)]! ^
        t[1280 + ((lo >>> 16) & 0xff)]! ^
        t[1024 + (lo >>> 24)]! ^
        t[768 + bytes[i + 4]!]! ^
        t[512 + bytes[i + 5]!]! ^
        t[256 + bytes[i + 6]!]! ^
        t[bytes[i + 7]!]!;
    }
    for (; i < n; i++) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
    return ~c >>> 0;
  };
}

/** @internal The JavaScript implementation (exported for the test that compares it with zlib's). */
export const crc32Js = slicingCrc(0xedb88320); // reversed 0x04C11DB7

const native = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

/** The CRC-32 of `bytes`, continuing from `crc` (the CRC of what came before; 0 to start). */
export const crc32: (bytes: Uint8Array, crc?: number) => number =
  typeof native === 'function' ? (bytes, crc = 0) => native(bytes, crc) >>> 0 : crc32Js;
