// Writing torch.save-format files from tests (for state_dicts too large to commit and for
// hostile variants; the committed fixtures of scripts/make-pth-fixtures.py are torch.save's own): a protocol-2
// pickle of an OrderedDict of _rebuild_tensor_v2 calls over persistent-id storages, in a stored
// zip under `archive/`. The byte-level pieces are exported so fuzz tests can assemble pickles
// the writer would never produce.
import { zipSync } from 'fflate';

export const OP = {
  PROTO: 0x80,
  MARK: 0x28,
  STOP: 0x2e,
  TUPLE: 0x74,
  EMPTY_TUPLE: 0x29,
  REDUCE: 0x52,
  SETITEMS: 0x75,
  BINPERSID: 0x51,
  NEWFALSE: 0x89,
  EMPTY_DICT: 0x7d,
  EMPTY_LIST: 0x5d,
  APPEND: 0x61,
  BINPUT: 0x71,
  BINGET: 0x68,
  LONG_BINGET: 0x6a,
  BUILD: 0x62,
  NONE: 0x4e,
} as const;

export function globalOp(module: string, name: string): Uint8Array {
  return bytes([0x63], new TextEncoder().encode(`${module}\n${name}\n`));
}

export function unicode(s: string): Uint8Array {
  const b = new TextEncoder().encode(s);
  const out = new Uint8Array(5 + b.length);
  out[0] = 0x58; // BINUNICODE
  new DataView(out.buffer).setUint32(1, b.length, true);
  out.set(b, 5);
  return out;
}

export function binint(v: number): Uint8Array {
  const out = new Uint8Array(5);
  out[0] = 0x4a; // BININT
  new DataView(out.buffer).setInt32(1, v, true);
  return out;
}

/** Concatenates byte arrays and opcode lists. */
export function bytes(...parts: (Uint8Array | readonly number[])[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export interface PthTensor {
  name: string;
  /** torch storage class: 'FloatStorage', 'HalfStorage', 'BFloat16Storage', 'LongStorage', … */
  storage: string;
  shape: number[];
  /** The storage's raw little-endian bytes. */
  data: Uint8Array;
  numel?: number;
  offset?: number;
  stride?: number[];
  /** Storage key (default: the tensor's index). */
  key?: string;
}

function contiguous(shape: number[]): number[] {
  const s: number[] = [];
  let step = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s.unshift(step);
    step *= shape[d]!;
  }
  return s;
}

/** The pickle of one _rebuild_tensor_v2 call. */
export function tensorPickle(t: PthTensor, key: string, elementBytes: number): Uint8Array {
  const numel = t.numel ?? t.data.length / elementBytes;
  return bytes(
    globalOp('torch._utils', '_rebuild_tensor_v2'),
    [OP.MARK, OP.MARK],
    unicode('storage'),
    globalOp('torch', t.storage),
    unicode(key),
    unicode('cpu'),
    binint(numel),
    [OP.TUPLE, OP.BINPERSID],
    binint(t.offset ?? 0),
    [OP.MARK],
    ...t.shape.map(binint),
    [OP.TUPLE, OP.MARK],
    ...(t.stride ?? contiguous(t.shape)).map(binint),
    [OP.TUPLE, OP.NEWFALSE],
    globalOp('collections', 'OrderedDict'),
    [OP.EMPTY_TUPLE, OP.REDUCE, OP.TUPLE, OP.REDUCE],
  );
}

const ELEMENT_BYTES: Record<string, number> = { FloatStorage: 4, HalfStorage: 2, BFloat16Storage: 2, DoubleStorage: 8, LongStorage: 8 };

/** The data.pkl of an OrderedDict state_dict of `tensors`. */
export function stateDictPickle(tensors: PthTensor[]): Uint8Array {
  const items = tensors.map((t, i) => bytes(unicode(t.name), tensorPickle(t, t.key ?? String(i), ELEMENT_BYTES[t.storage] ?? 4)));
  return bytes([OP.PROTO, 2], globalOp('collections', 'OrderedDict'), [OP.EMPTY_TUPLE, OP.REDUCE, OP.MARK], ...items, [OP.SETITEMS, OP.STOP]);
}

/** A torch.save zip holding `pickle` and the given storages (key → bytes). */
export function torchZip(pickle: Uint8Array, storages: Record<string, Uint8Array>, extra: Record<string, Uint8Array> = {}): Uint8Array {
  const files: Record<string, [Uint8Array, { level: 0 }]> = {};
  const add = (name: string, data: Uint8Array) => {
    files[`archive/${name}`] = [data, { level: 0 }];
  };
  add('data.pkl', pickle);
  add('byteorder', new TextEncoder().encode('little'));
  for (const [key, data] of Object.entries(storages)) add(`data/${key}`, data);
  for (const [name, data] of Object.entries(extra)) add(name, data);
  add('version', new TextEncoder().encode('3\n'));
  return zipSync(files);
}

/** A whole .pth of a state_dict. */
export function encodePth(tensors: PthTensor[]): Uint8Array {
  const storages: Record<string, Uint8Array> = {};
  tensors.forEach((t, i) => {
    storages[t.key ?? String(i)] = t.data;
  });
  return torchZip(stateDictPickle(tensors), storages);
}
