import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Native zstd and child processes: forks isolate crashes better than threads.
    pool: 'forks',
    reporters: ['default', './test/reporters/summary-line.ts'],
  },
});
