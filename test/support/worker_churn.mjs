// Child process of test/native/workers.test.ts: starts worker after worker (worker_busy.mjs), three at a
// time, and ends each in the middle of its native calls — worker.terminate() after a random delay,
// terminate() right after it is created (while it loads the package and the addon), or
// process.exit() inside the worker. A native completion that throws into a dying environment
// aborts this whole process, which the test sees as the exit status.
// Usage: node --expose-gc worker_churn.mjs <workers> <warm-up workers>. Prints one JSON line:
// the counts, the seconds taken, and allocationStats() and RSS after the warm-up and at the end.
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';

import { allocationStats } from '../../dist/index.js';

const [total, warmup] = process.argv.slice(2).map(Number);
const kinds = ['trainStep', 'predict', 'profilePredict', 'conv2d', 'augmentBatch', 'rejected'];
const busy = new URL('./worker_busy.mjs', import.meta.url);
const counts = { terminated: 0, early: 0, exited: 0 };
const unexpected = [];

// Reproducible delays (a linear congruential generator).
let state = 12345;
const random = (n) => {
  state = (state * 1103515245 + 12345) % 2 ** 31;
  return state % n;
};

async function one(i) {
  const kind = kinds[i % kinds.length];
  const mode = i % 8 === 7 ? 'early' : i % 8 === 6 ? 'exited' : 'terminated';
  const worker = new Worker(busy, { workerData: { kind, exitAfterMs: mode === 'exited' ? random(30) : undefined } });
  const exited = new Promise((resolve) => worker.once('exit', resolve));
  const ready = new Promise((resolve) => {
    worker.on('message', (m) => (m.unexpected ? unexpected.push(m.unexpected) : resolve()));
  });
  worker.on('error', (err) => unexpected.push(`${kind}: ${err?.stack ?? err}`));
  if (mode !== 'early') await Promise.race([ready, exited]);
  if (mode === 'terminated') await sleep(random(30));
  if (mode !== 'exited') await worker.terminate();
  await exited;
  counts[mode]++;
}

async function run(from, to, lanes = 3) {
  let next = from;
  const lane = async () => {
    while (next < to) await one(next++);
  };
  await Promise.all(Array.from({ length: lanes }, lane));
}

async function sample() {
  for (let i = 0; i < 4; i++) {
    globalThis.gc();
    await sleep(50);
  }
  return { rss: process.memoryUsage().rss, liveBytes: allocationStats().liveBytes };
}

const t0 = performance.now();
await run(0, warmup);
const before = await sample();
await run(warmup, total);
const after = await sample();
console.log(JSON.stringify({ counts, unexpected, seconds: (performance.now() - t0) / 1000, before, after }));
