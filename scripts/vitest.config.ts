import { defineProject } from 'vitest/config';

// The repository's own scripts (the test command's counting, ...): pure functions, no build.
export default defineProject({
  test: { name: 'scripts', include: ['test/**/*.test.mjs'] },
});
