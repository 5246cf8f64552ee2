// The thread pool spins before it sleeps (native/core/thread_pool.cpp: up to
// RESNET_POOL_SPIN_US, 50 µs by default), but only briefly: after predict calls return, an idle
// process must burn (almost) no CPU. A worker left spinning would use a whole core, 1000 ms of
// CPU per second; the bound leaves room for Node's own housekeeping.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';

import { Tensor } from '../../lib/index.js';
import { tinyModel } from '../support/models.js';
import { Rng } from '../support/random.js';

function cpuMs(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
}

describe('idle CPU', () => {
  it('stays near zero for a second after batch-1 and batched predict calls', async () => {
    const model = tinyModel(2, { side: 16 }).eval();
    const rng = new Rng(3);
    const one = Tensor.fromArray(rng.array(16 * 16 * 3), [1, 16, 16, 3]);
    const four = Tensor.fromArray(rng.array(4 * 16 * 16 * 3), [4, 16, 16, 3]);
    const busy = process.cpuUsage();
    for (let i = 0; i < 30; i++) (await model.predict(i % 3 === 0 ? four : one)).dispose();
    expect(cpuMs(busy)).toBeGreaterThan(0); // the clock counts this process's work
    await sleep(100);
    const idle = process.cpuUsage();
    await sleep(1000);
    expect(cpuMs(idle)).toBeLessThan(100);
    for (const t of [one, four]) t.dispose();
    model.dispose();
  });
});
