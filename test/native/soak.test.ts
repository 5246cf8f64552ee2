// The short soak (the long one is `npm run test:soak`: 20,000 steps): scripts/soak.mjs in a
// child process with --expose-gc, 1,500 training steps after 1,000 of warm-up, then 3,000
// tensors dropped without dispose(). RSS may grow < 2 %, file descriptors and native
// allocations not at all, and finalizers must give back every dropped tensor's memory.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { beforeAll, describe, expect, it } from 'vitest';

import { ensureDist, packageRoot } from '../support/dist.js';

beforeAll(ensureDist, 300_000);

describe('soak (short)', () => {
  it('1,500 training steps (after 1,000 of warm-up) and 3,000 dropped tensors in one process: nothing accumulates', async () => {
    const script = join(packageRoot, 'scripts', 'soak.mjs');
    const args = ['--expose-gc', script, '--steps', '2500', '--warmup', '1000', '--tensors', '3000'];
    // Under AddressSanitizer (npm run test:asan) freed memory sits in ASan's quarantine, so RSS
    // measures ASan, not us: there the RSS limit is off and the exact checks (descriptors,
    // native allocations, finalizers) still apply.
    const sanitized = process.env.RESNET_SANITIZED === '1';
    if (sanitized) {
      args.push('--rss-limit', 'off');
      console.log('short soak: RSS growth not checked under AddressSanitizer (its quarantine holds freed memory)');
    }
    const { stdout } = await promisify(execFile)(process.execPath, args, { cwd: packageRoot }).catch(
      (err: { stdout?: string; stderr?: string; message: string }) => {
        // A broken limit exits 1 with the figures on stdout: show them.
        throw new Error(`soak failed: ${err.stdout ?? ''} ${err.stderr ?? ''} ${err.message}`);
      },
    );
    const r = JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>;
    console.log(`short soak: ${stdout.trim()}`);
    expect(r.failures).toEqual([]);
    if (!sanitized) expect(r.rssGrowthPercent as number).toBeLessThan(2);
    expect(r.fdsAfter).toBe(r.fdsBefore);
    expect(r.nativeAllocationsAfter).toBe(r.nativeAllocationsBefore);
    expect(r.liveBytesAfterDropped).toBe(r.liveBytesBeforeDropped);
    // The dropped tensors did occupy native memory while alive (so the check above means something).
    expect(r.droppedTensorsPeakLiveMiB as number).toBeGreaterThan(1);
  });
});
