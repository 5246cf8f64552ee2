// Times the functional ops (today: the reference kernels) on ResNet layer shapes, beside
// tfjs's cpu backend in the same run. Reports; asserts nothing.
//   npm run compile && node bench/ops.mjs [--no-tfjs]
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';

import { ops, runtimeInfo, Tensor } from '../dist/index.js';

const withTfjs = !process.argv.includes('--no-tfjs');
await tf.setBackend('cpu');

async function time(fn, minSeconds = 1) {
  await fn();
  let runs = 0;
  const start = performance.now();
  while (performance.now() - start < minSeconds * 1000) {
    await fn();
    runs++;
  }
  return (performance.now() - start) / 1000 / runs;
}

const cases = [
  { name: 'conv 3x3 16->16 32x32 N32 (CIFAR stage 1)', n: 32, h: 32, w: 32, cin: 16, cout: 16, k: 3 },
  { name: 'conv 3x3 64->64 56x56 N8 (ResNet-18 layer1)', n: 8, h: 56, w: 56, cin: 64, cout: 64, k: 3 },
  { name: 'conv 1x1 256->64 56x56 N8 (ResNet-50 layer1)', n: 8, h: 56, w: 56, cin: 256, cout: 64, k: 1 },
];

console.log(`resnet-native ${JSON.stringify(runtimeInfo())}, tfjs-core ${tf.version_core} (cpu backend)`);
const rows = [];
for (const c of cases) {
  const flops = 2 * c.n * c.h * c.w * c.cin * c.cout * c.k * c.k;
  const x = Tensor.fill([c.n, c.h, c.w, c.cin], 0.5);
  const w = Tensor.fill([c.k, c.k, c.cin, c.cout], 0.01);
  const dy = Tensor.fill([c.n, c.h, c.w, c.cout], 0.1);
  const opts = { padding: 'same' };
  const fwd = await time(() => ops.conv2d(x, w, opts));
  const bwd = await time(() => ops.conv2dBackward(x, w, dy, opts));
  let tfFwd = NaN;
  if (withTfjs) {
    const tx = tf.fill([c.n, c.h, c.w, c.cin], 0.5);
    const tw = tf.fill([c.k, c.k, c.cin, c.cout], 0.01);
    tfFwd = await time(async () => tf.tidy(() => tf.conv2d(tx, tw, 1, 'same').dataSync()));
  }
  rows.push({
    case: c.name,
    'fwd GFLOP/s': (flops / fwd / 1e9).toFixed(2),
    'bwd (dx+dw) GFLOP/s': ((2 * flops) / bwd / 1e9).toFixed(2),
    'tfjs fwd GFLOP/s': (flops / tfFwd / 1e9).toFixed(2),
    'fwd vs tfjs': (tfFwd / fwd).toFixed(2) + 'x',
  });
}
console.table(rows);
