// npm run test:soak — a long run in one process, checking that nothing accumulates:
//   1. training: `--steps` (default 20,000) trainStep calls of a small ResNet (CIFAR-style,
//      depth 8, 8×8×3 inputs, batch 8). After `--warmup` steps (default 1,000), resident memory
//      (RSS, after a full GC) may grow by less than 2 % and the open file descriptors and the
//      native allocation count must not change at all.
//   2. finalizers: `--tensors` (default 20,000) tensors of 64 KiB created and dropped without
//      dispose(); after GC their native memory must be back to where it started.
// Needs --expose-gc (the npm script passes it) and the compiled package (npm run compile).
// Prints one JSON line with the figures and exits 1 when a limit is broken.
import { readdirSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '20000' },
    warmup: { type: 'string', default: '1000' },
    tensors: { type: 'string', default: '20000' },
    // Percent; 'off' where RSS says nothing (under ASan its quarantine holds freed memory).
    'rss-limit': { type: 'string', default: '2' },
  },
});
const steps = Number(values.steps);
const warmup = Number(values.warmup);
const tensorCount = Number(values.tensors);
if (typeof globalThis.gc !== 'function') {
  console.error('soak: run with node --expose-gc (npm run test:soak does)');
  process.exit(2);
}

const { models, Tensor, allocationStats } = await import('../dist/index.js');

const RSS_GROWTH_LIMIT = values['rss-limit'] === 'off' ? Infinity : Number(values['rss-limit']) / 100;
const openFds = () => readdirSync('/proc/self/fd').length;

/** Full collections with turns of the event loop between them, so finalizers get to run. */
async function settle() {
  for (let i = 0; i < 6; i++) {
    globalThis.gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

// Deterministic inputs: four batches reused in turn.
let seed = 12345;
const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
const batch = 8;
const batches = Array.from({ length: 4 }, () => ({
  x: Tensor.fromArray(
    Float32Array.from({ length: batch * 8 * 8 * 3 }, () => random() * 2 - 1),
    [batch, 8, 8, 3],
  ),
  y: Int32Array.from({ length: batch }, () => Math.floor(random() * 4)),
}));

const model = models.resnetCifar({ depth: 8, inputShape: [8, 8, 3], classes: 4, seed: 1 });
model.compile({ optimizer: { type: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 5e-4 } });

let lastLoss = NaN;
for (let s = 0; s < warmup; s++) lastLoss = (await model.trainStep(batches[s % 4].x, batches[s % 4].y)).loss;
await settle();
const before = { rss: process.memoryUsage().rss, fds: openFds(), native: allocationStats() };
let peakRss = before.rss;
// The end's RSS is the least of three settled samples over the last fifth of the run: glibc's
// arenas and V8's heap sizing move RSS by a megabyte or two either way from one moment to the
// next (measured: flat over 6,000 steps with ±2 MiB swings), which is the size of the limit
// here; a leak raises all three samples, a momentary high-water mark only one.
const endSamples = new Set([steps - Math.floor((steps - warmup) / 5), steps - Math.floor((steps - warmup) / 10), steps]);
let endRss = Infinity;
for (let s = warmup; s < steps; s++) {
  lastLoss = (await model.trainStep(batches[s % 4].x, batches[s % 4].y)).loss;
  if (s % 1000 === 0) peakRss = Math.max(peakRss, process.memoryUsage().rss);
  if (endSamples.has(s + 1) && s + 1 < steps) {
    await settle();
    endRss = Math.min(endRss, process.memoryUsage().rss);
  }
}
await settle();
const after = { rss: Math.min(endRss, process.memoryUsage().rss), fds: openFds(), native: allocationStats() };
model.dispose();
for (const b of batches) b.x.dispose();

// Finalizers: tensors dropped without dispose().
await settle();
const liveBefore = allocationStats().liveBytes;
let peakLive = liveBefore;
for (let i = 0; i < tensorCount; i++) {
  Tensor.fromArray(new Float32Array(16384), [128, 128]);
  if (i % 1000 === 999) {
    peakLive = Math.max(peakLive, allocationStats().liveBytes);
    await settle();
  }
}
await settle();
const liveAfter = allocationStats().liveBytes;

const growth = (after.rss - before.rss) / before.rss;
const result = {
  steps,
  warmup,
  lastLoss,
  rssBeforeMiB: +(before.rss / 2 ** 20).toFixed(2),
  rssAfterMiB: +(after.rss / 2 ** 20).toFixed(2),
  rssPeakMiB: +(peakRss / 2 ** 20).toFixed(2),
  rssGrowthPercent: +(growth * 100).toFixed(3),
  fdsBefore: before.fds,
  fdsAfter: after.fds,
  nativeAllocationsBefore: before.native.allocations,
  nativeAllocationsAfter: after.native.allocations,
  nativeLiveBytesBefore: before.native.liveBytes,
  nativeLiveBytesAfter: after.native.liveBytes,
  droppedTensors: tensorCount,
  droppedTensorsPeakLiveMiB: +((peakLive - liveBefore) / 2 ** 20).toFixed(2),
  liveBytesBeforeDropped: liveBefore,
  liveBytesAfterDropped: liveAfter,
};
const failures = [];
if (!Number.isFinite(lastLoss)) failures.push(`the loss went non-finite (${lastLoss})`);
if (growth >= RSS_GROWTH_LIMIT) failures.push(`RSS grew ${(growth * 100).toFixed(2)} % (limit ${RSS_GROWTH_LIMIT * 100} %)`);
if (after.fds !== before.fds) failures.push(`open file descriptors went from ${before.fds} to ${after.fds}`);
if (after.native.allocations !== before.native.allocations) {
  failures.push(`native allocations went from ${before.native.allocations} to ${after.native.allocations} during training`);
}
if (after.native.liveBytes !== before.native.liveBytes) {
  failures.push(`native live bytes went from ${before.native.liveBytes} to ${after.native.liveBytes} during training`);
}
if (liveAfter !== liveBefore) failures.push(`dropped tensors left ${liveAfter - liveBefore} native bytes after GC`);
console.log(JSON.stringify({ ...result, ok: failures.length === 0, failures }));
process.exit(failures.length === 0 ? 0 : 1);
