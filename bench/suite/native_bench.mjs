// resnet-native: training img/s (SGD momentum trainStep; skipped with opts.train === false),
// inference img/s (predict) at the workload's batch, and batch-1 predict latency.
import { runtimeInfo, Tensor } from '../../dist/index.js';
import { summarize, timeLoop } from './timing.mjs';
import { forwardFlopsPerImage, makeBatch } from './workloads.mjs';

export async function benchNative(name, w, opts) {
  const buildOptions = { seed: 1, ...(opts.device !== undefined ? { device: opts.device } : {}) };
  const model = w.build(buildOptions);
  const flops = forwardFlopsPerImage(model);
  const data = makeBatch(w.batch, w.inputShape, w.classes, 1);
  const x = Tensor.fromArray(data.x, [w.batch, ...w.inputShape]);
  const one = Tensor.fromArray(data.x.subarray(0, w.inputShape[0] * w.inputShape[1] * w.inputShape[2]), [1, ...w.inputShape]);
  const minIters = opts.quick ? 2 : 3;
  const threads = runtimeInfo().threads;
  const out = { framework: 'resnet-native', flopsPerImage: flops };

  if (opts.train !== false) {
    model.compile({ optimizer: { type: 'sgd', lr: 0.01, momentum: 0.9 } });
    for (let i = 0; i < 2; i++) await model.trainStep(x, data.y); // plans, arenas, optimizer state
    out.train = summarize(await timeLoop(() => model.trainStep(x, data.y), { minSeconds: opts.seconds, minIters }), w.batch, threads);
  }

  model.eval();
  for (let i = 0; i < 2; i++) (await model.predict(x)).dispose();
  out.infer = summarize(await timeLoop(async () => (await model.predict(x)).dispose(), { minSeconds: opts.seconds, minIters }), w.batch, threads);

  for (let i = 0; i < 3; i++) (await model.predict(one)).dispose();
  out.latency = summarize(
    await timeLoop(async () => (await model.predict(one)).dispose(), { minSeconds: Math.min(opts.seconds, 2), minIters: 5 }),
    1,
  );

  x.dispose();
  one.dispose();
  model.dispose();
  return out;
}
