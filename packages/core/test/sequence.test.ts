import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nextSequence, openSequenceStore, SEQUENCE_FILE } from '@dpc/core';
import { afterEach, describe, expect, it } from 'vitest';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});
const dataDir = async () => {
  const d = await mkdtemp(join(tmpdir(), 'dpc-seq-'));
  dirs.push(d);
  return d;
};

const T = 1_750_000_000_000;
const HOUR = 3_600_000;

describe('record sequence numbers (pure)', () => {
  it.each([
    ['first use: the clock', undefined, T, T],
    ['clock ahead of the last seq: the clock', T - 5_000, T, T],
    ['clock set back an hour: last + 1', T, T - HOUR, T + 1],
    ['clock unchanged within one ms: last + 1', T, T, T + 1],
    ['fractional clock: floored', undefined, T + 0.7, T],
    ['unreadable last value: the clock', Number.NaN, T, T],
  ])('%s', (_case, last, now, want) => {
    expect(nextSequence(last, now)).toBe(want);
  });
});

describe('openSequenceStore (in a data directory)', () => {
  it('a restart with the clock set back an hour still yields a higher seq', async () => {
    const dir = await dataDir();
    let now = T;
    const first = openSequenceStore(dir, { now: () => now });
    expect(first.last).toBeUndefined();
    const a = first.next();
    now += 1000;
    const b = first.next();
    expect([a, b]).toEqual([T, T + 1000]);
    // The node stops; its clock is set back an hour; it starts again from the same data dir.
    now = T - HOUR;
    const again = openSequenceStore(dir, { now: () => now });
    expect(again.last).toBe(b);
    const c = again.next();
    const d = again.next();
    expect(c).toBeGreaterThan(b);
    expect(d).toBeGreaterThan(c);
    // Once the clock passes the kept value again, the seq follows the clock.
    now = T + HOUR;
    expect(again.next()).toBe(T + HOUR);
  });

  it('writes atomically: one small file, no temporary left, private to the user', async () => {
    const dir = await dataDir();
    const store = openSequenceStore(dir, { now: () => T });
    store.next();
    store.next();
    expect(await readdir(dir)).toEqual([SEQUENCE_FILE]);
    expect((await readFile(join(dir, SEQUENCE_FILE), 'utf8')).trim()).toBe(String(T + 1));
    expect(store.path).toBe(join(dir, SEQUENCE_FILE));
  });

  it('creates a missing data directory, and falls back to the clock over a damaged file', async () => {
    const dir = join(await dataDir(), 'not', 'yet');
    expect(openSequenceStore(dir, { now: () => T }).next()).toBe(T);
    await writeFile(join(dir, SEQUENCE_FILE), 'garbage\n');
    const store = openSequenceStore(dir, { now: () => T - HOUR });
    expect(store.last).toBeUndefined();
    expect(store.next()).toBe(T - HOUR);
  });

  it('fails with a typed error when the seq cannot be kept, rather than hand out one that may repeat', async () => {
    const dir = await dataDir();
    await writeFile(join(dir, 'file'), 'x');
    const store = openSequenceStore(join(dir, 'file'), { now: () => T });
    expect(() => store.next()).toThrow(expect.objectContaining({ code: 'DPC_SEQUENCE_STORE' }));
  });
});
