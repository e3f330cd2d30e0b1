import { defineConfig } from 'vitest/config';

// One vitest run for the whole monorepo: every package, app and tool with a vitest.config.ts
// is a project (`npx vitest run --project core`), and so are the repository's own scripts
// (`--project scripts`). Tests import packages by name, so they run against the built dist/
// exactly as a user would.
export default defineConfig({
  test: {
    projects: ['packages/*/vitest.config.ts', 'apps/*/vitest.config.ts', 'tools/*/vitest.config.ts', 'scripts/vitest.config.ts'],
  },
});
