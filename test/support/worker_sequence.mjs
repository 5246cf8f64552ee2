// Child process of test/native/workers.test.ts: runs worker_infer.mjs again and again, two at a time,
// from a main thread that never loads the package itself — so that whenever no worker is
// alive, Node unloads the addon (dlclose), and the next worker loads it again. Prints one
// JSON line: how many workers ran, and whether every one posted the same logits.
// Usage: node worker_sequence.mjs <workers>
import { Worker } from 'node:worker_threads';

const total = Number(process.argv[2]);
const batch = Float32Array.from({ length: 2 * 8 * 8 * 3 }, (_, i) => Math.sin(i));
const workerData = { model: { depth: 8, inputShape: [8, 8, 3], classes: 4, seed: 9 }, batches: [{ data: batch, shape: [2, 8, 8, 3] }] };
const answers = new Set();
let ran = 0;

async function lane() {
  while (ran < total) {
    ran++;
    const worker = new Worker(new URL('./worker_infer.mjs', import.meta.url), { workerData });
    worker.once('message', ([logits]) => answers.add(Array.from(logits).join(',')));
    await new Promise((resolve, reject) => {
      worker.once('error', reject);
      worker.once('exit', resolve);
    });
  }
}
await Promise.all([lane(), lane()]);
console.log(JSON.stringify({ workers: ran, distinctAnswers: answers.size }));
