// CRC-32C (Castagnoli, polynomial 0x1EDC6F41), the checksum TFRecord files carry (TensorBoard
// event files are TFRecords), and the "masked" form they store. Slicing-by-8 tables, built on
// first use. zlib.crc32 is the IEEE polynomial, not this one.
const POLY = 0x82f63b78; // reversed 0x1EDC6F41

let tables: Uint32Array | undefined;

/** Eight 256-entry tables: [k][b] is the CRC of byte b followed by k zero bytes. */
function slicingTables(): Uint32Array {
  if (tables) return tables;
  const t = new Uint32Array(8 * 256);
  for (let b = 0; b < 256; b++) {
    let c = b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
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
}

/** The CRC-32C of `bytes`, continuing from `crc` (the CRC of what came before; 0 to start). */
export function crc32c(bytes: Uint8Array, crc = 0): number {
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
}

/**
 * TFRecord's masked CRC: rotate right by 15 bits and add a constant, so that a CRC computed
 * over data that itself holds CRCs does not degenerate (tensorflow/core/lib/hash/crc32c.h).
 */
export function maskCrc(crc: number): number {
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}
