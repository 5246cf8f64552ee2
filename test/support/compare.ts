// The cross-check tolerance of the project: |a - e| <= 1e-4 * sqrt(L) + 1e-4 * |e|, where L
// is the reduction length behind each value. The worst error/tolerance ratio per op is
// collected and written to build/test-report/ so the closing note can quote it.
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, expect } from 'vitest';

const worst = new Map<string, number>();

export interface Closeness {
  ratio: number;
  index: number;
}

/** Worst error/tolerance ratio over all elements (≤ 1 passes). */
export function closeness(actual: ArrayLike<number>, expected: ArrayLike<number>, reductionLength: number): Closeness {
  expect(actual.length).toBe(expected.length);
  const base = 1e-4 * Math.sqrt(Math.max(1, reductionLength));
  let ratio = 0;
  let index = -1;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const r = Number.isFinite(a) ? Math.abs(a - e) / (base + 1e-4 * Math.abs(e)) : Infinity;
    if (!(r <= ratio)) {
      ratio = r;
      index = i;
    }
  }
  return { ratio, index };
}

/** Asserts closeness and records the ratio under `op`. */
export function expectClose(op: string, actual: ArrayLike<number>, expected: ArrayLike<number>, reductionLength: number): void {
  const { ratio, index } = closeness(actual, expected, reductionLength);
  worst.set(op, Math.max(worst.get(op) ?? 0, ratio));
  if (ratio > 1) {
    throw new Error(
      `${op}: element ${index} is ${actual[index]} but the reference is ${expected[index]} ` +
        `(error/tolerance ratio ${ratio.toFixed(3)}, reduction length ${reductionLength})`,
    );
  }
}

/** Writes this file's worst ratios (call once per test file). */
export function reportWorstRatios(testFile: string): void {
  afterAll(() => {
    if (worst.size === 0) return;
    const dir = join(process.cwd(), 'build', 'test-report');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${basename(testFile)}.json`), JSON.stringify(Object.fromEntries(worst), null, 2));
  });
}
