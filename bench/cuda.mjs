// resnet-native on an NVIDIA GPU: training images/s (one SGD-momentum step = forward +
// backward + update, all on the device), inference images/s (predict, logits copied back)
// and batch-1 latency, for a model at a batch size — each batch from the host inside the step,
// copied during the previous step (as Trainer.fit does), or already on the GPU — in fp32 with
// TF32 off (the default),
// with TF32 tensor cores allowed ('tf32'), and in mixed precision ('fp16', 'bf16'). Synthetic data, fixed across steps. Reports;
// asserts nothing. bench/pytorch_cuda.py measures PyTorch the same way on the same GPU.
//
//   npm run compile && node bench/cuda.mjs [--model resnet50] [--batch 256] [--steps 10]
//                                        [--modes fp32,tf32,fp16,bf16] [--device cuda:0] [--json FILE]
import { writeFileSync } from 'node:fs';

import { cudaStatus, models, Tensor } from '../dist/index.js';

const argv = process.argv.slice(2);
const option = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback;
};
const modelName = option('--model', 'resnet50');
const batch = Number(option('--batch', '256'));
const steps = Number(option('--steps', '10'));
const modes = option('--modes', 'fp32,tf32,fp16').split(',');
const device = option('--device', 'cuda');
const size = Number(option('--size', '224'));
const jsonFile = option('--json', '');

const status = cudaStatus();
if (!status.available) {
  console.log(`bench/cuda.mjs: no GPU here (${status.reason}); nothing measured`);
  process.exit(0);
}
const gpu = status.devices[0];
console.log(
  `GPU: ${gpu.name} (${(gpu.memoryBytes / 2 ** 30).toFixed(0)} GiB, sm_${gpu.computeCapability.replace('.', '')}), ` +
    `driver ${status.driverVersion}, cuDNN ${status.cudnnVersion}`,
);

const rngData = (n) => {
  const a = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    a[i] = s / 2 ** 31 - 1;
  }
  return a;
};

async function time(fn, count) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const results = [];
for (const mode of modes) {
  const precision = mode === 'fp16' || mode === 'bf16' ? mode : 'fp32';
  const model = models[modelName]({ inputShape: [size, size, 3], seed: 1, device, allowTf32: mode === 'tf32', precision });
  model.compile({ optimizer: { type: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 1e-4 } });
  const x = Tensor.fromArray(rngData(batch * size * size * 3), [batch, size, size, 3]);
  const y = Int32Array.from({ length: batch }, (_, i) => i % model.classes);
  const t0 = process.hrtime.bigint();
  await model.trainStep(x, y); // compiles the plan: cuDNN's algorithm search happens here
  const firstStep = Number(process.hrtime.bigint() - t0) / 1e9;
  await model.trainStep(x, y);
  const train = await time(() => model.trainStep(x, y), steps);
  model.eval();
  await model.predict(x);
  await model.predict(x);
  const infer = await time(() => model.predict(x), steps);
  // As Trainer.fit feeds a GPU model: each step's batch was copied to the device (Tensor.to:
  // pinned staging, the copy stream) while the previous step ran.
  model.train();
  let staged = x.to(device);
  const trainPrefetched = await time(async () => {
    const current = staged;
    const step = model.trainStep(current, y);
    staged = x.to(device); // the next batch crosses while this step runs
    await step;
    current.dispose();
  }, steps);
  staged.dispose();
  // The same with the batch already on the GPU (Tensor.to): no host-to-device copy per step.
  const xd = x.to(device);
  await model.trainStep(xd, y);
  const trainResident = await time(() => model.trainStep(xd, y), steps);
  model.eval();
  await model.predict(xd);
  const inferResident = await time(() => model.predict(xd), steps);
  xd.dispose();
  const one = Tensor.fromArray(rngData(size * size * 3), [1, size, size, 3]);
  await model.predict(one);
  await model.predict(one);
  const latency = (await time(() => model.predict(one), 20)) / 20;
  const { scale, skippedSteps } = model.lossScale;
  const r = {
    library: 'resnet-native',
    model: modelName,
    mode,
    batch,
    size,
    lossScale: scale,
    skippedSteps,
    trainImagesPerSecond: (batch * steps) / train,
    inferImagesPerSecond: (batch * steps) / infer,
    batch1LatencyMs: latency * 1e3,
    firstStepSeconds: firstStep,
    arenaBytes: model.stats().arenaBytes,
    trainResidentImagesPerSecond: (batch * steps) / trainResident,
    inferResidentImagesPerSecond: (batch * steps) / inferResident,
    trainPrefetchedImagesPerSecond: (batch * steps) / trainPrefetched,
  };
  results.push(r);
  console.log(
    `resnet-native ${modelName} ${mode} b${batch}: train ${r.trainImagesPerSecond.toFixed(1)} img/s, ` +
      `infer ${r.inferImagesPerSecond.toFixed(1)} img/s, batch-1 ${r.batch1LatencyMs.toFixed(2)} ms, ` +
      `first step ${firstStep.toFixed(1)} s, arena ${(r.arenaBytes / 2 ** 30).toFixed(1)} GiB, loss scale ${scale} (${skippedSteps} skipped); ` +
      `next batch copied during the step (as Trainer.fit): train ${r.trainPrefetchedImagesPerSecond.toFixed(1)} img/s; ` +
      `input already on the GPU: train ${r.trainResidentImagesPerSecond.toFixed(1)} img/s, infer ${r.inferResidentImagesPerSecond.toFixed(1)} img/s`,
  );
  x.dispose();
  one.dispose();
  model.dispose();
}
if (jsonFile) writeFileSync(jsonFile, JSON.stringify({ gpu, status, results }, null, 2));
