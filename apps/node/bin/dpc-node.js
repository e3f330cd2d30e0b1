#!/usr/bin/env node
// The `dpc-node` command. Checked in (not built) so that npm links it at install time, before
// `npm run build` creates dist/; it runs the built CLI.
import { existsSync } from 'node:fs';

const built = new URL('../dist/bin.js', import.meta.url);
if (!existsSync(built)) {
  process.stderr.write(
    `dpc-node: the app is not built yet (${built.pathname} is missing).\nRun 'npm run build' in the repository root first.\n`,
  );
  process.exit(2);
}
await import(built.href);
