// Pure parts of the test command (scripts/test-all.mjs): its own flags, the counts read from
// vitest's JSON report, and the summary lines. Tested in scripts/test/test-counts.test.mjs.

/** Flags of the test command itself; everything else goes to vitest unchanged. */
export const OWN_FLAGS = { '--no-pack': 'skip the npm-pack install check' };

/**
 * Splits the command line into the script's own options and the arguments for vitest.
 * @param {string[]} argv process.argv.slice(2)
 * @returns {{ pack: boolean, help: boolean, vitestArgs: string[] }}
 */
export function parseArgs(argv) {
  const out = { pack: true, help: false, vitestArgs: [] };
  for (const arg of argv) {
    if (arg === '--no-pack') out.pack = false;
    else if (arg === '--help' || arg === '-h') out.help = true;
    else out.vitestArgs.push(arg);
  }
  return out;
}

/**
 * Counts tests from vitest's JSON report. A test file whose status is `failed` without any
 * failed test in it (it failed to load, a `beforeAll`/`afterAll` hook threw, ...) counts as one
 * failure: vitest reports its tests as skipped or not at all. When vitest itself failed (exit
 * code) but nothing above explains it (no report, an unhandled error), that counts as one
 * failure too, so a red run never reads "0 failed".
 * @param {null | { numPassedTests?: number, numFailedTests?: number, numPendingTests?: number, numTodoTests?: number,
 *   testResults?: { name: string, status: string, message?: string, assertionResults?: { status: string }[] }[] }} report
 * @param {boolean} vitestOk whether the vitest process exited with 0
 * @param {string} [root] directory to strip from file names (the repository root)
 */
export function countTests(report, vitestOk, root = '') {
  const passed = report?.numPassedTests ?? 0;
  const failedTests = report?.numFailedTests ?? 0;
  const skipped = (report?.numPendingTests ?? 0) + (report?.numTodoTests ?? 0);
  /** @type {{ file: string, message: string, notRun: number }[]} */
  const failedSuites = [];
  for (const file of report?.testResults ?? []) {
    if (file.status !== 'failed') continue;
    const tests = file.assertionResults ?? [];
    if (tests.some((t) => t.status === 'failed')) continue;
    failedSuites.push({
      file: root && file.name.startsWith(`${root}/`) ? file.name.slice(root.length + 1) : file.name,
      message: firstLine(file.message) || 'failed outside any test (a hook threw?)',
      notRun: tests.filter((t) => t.status !== 'passed').length,
    });
  }
  let failed = failedTests + failedSuites.length;
  let unexplained = null;
  if (!vitestOk && failed === 0) {
    failed = 1;
    unexplained = report ? 'vitest failed without a failed test (unhandled error?)' : 'vitest wrote no report (it aborted)';
  }
  return { passed, failed, skipped, failedTests, failedSuites, unexplained };
}

/**
 * The summary printed at the end. The last line stays `tests: N passed, N failed[, N skipped]`:
 * CI parsers read it. Steps (build, lint, ...) are counted apart from tests.
 * @param {ReturnType<typeof countTests>} counts
 * @param {[string, boolean][]} steps steps that ran, in order, with their outcome
 * @param {string[]} notRun steps that did not run because an earlier one failed
 */
export function summary(counts, steps, notRun = []) {
  const lines = [];
  for (const [name, ok] of steps) lines.push(`${ok ? 'ok  ' : 'FAIL'} ${name}`);
  for (const name of notRun) lines.push(`--   ${name} (not run)`);
  for (const s of counts.failedSuites) {
    const extra = s.notRun ? ` (${s.notRun} test${s.notRun === 1 ? '' : 's'} in it did not pass)` : '';
    lines.push(`FAIL suite ${s.file}: ${s.message}${extra}`);
  }
  if (counts.unexplained) lines.push(`FAIL ${counts.unexplained}`);
  const ok = steps.filter(([, o]) => o).length;
  lines.push('');
  lines.push(`steps: ${ok} ok, ${steps.length - ok} failed${notRun.length ? `, ${notRun.length} not run` : ''}`);
  if (counts.failedSuites.length) {
    lines.push(
      `failed: ${counts.failedTests} test${counts.failedTests === 1 ? '' : 's'} + ${counts.failedSuites.length} suite${counts.failedSuites.length === 1 ? '' : 's'}`,
    );
  }
  lines.push(`tests: ${counts.passed} passed, ${counts.failed} failed${counts.skipped ? `, ${counts.skipped} skipped` : ''}`);
  return lines.join('\n');
}

function firstLine(s) {
  return (s ?? '').split('\n').find((l) => l.trim() !== '') ?? '';
}
