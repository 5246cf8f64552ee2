// A restricted unpickler for PyTorch's torch.save files (the `data.pkl` of the zip archive).
//
// A pickle is a program for a stack machine whose GLOBAL opcode imports any Python callable
// and REDUCE calls it: loading an untrusted pickle with Python's pickle runs whatever the
// author wrote. Nothing is imported or called here. The machine below implements the opcodes
// that hold data (protocols 0–5: numbers, strings, bytes, lists, tuples, dicts, memo, marks)
// and resolves GLOBAL / STACK_GLOBAL against a fixed allow-list of the names torch.save
// writes for a state_dict:
//
//   collections.OrderedDict                     → a Map (its BUILD state, torch's
//                                                 `_metadata`, is read and dropped)
//   torch._utils._rebuild_tensor_v2             → a TorchTensor (storage, offset, size, stride)
//   torch._utils._rebuild_parameter(_with_state) → the tensor it wraps
//   torch.FloatStorage, torch.HalfStorage, …    → a dtype marker, only inside a persistent id
//
// and a persistent id ('storage', <storage type>, key, location, numel) becomes a
// TorchStorage naming the archive entry `data/<key>`. Any other global, and any opcode that
// builds an object (INST, OBJ, NEWOBJ, NEWOBJ_EX of anything but OrderedDict), is E_FORMAT
// naming the file and the global, before anything is built. Every length, memo index and
// stack access is checked, so a hostile pickle ends in E_FORMAT, never a crash or a hang:
// the machine is iterative (no recursion), every opcode consumes input, and the input is
// bounded by the archive entry it came from.
import { ResNetError } from '../errors.js';

/** A storage (a flat typed buffer) named by a persistent id. */
export class TorchStorage {
  constructor(
    /** 'F32', 'F16', 'BF16', 'F64', 'I64', … (the safetensors dtype names). */
    readonly dtype: string,
    /** The archive entry `data/<key>` holds its bytes. */
    readonly key: string,
    readonly location: string,
    /** Elements (not bytes) the pickle declares. */
    readonly numel: number,
  ) {}
}

/** A tensor view: `shape` and `stride` (in elements) over `storage` from element `offset`. */
export class TorchTensor {
  constructor(
    readonly storage: TorchStorage,
    readonly offset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
  ) {}
}

/** An allowed global, before it is called (REDUCE) or used as a storage type. */
export class PickleGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/** A Python tuple (kept apart from lists only so that error messages can say which). */
export class PickleTuple {
  constructor(readonly items: PickleValue[]) {}
}

export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleValue[]
  | PickleTuple
  | Map<PickleValue, PickleValue>
  | TorchTensor
  | TorchStorage
  | PickleGlobal;

/** torch's storage classes → our dtype names and element sizes. */
export const STORAGE_TYPES: Readonly<Record<string, { dtype: string; bytes: number }>> = {
  FloatStorage: { dtype: 'F32', bytes: 4 },
  DoubleStorage: { dtype: 'F64', bytes: 8 },
  HalfStorage: { dtype: 'F16', bytes: 2 },
  BFloat16Storage: { dtype: 'BF16', bytes: 2 },
  LongStorage: { dtype: 'I64', bytes: 8 },
  IntStorage: { dtype: 'I32', bytes: 4 },
  ShortStorage: { dtype: 'I16', bytes: 2 },
  CharStorage: { dtype: 'I8', bytes: 1 },
  ByteStorage: { dtype: 'U8', bytes: 1 },
  BoolStorage: { dtype: 'BOOL', bytes: 1 },
};

const CALLABLES = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
]);

/** The largest string or bytes object accepted (a state_dict's are parameter names). */
const MAX_STRING = 16 * 1024 * 1024;
/** Marks open at once; real state_dicts need a handful. */
const MAX_MARKS = 10_000;
/** Tensor rank. */
const MAX_RANK = 64;

function isAllowed(module: string, name: string): boolean {
  const q = `${module}.${name}`;
  if (CALLABLES.has(q)) return true;
  return module === 'torch' && Object.prototype.hasOwnProperty.call(STORAGE_TYPES, name);
}

/** Why a refused global is refused, with what the user can do. */
function refusal(q: string): string {
  if (q.startsWith('torch.nn.') || q.startsWith('torchvision.') || q.startsWith('__main__.')) {
    return `this file pickles a whole Python object ('${q}'); save the model's state_dict instead: torch.save(model.state_dict(), path)`;
  }
  return `global '${q}' is not on the allow-list (only tensors, dicts, lists and numbers are rebuilt; nothing is imported or run)`;
}

/**
 * Unpickles `bytes` with the allow-list above. `where` names the file in errors
 * ("loadTorchvision: 'resnet18.pth'"). Returns the top-level value.
 */
export function unpickle(bytes: Uint8Array, where: string): PickleValue {
  return new Machine(bytes, where).run();
}

const MARK = Symbol('mark');
type Slot = PickleValue | typeof MARK;

class Machine {
  readonly #b: Uint8Array;
  readonly #v: DataView;
  readonly #where: string;
  #p = 0;
  #stack: Slot[] = [];
  readonly #marks: number[] = [];
  readonly #memo = new Map<number, PickleValue>();

  constructor(bytes: Uint8Array, where: string) {
    this.#b = bytes;
    this.#v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#where = where;
  }

  #fail(what: string): never {
    throw new ResNetError('E_FORMAT', `${this.#where}: ${what}`);
  }

  #need(n: number): number {
    if (n < 0 || this.#p + n > this.#b.length) this.#fail(`the pickle ends early at byte ${this.#p} (truncated or corrupt data.pkl)`);
    const at = this.#p;
    this.#p += n;
    return at;
  }

  #u8(): number {
    return this.#b[this.#need(1)]!;
  }
  #u16(): number {
    return this.#v.getUint16(this.#need(2), true);
  }
  #u32(): number {
    return this.#v.getUint32(this.#need(4), true);
  }
  #u64(): number {
    const v = this.#v.getBigUint64(this.#need(8), true);
    if (v > BigInt(MAX_STRING)) this.#fail(`an object declares ${v} bytes, more than the ${MAX_STRING} allowed`);
    return Number(v);
  }

  #bytes(n: number): Uint8Array {
    if (n > MAX_STRING) this.#fail(`an object declares ${n} bytes, more than the ${MAX_STRING} allowed`);
    const at = this.#need(n);
    return this.#b.subarray(at, at + n);
  }

  #text(n: number): string {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(this.#bytes(n));
    } catch (err) {
      if (err instanceof ResNetError) throw err;
      return this.#fail(`a string at byte ${this.#p - n} is not valid UTF-8`);
    }
  }

  /** A newline-terminated line (protocol 0 arguments), at most 4096 bytes. */
  #line(): string {
    const start = this.#p;
    const end = this.#b.indexOf(0x0a, start);
    if (end < 0 || end - start > 4096) this.#fail(`a text argument at byte ${start} has no end of line`);
    this.#p = end + 1;
    return new TextDecoder('latin1').decode(this.#b.subarray(start, end));
  }

  #push(v: PickleValue): void {
    this.#stack.push(v);
  }

  #pop(): PickleValue {
    const v = this.#stack.pop();
    if (v === undefined || v === MARK) this.#fail(`the pickle pops an empty stack at byte ${this.#p - 1}`);
    return v;
  }

  #top(): PickleValue {
    const v = this.#stack[this.#stack.length - 1];
    if (v === undefined || v === MARK) this.#fail(`the pickle reads an empty stack at byte ${this.#p - 1}`);
    return v;
  }

  /** The items since the last MARK, which is removed. */
  #popMark(): PickleValue[] {
    const m = this.#marks.pop();
    if (m === undefined) this.#fail(`the pickle uses a MARK it never set, at byte ${this.#p - 1}`);
    const items = this.#stack.splice(m) as Slot[];
    items.shift(); // the MARK itself
    return items as PickleValue[];
  }

  #memoGet(i: number): PickleValue {
    const v = this.#memo.get(i);
    if (v === undefined) this.#fail(`memo reference ${i} is out of range (the pickle is corrupt)`);
    return v;
  }

  #memoPut(i: number): void {
    this.#memo.set(i, this.#top());
  }

  #global(module: string, name: string): PickleGlobal {
    if (!isAllowed(module, name)) this.#fail(`refuses to unpickle: ${refusal(`${module}.${name}`)}`);
    return new PickleGlobal(module, name);
  }

  #int(n: number): number | bigint {
    const at = this.#need(n);
    if (n === 0) return 0;
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(this.#b[at + i]!);
    if (this.#b[at + n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  run(): PickleValue {
    const b = this.#b;
    while (this.#p < b.length) {
      const at = this.#p;
      const op = b[this.#p++]!;
      switch (op) {
        case 0x80: // PROTO
          if (this.#u8() > 5) this.#fail(`uses pickle protocol ${b[at + 1]}; 0–5 are read`);
          break;
        case 0x95: // FRAME (protocol 4): a length hint
          this.#need(8);
          break;
        case 0x2e: // STOP
          if (this.#stack.length !== 1 || this.#marks.length > 0) this.#fail('the pickle stops with a malformed stack');
          return this.#pop();
        case 0x28: // MARK
          if (this.#marks.length >= MAX_MARKS) this.#fail(`the pickle nests more than ${MAX_MARKS} deep`);
          this.#marks.push(this.#stack.length);
          this.#stack.push(MARK);
          break;
        case 0x30: // POP
          if (this.#stack[this.#stack.length - 1] === MARK) this.#popMark();
          else this.#pop();
          break;
        case 0x31: // POP_MARK
          this.#popMark();
          break;
        case 0x32: // DUP
          this.#push(this.#top());
          break;
        // --- constants and numbers
        case 0x4e: // NONE
          this.#push(null);
          break;
        case 0x88: // NEWTRUE
          this.#push(true);
          break;
        case 0x89: // NEWFALSE
          this.#push(false);
          break;
        case 0x4a: // BININT
          this.#push(this.#v.getInt32(this.#need(4), true));
          break;
        case 0x4b: // BININT1
          this.#push(this.#u8());
          break;
        case 0x4d: // BININT2
          this.#push(this.#u16());
          break;
        case 0x8a: // LONG1
          this.#push(this.#int(this.#u8()));
          break;
        case 0x8b: {
          // LONG4
          const n = this.#u32();
          if (n > 64) this.#fail(`an integer of ${n} bytes is larger than any tensor size`);
          this.#push(this.#int(n));
          break;
        }
        case 0x49: {
          // INT (protocol 0): decimal text, or 00 / 01 for False / True
          const s = this.#line();
          if (s === '00' || s === '01') this.#push(s === '01');
          else this.#push(this.#decimal(s));
          break;
        }
        case 0x4c: // LONG (protocol 0): decimal text with an optional L
          this.#push(this.#decimal(this.#line().replace(/L$/, '')));
          break;
        case 0x47: // BINFLOAT: big-endian double
          this.#push(this.#v.getFloat64(this.#need(8), false));
          break;
        case 0x46: {
          // FLOAT (protocol 0)
          const s = this.#line();
          const x = Number(s);
          if (s.trim() === '' || Number.isNaN(x)) this.#fail(`'${s.slice(0, 40)}' is no float`);
          this.#push(x);
          break;
        }
        // --- strings and bytes
        case 0x58: // BINUNICODE
          this.#push(this.#text(this.#u32()));
          break;
        case 0x8c: // SHORT_BINUNICODE
          this.#push(this.#text(this.#u8()));
          break;
        case 0x8d: // BINUNICODE8
          this.#push(this.#text(this.#u64()));
          break;
        case 0x54: // BINSTRING (Python 2 str)
          this.#push(this.#text(this.#v.getInt32(this.#need(4), true)));
          break;
        case 0x55: // SHORT_BINSTRING
          this.#push(this.#text(this.#u8()));
          break;
        case 0x42: // BINBYTES
          this.#push(this.#bytes(this.#u32()));
          break;
        case 0x43: // SHORT_BINBYTES
          this.#push(this.#bytes(this.#u8()));
          break;
        case 0x8e: // BINBYTES8
          this.#push(this.#bytes(this.#u64()));
          break;
        case 0x96: // BYTEARRAY8
          this.#push(this.#bytes(this.#u64()).slice());
          break;
        // --- containers
        case 0x29: // EMPTY_TUPLE
          this.#push(new PickleTuple([]));
          break;
        case 0x85: // TUPLE1
          this.#push(new PickleTuple([this.#pop()]));
          break;
        case 0x86: {
          // TUPLE2
          const y = this.#pop();
          this.#push(new PickleTuple([this.#pop(), y]));
          break;
        }
        case 0x87: {
          // TUPLE3
          const z = this.#pop();
          const y = this.#pop();
          this.#push(new PickleTuple([this.#pop(), y, z]));
          break;
        }
        case 0x74: // TUPLE
          this.#push(new PickleTuple(this.#popMark()));
          break;
        case 0x5d: // EMPTY_LIST
          this.#push([]);
          break;
        case 0x6c: // LIST
          this.#push(this.#popMark());
          break;
        case 0x61: {
          // APPEND
          const v = this.#pop();
          this.#list(this.#top(), 'APPEND').push(v);
          break;
        }
        case 0x65: {
          // APPENDS
          const items = this.#popMark();
          this.#list(this.#top(), 'APPENDS').push(...items);
          break;
        }
        case 0x7d: // EMPTY_DICT
          this.#push(new Map());
          break;
        case 0x64: {
          // DICT
          const items = this.#popMark();
          const d = new Map<PickleValue, PickleValue>();
          this.#setItems(d, items);
          this.#push(d);
          break;
        }
        case 0x73: {
          // SETITEM
          const v = this.#pop();
          const k = this.#pop();
          this.#setItems(this.#dict(this.#top(), 'SETITEM'), [k, v]);
          break;
        }
        case 0x75: {
          // SETITEMS
          const items = this.#popMark();
          this.#setItems(this.#dict(this.#top(), 'SETITEMS'), items);
          break;
        }
        // --- memo
        case 0x71: // BINPUT
          this.#memoPut(this.#u8());
          break;
        case 0x72: // LONG_BINPUT
          this.#memoPut(this.#u32());
          break;
        case 0x94: // MEMOIZE
          this.#memoPut(this.#memo.size);
          break;
        case 0x70: // PUT
          this.#memoPut(this.#index(this.#line()));
          break;
        case 0x68: // BINGET
          this.#push(this.#memoGet(this.#u8()));
          break;
        case 0x6a: // LONG_BINGET
          this.#push(this.#memoGet(this.#u32()));
          break;
        case 0x67: // GET
          this.#push(this.#memoGet(this.#index(this.#line())));
          break;
        // --- globals, calls, persistent ids
        case 0x63: {
          // GLOBAL: "module\nname\n"
          const module = this.#line();
          this.#push(this.#global(module, this.#line()));
          break;
        }
        case 0x93: {
          // STACK_GLOBAL
          const name = this.#pop();
          const module = this.#pop();
          if (typeof module !== 'string' || typeof name !== 'string') this.#fail('STACK_GLOBAL takes two strings');
          this.#push(this.#global(module, name));
          break;
        }
        case 0x52: {
          // REDUCE
          const args = this.#pop();
          const fn = this.#pop();
          this.#push(this.#call(fn, args));
          break;
        }
        case 0x81: {
          // NEWOBJ: cls.__new__(cls, *args); only an OrderedDict may be made so
          const args = this.#pop();
          const cls = this.#pop();
          if (!(cls instanceof PickleGlobal) || cls.qualified !== 'collections.OrderedDict') this.#fail(`refuses NEWOBJ of ${this.#what(cls)}`);
          if (!(args instanceof PickleTuple) || args.items.length !== 0) this.#fail('refuses NEWOBJ of an OrderedDict with arguments');
          this.#push(new Map());
          break;
        }
        case 0x92: // NEWOBJ_EX
          this.#fail('refuses opcode NEWOBJ_EX (object construction)');
          break;
        case 0x69: {
          // INST: "module\nname\n", builds an object: refused, naming it
          const module = this.#line();
          this.#fail(`refuses to unpickle: ${refusal(`${module}.${this.#line()}`)} (opcode INST)`);
          break;
        }
        case 0x6f: {
          // OBJ
          const items = this.#popMark();
          this.#fail(`refuses opcode OBJ (object construction) of ${this.#what(items[0] ?? null)}`);
          break;
        }
        case 0x62: {
          // BUILD: only an OrderedDict's state (torch's _metadata), which is dropped
          const state = this.#pop();
          const target = this.#top();
          if (!(target instanceof Map)) this.#fail(`refuses BUILD (setting the state) of ${this.#what(target)}`);
          void state;
          break;
        }
        case 0x51: // BINPERSID
          this.#push(this.#persistent(this.#pop()));
          break;
        case 0x50: // PERSID (protocol 0): a text id, never torch's
          this.#fail('refuses a text persistent id (torch.save writes binary ones)');
          break;
        default:
          this.#fail(`uses pickle opcode 0x${op.toString(16).padStart(2, '0')} at byte ${at}, which is not read here (corrupt, or not a state_dict)`);
      }
    }
    return this.#fail('the pickle ends without STOP (truncated data.pkl)');
  }

  #decimal(s: string): number | bigint {
    if (!/^[+-]?[0-9]{1,40}$/.test(s)) this.#fail(`'${s.slice(0, 40)}' is no integer`);
    const v = BigInt(s);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  #index(s: string): number {
    if (!/^[0-9]{1,9}$/.test(s)) this.#fail(`'${s.slice(0, 40)}' is no memo index`);
    return Number(s);
  }

  #what(v: PickleValue): string {
    if (v instanceof PickleGlobal) return `'${v.qualified}'`;
    if (v instanceof Map) return 'a dict';
    if (Array.isArray(v)) return 'a list';
    if (v instanceof PickleTuple) return 'a tuple';
    if (v instanceof TorchTensor) return 'a tensor';
    if (v instanceof TorchStorage) return 'a storage';
    if (v instanceof Uint8Array) return 'bytes';
    return v === null ? 'None' : typeof v;
  }

  #list(v: PickleValue, op: string): PickleValue[] {
    if (!Array.isArray(v)) this.#fail(`${op} on ${this.#what(v)}, not a list`);
    return v;
  }

  #dict(v: PickleValue, op: string): Map<PickleValue, PickleValue> {
    if (!(v instanceof Map)) this.#fail(`${op} on ${this.#what(v)}, not a dict`);
    return v;
  }

  #setItems(d: Map<PickleValue, PickleValue>, items: PickleValue[]): void {
    if (items.length % 2 !== 0) this.#fail('a dict is given an odd number of keys and values');
    for (let i = 0; i < items.length; i += 2) d.set(items[i]!, items[i + 1]!);
  }

  #call(fn: PickleValue, args: PickleValue): PickleValue {
    if (!(fn instanceof PickleGlobal) || !CALLABLES.has(fn.qualified)) this.#fail(`refuses to call ${this.#what(fn)} (opcode REDUCE)`);
    if (!(args instanceof PickleTuple)) this.#fail(`'${fn.qualified}' is called with ${this.#what(args)}, not a tuple`);
    const a = args.items;
    switch (fn.qualified) {
      case 'collections.OrderedDict': {
        const d = new Map<PickleValue, PickleValue>();
        if (a.length === 0) return d;
        const pairs = a[0];
        if (a.length !== 1 || !Array.isArray(pairs)) this.#fail("'collections.OrderedDict' is called with unexpected arguments");
        for (const pair of pairs) {
          const kv = pair instanceof PickleTuple ? pair.items : Array.isArray(pair) ? pair : undefined;
          if (!kv || kv.length !== 2) this.#fail("'collections.OrderedDict' is given an item that is not a (key, value) pair");
          d.set(kv[0]!, kv[1]!);
        }
        return d;
      }
      case 'torch._utils._rebuild_tensor_v2':
        return this.#tensor(a);
      default: {
        // _rebuild_parameter(data, requires_grad, backward_hooks[, state]): the data is what matters
        const data = a[0];
        if (!(data instanceof TorchTensor)) this.#fail(`'${fn.qualified}' is called without a tensor`);
        return data;
      }
    }
  }

  #tensor(a: PickleValue[]): TorchTensor {
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    const [storage, offset, size, stride] = a;
    const what = "'torch._utils._rebuild_tensor_v2'";
    if (a.length < 4 || !(storage instanceof TorchStorage)) this.#fail(`${what} is called without a storage`);
    const dims = (v: PickleValue, name: string): number[] => {
      const items = v instanceof PickleTuple ? v.items : Array.isArray(v) ? v : undefined;
      if (!items || items.length > MAX_RANK) this.#fail(`${what}: ${name} is not a tuple of at most ${MAX_RANK} sizes`);
      return items.map((x) => {
        if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0)
          this.#fail(`${what}: ${name} holds ${this.#what(x)} ${String(x)}, not a size`);
        return x;
      });
    };
    const shape = dims(size!, 'size');
    const strides = dims(stride!, 'stride');
    if (strides.length !== shape.length) this.#fail(`${what}: size has ${shape.length} dimensions but stride ${strides.length}`);
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) this.#fail(`${what}: the storage offset is not a size`);
    // The last element the view touches must lie in the storage.
    let last = offset;
    let empty = false;
    for (let d = 0; d < shape.length; d++) {
      if (shape[d] === 0) empty = true;
      else last += (shape[d]! - 1) * strides[d]!;
    }
    if (!empty && (!Number.isSafeInteger(last) || last >= storage.numel)) {
      this.#fail(
        `a tensor of size [${shape.join(', ')}], stride [${strides.join(', ')}], offset ${offset} reaches past its storage of ${storage.numel} elements`,
      );
    }
    return new TorchTensor(storage, offset, shape, strides);
  }

  #persistent(pid: PickleValue): TorchStorage {
    // ('storage', storage_type, key, location, numel)
    const t = pid instanceof PickleTuple ? pid.items : undefined;
    if (!t || t.length !== 5 || t[0] !== 'storage') this.#fail('has a persistent id that is not a storage reference');
    const [, type, key, location, numel] = t;
    if (!(type instanceof PickleGlobal) || type.module !== 'torch' || !STORAGE_TYPES[type.name]) {
      this.#fail(`has a storage of unknown type ${this.#what(type!)}`);
    }
    if (typeof key !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(key) || key.includes('..'))
      this.#fail('has a storage key that is not a plain name');
    if (typeof location !== 'string') this.#fail(`storage '${key}' has no location`);
    if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0)
      this.#fail(`storage '${key}' declares an absurd size (${String(numel)})`);
    return new TorchStorage(STORAGE_TYPES[type.name]!.dtype, key, location, numel);
  }
}
