// Checkpoints and the safetensors format under them: exact round trips (weights, batch-norm
// statistics, spec, predictions), optimizer state and resume equivalence (4 steps in one go ==
// 2 steps, save, load, 2 steps, bit for bit, SGD and AdamW), atomic writes, and hostile files:
// every malformed or inconsistent file is an E_FORMAT (E_IO when unreadable) and never a crash.
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { type CompileOptions, Model, type ModelSpec, models, ResNetError, Tensor } from '../../lib/index.js';
import { loadCheckpoint, loadModel, loadWeightsInto, minimumParameterCount, saveModel } from '../../lib/io/checkpoint.js';
import {
  decodeSafetensors,
  encodeSafetensors,
  float16ToFloat32,
  readSafetensors,
  SafetensorsReader,
  type SafetensorsTensorInput,
  writeSafetensors,
} from '../../lib/io/safetensors.js';
import { tinyModel } from '../support/models.js';
import { Rng } from '../support/random.js';
import { expectCode } from '../support/expect_error.js';

const root = mkdtempSync(join(tmpdir(), 'rn-checkpoint-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirCount = 0;
function freshDir(): string {
  const d = join(root, `d${dirCount++}`);
  mkdirSync(d);
  return d;
}

function compile(model: Model, options: CompileOptions): Model {
  return model.compile(options);
}

function batches(seed: number, count: number, n = 4): { x: Tensor; y: Int32Array }[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => ({ x: Tensor.fromArray(rng.array(n * 8 * 8 * 3), [n, 8, 8, 3]), y: rng.labels(n, 10) }));
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}

/** Names of parameters whose bits differ. */
function differing(a: Model, b: Model): string[] {
  return a
    .parameterInfo()
    .filter((p) => !sameBits(a.getParameter(p.name), b.getParameter(p.name)))
    .map((p) => p.name);
}

function optimizerDiffers(a: Model, b: Model): string[] {
  const info = a.network.optimizerStateInfo();
  expect(b.network.optimizerStateInfo()).toEqual(info);
  const out: string[] = [];
  for (let s = 0; s < info.slots; s++) {
    for (const p of a.parameterInfo()) {
      if (p.trainable && !sameBits(a.network.getOptimizerState(p.name, s), b.network.getOptimizerState(p.name, s))) out.push(`${s}:${p.name}`);
    }
  }
  return out;
}

function tempFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.includes('.tmp-'));
}

// ---------------------------------------------------------------------------------------------

describe('safetensors format', () => {
  it('encodes and decodes every supported array type, scalars and empty tensors, with metadata', () => {
    const tensors: SafetensorsTensorInput[] = [
      { name: 'w', shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 0, -0, 1e-30]) },
      { name: 'steps', shape: [], data: BigInt64Array.from([123456789012345n]) },
      { name: 'i', shape: [3], data: Int32Array.from([-1, 0, 2 ** 31 - 1]) },
      { name: 'flags', shape: [5], data: Uint8Array.from([0, 1, 2, 254, 255]) },
      { name: 'empty', shape: [0, 4], data: new Float32Array(0) },
      { name: 'd', shape: [2], data: Float64Array.from([Math.PI, -1e300]) },
    ];
    const bytes = encodeSafetensors(tensors, { b: '2', a: 'one', '': 'empty key' });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(n % 8).toBe(0);
    expect(bytes[8]).toBe(0x7b);
    expect(encodeSafetensors(tensors, { a: 'one', b: '2', '': 'empty key' })).toEqual(bytes); // deterministic
    const { metadata, tensors: out } = decodeSafetensors(bytes);
    expect(metadata).toEqual({ a: 'one', b: '2', '': 'empty key' });
    expect([...out.keys()]).toEqual(tensors.map((t) => t.name)); // data order
    for (const t of tensors) {
      const got = out.get(t.name)!;
      expect(got.shape).toEqual(t.shape);
      expect(got.data).toEqual(t.data);
      expect(got.data.constructor).toBe((t.data as object).constructor);
    }
    expect(out.get('steps')!.dtype).toBe('I64');
    expect(out.get('flags')!.dtype).toBe('U8');
  });

  it('reads a file as the reference writer lays it out (header order unrelated to data order)', () => {
    // Tensors listed in the header out of data order, __metadata__ last, header not padded.
    const header = JSON.stringify({
      b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
      a: { dtype: 'I32', shape: [2], data_offsets: [0, 8] },
      __metadata__: { format: 'pt' },
    });
    const h = new TextEncoder().encode(header);
    const bytes = new Uint8Array(8 + h.length + 12);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(h.length), true);
    bytes.set(h, 8);
    const dv = new DataView(bytes.buffer, 8 + h.length);
    dv.setInt32(0, 7, true);
    dv.setInt32(4, -9, true);
    dv.setFloat32(8, 0.25, true);
    const { metadata, tensors } = decodeSafetensors(bytes);
    expect(metadata).toEqual({ format: 'pt' });
    expect([...tensors.keys()]).toEqual(['a', 'b']);
    expect([...tensors.get('a')!.data]).toEqual([7, -9]);
    expect([...tensors.get('b')!.data]).toEqual([0.25]);
  });

  it('converts F16 (all 65536 patterns), BF16 and F64 to float32', async () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const f = float16ToFloat32(all);
    for (let h = 0; h < 65536; h++) {
      const sign = h & 0x8000 ? -1 : 1;
      const e = (h >> 10) & 0x1f;
      const m = h & 0x3ff;
      const want = e === 0 ? sign * m * 2 ** -24 : e === 31 ? (m ? NaN : sign * Infinity) : sign * (1 + m / 1024) * 2 ** (e - 15);
      if (!Object.is(f[h], want)) throw new Error(`half 0x${h.toString(16)} → ${f[h]}, expected ${want}`);
    }
    const dir = freshDir();
    const path = join(dir, 'mixed.safetensors');
    await writeSafetensors(path, [
      { name: 'h', dtype: 'F16', shape: [4], data: Uint16Array.from([0x3c00, 0xc000, 0x7bff, 0x0001]) },
      { name: 'bf', dtype: 'BF16', shape: [3], data: Uint16Array.from([0x3f80, 0x4049, 0xff80]) },
      { name: 'd', shape: [2], data: Float64Array.from([0.1, 1e40]) },
      { name: 'n', shape: [1], data: Int32Array.from([1]) },
    ]);
    const r = await SafetensorsReader.open(path);
    try {
      expect([...(await r.readFloat32('h'))]).toEqual([1, -2, 65504, 2 ** -24]);
      expect([...(await r.readFloat32('bf'))]).toEqual([1, 3.140625, -Infinity]);
      expect([...(await r.readFloat32('d'))]).toEqual([Math.fround(0.1), Infinity]);
      await expectCode(() => r.readFloat32('n'), 'E_DTYPE', "'n'", 'I32');
      await expectCode(() => r.read('nope'), 'E_ARG', 'nope');
    } finally {
      await r.close();
    }
    const whole = await readSafetensors(path);
    expect(whole.tensors.get('h')!.dtype).toBe('F16');
    expect(tempFiles(dir)).toEqual([]);
  });

  it('opening a large file reads its header only', async () => {
    const dir = freshDir();
    const path = join(dir, 'big.safetensors');
    const big = new Float32Array(4_000_000); // 16 MB
    big[big.length - 1] = 42;
    await writeSafetensors(path, [
      { name: 'small', shape: [2], data: Float32Array.from([1, 2]) },
      { name: 'big', shape: [big.length], dtype: 'F32', data: () => big },
    ]);
    const r = await SafetensorsReader.open(path);
    try {
      expect(r.names()).toEqual(['small', 'big']);
      expect(r.entry('big').end - r.entry('big').begin).toBe(16_000_000);
      expect([...(await r.readFloat32('small'))]).toEqual([1, 2]);
      expect((await r.readFloat32('big'))[big.length - 1]).toBe(42);
    } finally {
      await r.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('saveModel / loadModel round trip', () => {
  it('weights, batch-norm running statistics, spec and predictions come back bit for bit', async () => {
    const dir = freshDir();
    const path = join(dir, 'model.safetensors');
    const a = compile(tinyModel(11), { optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 } });
    for (const b of batches(1, 3)) await a.trainStep(b.x, b.y); // moves the running statistics
    const x = batches(2, 1, 6)[0]!.x;
    const before = (await a.predict(x)).toFloat32Array();
    await saveModel(a, path, { optimizer: false });
    expect(tempFiles(dir)).toEqual([]);

    const b = await loadModel(path);
    expect(b.spec).toEqual(a.spec);
    expect(b.parameterInfo()).toEqual(a.parameterInfo());
    expect(differing(a, b)).toEqual([]);
    expect(a.getParameter('bn1.running_var').some((v) => v !== 1)).toBe(true);
    expect(sameBits((await b.predict(x)).toFloat32Array(), before)).toBe(true);
    // Saved without its optimizer: not compiled.
    await expectCode(() => b.trainStep(x, new Int32Array(6)), 'E_ARG', 'compile');

    // Every tensor is F32 under the parameter's own name and shape; metadata as documented.
    const { metadata, tensors } = await readSafetensors(path);
    expect(metadata.format).toBe('resnet-native/checkpoint');
    expect(metadata.version).toBe('1');
    expect(JSON.parse(metadata.spec!)).toEqual(a.spec);
    expect(metadata.optimizer).toBeUndefined();
    expect([...tensors.keys()].sort()).toEqual(
      a
        .parameterInfo()
        .map((p) => p.name)
        .sort(),
    );
    for (const p of a.parameterInfo()) {
      expect(tensors.get(p.name)!.dtype).toBe('F32');
      expect(tensors.get(p.name)!.shape).toEqual(p.shape);
    }
    a.dispose();
    b.dispose();
  });

  it('save → load → save writes the same bytes; eval mode is kept', async () => {
    const dir = freshDir();
    const opts: CompileOptions = {
      optimizer: { type: 'adamw', lr: 1e-3 },
      paramGroups: [
        { match: /^fc\./, lrScale: 2 },
        { match: ['conv1.weight'], weightDecay: 0 },
      ],
    };
    const a = compile(tinyModel(3), opts);
    for (const b of batches(3, 2)) await a.trainStep(b.x, b.y);
    a.eval();
    await saveModel(a, join(dir, '1.safetensors'), { training: { epoch: 1, step: 2, rngState: [1, 2, 3], history: [{ loss: 1.5 }] } });
    const { model: b, training, optimizerRestored } = await loadCheckpoint(join(dir, '1.safetensors'));
    expect(optimizerRestored).toBe(true);
    expect(training).toEqual({ epoch: 1, step: 2, rngState: [1, 2, 3], history: [{ loss: 1.5 }] });
    expect(b.training).toBe(false);
    const stored = JSON.parse((await readSafetensors(join(dir, '1.safetensors'))).metadata.optimizer!);
    expect(stored.paramGroups[0].match).toEqual({ regexp: '^fc\\.', flags: '' });
    expect(stored.paramGroups[1].match).toEqual({ names: ['conv1.weight'] });
    // The loaded model was compiled with the stored options (RegExp rebuilt); saving it again gives the same file.
    expect(b.compileOptions!.paramGroups![0]!.match).toEqual(/^fc\./);
    await saveModel(b, join(dir, '2.safetensors'), { training: training! });
    expect(readFileSync(join(dir, '2.safetensors')).equals(readFileSync(join(dir, '1.safetensors')))).toBe(true);
    a.dispose();
    b.dispose();
  });

  it('loadModel(path, { optimizer: false }) skips the optimizer; loadWeightsInto sets weights only', async () => {
    const dir = freshDir();
    const path = join(dir, 'm.safetensors');
    const a = compile(tinyModel(4), { optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 } });
    for (const b of batches(4, 2)) await a.trainStep(b.x, b.y);
    await saveModel(a, path);
    const b = await loadModel(path, { optimizer: false });
    expect(differing(a, b)).toEqual([]);
    await expectCode(() => b.network.optimizerStateInfo(), 'E_ARG');

    const c = tinyModel(99);
    expect(differing(a, c).length).toBeGreaterThan(0);
    const report = await loadWeightsInto(c, path);
    expect(report.missing).toEqual([]);
    expect(report.unexpected).toEqual([]);
    expect(report.loaded.length).toBe(a.parameterInfo().length);
    expect(differing(a, c)).toEqual([]);

    // Another architecture: strict refuses before touching anything; E_SHAPE for a shape clash.
    const other = models.resnetCifar({ depth: 14, inputShape: [8, 8, 3], seed: 1 });
    const snapshot = other.parameters();
    await expectCode(() => loadWeightsInto(other, path), 'E_FORMAT', "'layer1.1.conv1.weight'");
    expect(other.parameters()).toEqual(snapshot);
    const partial = await loadWeightsInto(other, path, { strict: false });
    expect(partial.missing).toContain('layer1.1.conv1.weight');
    expect(sameBits(other.getParameter('conv1.weight'), a.getParameter('conv1.weight'))).toBe(true);
    const wide = models.resnetCifar({ depth: 8, inputShape: [8, 8, 3], classes: 7, seed: 1 });
    await expectCode(() => loadWeightsInto(wide, path), 'E_SHAPE', "'fc.weight'", '[64, 10]', '[64, 7]');

    // Plain safetensors (F64 here) load too, converted.
    const plain = join(dir, 'plain.safetensors');
    await writeSafetensors(
      plain,
      a.parameters().map((p) => ({ name: p.name, shape: p.shape, data: Float64Array.from(p.values) })),
    );
    const d = tinyModel(5);
    await loadWeightsInto(d, plain);
    expect(differing(a, d)).toEqual([]);
    for (const m of [a, b, c, d, other, wide]) m.dispose();
  });

  it('a function in paramGroups cannot be stored: E_ARG, nothing written', async () => {
    const dir = freshDir();
    const a = compile(tinyModel(6), { optimizer: { type: 'sgd', lr: 0.1 }, paramGroups: [{ match: (p) => p.layer === 'fc', lrScale: 0.5 }] });
    await expectCode(() => saveModel(a, join(dir, 'x.safetensors')), 'E_ARG', 'paramGroups[0]', 'function', 'optimizer: false');
    expect(readdirSync(dir)).toEqual([]);
    await saveModel(a, join(dir, 'x.safetensors'), { optimizer: false });
    expect(readdirSync(dir)).toEqual(['x.safetensors']);
    await expectCode(() => saveModel(a, join(dir, 'y'), { training: { epoch: -1, step: 0 } }), 'E_ARG', 'epoch');
    await expectCode(() => saveModel(a, join(dir, 'y'), { optimiser: true } as never), 'E_ARG', 'optimiser');
    a.dispose();
  });

  it('the spec lower bound is exact for the builders (it guards against hostile specs)', () => {
    const specs: ModelSpec[] = [
      models.specs.resnetCifar({ depth: 8, inputShape: [8, 8, 3] }),
      models.specs.resnetCifar({ depth: 11, version: 2, inputShape: [12, 10, 3] }),
      models.specs.resnetCifar({ depth: 8, inputShape: [9, 9, 1], shortcut: 'zeroPad', convBias: true }),
      models.specs.resnet18({ classes: 10, inputShape: [32, 32, 3] }),
      models.specs.resnetSpec({
        classes: 5,
        inputShape: [17, 15, 3],
        block: 'bottleneck',
        stages: [
          { blocks: 1, width: 8 },
          { blocks: 2, width: 16 },
        ],
        groups: 4,
        widthPerGroup: 8,
        se: { reduction: 4 },
        stem: [
          { type: 'zeroPad', padding: [1, 2, 3, 0] },
          { type: 'conv2d', filters: 8, kernelSize: [3, 5], strides: 2, padding: 'valid', useBias: true },
          { type: 'batchNorm' },
          { type: 'relu' },
          { type: 'maxPool', poolSize: 3, strides: 2, padding: 'same' },
        ],
        head: { pool: 'flatten', hidden: [12] },
      }),
      models.specs.resnetSpec({
        classes: 3,
        inputShape: [16, 16, 2],
        block: 'preactBasic',
        stages: [
          { blocks: 1, width: 4 },
          { blocks: 1, width: 6 },
        ],
        postNorm: true,
        stem: 'imagenet',
        head: { pool: { type: 'avgPool', poolSize: 2, padding: 1 } },
      }),
    ];
    for (const spec of specs) {
      const m = Model.fromSpec(spec, { seed: 1 });
      expect(minimumParameterCount(spec), spec.name).toBe(m.paramCount({ includeNonTrainable: true }));
      m.dispose();
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('optimizer state and resume', () => {
  const cases: [string, CompileOptions][] = [
    [
      'SGD, Nesterov momentum, weight decay',
      { optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 }, labelSmoothing: 0.1 },
    ],
    [
      'SGD, momentum, decoupled decay, clipping',
      { optimizer: { type: 'sgd', lr: 0.05, momentum: 0.8, weightDecay: 1e-3, decoupledWeightDecay: true }, clipGradNorm: 1 },
    ],
    ['SGD without momentum (no state)', { optimizer: { type: 'sgd', lr: 0.05 } }],
    ['AdamW with parameter groups', { optimizer: { type: 'adamw', lr: 2e-3, weightDecay: 0.05 }, paramGroups: [{ match: /bn/, lrScale: 0.5 }] }],
  ];
  for (const [label, options] of cases) {
    it(`${label}: 4 steps == 2 steps, save, load, 2 steps (bit for bit)`, async () => {
      const dir = freshDir();
      const path = join(dir, 'resume.safetensors');
      const data = batches(21, 4);
      const lrAt = (i: number) => (i < 2 ? undefined : options.optimizer.lr * 0.5); // a schedule moved the rate
      const a = compile(tinyModel(8), options);
      for (let i = 0; i < 4; i++) await a.trainStep(data[i]!.x, data[i]!.y, lrAt(i) === undefined ? {} : { lr: lrAt(i)! });

      const b = compile(tinyModel(8), options);
      for (let i = 0; i < 2; i++) await b.trainStep(data[i]!.x, data[i]!.y);
      b.setLearningRate(options.optimizer.lr * 0.5);
      await saveModel(b, path, { training: { epoch: 0, step: 2, rngState: 'abc' } });
      const meta = (await readSafetensors(path)).metadata;
      expect(meta.optimizerSteps).toBe('2');
      const { model: c, training } = await loadCheckpoint(path);
      expect(training).toEqual({ epoch: 0, step: 2, rngState: 'abc' });
      expect(c.learningRate).toBe(b.learningRate);
      expect(optimizerDiffers(b, c)).toEqual([]);
      for (let i = 2; i < 4; i++) {
        await b.trainStep(data[i]!.x, data[i]!.y);
        await c.trainStep(data[i]!.x, data[i]!.y);
      }
      expect(differing(a, b)).toEqual([]); // the run itself is deterministic
      expect(differing(a, c)).toEqual([]);
      expect(optimizerDiffers(a, c)).toEqual([]);
      for (const m of [a, b, c]) m.dispose();
    });
  }

  it('state tensors are named as PyTorch names them', async () => {
    const dir = freshDir();
    for (const [opts, slots] of [
      [{ optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 } }, ['momentum_buffer']],
      [{ optimizer: { type: 'adamw', lr: 0.1 } }, ['exp_avg', 'exp_avg_sq']],
    ] as [CompileOptions, string[]][]) {
      const m = compile(tinyModel(2), opts);
      const path = join(dir, `${slots[0]}.safetensors`);
      await saveModel(m, path);
      const names = [...(await readSafetensors(path)).tensors.keys()];
      const trainable = m.parameterInfo().filter((p) => p.trainable);
      for (const s of slots) for (const p of trainable) expect(names).toContain(`optimizer.${s}.${p.name}`);
      expect(names.length).toBe(m.parameterInfo().length + slots.length * trainable.length);
      m.dispose();
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('atomic writes', () => {
  it('a write that fails midway leaves the previous file as it was and no temporary file', async () => {
    const dir = freshDir();
    const path = join(dir, 'w.safetensors');
    await writeSafetensors(path, [{ name: 'a', shape: [2], data: Float32Array.from([1, 2]) }]);
    const before = readFileSync(path);
    const big = new Float32Array(1 << 20);
    await expectCode(
      () =>
        writeSafetensors(path, [
          { name: 'big', shape: [big.length], data: big },
          {
            name: 'boom',
            shape: [2],
            dtype: 'F32',
            data: () => {
              throw new ResNetError('E_IO', 'simulated failure while writing');
            },
          },
        ]),
      'E_IO',
      'simulated',
    );
    expect(readFileSync(path).equals(before)).toBe(true);
    expect(tempFiles(dir)).toEqual([]);
    // A data function returning the wrong length: E_ARG, same guarantees.
    await expectCode(() => writeSafetensors(path, [{ name: 'x', shape: [3], dtype: 'F32', data: () => new Float32Array(2) }]), 'E_ARG', "'x'", '3');
    expect(readFileSync(path).equals(before)).toBe(true);
    expect(tempFiles(dir)).toEqual([]);
  });

  it('saveModel onto a directory, into a missing or read-only directory: E_IO naming the path', async () => {
    const dir = freshDir();
    const m = tinyModel(1);
    const asDir = join(dir, 'taken');
    mkdirSync(asDir);
    writeFileSync(join(asDir, 'keep'), 'x');
    await expectCode(() => saveModel(m, asDir), 'E_IO', asDir);
    expect(readdirSync(asDir)).toEqual(['keep']);
    expect(tempFiles(dir)).toEqual([]);
    const missing = join(dir, 'no', 'such', 'dir', 'm.safetensors');
    await expectCode(() => saveModel(m, missing), 'E_IO', missing);

    const good = join(dir, 'good.safetensors');
    await saveModel(m, good);
    const before = readFileSync(good);
    const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
    if (!isRoot && process.platform !== 'win32') {
      chmodSync(dir, 0o500);
      try {
        const other = tinyModel(2);
        await expectCode(() => saveModel(other, good), 'E_IO', good);
        other.dispose();
      } finally {
        chmodSync(dir, 0o700);
      }
      expect(readFileSync(good).equals(before)).toBe(true);
      expect(tempFiles(dir)).toEqual([]);
    }
    // Overwriting replaces the file whole.
    const other = tinyModel(3);
    await saveModel(other, good);
    const back = await loadModel(good);
    expect(differing(back, other)).toEqual([]);
    expect(tempFiles(dir)).toEqual([]);
    for (const x of [m, other, back]) x.dispose();
  });
});

// ---------------------------------------------------------------------------------------------

describe('hostile files: E_FORMAT (E_IO when unreadable), never a crash', () => {
  const dir = mkdtempSync(join(root, 'hostile-'));
  const validPath = join(dir, 'valid.safetensors');
  let valid: Uint8Array;
  let headerJson: Record<string, unknown>;
  let dataSection: Uint8Array;
  let n = 0;

  async function setup(): Promise<void> {
    if (valid) return;
    const m = compile(tinyModel(9), { optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 } });
    for (const b of batches(9, 1)) await m.trainStep(b.x, b.y);
    await saveModel(m, validPath, { training: { epoch: 1, step: 1, rngState: 's' } });
    m.dispose();
    valid = new Uint8Array(readFileSync(validPath));
    const len = Number(new DataView(valid.buffer, valid.byteOffset).getBigUint64(0, true));
    headerJson = JSON.parse(new TextDecoder().decode(valid.subarray(8, 8 + len)));
    dataSection = valid.subarray(8 + len);
  }

  function file(bytes: Uint8Array): string {
    const p = join(dir, `h${n++}.safetensors`);
    writeFileSync(p, bytes);
    return p;
  }

  /** A file from a header text (its true length unless given) and a data section. */
  function raw(header: string | Uint8Array, data: Uint8Array = dataSection, length?: bigint): string {
    const h = typeof header === 'string' ? new TextEncoder().encode(header) : header;
    const out = new Uint8Array(8 + h.length + data.length);
    new DataView(out.buffer).setBigUint64(0, length ?? BigInt(h.length), true);
    out.set(h, 8);
    out.set(data, 8 + h.length);
    return file(out);
  }

  /** The valid file with its header edited. */
  function edited(edit: (h: Record<string, any>) => void, data: Uint8Array = dataSection): string {
    const h = structuredClone(headerJson) as Record<string, any>;
    edit(h);
    return raw(JSON.stringify(h), data);
  }

  /** The valid checkpoint's tensors and metadata, edited, re-encoded (structurally valid). */
  function reencoded(edit: (t: Map<string, { shape: number[]; data: Float32Array }>, meta: Record<string, string>) => void): string {
    const { metadata, tensors } = decodeSafetensors(valid);
    const t = new Map([...tensors].map(([k, v]) => [k, { shape: v.shape, data: v.data as Float32Array }]));
    edit(t, metadata);
    return file(
      encodeSafetensors(
        [...t].map(([name, v]) => ({ name, shape: v.shape, data: v.data })),
        metadata,
      ),
    );
  }

  const firstParam = 'conv1.weight';
  const load = (p: string) => () => loadModel(p);

  it('the unedited file loads (the fixtures below are each one defect away from it)', async () => {
    await setup();
    (await loadModel(validPath)).dispose();
    (await loadModel(edited(() => undefined))).dispose();
    (await loadModel(reencoded(() => undefined))).dispose();
  });

  it('truncated anywhere', async () => {
    await setup();
    const cuts = new Set<number>();
    for (let i = 0; i < 80; i++) cuts.add(i);
    for (let i = 0; i < 60; i++) cuts.add(Math.floor((valid.length * i) / 60));
    cuts.add(valid.length - 1);
    for (const cut of cuts) await expectCode(load(file(valid.subarray(0, cut))), 'E_FORMAT');
    // …or with bytes appended.
    await expectCode(load(file(new Uint8Array([...valid, 0]))), 'E_FORMAT', 'belong to no tensor');
  });

  it('header length: huge, past the end of the file, too small', async () => {
    await setup();
    const h = valid.subarray(8, valid.length - dataSection.length);
    await expectCode(load(raw(h, dataSection, 2n ** 63n)), 'E_FORMAT', 'limit');
    await expectCode(load(raw(h, dataSection, 2n ** 64n - 1n)), 'E_FORMAT', 'limit');
    await expectCode(load(raw(h, dataSection, 100_000_001n)), 'E_FORMAT', 'limit');
    await expectCode(load(raw(h, dataSection, BigInt(valid.length))), 'E_FORMAT', 'past the end');
    await expectCode(load(raw(h, dataSection, 0n)), 'E_FORMAT');
    await expectCode(load(raw(h, dataSection, 1n)), 'E_FORMAT');
    await expectCode(load(raw(h, dataSection, BigInt(h.length - 8))), 'E_FORMAT');
    await expectCode(load(file(new Uint8Array(0))), 'E_FORMAT', 'shorter than');
    await expectCode(load(file(new Uint8Array(7))), 'E_FORMAT', 'shorter than');
  });

  it('header text: invalid JSON, not an object, not UTF-8, leading space', async () => {
    await setup();
    await expectCode(load(raw('{"a": ', new Uint8Array(0))), 'E_FORMAT', 'JSON');
    await expectCode(load(raw('{"a":1,}  ', new Uint8Array(0))), 'E_FORMAT', 'JSON');
    for (const text of ['[]', '[1,2]', '"str"', 'null', '42', 'true']) await expectCode(load(raw(text, new Uint8Array(0))), 'E_FORMAT', "'{'");
    await expectCode(load(raw(' {}', new Uint8Array(0))), 'E_FORMAT', "'{'");
    await expectCode(load(raw(new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), new Uint8Array(0))), 'E_FORMAT', 'UTF-8');
    await expectCode(load(raw('{}', new Uint8Array(0))), 'E_FORMAT', 'format');
  });

  it('entries: unknown dtype, bad shapes, bad offsets, size mismatch, unknown fields', async () => {
    await setup();
    const bad: [(h: Record<string, any>) => void, ...string[]][] = [
      [(h) => (h[firstParam].dtype = 'F33'), 'unknown dtype', firstParam],
      [(h) => (h[firstParam].dtype = 'f32'), 'unknown dtype'],
      [(h) => delete h[firstParam].dtype, 'unknown dtype'],
      [(h) => (h[firstParam].shape = [3, 3, -3, 16]), 'dimension 2', firstParam],
      [(h) => (h[firstParam].shape = [3, 3, 1.5, 16]), 'dimension 2'],
      [(h) => (h[firstParam].shape = [3, 3, '3', 16]), 'dimension 2'],
      [(h) => (h[firstParam].shape = 'big'), 'shape must be an array'],
      [(h) => (h[firstParam].shape = [2 ** 40, 2 ** 40, 2 ** 40]), 'over 2^53'],
      [(h) => (h[firstParam].shape = [3, 3, 3, 15]), 'needs 1620 bytes', firstParam],
      [(h) => (h[firstParam].shape = []), 'needs 4 bytes'],
      [(h) => (h[firstParam].data_offsets = [0]), 'data_offsets'],
      [(h) => (h[firstParam].data_offsets = [0, -4]), 'data_offsets'],
      [(h) => (h[firstParam].data_offsets = [0.5, 1728]), 'data_offsets'],
      [(h) => (h[firstParam].data_offsets = [1728, 0]), 'end before'],
      [(h) => (h[firstParam].data_offsets = [0, 1e15]), 'past the end of the data section'],
      [(h) => (h[firstParam].data_offsets = [dataSection.length - 1728 + 4, dataSection.length + 4]), 'past the end'],
      [(h) => (h[firstParam].extra = 1), "unknown field 'extra'"],
      [(h) => (h[firstParam] = [1, 2]), 'must be an object'],
      [(h) => (h.__metadata__ = [1]), '__metadata__'],
      [(h) => (h.__metadata__.version = 1), "'version' must be a string"],
      [(h) => (h.__metadata__ = null), '__metadata__'],
    ];
    for (const [edit, ...mentions] of bad) await expectCode(load(edited(edit)), 'E_FORMAT', ...mentions);
  });

  it('offsets that overlap, leave a gap, or leave bytes uncovered', async () => {
    await setup();
    const entries = Object.entries(headerJson)
      .filter(([k]) => k !== '__metadata__')
      .sort((a, b) => (a[1] as any).data_offsets[0] - (b[1] as any).data_offsets[0]) as [string, any][];
    const [secondName, second] = entries[1]!;
    const [b0, e0] = second.data_offsets as [number, number];
    await expectCode(load(edited((h) => (h[secondName].data_offsets = [b0 - 4, e0 - 4]))), 'E_FORMAT', 'overlap');
    await expectCode(load(edited((h) => (h[secondName].data_offsets = [b0 + 4, e0 + 4]))), 'E_FORMAT');
    // Drop a tensor from the header: its bytes are a gap.
    await expectCode(load(edited((h) => delete h[secondName])), 'E_FORMAT', 'gap');
    // Drop the last tensor: bytes after the end.
    const [lastName] = entries[entries.length - 1]!;
    await expectCode(load(edited((h) => delete h[lastName])), 'E_FORMAT', 'belong to no tensor');
    // Two tensors claiming the same bytes.
    await expectCode(load(edited((h) => (h.dup = { ...second }))), 'E_FORMAT', 'overlap');
  });

  it('checkpoint contents: missing, extra, mistyped or misshapen tensors, bad values', async () => {
    await setup();
    await expectCode(load(reencoded((t) => t.delete(firstParam))), 'E_FORMAT', firstParam, 'missing');
    await expectCode(load(reencoded((t) => t.delete('bn1.running_mean'))), 'E_FORMAT', 'bn1.running_mean');
    await expectCode(
      load(reencoded((t) => t.delete(`optimizer.momentum_buffer.${firstParam}`))),
      'E_FORMAT',
      `optimizer.momentum_buffer.${firstParam}`,
    );
    await expectCode(load(reencoded((t) => t.set('extra', { shape: [1], data: new Float32Array(1) }))), 'E_FORMAT', "unexpected tensor 'extra'");
    await expectCode(load(reencoded((t) => t.set('optimizer.exp_avg.conv1.weight', t.get(firstParam)!))), 'E_FORMAT', 'unexpected tensor');
    await expectCode(load(reencoded((t) => (t.get(firstParam)!.shape = [3, 3, 16, 3]))), 'E_FORMAT', firstParam, '[3, 3, 16, 3]', '[3, 3, 3, 16]');
    await expectCode(load(reencoded((t) => (t.get('fc.bias')!.data[3] = NaN))), 'E_FORMAT', 'fc.bias', 'non-finite');
    await expectCode(load(reencoded((t) => (t.get('bn1.running_var')!.data[0] = -1))), 'E_FORMAT', 'bn1.running_var', 'negative');
    const asInt = (() => {
      const { metadata, tensors } = decodeSafetensors(valid);
      const list = [...tensors].map(([name, v]) => ({
        name,
        shape: v.shape,
        data: name === 'fc.bias' ? Int32Array.from(v.data as Float32Array) : v.data,
      }));
      return file(encodeSafetensors(list, metadata));
    })();
    await expectCode(load(asInt), 'E_FORMAT', 'fc.bias', 'I32');
  });

  it('metadata: format, version, spec garbage, optimizer garbage, training garbage', async () => {
    await setup();
    const spec = JSON.parse(decodeSafetensors(valid).metadata.spec!);
    const withMeta = (edit: (m: Record<string, string | undefined>) => void) =>
      reencoded((_, m) => {
        edit(m);
        for (const k of Object.keys(m)) if (m[k] === undefined) delete m[k];
      });
    const bad: [(m: Record<string, string | undefined>) => void, ...string[]][] = [
      [(m) => (m.format = 'pt'), 'format', 'loadWeightsInto'],
      [(m) => (m.format = undefined), 'format'],
      [(m) => (m.version = '2'), 'version "2"'],
      [(m) => (m.version = undefined), 'version'],
      [(m) => (m.spec = undefined), "no 'spec'"],
      [(m) => (m.spec = '{not json'), "'spec' is not valid JSON"],
      [(m) => (m.spec = '[]'), 'ModelSpec'],
      [(m) => (m.spec = '"resnet"'), 'ModelSpec'],
      [(m) => (m.spec = JSON.stringify({ ...spec, format: 'x' })), 'spec format'],
      [(m) => (m.spec = JSON.stringify({ ...spec, version: 2 })), 'spec version'],
      [(m) => (m.spec = JSON.stringify({ ...spec, layers: 'many' })), 'layers'],
      [(m) => (m.spec = JSON.stringify({ ...spec, layers: [] })), 'does not build'],
      [(m) => (m.spec = JSON.stringify({ ...spec, layers: [...spec.layers, spec.layers[0]] })), 'does not build'],
      [
        (m) => (m.spec = JSON.stringify({ ...spec, layers: spec.layers.map((l: any) => ({ ...l, type: l.type === 'relu' ? 'gelu' : l.type })) })),
        'gelu',
      ],
      [(m) => (m.spec = JSON.stringify({ ...spec, output: 'nowhere' })), 'does not build'],
      [(m) => (m.spec = JSON.stringify({ ...spec, layers: [null, 3, 'x'] })), 'does not build'],
      // Hostile sizes are refused before any native memory is asked for.
      [
        (m) => (m.spec = JSON.stringify({ ...spec, layers: spec.layers.map((l: any) => (l.type === 'conv2d' ? { ...l, filters: 1e12 } : l)) })),
        'at least',
      ],
      [
        (m) => (m.spec = JSON.stringify({ ...spec, layers: spec.layers.map((l: any) => (l.type === 'dense' ? { ...l, units: 2 ** 40 } : l)) })),
        'at least',
      ],
      [
        (m) =>
          (m.spec = JSON.stringify({
            ...spec,
            inputShape: [1e7, 1e7, 3],
            layers: spec.layers.map((l: any) => (l.type === 'avgPool' ? { ...l, poolSize: [1, 1], strides: [1, 1] } : l)),
          })),
        'at least',
      ],
      [(m) => (m.spec = JSON.stringify({ ...spec, classes: 7 })), 'does not build'],
      [(m) => (m.spec = JSON.stringify(models.specs.resnetCifar({ depth: 14, inputShape: [8, 8, 3] }))), "'layer1.1.conv1.weight' is missing"],
      [(m) => (m.optimizer = '{'), "'optimizer' is not valid JSON"],
      [(m) => (m.optimizer = '[]'), "'optimizer' must be an object"],
      [(m) => (m.optimizer = JSON.stringify({ optimizer: { type: 'rmsprop', lr: 1 } })), 'does not compile', 'rmsprop'],
      [(m) => (m.optimizer = JSON.stringify({ optimizer: { type: 'sgd', lr: -1, momentum: 0.9 } })), 'does not compile'],
      [
        (m) =>
          (m.optimizer = JSON.stringify({
            optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 },
            paramGroups: [{ match: { regexp: '(', flags: '' } }],
          })),
        'RegExp',
      ],
      [
        (m) => (m.optimizer = JSON.stringify({ optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 }, paramGroups: [{ match: 'fc' }] })),
        'paramGroups[0]',
      ],
      [(m) => (m.optimizer = JSON.stringify({ optimizer: { type: 'adamw', lr: 0.1 } })), 'unexpected tensor', 'momentum_buffer', 'no such state'],
      [(m) => (m.optimizer = JSON.stringify({ optimizer: { type: 'sgd', lr: 0.1 } })), 'unexpected tensor', 'optimizer.momentum_buffer'],
      [(m) => (m.optimizer = undefined), 'optimizerSteps'],
      [(m) => (m.optimizerSteps = '-1'), 'optimizerSteps'],
      [(m) => (m.optimizerSteps = '1.5'), 'optimizerSteps'],
      [(m) => (m.optimizerSteps = '99999999999999999999'), 'optimizerSteps'],
      [(m) => (m.optimizerSteps = undefined), 'optimizerSteps'],
      [(m) => (m.learningRate = 'fast'), 'learningRate'],
      [(m) => (m.learningRate = ''), 'learningRate'],
      [(m) => (m.learningRate = '-0.1'), 'learningRate'],
      [(m) => (m.training = 'nope'), "'training' is not valid JSON"],
      [(m) => (m.training = '[]'), "'training' must be an object"],
      [(m) => (m.training = '{"epoch":1.5,"step":0}'), 'epoch'],
      [(m) => (m.training = '{"epoch":1}'), 'step'],
      [(m) => (m.mode = 'sleep'), "'mode'"],
    ];
    for (const [edit, ...mentions] of bad) await expectCode(load(withMeta(edit)), 'E_FORMAT', ...mentions);
    // Without the optimizer metadata the optimizer tensors are unexpected.
    await expectCode(
      load(withMeta((m) => ((m.optimizer = undefined), (m.optimizerSteps = undefined), (m.learningRate = undefined)))),
      'E_FORMAT',
      'unexpected tensor',
    );
  });

  it('unreadable paths: E_IO', async () => {
    await setup();
    await expectCode(load(join(dir, 'does-not-exist.safetensors')), 'E_IO', 'does-not-exist');
    await expectCode(load(dir), 'E_IO');
    await expectCode(() => loadModel(''), 'E_ARG');
  });

  it('fuzz: random bytes and random edits give only E_FORMAT / E_IO (or a valid model)', async () => {
    await setup();
    const rng = new Rng(2024);
    const headerLen = valid.length - dataSection.length - 8;
    const path = join(dir, 'fuzz.safetensors');
    const outcomes = { format: 0, ok: 0 };
    const attempt = async (bytes: Uint8Array, mustFail: boolean) => {
      writeFileSync(path, bytes);
      try {
        const m = await loadModel(path);
        expect(mustFail, 'random bytes loaded as a model').toBe(false);
        m.dispose();
        outcomes.ok++;
      } catch (err) {
        if (!(err instanceof ResNetError)) throw new Error(`not a ResNetError: ${String(err)}`);
        expect(['E_FORMAT', 'E_IO'], err.message).toContain(err.code);
        outcomes.format++;
      }
    };
    // Pure noise, with and without a plausible header length in front.
    for (let i = 0; i < 200; i++) {
      const size = rng.int(0, 600);
      const bytes = new Uint8Array(size).map(() => rng.int(0, 255));
      if (size >= 8 && i % 2 === 0) new DataView(bytes.buffer).setBigUint64(0, BigInt(rng.int(0, size - 8)), true);
      if (size >= 9 && i % 4 === 0) bytes[8] = 0x7b;
      await attempt(bytes, true);
    }
    // Noise that looks like a header.
    const alphabet = '{}[]":,0123456789-.eE F32I64U8dtypeshapedata_offsets__metadata__ ';
    for (let i = 0; i < 100; i++) {
      let text = '{';
      const len = rng.int(0, 120);
      for (let k = 0; k < len; k++) text += alphabet[rng.int(0, alphabet.length - 1)];
      const h = new TextEncoder().encode(text);
      const data = new Uint8Array(rng.int(0, 64)).map(() => rng.int(0, 255));
      const bytes = new Uint8Array(8 + h.length + data.length);
      new DataView(bytes.buffer).setBigUint64(0, BigInt(h.length), true);
      bytes.set(h, 8);
      bytes.set(data, 8 + h.length);
      await attempt(bytes, true);
    }
    // The valid file with 1–4 bytes changed in its length prefix or header, or anywhere.
    for (let i = 0; i < 250; i++) {
      const bytes = valid.slice();
      const edits = rng.int(1, 4);
      for (let k = 0; k < edits; k++) {
        const at = i % 5 === 4 ? rng.int(0, bytes.length - 1) : rng.int(0, 8 + headerLen - 1);
        bytes[at] = i % 3 === 0 ? rng.pick([0x22, 0x2c, 0x3a, 0x5b, 0x5d, 0x7b, 0x7d, 0x30, 0x39, 0x2d]) : rng.int(0, 255);
      }
      await attempt(bytes, false);
    }
    expect(outcomes.format).toBeGreaterThan(300);
  });
});
