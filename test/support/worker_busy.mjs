// Worker of worker_churn.mjs: keeps native calls of one kind in flight, three at a time, back to
// back, until it is terminated — or, with workerData.exitAfterMs, until it calls process.exit()
// itself in the middle of them. It also holds a model and tensors it never disposes: its
// environment's teardown has to free them.
import { parentPort, workerData } from 'node:worker_threads';

import { augmentBatch, models, ops, Tensor } from '../../dist/index.js';

const { kind, exitAfterMs } = workerData;

function tensor(shape, seed) {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37 + seed);
  return Tensor.fromArray(data, shape);
}

const tiny = () => models.resnetCifar({ depth: 8, inputShape: [16, 16, 3], classes: 10, seed: 1 });
const labels = Int32Array.from({ length: 8 }, (_, i) => i % 10);

// kind → a function starting one call (its promise settles when the call is done).
const jobs = {
  trainStep() {
    const model = tiny().compile({ optimizer: { type: 'sgd', lr: 0.01, momentum: 0.9 } });
    const x = tensor([8, 16, 16, 3], 1);
    return () => model.trainStep(x, labels);
  },
  predict() {
    const model = tiny();
    const x = tensor([8, 16, 16, 3], 2);
    return async () => (await model.predict(x)).dispose();
  },
  // Timed step by step natively (Model.profilePredict): the same plan as predict, with the clock.
  profilePredict() {
    const model = tiny();
    const x = tensor([8, 16, 16, 3], 2);
    return async () => (await model.profilePredict(x, { runs: 2 })).logits.dispose();
  },
  conv2d() {
    const x = tensor([4, 32, 32, 16], 3);
    const filter = tensor([3, 3, 16, 16], 4);
    return async () => (await ops.conv2d(x, filter, { padding: 'same' })).dispose();
  },
  augmentBatch() {
    const src = new Float32Array(64 * 32 * 32 * 3).fill(0.5);
    const dst = Tensor.zeros([64, 32, 32, 3]);
    let step = 0;
    return () => augmentBatch(src, dst, { count: 64, imageShape: [32, 32, 3], padding: 4, flip: true, seed: 1, step: step++ });
  },
  // Fails in native code (the channel check runs on the worker thread), so the promise rejects.
  rejected() {
    const x = tensor([4, 16, 16, 3], 5);
    const filter = tensor([3, 3, 5, 8], 6);
    return () =>
      ops.conv2d(x, filter).then(
        () => {
          throw new Error('conv2d with mismatched channels resolved');
        },
        (err) => {
          if (err.code !== 'E_SHAPE') throw err;
        },
      );
  },
};

const start = jobs[kind]();
// 4 MB more native memory per worker, so a worker whose tensors outlive it is easy to see.
const ballast = Tensor.zeros([1024, 1024]);

async function lane() {
  for (;;) await start();
}
for (let i = 0; i < 3; i++) {
  lane().catch((err) => parentPort.postMessage({ unexpected: `${kind}: ${err?.stack ?? err}` }));
}
if (exitAfterMs !== undefined) setTimeout(() => process.exit(0), exitAfterMs);
parentPort.postMessage({ ready: ballast.shape.length });
