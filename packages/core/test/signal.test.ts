import { raceStaggered, sleep } from '@dpc/core';
import { describe, expect, it } from 'vitest';

describe('raceStaggered', () => {
  it('starts the next attempt after the stagger and lets the first success win, aborting the rest', async () => {
    const started: number[] = [];
    const aborted: number[] = [];
    const t0 = Date.now();
    const attempt = (i: number, ms: number) => async (signal: AbortSignal) => {
      started.push(i);
      signal.addEventListener('abort', () => aborted.push(i));
      await sleep(ms, signal);
      return i;
    };
    const winner = await raceStaggered([attempt(0, 1000), attempt(1, 20), attempt(2, 1000)], { staggerMs: 50 });
    expect(winner).toBe(1);
    expect(started).toEqual([0, 1]);
    expect(aborted).toEqual([0]);
    expect(Date.now() - t0).toBeLessThan(900);
  });

  it('starts the next attempt at once when one fails', async () => {
    const t0 = Date.now();
    const v = await raceStaggered(
      [
        async () => {
          throw new Error('refused');
        },
        async () => 'second',
      ],
      { staggerMs: 10_000 },
    );
    expect(v).toBe('second');
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('rejects with every error when all fail, and honours abort', async () => {
    const err = await raceStaggered([async () => Promise.reject(new Error('a')), async () => Promise.reject(new Error('b'))], {
      staggerMs: 1,
    }).catch((e: unknown) => e);
    expect((err as AggregateError).errors.map((e: Error) => e.message)).toEqual(['a', 'b']);
    const ctrl = new AbortController();
    const p = raceStaggered([(s) => sleep(10_000, s)], { staggerMs: 1, signal: ctrl.signal });
    ctrl.abort();
    await expect(p).rejects.toMatchObject({ code: 'DPC_ABORTED' });
  });
});
