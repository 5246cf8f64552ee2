// One resnet-native measurement for bench/inference_ab.mjs, in its own process so each build's
// addon (RESNET_NATIVE_ADDON) loads alone: inference img/s at the workload's batch and batch-1
// predict latency per model. Prints one JSON line { runtime, models: { name: { infer, latency } } }.
import { runtimeInfo, Tensor } from '../../dist/index.js';
import { summarize, timeLoop } from './timing.mjs';
import { makeBatch, WORKLOADS } from './workloads.mjs';

const [modelList, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg);
const info = runtimeInfo();
const out = { runtime: { threads: info.threads, kernels: info.kernels, simd: info.simd }, models: {} };
for (const name of modelList.split(',')) {
  const w = WORKLOADS[name];
  const model = w.build({ seed: 1 });
  model.eval();
  const data = makeBatch(w.batch, w.inputShape, w.classes, 1);
  const x = Tensor.fromArray(data.x, [w.batch, ...w.inputShape]);
  const one = Tensor.fromArray(data.x.subarray(0, w.inputShape[0] * w.inputShape[1] * w.inputShape[2]), [1, ...w.inputShape]);
  for (let i = 0; i < 2; i++) (await model.predict(x)).dispose(); // plan, arena, folded weights
  const infer = summarize(
    await timeLoop(async () => (await model.predict(x)).dispose(), { minSeconds: seconds, minIters: 3 }),
    w.batch,
    info.threads,
  );
  for (let i = 0; i < 3; i++) (await model.predict(one)).dispose();
  const latency = summarize(await timeLoop(async () => (await model.predict(one)).dispose(), { minSeconds: Math.min(seconds, 2), minIters: 5 }), 1);
  out.models[name] = { infer, latency };
  x.dispose();
  one.dispose();
  model.dispose();
}
console.log(JSON.stringify(out));
