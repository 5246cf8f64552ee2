// worker_threads: the addon loads in several workers at once and in worker after worker (its
// state is per environment), answers there exactly as on the main thread, and survives workers
// that are terminated, or exit, while its calls are in flight. An async completion in a dying
// environment drops its result and frees what it holds; it used to throw from
// AsyncWorker::OnAsyncWorkComplete, which aborted the whole process ("terminate called after
// throwing an instance of 'Napi::Error'").
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

import { beforeAll, describe, expect, it } from 'vitest';

import { allocationStats, models, Tensor } from '../lib/index.js';
import { ensureDist, packageRoot } from './support/dist.js';
import { Rng } from './support/random.js';

// Workers (and the churn child) import the compiled package, as users do; they inherit
// process.env, so RESNET_NATIVE_ADDON (the sanitizer run) picks their addon too.
beforeAll(ensureDist, 300_000);

const support = (name: string) => join(packageRoot, 'test', 'support', name);

/** Runs worker_infer.mjs to its end; resolves with the logits it posted. */
function inferInWorker(workerData: object): Promise<Float32Array[]> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(support('worker_infer.mjs'), { workerData });
    let logits: Float32Array[] | undefined;
    worker.once('message', (m: Float32Array[]) => (logits = m));
    worker.once('error', reject);
    worker.once('exit', (code) => (code === 0 && logits ? resolve(logits) : reject(new Error(`worker exited with ${code}`))));
  });
}

describe('worker threads', () => {
  it('a pool of 4 workers predicts concurrently, exactly as the main thread does, and their exit frees their models', async () => {
    const model = { depth: 8, inputShape: [16, 16, 3], classes: 10, seed: 3 };
    const rng = new Rng(5);
    const batches = [4, 8, 1].map((n) => ({ data: rng.array(n * 16 * 16 * 3), shape: [n, 16, 16, 3] }));
    const main = models.resnetCifar(model as Parameters<typeof models.resnetCifar>[0]);
    const expected: Float32Array[] = [];
    for (const { data, shape } of batches) {
      const x = Tensor.fromArray(data, shape);
      const y = await main.predict(x);
      expected.push(y.toFloat32Array());
      x.dispose();
      y.dispose();
    }
    const live = allocationStats().liveBytes;

    const answers = await Promise.all(Array.from({ length: 4 }, () => inferInWorker({ model, batches })));
    for (const logits of answers) expect(logits).toEqual(expected);
    // The workers never disposed their models or tensors: their environments' teardown finalized
    // them. The core counts its memory process-wide, so nothing of theirs may be left.
    expect(allocationStats().liveBytes).toBeLessThanOrEqual(live);
    main.dispose();
  });

  it('hundreds of workers terminated (or exiting) mid-call — trainStep, predict, conv2d, augmentBatch, rejecting ops — leave the process alive and leak nothing', async () => {
    // In a child process, so that an abort fails this test instead of killing vitest.
    const total = 360;
    const warmup = 40;
    const child = spawn(process.execPath, ['--expose-gc', support('worker_churn.mjs'), String(total), String(warmup)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code, signal] = await new Promise<[number | null, string | null]>((resolve) =>
      child.once('exit', (c, s) => resolve([c, s])),
    );
    expect(stderr).not.toMatch(/terminate called|FATAL ERROR|Segmentation|AddressSanitizer/);
    expect({ code, signal }, stderr).toEqual({ code: 0, signal: null });

    const r = JSON.parse(stdout.trim().split('\n').pop()!) as {
      counts: { terminated: number; early: number; exited: number };
      unexpected: string[];
      seconds: number;
      before: { rss: number; liveBytes: number };
      after: { rss: number; liveBytes: number };
    };
    console.log(`worker churn: ${JSON.stringify(r.counts)} in ${r.seconds.toFixed(1)} s; RSS ${(r.before.rss / 2 ** 20).toFixed(0)} → ${(r.after.rss / 2 ** 20).toFixed(0)} MiB, native live bytes ${r.before.liveBytes} → ${r.after.liveBytes}`);
    expect(r.unexpected).toEqual([]);
    expect(r.counts.terminated + r.counts.early + r.counts.exited).toBe(total);
    expect(Math.min(r.counts.terminated, r.counts.early, r.counts.exited)).toBeGreaterThan(0);
    // Both samples are taken with every worker gone. The core counts all of its memory
    // process-wide, and each worker held ≥ 4 MB of it (a ballast tensor, its model or tensors,
    // the results of calls in flight), so any worker whose tensors outlived it would show here.
    expect(r.after.liveBytes).toBeLessThanOrEqual(r.before.liveBytes);
    // RSS also sees what the core does not count (a worker's V8 heap, N-API references, the
    // copies of calls in flight). The 320 workers after the warm-up held ≥ 4 MB native each and
    // tens of MB of V8 heap: leaking a tenth of one worker's worth each would exceed 128 MB. The
    // bound leaves room for what malloc keeps cached in its per-thread arenas.
    expect(r.after.rss - r.before.rss).toBeLessThan(128 * 2 ** 20);
  }, 180_000);
});
