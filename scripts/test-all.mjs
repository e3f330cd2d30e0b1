#!/usr/bin/env node
// The one test command (README and .ci/run): build, lint, typecheck, every vitest project, the
// README examples and the npm-pack install check of every package. Build, lint, typecheck,
// README examples and pack are steps, counted apart from tests; the last line is
// "tests: N passed, N failed[, N skipped]", where a test file that fails outside any test (it
// does not load, a hook throws) counts as a failure.
//
//   node scripts/test-all.mjs [--no-pack] [vitest arguments, e.g. --project core]
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { countTests, OWN_FLAGS, parseArgs, summary } from './test-counts.mjs';

const args = parseArgs(process.argv.slice(2));
if (args.help) {
  console.log('usage: node scripts/test-all.mjs [options] [vitest arguments]');
  for (const [flag, what] of Object.entries(OWN_FLAGS)) console.log(`  ${flag.padEnd(12)} ${what}`);
  process.exit(0);
}

const env = { ...process.env, TURBO_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1', FORCE_COLOR: process.env.CI ? '0' : '1' };
const run = (name, cmd, argv) => {
  console.log(`\n=== ${name}: ${cmd} ${argv.join(' ')}`);
  const r = spawnSync(cmd, argv, { stdio: 'inherit', env });
  return r.status === 0;
};

const REPORT = '.vitest-results.json';
const plan = ['build', 'lint', 'typecheck', 'tests', 'readme examples', ...(args.pack ? ['pack'] : [])];
/** @type {[string, boolean][]} */
const steps = [];
let vitestOk = null;

const must = (name, cmd, argv) => {
  const ok = run(name, cmd, argv);
  steps.push([name, ok]);
  if (!ok) finish();
};

function finish() {
  const report = existsSync(REPORT) ? JSON.parse(readFileSync(REPORT, 'utf8')) : null;
  // Tests that never started (an earlier step failed) are not a failure of the tests.
  const counts = countTests(report, vitestOk ?? true, process.cwd());
  const done = new Set([...steps.map(([n]) => n), ...(vitestOk === null ? [] : ['tests'])]);
  const notRun = plan.filter((n) => !done.has(n));
  console.log(`\n${summary(counts, steps, notRun)}`);
  process.exit(steps.every(([, ok]) => ok) && vitestOk !== false && counts.failed === 0 && notRun.length === 0 ? 0 : 1);
}

rmSync(REPORT, { force: true });
must('build', 'npx', ['turbo', 'run', 'build', '--output-logs=errors-only']);
must('lint', 'npx', ['biome', 'ci', '--colors=off', '.']);
must('typecheck', 'npx', ['turbo', 'run', 'typecheck', '--output-logs=errors-only']);
vitestOk = run('tests', 'npx', [
  'vitest',
  'run',
  '--reporter=default',
  '--reporter=json',
  `--outputFile.json=${REPORT}`,
  ...args.vitestArgs,
]);
must('readme examples', 'node', ['scripts/readme-examples.mjs']);
if (args.pack) must('pack', 'node', ['scripts/pack-check.mjs']);
finish();
