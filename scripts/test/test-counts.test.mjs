import { describe, expect, it } from 'vitest';
import { countTests, parseArgs, summary } from '../test-counts.mjs';

// Shapes as vitest 4's JSON reporter writes them (taken from real runs).
const file = (name, status, tests, message = '') => ({
  name,
  status,
  message,
  assertionResults: tests.map((s) => ({ status: s })),
});
const report = (files) => {
  const all = files.flatMap((f) => f.assertionResults.map((a) => a.status));
  const n = (s) => all.filter((x) => x === s).length;
  return {
    numPassedTests: n('passed'),
    numFailedTests: n('failed'),
    numPendingTests: n('skipped'),
    numTodoTests: n('todo'),
    testResults: files,
  };
};

describe('countTests', () => {
  it('counts passed, failed and skipped tests of a clean run', () => {
    const r = report([file('/a.test.ts', 'passed', ['passed', 'passed', 'skipped']), file('/b.test.ts', 'failed', ['passed', 'failed'])]);
    expect(countTests(r, false)).toMatchObject({ passed: 3, failed: 1, skipped: 1, failedSuites: [], unexplained: null });
  });

  it('counts a file that fails to load as one failure', () => {
    const r = report([
      file('/repo/a.test.ts', 'passed', ['passed']),
      file('/repo/load.test.ts', 'failed', [], 'Error: boom at load\n    at x'),
    ]);
    const c = countTests(r, false, '/repo');
    expect(c).toMatchObject({ passed: 1, failed: 1, skipped: 0 });
    expect(c.failedSuites).toEqual([{ file: 'load.test.ts', message: 'Error: boom at load', notRun: 0 }]);
  });

  it('counts a file whose beforeAll throws as one failure, not as skipped tests only', () => {
    const r = report([file('/hook.test.ts', 'failed', ['skipped', 'skipped'])]);
    const c = countTests(r, false);
    expect(c).toMatchObject({ passed: 0, failed: 1, skipped: 2 });
    expect(c.failedSuites[0]).toMatchObject({ file: '/hook.test.ts', notRun: 2 });
  });

  it('does not count a file twice when its failure is already a failed test', () => {
    const r = report([file('/b.test.ts', 'failed', ['failed', 'failed'])]);
    expect(countTests(r, false)).toMatchObject({ failed: 2, failedSuites: [] });
  });

  it('counts a failed vitest run without report or failed test as one failure', () => {
    expect(countTests(null, false)).toMatchObject({ failed: 1, unexplained: 'vitest wrote no report (it aborted)' });
    const r = report([file('/a.test.ts', 'passed', ['passed'])]);
    expect(countTests(r, false)).toMatchObject({ passed: 1, failed: 1 });
    expect(countTests(r, true)).toMatchObject({ passed: 1, failed: 0, unexplained: null });
  });
});

describe('parseArgs', () => {
  it('keeps its own flags away from vitest', () => {
    expect(parseArgs(['--no-pack', '--project', 'core'])).toEqual({ pack: false, help: false, vitestArgs: ['--project', 'core'] });
    expect(parseArgs([])).toEqual({ pack: true, help: false, vitestArgs: [] });
    expect(parseArgs(['-t', 'relay', '--no-pack'])).toMatchObject({ pack: false, vitestArgs: ['-t', 'relay'] });
  });
});

describe('summary', () => {
  it('reports steps apart from tests and ends with the plain tests line', () => {
    const c = countTests(report([file('/a.test.ts', 'passed', ['passed']), file('/hook.test.ts', 'failed', ['skipped'])]), false);
    const steps = [
      ['build', true],
      ['lint', true],
      ['typecheck', true],
      ['readme examples', true],
      ['pack', true],
    ];
    const lines = summary(c, steps).split('\n');
    expect(lines).toContain('steps: 5 ok, 0 failed');
    expect(lines).toContain('FAIL suite /hook.test.ts: failed outside any test (a hook threw?) (1 test in it did not pass)');
    expect(lines.at(-1)).toBe('tests: 1 passed, 1 failed, 1 skipped');
  });

  it('names the steps that did not run after a failed one', () => {
    const lines = summary(countTests(null, true), [['build', false]], ['lint', 'tests']).split('\n');
    expect(lines).toContain('steps: 0 ok, 1 failed, 2 not run');
    expect(lines.at(-1)).toBe('tests: 0 passed, 0 failed');
  });
});
