// ResNet-20 (Keras' CIFAR-10 resnet_v1, depth 20: 32×32×3 → 10 classes) end to end: training
// images/s (one SGD-momentum step = forward + backward + update) and inference images/s
// (predict), for resnet-native beside tfjs-layers on tfjs' cpu and wasm backends, same
// architecture, same batch, same input. Reports; asserts nothing.
//
//   npm run compile && node bench/resnet20.mjs [options]
//
//   --batch N             batch size (default 128)
//   --seconds S           time each native / inference measurement for at least S s (default 5)
//   --tfjs-train-steps N  timed tfjs training steps per backend, each reported (default 1;
//                         0 skips tfjs training). tfjs cpu's conv weight-gradient kernel is
//                         extremely slow: at batch 128 one step can take many minutes.
//   --no-tfjs-cpu         skip the tfjs cpu backend
//   --no-wasm             skip the tfjs wasm backend
//   --only-native         resnet-native only
//   --tfjs-model M        'spec' (default when test/support/tfjs_from_spec.mjs exists: our
//                         ModelSpec converted, weights copied from the native model) or 'inline'
//                         (Keras resnet_v1 written here with tf.layers, same layer names)
//   --conv-bias           bias on every convolution, as the Keras example (default: none, as
//                         models.resnetCifar)
//   --seed N              weights / data seed (default 1)
//
// Leave RESNET_NUM_THREADS unset to use every core. tfjs cpu runs single-threaded JS; tfjs wasm
// in Node loads its single-threaded build (tfjs disables wasm threads under Node, tfjs#3830).
import os from 'node:os';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { models, runtimeInfo, Tensor } from '../dist/index.js';

// ---------------------------------------------------------------------------------------
// Options

const argv = process.argv.slice(2);
function flag(name) {
  return argv.includes(name);
}
function option(name, fallback, parse = Number) {
  const i = argv.indexOf(name);
  if (i < 0) return fallback;
  const v = argv[i + 1];
  if (v === undefined) throw new Error(`${name} needs a value`);
  const parsed = parse(v);
  if (typeof parsed === 'number' && !Number.isFinite(parsed)) throw new Error(`${name}: not a number: ${v}`);
  return parsed;
}
const known = new Set([
  '--batch',
  '--seconds',
  '--tfjs-train-steps',
  '--no-tfjs-cpu',
  '--no-wasm',
  '--only-native',
  '--tfjs-model',
  '--conv-bias',
  '--seed',
]);
for (const [i, a] of argv.entries()) {
  if (a.startsWith('--') && !known.has(a)) throw new Error(`unknown option ${a} (known: ${[...known].join(', ')})`);
  if (!a.startsWith('--') && !(i > 0 && ['--batch', '--seconds', '--tfjs-train-steps', '--tfjs-model', '--seed'].includes(argv[i - 1]))) {
    throw new Error(`unexpected argument ${a}`);
  }
}

const batch = option('--batch', 128);
const seconds = option('--seconds', 5);
const tfjsTrainSteps = option('--tfjs-train-steps', 1);
const seed = option('--seed', 1);
const convBias = flag('--conv-bias');
const onlyNative = flag('--only-native');
const runCpu = !onlyNative && !flag('--no-tfjs-cpu');
const runWasm = !onlyNative && !flag('--no-wasm');
if (!Number.isInteger(batch) || batch < 1) throw new Error('--batch must be a positive integer');
if (!Number.isInteger(tfjsTrainSteps) || tfjsTrainSteps < 0) throw new Error('--tfjs-train-steps must be an integer ≥ 0');
if (!(seconds >= 0)) throw new Error('--seconds must be ≥ 0');

const here = path.dirname(fileURLToPath(import.meta.url));
const converterPath = path.join(here, '..', 'test', 'support', 'tfjs_from_spec.mjs');
const tfjsModelKind = option('--tfjs-model', existsSync(converterPath) ? 'spec' : 'inline', String);
if (!['spec', 'inline'].includes(tfjsModelKind)) throw new Error("--tfjs-model must be 'spec' or 'inline'");

const CLASSES = 10;
const SHAPE = [32, 32, 3];
/** tfjs warms up on a small batch: its kernels have no per-shape compilation, and a full-batch cpu step can take minutes. */
const WARM_BATCH = Math.min(batch, 2);
const NATIVE_MIN_ITERS = 3;

// ---------------------------------------------------------------------------------------
// Helpers

/** mulberry32: deterministic data for every backend. */
function rng(s) {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makeBatch(n, s) {
  const r = rng(s);
  const x = new Float32Array(n * SHAPE[0] * SHAPE[1] * SHAPE[2]);
  for (let i = 0; i < x.length; i++) x[i] = r();
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) y[i] = Math.floor(r() * CLASSES);
  return { x, y };
}

const now = () => performance.now();

/**
 * Runs `step` until `minSeconds` have passed and at least `minIters` ran (at most `maxIters`).
 * Returns the per-iteration times (ms).
 */
async function timeLoop(step, { minSeconds, minIters, maxIters = Infinity, onStep }) {
  const times = [];
  const start = now();
  while ((now() - start < minSeconds * 1000 || times.length < minIters) && times.length < maxIters) {
    const t0 = now();
    await step();
    const dt = now() - t0;
    times.push(dt);
    if (onStep) onStep(times.length, dt);
  }
  return times;
}

function median(a) {
  const s = [...a].sort((p, q) => p - q);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Throughput from the measured iterations (sum of times, so pauses between steps don't count). */
function summarize(times) {
  const total = times.reduce((a, b) => a + b, 0);
  return { steps: times.length, msPerStep: total / times.length, msMedian: median(times), imagesPerSecond: (batch * times.length) / (total / 1000) };
}

function fmt(v, digits = 1) {
  if (v === undefined || v === null || Number.isNaN(v)) return '—';
  if (v >= 1000) return v.toFixed(0);
  if (v >= 100) return v.toFixed(digits);
  if (v >= 1) return v.toFixed(Math.max(digits, 2));
  return v.toPrecision(3);
}

function errorText(e) {
  const msg = e instanceof Error ? e.message : String(e);
  const m = /Kernel '([^']+)' not registered for backend '([^']+)'/.exec(msg);
  if (m) return { unsupportedKernel: m[1], text: `unsupported kernel ${m[1]}` };
  return { text: `error: ${msg.split('\n')[0]}` };
}

/** Forward multiply-add FLOPs per image (convolutions and dense layers), from the model's layer table. */
function forwardFlopsPerImage(model) {
  const byName = new Map(model.spec.layers.map((l) => [l.name, l]));
  const shapes = new Map([['input', [1, ...model.inputShape]]]);
  let flops = 0;
  for (const l of model.layers()) {
    shapes.set(l.name, l.outputShape);
    const spec = byName.get(l.name);
    const inShape = shapes.get(l.inputs[0]);
    if (!spec || !inShape) continue;
    const cin = inShape[inShape.length - 1];
    const out = l.outputShape;
    if (spec.type === 'conv2d') {
      flops += 2 * out[1] * out[2] * out[3] * spec.kernelSize[0] * spec.kernelSize[1] * (cin / spec.groups);
    } else if (spec.type === 'dense') {
      flops += 2 * inShape.slice(1).reduce((a, b) => a * b, 1) * spec.units;
    }
  }
  return flops;
}

// ---------------------------------------------------------------------------------------
// Environment

const info = runtimeInfo();
const command = `node bench/resnet20.mjs${argv.length ? ' ' + argv.join(' ') : ''}`;
const cpuModel = os.cpus()[0]?.model ?? 'unknown CPU';
console.log(`command:   ${command}`);
console.log(`date:      ${new Date().toISOString()}`);
console.log(`node:      ${process.version} (${process.platform}/${process.arch})`);
console.log(`cpu:       ${cpuModel}, ${os.cpus().length} logical cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`);
console.log(
  `native:    threads ${info.threads}, engine '${info.engine}', simd '${info.simd}'` +
    (process.env.RESNET_NUM_THREADS !== undefined
      ? `  (RESNET_NUM_THREADS=${process.env.RESNET_NUM_THREADS} is set: unset it to use all cores)`
      : '  (RESNET_NUM_THREADS unset)'),
);
console.log(
  `load avg:  ${os
    .loadavg()
    .map((v) => v.toFixed(2))
    .join(' ')} (other processes skew timings)`,
);

// ---------------------------------------------------------------------------------------
// resnet-native

const data = makeBatch(batch, seed);
const small = makeBatch(WARM_BATCH, seed + 1);
const native = models.resnetCifar({ depth: 20, seed, ...(convBias ? { convBias: true } : {}) });
const initialParams = native.parameters(); // copied into the tfjs models (spec converter)
const flopsPerImage = forwardFlopsPerImage(native);
console.log(
  `model:     ${native.name} (Keras CIFAR-10 resnet_v1 depth 20${convBias ? ', conv bias' : ''}), ${native.paramCount()} trainable parameters, ` +
    `${(flopsPerImage / 1e6).toFixed(1)} MFLOP/image forward (conv + dense); batch ${batch}`,
);

// Training-mode loss of the initial weights on the small batch: the tfjs models must agree.
const xSmall = Tensor.fromArray(small.x, [WARM_BATCH, ...SHAPE]);
const nativeCheckLoss = (await native.computeGradients(xSmall, small.y)).loss;

native.compile({ optimizer: { type: 'sgd', lr: 0.01, momentum: 0.9 } });
const results = []; // { backend, mode, stats | error }
{
  const x = Tensor.fromArray(data.x, [batch, ...SHAPE]);
  process.stdout.write('\nresnet-native: train … ');
  for (let i = 0; i < 2; i++) await native.trainStep(x, data.y); // warm-up: plans, arenas, optimizer state
  const train = await timeLoop(() => native.trainStep(x, data.y), { minSeconds: seconds, minIters: NATIVE_MIN_ITERS });
  results.push({ backend: 'resnet-native', mode: 'train', stats: summarize(train) });
  process.stdout.write(`${fmt(results.at(-1).stats.imagesPerSecond)} img/s; predict … `);
  for (let i = 0; i < 2; i++) (await native.predict(x)).dispose();
  const infer = await timeLoop(async () => (await native.predict(x)).dispose(), { minSeconds: seconds, minIters: NATIVE_MIN_ITERS });
  results.push({ backend: 'resnet-native', mode: 'predict', stats: summarize(infer) });
  console.log(`${fmt(results.at(-1).stats.imagesPerSecond)} img/s`);
  x.dispose();
}
xSmall.dispose();

// ---------------------------------------------------------------------------------------
// tfjs

const checks = []; // loss agreement
let wasmVariant = 'not run';
let tfVersions = '';

if (runCpu || runWasm) {
  const tfc = await import('@tensorflow/tfjs-core');
  const tfl = await import('@tensorflow/tfjs-layers');
  await import('@tensorflow/tfjs-backend-cpu');
  const tf = { ...tfc, ...tfl };
  tfVersions = `tfjs-core ${tfc.version_core}, tfjs-layers ${tfl.version_layers}`;
  const converter = tfjsModelKind === 'spec' ? await import(converterPath) : null;

  /** Keras' resnet_v1 (depth 20) with tf.layers, carrying the spec's layer names. */
  function inlineKerasResnet20() {
    const L = tf.layers;
    const conv = (x, name, filters, kernel, strides) =>
      L.conv2d({ name, filters, kernelSize: kernel, strides, padding: 'same', useBias: convBias, kernelInitializer: 'heNormal' }).apply(x);
    const bn = (x, name) => L.batchNormalization({ name, axis: -1, epsilon: 1e-3, momentum: 0.9 }).apply(x);
    const input = tf.input({ shape: SHAPE, name: 'input' });
    let x = L.reLU({ name: 'relu' }).apply(bn(conv(input, 'conv1', 16, 3, 1), 'bn1'));
    let filters = 16;
    for (let stage = 0; stage < 3; stage++) {
      for (let block = 0; block < 3; block++) {
        const p = `layer${stage + 1}.${block}`;
        const strides = stage > 0 && block === 0 ? 2 : 1;
        let y = L.reLU({ name: `${p}.relu1` }).apply(bn(conv(x, `${p}.conv1`, filters, 3, strides), `${p}.bn1`));
        y = bn(conv(y, `${p}.conv2`, filters, 3, 1), `${p}.bn2`);
        const shortcut = strides === 2 ? conv(x, `${p}.downsample.0`, filters, 1, strides) : x;
        x = L.reLU({ name: `${p}.relu` }).apply(L.add({ name: `${p}.add` }).apply([y, shortcut]));
      }
      filters *= 2;
    }
    x = L.averagePooling2d({ name: 'avgpool', poolSize: 8 }).apply(x);
    x = L.flatten({ name: 'flatten' }).apply(x);
    const logits = L.dense({ name: 'fc', units: CLASSES, kernelInitializer: 'heNormal' }).apply(x);
    return tf.model({ inputs: input, outputs: logits, name: 'resnet20_keras_inline' });
  }

  function buildTfjsModel() {
    const net = converter ? converter.tfjsModelFromSpec(tf, native.spec) : inlineKerasResnet20();
    let copied = false;
    if (converter) {
      converter.copyWeightsToTfjs(tf, initialParams, net, native.spec);
      copied = true;
    }
    return { net, copied };
  }

  const lossOf = (net, xs, ys) => tf.losses.softmaxCrossEntropy(ys, net.apply(xs, { training: true }));

  /** Kernels (not '…__op' wrappers) a cpu training step ran, recorded during its warm-up: to list what another backend lacks. */
  let trainKernels = null;
  const missingTrainKernels = (backend) => (trainKernels ? trainKernels.filter((k) => !tf.getKernel(k, backend)) : null);

  async function benchBackend(backend, label) {
    console.log(`\n${label}:`);
    const { net, copied } = buildTfjsModel();
    const xs = tf.tensor(data.x, [batch, ...SHAPE]);
    const ys = tf.oneHot(tf.tensor1d(data.y, 'int32'), CLASSES);
    const xw = tf.tensor(small.x, [WARM_BATCH, ...SHAPE]);
    const yw = tf.oneHot(tf.tensor1d(small.y, 'int32'), CLASSES);

    // Same initial weights, same images: the training-mode loss must match resnet-native's.
    if (copied) {
      const l = tf.tidy(() => lossOf(net, xw, yw).dataSync()[0]);
      checks.push({ backend: label, native: nativeCheckLoss, tfjs: l, relDiff: Math.abs(l - nativeCheckLoss) / Math.abs(nativeCheckLoss) });
    }

    // Inference: warm up on the small batch, then time at least `seconds` (≥ 1 full batch).
    // When ≥ 3 full batches ran the first one is dropped (warm-up at the full shape).
    const predict = async (x) => {
      const y = tf.tidy(() => net.apply(x, { training: false }));
      await y.data();
      y.dispose();
    };
    try {
      await predict(xw);
      process.stdout.write('  predict … ');
      let times = await timeLoop(() => predict(xs), { minSeconds: seconds, minIters: 1 });
      if (times.length >= 3) times = times.slice(1);
      results.push({ backend: label, mode: 'predict', stats: summarize(times) });
      console.log(`${fmt(results.at(-1).stats.imagesPerSecond)} img/s (${times.length} × ${fmt(results.at(-1).stats.msPerStep)} ms)`);
    } catch (e) {
      const err = errorText(e);
      results.push({ backend: label, mode: 'predict', error: err.text });
      console.log(`  predict: ${err.text}`);
    }

    // Training: SGD momentum 0.9 through optimizer.minimize, training-mode batch-norm.
    if (tfjsTrainSteps > 0) {
      const optimizer = tf.train.momentum(0.01, 0.9);
      const vars = net.trainableWeights.map((w) => w.read());
      const step = async (x, y) => {
        const loss = optimizer.minimize(() => lossOf(net, x, y), true, vars);
        await loss.data();
        loss.dispose();
      };
      try {
        // Warm-up (and the optimizer's momentum slots) on the small batch; on cpu, profiled to
        // learn which kernels a training step needs.
        const t0 = now();
        if (backend === 'cpu' && !trainKernels) {
          const prof = await tf.profile(() => step(xw, yw));
          trainKernels = [...new Set(prof.kernelNames)].filter((k) => !k.endsWith('__op')).sort();
        } else {
          await step(xw, yw);
        }
        const warmMs = now() - t0;
        const estimate = (warmMs * batch) / WARM_BATCH / 1000;
        console.log(
          `  train warm-up (batch ${WARM_BATCH}): ${fmt(warmMs)} ms → ${tfjsTrainSteps} batch-${batch} step(s) ≈ ${fmt(estimate * tfjsTrainSteps)} s`,
        );
        const times = await timeLoop(() => step(xs, ys), {
          minSeconds: 0,
          minIters: tfjsTrainSteps,
          maxIters: tfjsTrainSteps,
          onStep: (i, dt) => console.log(`  train step ${i}/${tfjsTrainSteps} (batch ${batch}): ${fmt(dt / 1000, 2)} s`),
        });
        results.push({ backend: label, mode: 'train', stats: summarize(times) });
      } catch (e) {
        const err = errorText(e);
        let detail = '';
        if (err.unsupportedKernel) {
          const missing = missingTrainKernels(backend);
          detail = missing
            ? `${backend} lacks ${missing.length} of the ${trainKernels.length} kernels a tfjs-cpu training step ran: ${missing.join(', ')}`
            : `the first missing kernel; run with the cpu backend to list every kernel ${backend} lacks`;
        }
        results.push({ backend: label, mode: 'train', error: `training: ${err.text}`, detail });
        console.log(`  training: ${err.text}${detail ? ` (${detail})` : ''}`);
      }
      optimizer.dispose();
    } else {
      results.push({ backend: label, mode: 'train', error: 'skipped (--tfjs-train-steps 0)' });
    }
    tf.dispose([xs, ys, xw, yw]);
    net.dispose();
  }

  if (runCpu) {
    await tf.setBackend('cpu');
    await tf.ready();
    await benchBackend('cpu', 'tfjs-cpu');
  }

  if (runWasm) {
    try {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      const dist = path.join(path.dirname(fileURLToPath(import.meta.resolve('@tensorflow/tfjs-backend-wasm/package.json'))), 'dist') + path.sep;
      wasm.setWasmPaths(dist);
      const ok = await tf.setBackend('wasm');
      if (!ok) throw new Error('tf.setBackend("wasm") failed');
      await tf.ready();
      const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
      const threads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
      const file = simd && threads ? 'tfjs-backend-wasm-threaded-simd.wasm' : simd ? 'tfjs-backend-wasm-simd.wasm' : 'tfjs-backend-wasm.wasm';
      wasmVariant = `${file} (SIMD ${simd ? 'on' : 'off'}, threads ${threads ? wasm.getThreadsCount() : '1: tfjs turns wasm threads off under Node'})`;
      console.log(`\ntfjs wasm ${wasm.version_wasm}: ${wasmVariant}, from ${dist}`);
      await benchBackend('wasm', simd ? (threads ? 'tfjs-wasm-simd-mt' : 'tfjs-wasm-simd') : 'tfjs-wasm');
    } catch (e) {
      const text = errorText(e).text;
      wasmVariant = `failed to load: ${text}`;
      results.push({ backend: 'tfjs-wasm', mode: 'predict', error: `backend ${text}` });
      results.push({ backend: 'tfjs-wasm', mode: 'train', error: `backend ${text}` });
      console.log(`\ntfjs wasm: ${text}`);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Report

const nativeOf = (mode) => results.find((r) => r.backend === 'resnet-native' && r.mode === mode)?.stats;
const rows = [];
for (const mode of ['train', 'predict']) {
  for (const r of results.filter((q) => q.mode === mode)) {
    const flops = flopsPerImage * (mode === 'train' ? 3 : 1);
    const nat = nativeOf(mode);
    rows.push({
      backend: r.backend,
      mode,
      'images/s': r.stats ? fmt(r.stats.imagesPerSecond) : r.error,
      'ms/step': r.stats ? fmt(r.stats.msPerStep) : '',
      'median ms': r.stats ? fmt(r.stats.msMedian) : '',
      steps: r.stats ? r.stats.steps : '',
      'GFLOP/s': r.stats ? fmt((r.stats.imagesPerSecond * flops) / 1e9, 2) : '',
      'native ×': r.stats && nat && r.backend !== 'resnet-native' ? `${fmt(nat.imagesPerSecond / r.stats.imagesPerSecond)}×` : '',
    });
  }
}
console.log(`\nResNet-20, batch ${batch}, native ${info.threads} thread(s)` + (tfVersions ? `, ${tfVersions}; tfjs wasm: ${wasmVariant}` : ''));
console.log('GFLOP/s counts conv + dense multiply-adds ×2; a training step as 3× the forward pass.');
console.table(rows);
for (const r of results.filter((q) => q.detail)) console.log(`${r.backend} ${r.mode}: ${r.error} (${r.detail})`);
if (checks.length) {
  console.log('Same weights and images, training-mode loss (batch ' + WARM_BATCH + '), resnet-native vs tfjs:');
  for (const c of checks)
    console.log(`  ${c.backend}: native ${c.native.toFixed(6)}, tfjs ${c.tfjs.toFixed(6)}, relative difference ${c.relDiff.toExponential(2)}`);
} else if (runCpu || runWasm) {
  console.log('(inline tfjs model: its own initial weights, no loss cross-check)');
}

// One markdown row for bench/RESULTS.md.
const cell = (backend, mode) => {
  const r = results.find((q) => q.backend.startsWith(backend) && q.mode === mode);
  if (!r) return 'not run';
  return r.stats ? fmt(r.stats.imagesPerSecond) : r.error.replace(/\|/g, '/');
};
const ratio = (backend, mode) => {
  const r = results.find((q) => q.backend.startsWith(backend) && q.mode === mode);
  const nat = nativeOf(mode);
  return r?.stats && nat ? `${fmt(nat.imagesPerSecond / r.stats.imagesPerSecond)}×` : '—';
};
const date = new Date().toISOString().slice(0, 10);
console.log('\nmarkdown (bench/RESULTS.md):');
console.log(
  '| date | batch | native threads | native train img/s | native predict img/s | tfjs-cpu train img/s | tfjs-cpu predict img/s | tfjs-wasm train img/s | tfjs-wasm predict img/s | native ÷ tfjs-cpu (train / predict) | native ÷ tfjs-wasm (train / predict) |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
console.log(
  `| ${date} | ${batch} | ${info.threads} (${info.simd}) | ${cell('resnet-native', 'train')} | ${cell('resnet-native', 'predict')} | ` +
    `${cell('tfjs-cpu', 'train')} | ${cell('tfjs-cpu', 'predict')} | ${cell('tfjs-wasm', 'train')} | ${cell('tfjs-wasm', 'predict')} | ` +
    `${ratio('tfjs-cpu', 'train')} / ${ratio('tfjs-cpu', 'predict')} | ${ratio('tfjs-wasm', 'train')} / ${ratio('tfjs-wasm', 'predict')} |`,
);
console.log(`\n(${command}; ${cpuModel}; node ${process.version})`);
native.dispose();
