// Checks io.loadKerasModel against the real keras.applications ResNet50 / ResNet50V2 and the
// full-width keras.io CIFAR ResNet-20 v1 / v2, saved by Keras as .keras and .h5 (~100 MB each,
// so not test fixtures): loads each file with io.loadKerasModel alone and prints the largest
// |ours − Keras| of the logits and of softmax(ours) against Keras' predict.
//
//   npm run build:ts
//   TF_ENABLE_ONEDNN_OPTS=0 node scripts/check-keras-applications.mjs [--python /path/to/python] [--dir DIR] [case ...]
//
// Cases: resnet50 resnet50v2 cifar_resnet20_v1_full cifar_resnet20_v2_full (default), resnet101,
// resnet152v2. Without --dir the files go to a temporary folder, removed afterwards.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { io, Tensor } from '../dist/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const [, value] = args.splice(i, 2);
  return value;
};
const python = option('--python', process.env.PYTHON ?? 'python3');
const given = option('--dir', undefined);
const dir = given ?? mkdtempSync(join(tmpdir(), 'keras-applications-'));

function softmax(row) {
  const m = Math.max(...row);
  const e = row.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

try {
  const t0 = Date.now();
  execFileSync(python, [join(here, 'check-keras-applications.py'), dir, ...args], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, TF_ENABLE_ONEDNN_OPTS: '0', TF_CPP_MIN_LOG_LEVEL: '3' },
  });
  console.log(`Keras saved the models in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  const cases = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8'));
  let worst = 0;
  for (const [name, c] of Object.entries(cases)) {
    const all = new Float32Array(readFileSync(join(dir, `${name}.io.bin`)).buffer.slice(0));
    const n = c.batch * c.inputShape.reduce((a, b) => a * b, 1);
    const k = c.batch * c.classes;
    const input = all.slice(0, n);
    const logits = all.slice(n, n + k);
    const predicted = all.slice(n + k, n + 2 * k);
    for (const file of c.files) {
      const t = Date.now();
      const model = await io.loadKerasModel(join(dir, file));
      const loadMs = Date.now() - t;
      const ours = (await model.predict(Tensor.fromArray(input, [c.batch, ...c.inputShape]))).toFloat32Array();
      let logitDiff = 0;
      let logitMax = 0;
      for (let i = 0; i < k; i++) {
        logitDiff = Math.max(logitDiff, Math.abs(ours[i] - logits[i]));
        logitMax = Math.max(logitMax, Math.abs(logits[i]));
      }
      let probDiff = 0;
      for (let r = 0; r < c.batch; r++) {
        const p = softmax(Array.from(ours.subarray(r * c.classes, (r + 1) * c.classes)));
        for (let j = 0; j < c.classes; j++) probDiff = Math.max(probDiff, Math.abs(p[j] - predicted[r * c.classes + j]));
      }
      const pre = model.preprocessing
        ? `${model.preprocessing.channelOrder} mean ${model.preprocessing.mean.map((m) => +m.toFixed(4)).join('/')}`
        : 'none';
      console.log(
        `${file.padEnd(32)} load ${String(loadMs).padStart(6)} ms  layers ${String(model.spec.layers.length).padStart(4)}  ` +
          `max|Δlogit| ${logitDiff.toExponential(2)} (max|logit| ${logitMax.toFixed(3)})  max|Δprob| ${probDiff.toExponential(2)}  preprocessing ${pre}`,
      );
      worst = Math.max(worst, logitDiff / Math.max(logitMax, 1e-6));
      model.dispose();
    }
  }
  console.log(`worst relative logit error ${worst.toExponential(2)} (test bound 1e-4)`);
  if (!(worst <= 1e-4)) process.exitCode = 1;
} finally {
  if (!given) rmSync(dir, { recursive: true, force: true });
}
