// A protocol-buffers encoder for the few onnx.proto messages an exported model needs
// (ModelProto, GraphProto, NodeProto, TensorProto, ValueInfoProto, AttributeProto,
// OperatorSetIdProto, StringStringEntryProto and the tensor TypeProto). Field numbers are
// onnx/onnx.proto's (IR version 7–10). Writing only: nothing here parses a file.
//
// The wire format is lib/io/protobuf.ts's (shared with TensorBoard's event files): messages
// are built bottom-up and tensor data is referenced, never copied, until the file is written.

import { ProtoMessage } from './protobuf.js';

export { ProtoMessage };

// ---------------------------------------------------------------------------------------
// onnx.proto's messages

/** TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, INT64: 7 } as const;

/** AttributeProto.AttributeType values used here. */
const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, INTS: 7 } as const;

export type AttributeValue = number | string | readonly number[] | { float: number };

/** An AttributeProto: integers are INT, { float } FLOAT, strings STRING, integer arrays INTS. */
export function attribute(name: string, value: AttributeValue): ProtoMessage {
  const m = new ProtoMessage().string(1, name);
  if (typeof value === 'number') m.uint(3, value).uint(20, AttributeType.INT);
  else if (typeof value === 'string') m.string(4, value).uint(20, AttributeType.STRING);
  else if (Array.isArray(value)) m.packedUints(8, value as readonly number[]).uint(20, AttributeType.INTS);
  else m.float(2, (value as { float: number }).float).uint(20, AttributeType.FLOAT);
  return m;
}

export interface NodeFields {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name: string;
  attributes?: Record<string, AttributeValue>;
}

/** A NodeProto (default domain: the ONNX operator set). */
export function node(n: NodeFields): ProtoMessage {
  const m = new ProtoMessage();
  for (const i of n.inputs) m.string(1, i);
  for (const o of n.outputs) m.string(2, o);
  m.string(3, n.name).string(4, n.opType);
  for (const [key, value] of Object.entries(n.attributes ?? {})) m.message(5, attribute(key, value));
  return m;
}

/** A TensorProto holding float32 or int64 values as little-endian raw_data. */
export function tensor(name: string, dims: readonly number[], values: Float32Array | BigInt64Array): ProtoMessage {
  const m = new ProtoMessage();
  if (dims.length > 0) m.packedUints(1, dims);
  m.uint(2, values instanceof Float32Array ? DataType.FLOAT : DataType.INT64);
  m.string(8, name);
  m.bytes(9, littleEndianBytes(values));
  return m;
}

function littleEndianBytes(values: Float32Array | BigInt64Array): Uint8Array {
  const view = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] === 1) return view;
  // A big-endian host: swap each element's bytes into a copy.
  const size = values.BYTES_PER_ELEMENT;
  const out = new Uint8Array(view.length);
  for (let i = 0; i < view.length; i += size) for (let j = 0; j < size; j++) out[i + j] = view[i + size - 1 - j]!;
  return out;
}

/** A dimension: a fixed size, or a symbolic name (dim_param) such as 'batch'. */
export type Dim = number | string;

/** A ValueInfoProto of a float32 tensor of the given shape. */
export function valueInfo(name: string, shape: readonly Dim[], docString?: string): ProtoMessage {
  const dims = new ProtoMessage();
  for (const d of shape) dims.message(1, typeof d === 'number' ? new ProtoMessage().uint(1, d) : new ProtoMessage().string(2, d));
  const tensorType = new ProtoMessage().uint(1, DataType.FLOAT).message(2, dims);
  const type = new ProtoMessage().message(1, tensorType);
  const m = new ProtoMessage().string(1, name).message(2, type);
  if (docString !== undefined) m.string(3, docString);
  return m;
}

export interface GraphFields {
  name: string;
  nodes: ProtoMessage[];
  initializers: ProtoMessage[];
  inputs: ProtoMessage[];
  outputs: ProtoMessage[];
  docString?: string;
}

export function graph(g: GraphFields): ProtoMessage {
  const m = new ProtoMessage();
  for (const n of g.nodes) m.message(1, n);
  m.string(2, g.name);
  for (const t of g.initializers) m.message(5, t);
  if (g.docString !== undefined) m.string(10, g.docString);
  for (const i of g.inputs) m.message(11, i);
  for (const o of g.outputs) m.message(12, o);
  return m;
}

export interface ModelFields {
  irVersion: number;
  opset: number;
  producerName: string;
  producerVersion: string;
  graph: ProtoMessage;
  docString?: string;
  metadata: Record<string, string>;
}

export function model(f: ModelFields): ProtoMessage {
  const m = new ProtoMessage().uint(1, f.irVersion).string(2, f.producerName).string(3, f.producerVersion);
  if (f.docString !== undefined) m.string(6, f.docString);
  m.message(7, f.graph);
  m.message(8, new ProtoMessage().string(1, '').uint(2, f.opset));
  for (const [key, value] of Object.entries(f.metadata)) m.message(14, new ProtoMessage().string(1, key).string(2, value));
  return m;
}

/**
 * The message's bytes as few chunks as possible: runs of small parts are joined into blocks
 * of about `block` bytes (so writing takes few system calls); large parts pass through as they are.
 */
export function* chunks(m: ProtoMessage, block = 1 << 20): Generator<Uint8Array> {
  let pending: Uint8Array[] = [];
  let pendingLength = 0;
  const flush = (): Uint8Array | undefined => {
    if (pendingLength === 0) return undefined;
    const out = new Uint8Array(pendingLength);
    let at = 0;
    for (const p of pending) {
      out.set(p, at);
      at += p.length;
    }
    pending = [];
    pendingLength = 0;
    return out;
  };
  for (const p of m.parts) {
    if (p.length >= block) {
      const joined = flush();
      if (joined) yield joined;
      yield p;
      continue;
    }
    pending.push(p);
    pendingLength += p.length;
    if (pendingLength >= block) yield flush()!;
  }
  const rest = flush();
  if (rest) yield rest;
}
