// tfjs-layers on the tfjs cpu and wasm backends, the same architecture built from our spec
// (test/support/tfjs_from_spec.mjs). tfjs cpu is too slow for full batches at 224² (its conv
// weight gradient runs at ~0.02 GFLOP/s), so it runs reduced work and says so; what is not
// run is reported with the reason, never silently. Both backends run one thread under Node.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { summarize, timeLoop } from './timing.mjs';
import { makeBatch } from './workloads.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

let tf;
let converter;
async function loadTfjs() {
  if (tf) return;
  const core = await import('@tensorflow/tfjs-core');
  const layers = await import('@tensorflow/tfjs-layers');
  await import('@tensorflow/tfjs-backend-cpu');
  tf = { ...core, ...layers };
  converter = await import(path.join(here, '..', '..', 'test', 'support', 'tfjs_from_spec.mjs'));
}

/** What tfjs-cpu runs per model: [train batch or null, predict batch or null, reason]. */
const CPU_PLAN = {
  resnet20: { trainBatch: 2, predictBatch: 128, note: 'train: 1 step at batch 2 (a batch-128 step takes ~30 min)' },
  resnet18: {
    trainBatch: null,
    predictBatch: 1,
    note: 'predict at batch 1 only (batch 16 ≈ 3 min); train skipped: conv weight gradient ~0.02 GFLOP/s, one step ≈ 1 h',
  },
  resnet50: { trainBatch: null, predictBatch: null, note: 'skipped: ~4 min per predicted batch of 16 and hours per training step' },
};

function errorText(e) {
  const msg = e instanceof Error ? e.message : String(e);
  const m = /Kernel '([^']+)' not registered for backend '([^']+)'/.exec(msg);
  return m ? `cannot train: no ${m[1]} kernel` : `error: ${msg.split('\n')[0]}`;
}

async function measure(name, w, nativeModel, backend, plan, opts) {
  const net = converter.tfjsModelFromSpec(tf, nativeModel.spec);
  const out = { framework: `tfjs-${backend}`, note: plan.note };
  const data = makeBatch(Math.max(w.batch, 1), w.inputShape, w.classes, 1);
  const tensors = (n) => [
    tf.tensor(data.x.subarray(0, n * w.inputShape[0] * w.inputShape[1] * w.inputShape[2]), [n, ...w.inputShape]),
    tf.oneHot(tf.tensor1d(data.y.subarray(0, n), 'int32'), w.classes),
  ];
  const predict = async (x) => {
    const y = tf.tidy(() => net.apply(x, { training: false }));
    await y.data();
    y.dispose();
  };
  const [x1] = tensors(1);
  await predict(x1); // warm-up
  if (plan.predictBatch) {
    const [xb, yb] = tensors(plan.predictBatch);
    const s = summarize(
      await timeLoop(() => predict(xb), { minSeconds: opts.seconds, minIters: 1, maxIters: opts.quick ? 1 : 20 }),
      plan.predictBatch,
      1,
    );
    out.infer = { ...s, batch: plan.predictBatch };
    tf.dispose([xb, yb]);
  }
  out.latency = summarize(await timeLoop(() => predict(x1), { minSeconds: Math.min(opts.seconds, 2), minIters: 2, maxIters: 20 }), 1);
  if (plan.trainBatch) {
    const [xt, yt] = tensors(plan.trainBatch);
    const optimizer = tf.train.momentum(0.01, 0.9);
    const step = async () => {
      const loss = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(yt, net.apply(xt, { training: true })), true);
      await loss.data();
      loss.dispose();
    };
    try {
      await step(); // warm-up and momentum slots
      out.train = { ...summarize(await timeLoop(step, { minSeconds: 0, minIters: 1, maxIters: 1 }), plan.trainBatch, 1), batch: plan.trainBatch };
    } catch (e) {
      out.trainError = errorText(e);
    }
    optimizer.dispose();
    tf.dispose([xt, yt]);
  }
  tf.dispose([x1]);
  net.dispose();
  return out;
}

export async function benchTfjs(name, w, nativeModel, opts, log) {
  await loadTfjs();
  const results = [];
  if (opts.tfjsCpu) {
    const plan = CPU_PLAN[name];
    if (plan.predictBatch === null && plan.trainBatch === null) {
      log(`  tfjs-cpu: ${plan.note}`);
      results.push({ framework: 'tfjs-cpu', skipped: plan.note });
    } else {
      await tf.setBackend('cpu');
      log(`  tfjs-cpu: ${plan.note} …`);
      results.push(await measure(name, w, nativeModel, 'cpu', plan, opts));
    }
  } else {
    results.push({ framework: 'tfjs-cpu', skipped: opts.quick ? 'skipped (--quick)' : 'skipped (--no-tfjs-cpu)' });
  }
  if (opts.tfjsWasm) {
    try {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      const dist = path.join(path.dirname(fileURLToPath(import.meta.resolve('@tensorflow/tfjs-backend-wasm/package.json'))), 'dist') + path.sep;
      wasm.setWasmPaths(dist);
      if (!(await tf.setBackend('wasm'))) throw new Error('tf.setBackend("wasm") failed');
      // wasm cannot train (no Conv2DBackpropFilter): one batch-1 step shows the error.
      const plan = { trainBatch: 1, predictBatch: w.batch, note: 'single-threaded SIMD build (tfjs turns wasm threads off under Node)' };
      log('  tfjs-wasm …');
      results.push(await measure(name, w, nativeModel, 'wasm', plan, opts));
    } catch (e) {
      results.push({ framework: 'tfjs-wasm', skipped: errorText(e) });
    }
  } else {
    results.push({ framework: 'tfjs-wasm', skipped: 'skipped (--no-tfjs)' });
  }
  return results;
}
