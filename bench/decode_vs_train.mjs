// Can the loader keep up with training? Decoding + augmentation images/s of datasets.imageFolder
// (JPEGs decoded by sharp on libuv's threads to a stored 256×256, `workers` at a time, a batch
// decoded ahead; then augmentBatch: random-resized-crop to 224², flip, colour jitter, normalise)
// against training images/s of resnet18 at 224² (trainStep, SGD momentum), and a short
// Trainer.fit on the folder (loader and steps overlapped as in real use). Generates a folder
// of JPEGs (random sizes, 10 classes) under /tmp once. Reports; asserts nothing.
//
//   npx tsc -p tsconfig.json && RESNET_NUM_THREADS=2 node bench/decode_vs_train.mjs
//        [--images 512] [--batch 16] [--steps 3] [--fit-images 64] [--workers 1,2,4] [--dir /tmp/rn-decode-bench]
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

import sharp from 'sharp';

import { augmentBatch, datasets, models, runtimeInfo, Tensor, Trainer } from '../dist/index.js';

const argv = process.argv.slice(2);
const option = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback;
};
const count = Number(option('--images', '512'));
const batch = Number(option('--batch', '16'));
const steps = Number(option('--steps', '3'));
const fitImages = Number(option('--fit-images', '64'));
const workerList = option('--workers', '1,2,4').split(',').map(Number);
const dir = option('--dir', `/tmp/rn-decode-bench-${count}`);
const CLASSES = 10;
const STORED = 256;
const SIZE = 224;
const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];

/** A photo-like JPEG: smooth colour gradients plus noise, w×h. */
async function writeImage(path, w, h, seed) {
  const px = Buffer.alloc(w * h * 3);
  let s = seed >>> 0 || 1;
  const rand = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const [a, b, c] = [rand() * 255, rand() * 255, rand() * 255];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      px[o] = (a + (x * 200) / w + rand() * 40) & 255;
      px[o + 1] = (b + (y * 200) / h + rand() * 40) & 255;
      px[o + 2] = (c + ((x + y) * 100) / (w + h) + rand() * 40) & 255;
    }
  }
  await sharp(px, { raw: { width: w, height: h, channels: 3 } })
    .jpeg({ quality: 90 })
    .toFile(path);
}

async function makeFolder() {
  if (existsSync(join(dir, '.done'))) return;
  let s = 12345;
  const rand = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
  for (let c = 0; c < CLASSES; c++) mkdirSync(join(dir, `class${c}`), { recursive: true });
  for (let i = 0; i < count; i++) {
    const w = 300 + Math.floor(rand() * 201);
    const h = 300 + Math.floor(rand() * 201);
    await writeImage(join(dir, `class${i % CLASSES}`, `${String(i).padStart(4, '0')}.jpg`), w, h, i + 1);
  }
  writeFileSync(join(dir, '.done'), '');
}

/** The loader alone, as the trainer drives it: fill batch k (hinting the ones after it), then augment it. */
async function loaderRate(workers, augment) {
  const ds = await datasets.imageFolder(dir, { size: STORED, workers });
  const order = Int32Array.from({ length: ds.length }, (_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = (i * 7919) % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const per = STORED * STORED * 3;
  const src = new Float32Array(batch * per);
  const labels = new Int32Array(batch);
  const x = Tensor.zeros([batch, SIZE, SIZE, 3]);
  let decodeMs = 0;
  let augmentMs = 0;
  const t0 = performance.now();
  const batches = Math.floor(ds.length / batch);
  for (let k = 0; k < batches; k++) {
    const a = performance.now();
    const filled = ds.fill(order.subarray(k * batch, (k + 1) * batch), src, labels);
    ds.prefetch(order.subarray((k + 1) * batch), batch);
    await filled;
    const b = performance.now();
    decodeMs += b - a;
    if (augment) {
      await augmentBatch(src, x, {
        count: batch,
        imageShape: [STORED, STORED, 3],
        randomResizedCrop: {},
        flip: true,
        colorJitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4 },
        mean: MEAN,
        std: STD,
        seed: 1,
        step: k,
      });
      augmentMs += performance.now() - b;
    }
  }
  ds.prefetch(new Int32Array(0), batch);
  x.dispose();
  const n = batches * batch;
  return { total: (n * 1000) / (performance.now() - t0), decode: (n * 1000) / decodeMs, augment: augment ? (n * 1000) / augmentMs : 0 };
}

/** The alternative to sharp's own thread pool: `threads` worker_threads, each decoding one image at a time (decode only). */
async function workerThreadRate(threads) {
  const files = readdirSync(dir)
    .filter((c) => c.startsWith('class'))
    .flatMap((c) => readdirSync(join(dir, c)).map((f) => join(dir, c, f)))
    .sort();
  const pool = Array.from({ length: threads }, () => new Worker(new URL('./decode_worker_thread.mjs', import.meta.url)));
  const out = new Float32Array(STORED * STORED * 3);
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    pool.map(
      (w) =>
        new Promise((resolve, reject) => {
          const send = () => (next < files.length ? w.postMessage({ id: next, path: files[next++], size: STORED }) : resolve());
          w.on('message', ({ pixels }) => {
            for (let p = 0; p < pixels.length; p++) out[p] = pixels[p] / 255; // as imageFolder's fill converts
            send();
          });
          w.on('error', reject);
          send();
        }),
    ),
  );
  const rate = (files.length * 1000) / (performance.now() - t0);
  await Promise.all(pool.map((w) => w.terminate()));
  return rate;
}

async function trainRate() {
  const model = models.resnet18({ classes: CLASSES, inputShape: [SIZE, SIZE, 3], seed: 1 });
  model.compile({ optimizer: { type: 'sgd', lr: 0.01, momentum: 0.9 } });
  const x = Tensor.fromArray(
    Float32Array.from({ length: batch * SIZE * SIZE * 3 }, (_, i) => Math.sin(i)),
    [batch, SIZE, SIZE, 3],
  );
  const y = Int32Array.from({ length: batch }, (_, i) => i % CLASSES);
  await model.trainStep(x, y); // plans and warms up
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) await model.trainStep(x, y);
  const rate = (steps * batch * 1000) / (performance.now() - t0);
  x.dispose();
  model.dispose();
  return rate;
}

/** Trainer.fit over the first fitImages images of the folder: decoding, augmentation and steps overlapped. */
async function fitRate(workers) {
  const ds = await datasets.imageFolder(dir, { size: STORED, workers });
  const subset = { ...ds, length: Math.min(fitImages, ds.length), fill: ds.fill, prefetch: ds.prefetch };
  const model = models.resnet18({ classes: CLASSES, inputShape: [SIZE, SIZE, 3], seed: 1 });
  const trainer = new Trainer(model, { compile: { optimizer: { type: 'sgd', lr: 0.01, momentum: 0.9 } }, progress: 'none' });
  const history = await trainer.fit(subset, {
    epochs: 1,
    batchSize: batch,
    seed: 1,
    augment: {
      randomResizedCrop: { size: SIZE },
      flip: true,
      colorJitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4 },
      mean: MEAN,
      std: STD,
    },
  });
  model.dispose();
  return history[0].imagesPerSecond;
}

await makeFolder();
const info = runtimeInfo();
console.log(
  `${count} JPEGs (300–500 px, ${CLASSES} classes) in ${dir}; stored ${STORED}², crops ${SIZE}²; batch ${batch}; native threads ${info.threads}; UV_THREADPOOL_SIZE ${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}`,
);
for (const w of workerList) {
  const r = await loaderRate(w, true);
  console.log(
    `loader, workers ${w}: ${r.total.toFixed(1)} img/s decode + augment (fill ${r.decode.toFixed(1)} img/s, augmentBatch ${r.augment.toFixed(1)} img/s)`,
  );
}
for (const w of workerList) {
  const r = await loaderRate(w, false);
  console.log(
    `decode only, sharp's pool, workers ${w}: ${r.decode.toFixed(1)} img/s; worker_threads ${w}: ${(await workerThreadRate(w)).toFixed(1)} img/s`,
  );
}
const train = await trainRate();
console.log(`resnet18 ${SIZE}² trainStep, batch ${batch}: ${train.toFixed(2)} img/s (${steps} steps after one warm-up)`);
if (fitImages > 0) {
  const fit = await fitRate(workerList[workerList.length - 1]);
  console.log(`Trainer.fit on ${fitImages} images of the folder (workers ${workerList[workerList.length - 1]}): ${fit.toFixed(2)} img/s`);
}
