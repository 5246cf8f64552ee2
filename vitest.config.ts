import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // tfjs's cpu backend is slow; cross-check shapes are kept small, but allow headroom.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
