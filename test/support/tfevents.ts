// An independent reader of TensorBoard event files for tests: TFRecord framing with a bitwise
// CRC-32C (not lib/io/crc32c.ts's tables), and a generic protocol-buffer wire decoder that the
// Event / Summary / HistogramProto field numbers are then read from. Strict: a bad length, CRC
// or wire type throws, naming the record.

/** Bit-by-bit CRC-32C (Castagnoli, reversed polynomial 0x82F63B78). */
export function crc32cBitwise(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

export function masked(crc: number): number {
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
}

/** The data of each record; throws on a truncated record or a CRC mismatch. */
export function readRecords(file: Uint8Array): Uint8Array[] {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const out: Uint8Array[] = [];
  let at = 0;
  while (at < file.length) {
    if (at + 12 > file.length) throw new Error(`record ${out.length}: truncated header`);
    const length = Number(view.getBigUint64(at, true));
    if (view.getUint32(at + 8, true) !== masked(crc32cBitwise(file.subarray(at, at + 8)))) throw new Error(`record ${out.length}: length CRC`);
    if (at + 12 + length + 4 > file.length) throw new Error(`record ${out.length}: truncated data`);
    const data = file.subarray(at + 12, at + 12 + length);
    if (view.getUint32(at + 12 + length, true) !== masked(crc32cBitwise(data))) throw new Error(`record ${out.length}: data CRC`);
    out.push(data);
    at += 16 + length;
  }
  return out;
}

/** One field as it is on the wire. */
export interface WireField {
  field: number;
  wireType: 0 | 1 | 2 | 5;
  /** varint (wire type 0) */
  varint?: bigint;
  /** the 8 or 4 raw bytes (wire types 1, 5) or the length-delimited payload (2) */
  bytes?: Uint8Array;
}

function readVarint(b: Uint8Array, at: number): [bigint, number] {
  let v = 0n;
  let shift = 0n;
  for (;;) {
    if (at >= b.length) throw new Error('truncated varint');
    const byte = b[at++]!;
    v |= BigInt(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return [v, at];
    shift += 7n;
    if (shift > 63n) throw new Error('varint too long');
  }
}

export function decodeMessage(b: Uint8Array): WireField[] {
  const out: WireField[] = [];
  let at = 0;
  while (at < b.length) {
    const [key, next] = readVarint(b, at);
    at = next;
    const field = Number(key >> 3n);
    const wireType = Number(key & 7n);
    if (wireType === 0) {
      const [v, n] = readVarint(b, at);
      at = n;
      out.push({ field, wireType, varint: v });
    } else if (wireType === 1 || wireType === 5) {
      const size = wireType === 1 ? 8 : 4;
      if (at + size > b.length) throw new Error('truncated fixed field');
      out.push({ field, wireType, bytes: b.subarray(at, at + size) });
      at += size;
    } else if (wireType === 2) {
      const [len, n] = readVarint(b, at);
      at = n;
      if (at + Number(len) > b.length) throw new Error('truncated bytes field');
      out.push({ field, wireType, bytes: b.subarray(at, at + Number(len)) });
      at += Number(len);
    } else {
      throw new Error(`unsupported wire type ${wireType}`);
    }
  }
  return out;
}

const f64 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true);
const f32 = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true);
const utf8 = (b: Uint8Array) => new TextDecoder().decode(b);
function doubles(b: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i + 8 <= b.length; i += 8) out.push(f64(b.subarray(i, i + 8)));
  return out;
}

export interface DecodedHistogram {
  min: number;
  max: number;
  num: number;
  sum: number;
  sumSquares: number;
  bucketLimit: number[];
  bucket: number[];
}

export interface DecodedValue {
  tag: string;
  simpleValue?: number;
  histo?: DecodedHistogram;
  /** Value.tensor (field 8) present: TF2's tensor summaries (float scalars read by tensorValue). */
  tensorFloat?: number;
}

export interface DecodedEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  /** SourceMetadata.writer (field 10). */
  writer?: string;
  sessionLogStatus?: number;
  values: DecodedValue[];
}

function decodeHistogram(b: Uint8Array): DecodedHistogram {
  const h: DecodedHistogram = { min: NaN, max: NaN, num: NaN, sum: NaN, sumSquares: NaN, bucketLimit: [], bucket: [] };
  for (const f of decodeMessage(b)) {
    if (f.field === 1) h.min = f64(f.bytes!);
    else if (f.field === 2) h.max = f64(f.bytes!);
    else if (f.field === 3) h.num = f64(f.bytes!);
    else if (f.field === 4) h.sum = f64(f.bytes!);
    else if (f.field === 5) h.sumSquares = f64(f.bytes!);
    else if (f.field === 6) h.bucketLimit.push(...(f.wireType === 2 ? doubles(f.bytes!) : [f64(f.bytes!)]));
    else if (f.field === 7) h.bucket.push(...(f.wireType === 2 ? doubles(f.bytes!) : [f64(f.bytes!)]));
  }
  return h;
}

/** A TensorProto's first float: float_val (field 5) or 4 bytes of tensor_content (field 4). */
function tensorFloat(b: Uint8Array): number | undefined {
  for (const f of decodeMessage(b)) {
    if (f.field === 5) return f.wireType === 2 ? f32(f.bytes!) : f32(f.bytes!);
    if (f.field === 4 && f.bytes!.length >= 4) return f32(f.bytes!);
  }
  return undefined;
}

function decodeValue(b: Uint8Array): DecodedValue {
  const v: DecodedValue = { tag: '' };
  for (const f of decodeMessage(b)) {
    if (f.field === 1) v.tag = utf8(f.bytes!);
    else if (f.field === 2) v.simpleValue = f32(f.bytes!);
    else if (f.field === 5) v.histo = decodeHistogram(f.bytes!);
    else if (f.field === 8) {
      const t = tensorFloat(f.bytes!);
      if (t !== undefined) v.tensorFloat = t;
    }
  }
  return v;
}

export function decodeEvent(b: Uint8Array): DecodedEvent {
  const e: DecodedEvent = { wallTime: NaN, step: 0, values: [] };
  for (const f of decodeMessage(b)) {
    if (f.field === 1) e.wallTime = f64(f.bytes!);
    else if (f.field === 2) e.step = Number(BigInt.asIntN(64, f.varint!));
    else if (f.field === 3) e.fileVersion = utf8(f.bytes!);
    else if (f.field === 10) {
      for (const sf of decodeMessage(f.bytes!)) if (sf.field === 1) e.writer = utf8(sf.bytes!);
    } else if (f.field === 5) {
      for (const sf of decodeMessage(f.bytes!)) if (sf.field === 1) e.values.push(decodeValue(sf.bytes!));
    } else if (f.field === 7) {
      for (const sf of decodeMessage(f.bytes!)) if (sf.field === 1) e.sessionLogStatus = Number(sf.varint!);
    }
  }
  return e;
}

/** Every event of a file, in order. */
export function readEvents(file: Uint8Array): DecodedEvent[] {
  return readRecords(file).map(decodeEvent);
}

/** tag → [step, value] of every scalar (simple_value or a float tensor) in the events. */
export function scalars(events: DecodedEvent[]): Map<string, [number, number][]> {
  const out = new Map<string, [number, number][]>();
  for (const e of events) {
    for (const v of e.values) {
      const value = v.simpleValue ?? v.tensorFloat;
      if (value === undefined) continue;
      if (!out.has(v.tag)) out.set(v.tag, []);
      out.get(v.tag)!.push([e.step, value]);
    }
  }
  return out;
}
