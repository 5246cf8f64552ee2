// Fuzzing the PyTorch .pth reader (lib/io/torch_file.ts, lib/io/pytorch_pickle.ts) through
// loadTorchvision. Every input must load or throw a ResNetError naming the file, promptly, with
// no buffer larger than the file justifies, and nothing ever run:
//   - seeded byte mutations of a real state_dict .pth (test/fixtures/pytorch/resnet_basic.pth),
//     of the whole archive (most stopped by the zip's CRC-32) and of its data.pkl alone,
//     re-zipped with a valid CRC so that the unpickler itself meets the damage;
//   - the archive truncated at many points;
//   - hand-built hostile pickles: every object-building opcode and globals outside the
//     allow-list (os.system, builtins.eval, subprocess.Popen, a whole nn.Module, …), absurd
//     storage sizes / offsets / strides, a storage key missing or escaping, memo references out
//     of range, nesting 300,000 deep, cyclic memo structures, huge declared strings and ints,
//     big-endian and malformed archives;
//   - special files (FIFO, /dev/zero, a directory, a symlink loop) in place of the .pth.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { unzipSync } from 'fflate';
import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { type Model, models, ResNetError } from '../../lib/index.js';
import { loadTorchvision } from '../../lib/io/torchvision.js';
import { expectCode } from '../support/expect_error.js';
import {
  describeUnexpected,
  expectPromptAnswer,
  largestAllocation,
  makeSpecialFile,
  mutateBytes,
  releaseFifos,
  SPECIAL_KINDS,
  within,
} from '../support/fuzz.js';
import { binint, bytes, globalOp, OP, stateDictPickle, tensorPickle, torchZip, unicode } from '../support/pth_writer.js';
import { Rng } from '../support/random.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'pytorch');
const root = mkdtempSync(join(tmpdir(), 'rn-fuzz-pth-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(releaseFifos);

const MARKER = '/tmp/resnet-native-fuzz-pwned';
/** F16/BF16 → F32 doubles a storage; a storage is read once; the half table is 256 KiB. */
const allowance = (fileBytes: number) => 3 * fileBytes + 512 * 1024;

function resnetBasic(): Model {
  return models.resnet({
    name: 'resnet_basic',
    seed: 1,
    classes: 5,
    inputShape: [40, 48, 3],
    block: 'basic',
    stem: [
      { type: 'conv2d', filters: 8, kernelSize: 7, strides: 2, padding: 3 },
      { type: 'batchNorm' },
      { type: 'relu' },
      { type: 'maxPool', poolSize: 3, strides: 2, padding: 1 },
    ],
    stages: [2, 1, 1, 1].map((blocks, i) => ({ blocks, width: [8, 16, 24, 32][i]!, stride: i === 0 ? 1 : 2 })),
  });
}

function expectResNetError(error: unknown, where: string, path: string, codes: string[], outcomes: Map<string, number>): void {
  expect(error instanceof ResNetError, `${where}: ${describeUnexpected(error)}`).toBe(true);
  const e = error as ResNetError;
  expect(codes, `${where}: ${describeUnexpected(error)}`).toContain(e.code);
  if (e.code !== 'E_DTYPE') expect(e.message, where).toContain(path);
  outcomes.set(e.code, (outcomes.get(e.code) ?? 0) + 1);
}

const original = new Uint8Array(readFileSync(join(FIXTURES, 'resnet_basic.pth')));
const entries = unzipSync(original);
const pickleName = Object.keys(entries).find((n) => n.endsWith('/data.pkl'))!; // '<stem>/data.pkl', torch names the folder after the file
const prefix = pickleName.slice(0, -'data.pkl'.length);
const pickle = entries[pickleName]!;
const storages: Record<string, Uint8Array> = {};
for (const [name, data] of Object.entries(entries)) if (name.startsWith(`${prefix}data/`)) storages[name.slice(`${prefix}data/`.length)] = data;

describe('fuzzed .pth files', () => {
  it('every mutated archive or data.pkl loads or throws a ResNetError naming the file, within bounded memory', async () => {
    const model = resnetBasic();
    await loadTorchvision(model, join(FIXTURES, 'resnet_basic.pth')); // the unmutated file fits
    const rng = new Rng(1818);
    const runs = 1500;
    const outcomes = new Map<string, number>();
    const path = join(root, 'mutated.pth');
    for (let i = 0; i < runs; i++) {
      let data: Uint8Array;
      let how: string;
      if (rng.next() < 0.35) {
        ({ data, how } = mutateBytes(original, rng));
        how = `archive: ${how}`;
      } else {
        const m = mutateBytes(pickle, rng);
        data = torchZip(m.data, storages);
        how = `data.pkl: ${m.how}`;
      }
      writeFileSync(path, data);
      const { error, largest } = await largestAllocation(() => loadTorchvision(model, path, { strict: rng.next() < 0.7 }));
      const where = `input ${i} (${how}, ${data.length} bytes)`;
      if (error !== undefined) expectResNetError(error, where, path, ['E_FORMAT', 'E_IO', 'E_DTYPE'], outcomes);
      else outcomes.set('loaded', (outcomes.get('loaded') ?? 0) + 1);
      expect(largest, `${where}: largest buffer`).toBeLessThanOrEqual(allowance(data.length));
    }
    console.log(`fuzzed .pth: ${runs} inputs → ${JSON.stringify(Object.fromEntries(outcomes))}`);
    expect(outcomes.get('E_FORMAT') ?? 0).toBeGreaterThan(runs / 3);
    model.dispose();
  }, 120_000);

  it('a truncated archive is E_FORMAT naming the file, wherever it is cut', async () => {
    const model = resnetBasic();
    const path = join(root, 'truncated.pth');
    const cuts = new Set<number>([0, 1, 3, 4, 21, 22, 23, original.length - 1, original.length - 22, original.length - 23]);
    for (let k = 1; k < 96; k++) cuts.add(Math.floor((original.length * k) / 96));
    for (const cut of cuts) {
      writeFileSync(path, original.subarray(0, cut));
      await expectPromptAnswer(`cut at ${cut}`, () => loadTorchvision(model, path), {
        code: 'E_FORMAT',
        mentions: [path],
        limitMs: 5000,
        timeoutMs: 10_000,
      });
    }
    model.dispose();
  });
});

describe('hostile pickles', () => {
  const model = resnetBasic();
  afterAll(() => model.dispose());
  const f32 = (n: number) => new Uint8Array(4 * n);
  const conv = { name: 'conv1.weight', storage: 'FloatStorage', shape: [8, 3, 7, 7], data: f32(8 * 3 * 7 * 7) };
  /** A state_dict pickle whose one value is the opcodes `value` (they must leave one object). */
  const withValue = (value: Uint8Array) =>
    bytes([OP.PROTO, 2], globalOp('collections', 'OrderedDict'), [OP.EMPTY_TUPLE, OP.REDUCE], unicode('fc.bias'), value, [
      0x73 /* SETITEM */,
      OP.STOP,
    ]);
  const shell = (cmd: string) => bytes(unicode(cmd), [0x85 /* TUPLE1 */]);

  let n = 0;
  async function refuse(label: string, pkl: Uint8Array, mentions: string[], extra: Record<string, Uint8Array> = {}, store = storages) {
    const path = join(root, `hostile${n++}.pth`);
    writeFileSync(path, torchZip(pkl, store, extra));
    if (existsSync(MARKER)) unlinkSync(MARKER);
    await expectPromptAnswer(label, () => loadTorchvision(model, path), {
      code: 'E_FORMAT',
      mentions: [path, ...mentions],
      limitMs: 5000,
      timeoutMs: 10_000,
    });
    expect(existsSync(MARKER), `${label}: something ran`).toBe(false);
  }

  it('refuses every global outside the allow-list, by GLOBAL, STACK_GLOBAL or INST, naming it', async () => {
    for (const [module, name] of [
      ['os', 'system'],
      ['posix', 'system'],
      ['builtins', 'eval'],
      ['builtins', 'exec'],
      ['builtins', 'getattr'],
      ['subprocess', 'Popen'],
      ['torch', 'load'],
      ['torch', 'Tensor'],
      ['torch._utils', '_rebuild_tensor'],
      ['torch.storage', '_load_from_bytes'],
      ['torch.nn.modules.conv', 'Conv2d'],
      ['torchvision.models.resnet', 'ResNet'],
      ['numpy.core.multiarray', '_reconstruct'],
      ['collections', 'defaultdict'],
      ['torch', 'FloatStorage.__init__'],
    ]) {
      const q = `${module}.${name}`;
      await refuse(`GLOBAL ${q}`, withValue(bytes(globalOp(module, name), shell(`touch ${MARKER}`), [OP.REDUCE])), [q]);
      await refuse(`STACK_GLOBAL ${q}`, withValue(bytes(unicode(module), unicode(name), [0x93], shell(`touch ${MARKER}`), [OP.REDUCE])), [q]);
      await refuse(`INST ${q}`, withValue(bytes([OP.MARK], unicode(`touch ${MARKER}`), [0x69], new TextEncoder().encode(`${module}\n${name}\n`))), [
        q,
      ]);
    }
    await refuse('a whole nn.Module', withValue(bytes(globalOp('__main__', 'Net'), [OP.EMPTY_TUPLE, 0x81])), ['state_dict()']);
  });

  it('refuses object-building opcodes on allowed names, and calls of what is not callable', async () => {
    const od = globalOp('collections', 'OrderedDict');
    const storageType = globalOp('torch', 'FloatStorage');
    for (const [label, value] of [
      ['NEWOBJ of a storage type', bytes(storageType, [OP.EMPTY_TUPLE, 0x81])],
      ['NEWOBJ of an OrderedDict with arguments', bytes(od, unicode('x'), [0x85, 0x81])],
      ['NEWOBJ_EX', bytes(od, [OP.EMPTY_TUPLE, OP.EMPTY_DICT, 0x92])],
      ['OBJ', bytes([OP.MARK], od, [0x6f])],
      ['REDUCE of a storage type', bytes(storageType, [OP.EMPTY_TUPLE, OP.REDUCE])],
      ['REDUCE of a string', bytes(unicode('os.system'), [OP.EMPTY_TUPLE, OP.REDUCE])],
      ['BUILD on a list', bytes([OP.EMPTY_LIST, OP.EMPTY_DICT, OP.BUILD])],
      ['BUILD on a tensor', bytes(tensorPickle(conv, '0', 4), [OP.EMPTY_DICT, OP.BUILD])],
      ['a text persistent id', bytes([0x50], new TextEncoder().encode('0\n'))],
      ['a persistent id that is no storage', bytes(unicode('module'), [0x85, OP.BINPERSID])],
      [
        '_rebuild_tensor_v2 without a storage',
        bytes(globalOp('torch._utils', '_rebuild_tensor_v2'), [OP.MARK, OP.NONE], binint(0), [OP.EMPTY_TUPLE, OP.EMPTY_TUPLE, OP.TUPLE, OP.REDUCE]),
      ],
      ['an unknown opcode', bytes([0xff])],
      ['protocol 6', bytes([OP.PROTO, 6])],
    ] as const) {
      await refuse(label, withValue(value), []);
    }
  });

  it('refuses absurd storage sizes, offsets and strides, and missing or escaping storage keys', async () => {
    const cases: [string, Parameters<typeof tensorPickle>[0], string, string[]][] = [
      ['numel 2^31 - 1 for 4 bytes', { ...conv, numel: 2 ** 31 - 1 }, '0', ['declares']],
      ['numel -1', { ...conv, numel: -1 }, '0', ['absurd']],
      ['size [65536, 65536] over 1176 elements', { ...conv, shape: [65536, 65536], stride: [65536, 1] }, '0', ['reaches past']],
      ['offset past the end', { ...conv, offset: 1176 }, '0', ['reaches past']],
      ['a stride of 2^31', { ...conv, stride: [2 ** 31 - 1, 49, 7, 1] }, '0', ['reaches past']],
      ['a negative size', { ...conv, shape: [-8, 3, 7, 7] }, '0', ['not a size']],
      ['a storage key missing', conv, '77', ["no storage 'archive/data/77'"]],
      ['a storage key escaping', conv, '../../etc/passwd', ['not a plain name']],
    ];
    for (const [label, t, key, mentions] of cases) {
      const pkl = bytes(
        [OP.PROTO, 2],
        globalOp('collections', 'OrderedDict'),
        [OP.EMPTY_TUPLE, OP.REDUCE],
        unicode(t.name),
        tensorPickle(t, key, 4),
        [0x73, OP.STOP],
      );
      await refuse(label, pkl, mentions, {}, { 0: conv.data });
    }
    // A rank-65 tensor, and sizes given as a string.
    const rank65 = bytes([OP.MARK], ...new Array(65).fill(binint(1)), [OP.TUPLE]);
    await refuse(
      'rank 65',
      withValue(
        bytes(globalOp('torch._utils', '_rebuild_tensor_v2'), [OP.MARK], tensorStorage(), binint(0), rank65, rank65, [
          OP.NEWFALSE,
          OP.NONE,
          OP.TUPLE,
          OP.REDUCE,
        ]),
      ),
      ['64'],
    );
    await refuse(
      'size as a string',
      withValue(
        bytes(globalOp('torch._utils', '_rebuild_tensor_v2'), [OP.MARK], tensorStorage(), binint(0), unicode('big'), unicode('big'), [
          OP.NEWFALSE,
          OP.NONE,
          OP.TUPLE,
          OP.REDUCE,
        ]),
      ),
      ['size'],
    );
    // The storage entry's size disagrees with the pickle's numel.
    await refuse('short storage entry', stateDictPickle([conv]), ['holds 100 bytes'], {}, { 0: new Uint8Array(100) });
  });

  function tensorStorage(): Uint8Array {
    return bytes([OP.MARK], unicode('storage'), globalOp('torch', 'FloatStorage'), unicode('0'), unicode('cpu'), binint(1176), [
      OP.TUPLE,
      OP.BINPERSID,
    ]);
  }

  it('refuses memo references out of range, huge declared strings and ints, and a stack or mark misuse', async () => {
    const u32 = (op: number, v: number) => {
      const b = new Uint8Array(5);
      b[0] = op;
      new DataView(b.buffer).setUint32(1, v, true);
      return b;
    };
    const u64 = (op: number, v: bigint) => {
      const b = new Uint8Array(9);
      b[0] = op;
      new DataView(b.buffer).setBigUint64(1, v, true);
      return b;
    };
    for (const [label, value, mentions] of [
      ['BINGET 200 of an empty memo', bytes([OP.BINGET, 200]), ['memo reference 200']],
      ['LONG_BINGET 2^32 - 1', u32(OP.LONG_BINGET, 2 ** 32 - 1), ['memo reference']],
      ['GET of text index', bytes([0x67], new TextEncoder().encode('99999999\n')), ['memo reference']],
      ['BINUNICODE of 2^32 - 1 bytes', u32(0x58, 2 ** 32 - 1), ['bytes']],
      ['BINUNICODE8 of 2^60 bytes', u64(0x8d, 2n ** 60n), ['bytes']],
      ['BINBYTES8 of 2^63 bytes', u64(0x8e, 2n ** 63n), ['bytes']],
      ['BINUNICODE of 1 MB, only 10 present', bytes(u32(0x58, 1 << 20), new Uint8Array(10)), ['ends early']],
      ['LONG4 of 2^31 bytes', u32(0x8b, 2 ** 31), ['integer']],
      ['invalid UTF-8', bytes([0x8c, 2, 0xff, 0xfe]), ['UTF-8']],
      ['POP of an empty stack', bytes([0x30, 0x30, 0x30, 0x30]), ['empty stack']],
      ['TUPLE without MARK', bytes([OP.TUPLE]), ['MARK']],
      ['SETITEM on a list', bytes([OP.EMPTY_LIST, OP.NONE, OP.NONE, 0x73]), ['not a dict']],
      ['APPEND on a dict', bytes([OP.EMPTY_DICT, OP.NONE, OP.APPEND]), ['not a list']],
      ['odd SETITEMS', bytes([OP.EMPTY_DICT, OP.MARK, OP.NONE, OP.SETITEMS]), ['odd']],
    ] as const) {
      await refuse(label, withValue(value), [...mentions]);
    }
    await refuse('no STOP', bytes([OP.PROTO, 2, OP.EMPTY_DICT]), ['without STOP']);
    await refuse('an empty data.pkl', new Uint8Array(0), ['without STOP']);
    await refuse('two objects left at STOP', bytes([OP.PROTO, 2, OP.EMPTY_DICT, OP.EMPTY_DICT, OP.STOP]), ['malformed stack']);
  });

  it('answers nesting 300,000 deep and cyclic memo structures promptly, without recursion', async () => {
    const N = 300_000; // 30 times what a recursive walk survives
    // 300,000 MARKs: refused at the mark bound.
    await refuse('300,000 MARKs', withValue(new Uint8Array(N).fill(OP.MARK)), ['nests more than']);
    // Lists N deep (N EMPTY_LISTs, N − 1 APPENDs), as the state_dict and as a value of it.
    const deepList = bytes(new Uint8Array(N).fill(OP.EMPTY_LIST), new Uint8Array(N - 1).fill(OP.APPEND));
    await refuse('a list 300,000 deep as the value', withValue(deepList), ["no state_dict (keys: 'fc.bias')"]);
    await refuse('a list 300,000 deep as the object', bytes([OP.PROTO, 2], deepList, [OP.STOP]), ['a list, not a state_dict']);
    // Dicts 1000 deep under 'state_dict'.
    const deepDict = bytes(
      ...new Array<Uint8Array>(1000).fill(bytes([OP.EMPTY_DICT], unicode('state_dict'))),
      [OP.EMPTY_DICT],
      new Uint8Array(1000).fill(0x73),
    );
    await refuse('dicts nested under state_dict', bytes([OP.PROTO, 2], deepDict, [OP.STOP]), ['no state_dict', "'state_dict'"]);
    // A list that contains itself, and a dict whose 'state_dict' is itself.
    await refuse('a self-containing list', bytes([OP.PROTO, 2, OP.EMPTY_LIST, OP.BINPUT, 0, OP.BINGET, 0, OP.APPEND, OP.STOP]), ['a list']);
    await refuse(
      'a dict that is its own state_dict',
      bytes([OP.PROTO, 2, OP.EMPTY_DICT, OP.BINPUT, 0], unicode('state_dict'), [OP.BINGET, 0, 0x73, OP.STOP]),
      ['no state_dict'],
    );
    // A DAG of 2^60 paths: each list holds the previous one twice.
    const dag = [OP.PROTO, 2, OP.EMPTY_LIST];
    for (let i = 0; i < 60; i++) dag.push(OP.BINPUT, 0, 0x30 /* POP */, OP.MARK, OP.BINGET, 0, OP.BINGET, 0, 0x6c /* LIST */);
    dag.push(OP.STOP);
    await refuse('a list DAG of 2^60 paths', bytes(dag), ['a list']);
  });

  it('refuses malformed archives: big-endian, no data.pkl, two of them, TorchScript, ZIP64 lies', async () => {
    const good = stateDictPickle([conv]);
    await refuse('big-endian', good, ['big-endian'], { byteorder: new TextEncoder().encode('big') }, { 0: conv.data });
    const path = join(root, 'nopkl.pth');
    const { zipSync } = await import('fflate');
    writeFileSync(path, zipSync({ 'archive/version': new TextEncoder().encode('3') }));
    await expectCode(() => loadTorchvision(model, path), 'E_FORMAT', path, 'data.pkl');
    writeFileSync(path, zipSync({ 'a/data.pkl': good, 'b/data.pkl': good }));
    await expectCode(() => loadTorchvision(model, path), 'E_FORMAT', path, 'more than one');
    await refuse(
      'TorchScript',
      good,
      ['TorchScript'],
      { 'code/__torch__/m.py': new Uint8Array(1), 'constants.pkl': new Uint8Array(1) },
      { 0: conv.data },
    );
    // A data.pkl entry declaring 2^40 bytes (ZIP64): capped before any allocation.
    const zip = torchZip(good, { 0: conv.data });
    const lie = zip.slice();
    const v = new DataView(lie.buffer);
    for (let p = lie.length - 22; p >= 0; p--) {
      if (v.getUint32(p, true) === 0x02014b50) v.setUint32(p + 24, 0xfffffff0, true); // every central entry's size
    }
    writeFileSync(path, lie);
    await expectPromptAnswer('sizes lied', () => loadTorchvision(model, path), {
      code: 'E_FORMAT',
      mentions: [path],
      limitMs: 5000,
      timeoutMs: 10_000,
    });
  });

  it('special files in place of the .pth are E_IO naming the path, without blocking', async () => {
    for (const [i, kind] of SPECIAL_KINDS.entries()) {
      const dir = join(root, `special${i}`);
      mkdirSync(dir);
      const p = join(dir, 'weights.pth');
      makeSpecialFile(kind, p);
      await expectCode(
        within(5000, () => loadTorchvision(model, p)),
        'E_IO',
        p,
      );
    }
  });
});
