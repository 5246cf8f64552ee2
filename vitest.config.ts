import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // tfjs's cpu backend is slow; cross-check shapes are kept small, but allow headroom.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // The JSON report feeds scripts/test-summary.mjs (the "N passed, N failed" line CI reads).
    reporters: ['default', 'json'],
    outputFile: { json: 'build/test-report/vitest.json' },
  },
});
