// A protocol-buffers encoder: the wire types the formats we write need (ONNX models in
// onnx_proto.ts, TensorBoard events in lib/train/tensorboard_events.ts). Writing only.
//
// Messages are built bottom-up as lists of byte chunks with their total length, so that a
// nested message's length prefix is known without re-encoding it, and large byte fields (ONNX
// tensor data: hundreds of megabytes for the big ResNets) are referenced, never copied, until
// the file is written. Fields are appended in the order written; readers accept any order.
const encoder = new TextEncoder();

/** A message under construction (any .proto): its bytes are `parts` in order, `length` of them. */
export class ProtoMessage {
  readonly parts: Uint8Array[] = [];
  length = 0;

  #push(bytes: Uint8Array): void {
    this.parts.push(bytes);
    this.length += bytes.length;
  }

  #key(field: number, wireType: number): void {
    this.#push(varint(field * 8 + wireType));
  }

  /** An unsigned varint field (int64, int32, enum, bool) of a non-negative safe integer. */
  uint(field: number, value: number): this {
    this.#key(field, 0);
    this.#push(varint(value));
    return this;
  }

  /** A float (fixed32) field. */
  float(field: number, value: number): this {
    this.#key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.#push(b);
    return this;
  }

  /** A length-delimited field of raw bytes (referenced, not copied). */
  bytes(field: number, value: Uint8Array): this {
    this.#key(field, 2);
    this.#push(varint(value.length));
    this.#push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, encoder.encode(value));
  }

  /** A signed int64 field (wire type 0); negatives take ten bytes, as protobuf writes them. */
  int64(field: number, value: number | bigint): this {
    this.#key(field, 0);
    let v = BigInt(typeof value === 'number' ? Math.trunc(value) : value);
    if (v < 0n) v = BigInt.asUintN(64, v);
    const out: number[] = [];
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
    this.#push(Uint8Array.from(out));
    return this;
  }

  /** A double (fixed64) field. */
  double(field: number, value: number): this {
    this.#key(field, 1);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, value, true);
    this.#push(b);
    return this;
  }

  /** A packed repeated double field. */
  packedDoubles(field: number, values: ArrayLike<number>): this {
    const b = new Uint8Array(8 * values.length);
    const view = new DataView(b.buffer);
    for (let i = 0; i < values.length; i++) view.setFloat64(8 * i, values[i]!, true);
    return this.bytes(field, b);
  }

  /** A nested message. */
  message(field: number, value: ProtoMessage): this {
    this.#key(field, 2);
    this.#push(varint(value.length));
    for (const p of value.parts) this.#push(p);
    return this;
  }

  /** The encoded message as one buffer (for small messages; large ones are written part by part). */
  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  /** A packed repeated unsigned varint field (proto3's default for repeated int64). */
  packedUints(field: number, values: readonly number[]): this {
    const encoded = values.map(varint);
    this.#key(field, 2);
    this.#push(varint(encoded.reduce((n, b) => n + b.length, 0)));
    for (const b of encoded) this.#push(b);
    return this;
  }
}

/** Base-128 varint of a non-negative safe integer. */
function varint(value: number): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`protobuf: cannot encode ${value} as an unsigned varint`);
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Uint8Array.from(out);
}
