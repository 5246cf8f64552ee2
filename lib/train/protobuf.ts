// A small protocol-buffer encoder: the wire types TensorBoard's Event and Summary messages use
// (varint, 64-bit double, 32-bit float, length-delimited bytes, packed doubles). Fields are
// appended in the order written; proto3 readers accept any order.
const encoder = new TextEncoder();

export class ProtoWriter {
  #chunks: Uint8Array[] = [];
  #length = 0;

  #push(bytes: Uint8Array): void {
    this.#chunks.push(bytes);
    this.#length += bytes.length;
  }

  #varint(value: bigint | number): void {
    let v = BigInt(value);
    if (v < 0n) v = BigInt.asUintN(64, v); // int64 negatives take ten bytes, as protobuf writes them
    const bytes: number[] = [];
    do {
      let b = Number(v & 0x7fn);
      v >>= 7n;
      if (v !== 0n) b |= 0x80;
      bytes.push(b);
    } while (v !== 0n);
    this.#push(Uint8Array.from(bytes));
  }

  #key(field: number, wireType: number): void {
    this.#varint((field << 3) | wireType);
  }

  /** An int64 / uint64 / enum field (wire type 0). */
  int64(field: number, value: number | bigint): this {
    this.#key(field, 0);
    this.#varint(typeof value === 'number' ? BigInt(Math.trunc(value)) : value);
    return this;
  }

  /** A double field (wire type 1). */
  double(field: number, value: number): this {
    this.#key(field, 1);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, value, true);
    this.#push(b);
    return this;
  }

  /** A float field (wire type 5). */
  float(field: number, value: number): this {
    this.#key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.#push(b);
    return this;
  }

  /** A bytes or embedded-message field (wire type 2). */
  bytes(field: number, value: Uint8Array): this {
    this.#key(field, 2);
    this.#varint(value.length);
    this.#push(value);
    return this;
  }

  /** A string field (UTF-8, wire type 2). */
  string(field: number, value: string): this {
    return this.bytes(field, encoder.encode(value));
  }

  /** A packed repeated double field (wire type 2). */
  packedDoubles(field: number, values: ArrayLike<number>): this {
    const b = new Uint8Array(8 * values.length);
    const view = new DataView(b.buffer);
    for (let i = 0; i < values.length; i++) view.setFloat64(8 * i, values[i]!, true);
    return this.bytes(field, b);
  }

  /** The encoded message. */
  finish(): Uint8Array {
    const out = new Uint8Array(this.#length);
    let at = 0;
    for (const c of this.#chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}
