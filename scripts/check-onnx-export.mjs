// Exports real-size members of every model family as ONNX, with random batch-norm statistics,
// beside the inputs and model.predict's logits, for scripts/check-onnx-export.py to verify with
// the onnx package's checker and (native) onnxruntime. Not part of the tests (CI has no Python):
//
//   npx tsc -p tsconfig.json && node scripts/check-onnx-export.mjs /tmp/onnx-check
//   python3 scripts/check-onnx-export.py /tmp/onnx-check     # needs onnx, onnxruntime, numpy
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { models, Tensor } from '../dist/index.js';

const out = process.argv[2];
if (!out) throw new Error('usage: node scripts/check-onnx-export.mjs <output folder>');
mkdirSync(out, { recursive: true });

/** mulberry32, as test/support/random.ts. */
function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomiseBatchNorms(model, seed) {
  const r = rng(seed);
  for (const l of model.spec.layers) {
    if (l.type !== 'batchNorm') continue;
    const c = model.getParameter(`${l.name}.weight`).length;
    const positive = () => Float32Array.from({ length: c }, () => 0.5 + r());
    const small = () => Float32Array.from({ length: c }, () => (r() * 2 - 1) * 0.2);
    model.setParameter(`${l.name}.weight`, positive());
    model.setParameter(`${l.name}.bias`, small());
    model.setParameter(`${l.name}.running_mean`, small());
    model.setParameter(`${l.name}.running_var`, positive());
  }
}

const PRE = { imageSize: [32, 32], channelOrder: 'bgr', mean: [0.4, 0.45, 0.5], std: [0.2, 0.25, 0.3] };
const small = { inputShape: [64, 64, 3], classes: 10 };
const cases = {
  resnet18: [() => models.resnet18({ ...small, seed: 1 }), {}],
  resnet50_v1_keras: [() => models.resnet50({ ...small, variant: 'v1', convBias: true, bnEpsilon: 1.001e-5, seed: 2 }), { opset: 13 }],
  resnet50v2: [() => models.resnet50v2({ ...small, seed: 3 }), { opset: 21 }],
  resnext50_32x4d: [() => models.resnext50_32x4d({ ...small, seed: 4 }), { layout: 'NCHW' }],
  wide_resnet50_2: [() => models.wideResnet50_2({ ...small, seed: 5 }), { batch: 2 }],
  se_resnet50: [() => models.seResnet50({ ...small, seed: 6 }), {}],
  resnet_cifar20_v1: [() => models.resnetCifar({ depth: 20, convBias: true, seed: 7 }), {}],
  resnet_cifar29_v2: [() => models.resnetCifar({ depth: 29, version: 2, seed: 8 }), { layout: 'NCHW' }],
  resnet_cifar20_option_a: [() => models.resnetCifar({ depth: 20, shortcut: 'zeroPad', seed: 9 }), {}],
  resnet_cifar20_preprocessing: [
    () => {
      const m = models.resnetCifar({ depth: 20, seed: 10 });
      m.preprocessing = PRE;
      m.classNames = Array.from({ length: 10 }, (_, i) => `class${i}`);
      return m;
    },
    { includePreprocessing: true },
  ],
};

const manifest = {};
for (const [name, [make, options]] of Object.entries(cases)) {
  const model = make();
  randomiseBatchNorms(model, 100);
  const [h, w, c] = model.inputShape;
  const n = 2;
  const r = rng(11);
  const x = Float32Array.from({ length: n * h * w * c }, () => r());
  // With preprocessing in the graph, predict gets the images as the graph makes them: BGR, normalised.
  const ready = options.includePreprocessing ? x.map((_, i) => (x[i - (i % 3) + 2 - (i % 3)] - PRE.mean[i % 3]) / PRE.std[i % 3]) : x;
  const input = Tensor.fromArray(ready, [n, h, w, c]);
  const logits = await model.predict(input);
  writeFileSync(join(out, `${name}.logits.bin`), logits.toFloat32Array());
  writeFileSync(join(out, `${name}.input.bin`), x);
  logits.dispose();
  input.dispose();
  await model.exportOnnx(join(out, `${name}.onnx`), options);
  manifest[name] = { shape: [n, h, w, c], layout: options.layout ?? 'NHWC', classes: model.classes };
  model.dispose();
}
writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest, null, 2));
console.log(`wrote ${Object.keys(manifest).length} models to ${out}`);
