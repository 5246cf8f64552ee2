// Batch-1 predict latency loop (for perf record -g / perf stat): ResNet-50 (default) or ResNet-20
// on one constant image, predict after predict for `seconds` (or exactly `calls` predicts);
// prints the mean ms per predict.
//   npx tsc -p tsconfig.json && node bench/latency_b1.mjs [resnet50|resnet20] [seconds] [calls]
import { models, Tensor } from '../dist/index.js';

const name = process.argv[2] ?? 'resnet50';
const seconds = Number(process.argv[3] ?? 5);
const calls = process.argv[4] === undefined ? Infinity : Number(process.argv[4]);
const m = name === 'resnet20' ? models.resnetCifar({ depth: 20, seed: 1 }) : models.resnet50({ seed: 1 });
m.eval();
const side = name === 'resnet20' ? 32 : 224;
const x = Tensor.fromArray(new Float32Array(3 * side * side).fill(0.5), [1, side, side, 3]);
for (let i = 0; i < 3; i++) (await m.predict(x)).dispose();
const t0 = performance.now();
let n = 0;
while (calls === Infinity ? performance.now() - t0 < seconds * 1000 : n < calls) {
  (await m.predict(x)).dispose();
  n++;
}
console.log(`${name} batch 1: ${((performance.now() - t0) / n).toFixed(3)} ms per predict (${n} calls)`);
