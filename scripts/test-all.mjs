#!/usr/bin/env node
// The one test command (README and .ci/run): build, lint, typecheck, every vitest project,
// and the npm-pack install check of every package. Ends with "N passed, N failed".
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';

const env = { ...process.env, TURBO_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1', FORCE_COLOR: process.env.CI ? '0' : '1' };
const step = (name, cmd, args) => {
  console.log(`\n=== ${name}: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', env });
  return r.status === 0;
};

const results = [];
const must = (name, cmd, args) => {
  const ok = step(name, cmd, args);
  results.push([name, ok]);
  if (!ok) finish();
};

function finish() {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  if (existsSync('.vitest-results.json')) {
    const r = JSON.parse(readFileSync('.vitest-results.json', 'utf8'));
    passed = r.numPassedTests;
    failed = r.numFailedTests;
    skipped = r.numPendingTests + r.numTodoTests;
  }
  for (const [name, ok] of results) {
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}`);
    if (name !== 'tests') ok ? passed++ : failed++;
  }
  console.log(`\ntests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  process.exit(results.every(([, ok]) => ok) ? 0 : 1);
}

rmSync('.vitest-results.json', { force: true });
must('build', 'npx', ['turbo', 'run', 'build', '--output-logs=errors-only']);
must('lint', 'npx', ['biome', 'ci', '--colors=off', '.']);
must('typecheck', 'npx', ['turbo', 'run', 'typecheck', '--output-logs=errors-only']);
const ok = step('tests', 'npx', [
  'vitest',
  'run',
  '--reporter=default',
  '--reporter=json',
  '--outputFile.json=.vitest-results.json',
  ...process.argv.slice(2),
]);
results.push(['tests', ok]);
must('readme examples', 'node', ['scripts/readme-examples.mjs']);
if (!process.argv.includes('--no-pack')) must('pack', 'node', ['scripts/pack-check.mjs']);
finish();
