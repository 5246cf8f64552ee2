// Tensor: construction, copies, shapes, dispose and finalizers; the package entry point.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { Tensor } from '../../lib/index.js';
import { thrown } from '../support/expect_error.js';

describe('Tensor', () => {
  it('round-trips values and shape', () => {
    const data = Float32Array.from([1, -2, 3.5, 4, 5, 6]);
    const t = Tensor.fromArray(data, [2, 3]);
    expect(t.shape).toEqual([2, 3]);
    expect(t.size).toBe(6);
    expect(t.rank).toBe(2);
    expect(t.dtype).toBe('float32');
    expect(t.device).toBe('cpu');
    expect(Array.from(t.toFloat32Array())).toEqual([1, -2, 3.5, 4, 5, 6]);
  });

  it('copies in and out: later writes on either side do not alias', () => {
    const data = Float32Array.from([1, 2, 3, 4]);
    const t = Tensor.fromArray(data, [4]);
    data[0] = 100;
    const out = t.toFloat32Array();
    expect(out[0]).toBe(1);
    out[1] = 200;
    expect(t.toFloat32Array()[1]).toBe(2);
  });

  it('accepts plain number arrays and builds filled tensors', () => {
    expect(Array.from(Tensor.fromArray([1, 2, 3], [3]).toFloat32Array())).toEqual([1, 2, 3]);
    expect(Array.from(Tensor.fill([2, 2], 1.5).toFloat32Array())).toEqual([1.5, 1.5, 1.5, 1.5]);
    expect(Array.from(Tensor.zeros([3]).toFloat32Array())).toEqual([0, 0, 0]);
  });

  it('has a frozen shape', () => {
    const t = Tensor.zeros([2, 2]);
    expect(Object.isFrozen(t.shape)).toBe(true);
  });

  it('rejects a length that does not match the shape', () => {
    expect(thrown(() => Tensor.fromArray(new Float32Array(5), [2, 3])).code).toBe('E_SHAPE');
  });

  it.each([
    ['zero dimension', [2, 0]],
    ['negative dimension', [-1, 3]],
    ['fractional dimension', [1.5, 2]],
    ['NaN dimension', [Number.NaN]],
    ['string dimension', ['3' as unknown as number]],
    ['overflowing size', [2 ** 20, 2 ** 20, 2 ** 10]],
    ['rank above 8', [1, 1, 1, 1, 1, 1, 1, 1, 1]],
  ])('rejects a %s with E_SHAPE', (_name, shape) => {
    expect(thrown(() => Tensor.fromArray(new Float32Array(1), shape as number[])).code).toBe('E_SHAPE');
  });

  it('rejects a shape that is not an array', () => {
    expect(thrown(() => Tensor.fromArray(new Float32Array(1), 1 as unknown as number[])).code).toBe('E_SHAPE');
  });

  it.each([
    ['Float64Array', new Float64Array(4)],
    ['Int32Array', new Int32Array(4)],
    ['string', 'abcd'],
    ['null', null],
  ])('rejects %s data with E_DTYPE', (_name, data) => {
    expect(thrown(() => Tensor.fromArray(data as unknown as Float32Array, [4])).code).toBe('E_DTYPE');
  });

  it('dispose is idempotent and any later read throws E_DISPOSED', () => {
    const t = Tensor.fromArray([1, 2], [2]);
    expect(t.isDisposed).toBe(false);
    t.dispose();
    t.dispose();
    expect(t.isDisposed).toBe(true);
    expect(thrown(() => t.toFloat32Array()).code).toBe('E_DISPOSED');
    expect(String(t)).toContain('disposed');
  });
});

describe('native memory', () => {
  const dist = join(process.cwd(), 'dist', 'index.js');

  it('is reclaimed by finalizers when tensors are dropped without dispose()', () => {
    expect(existsSync(dist), 'dist/ is built by `npm install` (the prepare script)').toBe(true);
    // 400 tensors of 4 MB = 1.6 GB allocated in total; with finalizers working the
    // resident set stays far below that.
    const script = `
      import { Tensor } from ${JSON.stringify(dist)};
      const start = process.memoryUsage().rss;
      let peak = 0;
      for (let i = 0; i < 400; i++) {
        Tensor.fill([1024, 1024], i);
        if (i % 20 === 0) { globalThis.gc(); await new Promise((r) => setImmediate(r)); }
        peak = Math.max(peak, process.memoryUsage().rss - start);
      }
      console.log(JSON.stringify({ peakGrowthMB: peak / 2 ** 20 }));
    `;
    const out = execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8' });
    const { peakGrowthMB } = JSON.parse(out.trim()) as { peakGrowthMB: number };
    expect(peakGrowthMB).toBeLessThan(400);
  });
});

describe('package entry', () => {
  it("loads as `import * as rn from 'resnet-native'` with types", () => {
    expect(existsSync(join(process.cwd(), 'dist', 'index.d.ts'))).toBe(true);
    const script = `
      import * as rn from 'resnet-native';
      const y = await rn.ops.relu(rn.Tensor.fromArray([-1, 2], [2]));
      console.log(JSON.stringify({ y: Array.from(y.toFloat32Array()), isError: new rn.ResNetError('E_ARG', 'x') instanceof Error }));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: process.cwd() });
    expect(JSON.parse(out.trim())).toEqual({ y: [0, 2], isError: true });
  });
});
