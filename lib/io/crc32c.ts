// CRC-32C (Castagnoli, polynomial 0x1EDC6F41), the checksum TFRecord files carry (TensorBoard
// event files are TFRecords), and the "masked" form they store: crc32.ts's slicing-by-8 CRC
// with this polynomial (zlib.crc32 is the IEEE polynomial, not this one).
import { slicingCrc } from './crc32.js';

/** The CRC-32C of `bytes`, continuing from `crc` (the CRC of what came before; 0 to start). */
export const crc32c = slicingCrc(0x82f63b78); // reversed 0x1EDC6F41

/**
 * TFRecord's masked CRC: rotate right by 15 bits and add a constant, so that a CRC computed
 * over data that itself holds CRCs does not degenerate (tensorflow/core/lib/hash/crc32c.h).
 */
export function maskCrc(crc: number): number {
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}
