// 16-bit float formats → float32, for readers of files that store them (safetensors F16 / BF16).
// Both conversions are exact: every half and every bfloat16 is a float32.

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
