import { defineProject } from 'vitest/config';

// The lab suites create network namespaces and run as root; one file at a time keeps them from
// competing for the two CI cores and makes timings readable.
export default defineProject({
  test: {
    name: 'netlab',
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
