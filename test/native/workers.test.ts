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

import { allocationStats, models, Tensor } from '../../lib/index.js';
import { ensureDist, packageRoot } from '../support/dist.js';
import { Rng } from '../support/random.js';

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

/** Runs node with `args` in a child process (so that an abort fails a test rather than killing vitest). */
function runChild(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
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

  it('hundreds of workers terminated (or exiting) mid-call — trainStep, predict, profilePredict, conv2d, augmentBatch, rejecting ops — leave the process alive and leak nothing', async () => {
    const total = 300;
    const warmup = 30;
    // One malloc arena: with one per thread, RSS would mostly measure how much each of the
    // workers' arenas keeps cached.
    const { code, signal, stdout, stderr } = await runChild(['--expose-gc', support('worker_churn.mjs'), String(total), String(warmup)], {
      MALLOC_ARENA_MAX: '1',
    });
    expect(stderr).not.toMatch(/terminate called|FATAL ERROR|Segmentation|AddressSanitizer/);
    expect({ code, signal }, stderr).toEqual({ code: 0, signal: null });

    const r = JSON.parse(stdout.trim().split('\n').pop()!) as {
      counts: { terminated: number; early: number; exited: number };
      unexpected: string[];
      seconds: number;
      before: { rss: number; liveBytes: number };
      after: { rss: number; liveBytes: number };
    };
    const mib = (b: number) => (b / 2 ** 20).toFixed(1);
    console.log(
      `worker churn: ${JSON.stringify(r.counts)} in ${r.seconds.toFixed(1)} s; after the ${warmup} of warm-up, ` +
        `RSS ${mib(r.before.rss)} → ${mib(r.after.rss)} MiB, native live bytes ${r.before.liveBytes} → ${r.after.liveBytes}`,
    );
    expect(r.unexpected).toEqual([]);
    expect(r.counts.terminated + r.counts.early + r.counts.exited).toBe(total);
    expect(Math.min(r.counts.terminated, r.counts.early, r.counts.exited)).toBeGreaterThan(0);
    // Both samples are taken with every worker gone. The core counts all its memory process-wide
    // and each worker held ≥ 4 MB of it (a ballast tensor, a model or tensors, the outputs of
    // calls in flight), so tensors that outlived their worker would show here, exactly.
    expect(r.after.liveBytes).toBeLessThanOrEqual(r.before.liveBytes);
    // RSS also sees what the core does not count: a worker's V8 heap and N-API state (megabytes),
    // augmentBatch's copies of src (768 KB per call, three in flight per worker), the outputs
    // of calls in flight (256 KB for conv2d). Measured over these 270 workers, it grows by
    // 4–30 MB (malloc fragmentation: one thread creating and training 270 models in a row
    // grows as much). 64 MB is crossed by a leak of 240 KB in every worker, of the src copies
    // in flight in the augmentBatch workers (54 × 2.3 MB) or of the workers' heaps. Under
    // AddressSanitizer freed memory sits in its quarantine, so RSS measures ASan there.
    if (process.env.RESNET_SANITIZED !== '1') expect(r.after.rss - r.before.rss).toBeLessThan(64 * 2 ** 20);
  }, 300_000);

  it('worker after worker, from a main thread that never loads the addon: each one gets the same answers', async () => {
    // Node unloads the addon whenever no worker holds it; before the addon pinned itself in
    // memory, the core's thread pool ran on in unmapped code and the process died (SIGSEGV).
    const { code, signal, stdout, stderr } = await runChild([support('worker_sequence.mjs'), '100']);
    expect({ code, signal }, stderr).toEqual({ code: 0, signal: null });
    expect(JSON.parse(stdout.trim().split('\n').pop()!)).toEqual({ workers: 100, distinctAnswers: 1 });
  }, 120_000);
});
