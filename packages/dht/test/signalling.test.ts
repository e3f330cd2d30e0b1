import { generateIdentity } from '@dpc/core';
import { describe, expect, it } from 'vitest';
import { ReplayGuard } from '../src/replay-guard.js';
import { createSignalEnvelope, openSignalEnvelope, Registrations } from '../src/signalling.js';

describe('signalling state', () => {
  const peer = { host: '203.0.113.7', port: 4000 };

  it('a forwarder accepts a retransmitted REGISTER from the same address, refuses it from another', () => {
    const regs = new Registrations(8);
    const reg = { nodeId: 'n1', peer, ts: 1000, expiresAt: 70_000 };
    expect(regs.put(reg, 1000)).toBe('ok');
    expect(regs.put({ ...reg }, 1400)).toBe('ok'); // our answer was lost, the node sent it again
    expect(regs.put({ ...reg, peer: { host: '198.51.100.9', port: 4000 } }, 1500)).toBe('replay');
    expect(regs.put({ ...reg, ts: 999 }, 1500)).toBe('replay');
    expect(regs.put({ ...reg, ts: 21_000, peer: { host: '198.51.100.9', port: 5000 } }, 21_000)).toBe('ok');
    expect(regs.get('n1', 21_000)?.peer.port).toBe(5000);
  });

  it('a recipient sees a signal once: the same envelope again is a replay', () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const opened = openSignalEnvelope(createSignalEnvelope(alice, bob.kademliaId, { hi: 1 }));
    if (typeof opened === 'string') throw new Error(opened);
    const guard = new ReplayGuard();
    expect(guard.check(opened)).toBeNull();
    expect(guard.check(opened)).toBe('replay');
  });

  it('remembers every signal for its whole freshness window: one replayed after 4,100 fresh ones is refused', () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    let now = 1_000_000;
    const guard = new ReplayGuard({ now: () => now });
    expect(guard.capacity).toBe(16_384);
    expect(Math.floor(guard.perSecond)).toBe(67);
    const sigs = [];
    for (let i = 0; i < 4_200; i++) {
      const o = openSignalEnvelope(createSignalEnvelope(alice, bob.kademliaId, i, now));
      if (typeof o === 'string') throw new Error(o);
      sigs.push(o);
      expect(guard.check(o)).toBeNull();
      now += Math.ceil(1000 / guard.perSecond); // about the most the guard accepts: 4,200 signals take 63 s
    }
    expect(guard.size).toBe(4_200);
    const first = sigs[0] as (typeof sigs)[number];
    expect(now - first.ts).toBeLessThan(120_000);
    expect(guard.check(first)).toBe('replay');
    expect(guard.check(sigs[2_000] as (typeof sigs)[number])).toBe('replay');
    // Once the window has passed, the signal is stale by itself and its entry is gone.
    now = first.ts + 120_001;
    expect(guard.check(first)).toBe('stale');
    now = first.ts + 130_000; // the signals of the first 10 s are stale by now
    const late = openSignalEnvelope(createSignalEnvelope(alice, bob.kademliaId, 'late', now));
    if (typeof late === 'string') throw new Error(late);
    expect(guard.check(late)).toBeNull();
    expect(guard.size).toBeLessThanOrEqual(4_200 - 500);
  });

  it('a flood of fresh signals is refused beyond the rate that keeps the cache within its byte bound', () => {
    const from = generateIdentity().nodeId;
    let now = 5_000_000;
    const guard = new ReplayGuard({ maxBytes: 64 * 1024, now: () => now }); // 512 signals
    expect(guard.capacity).toBe(512);
    let accepted = 0;
    let refused = 0;
    let maxSize = 0;
    let n = 0;
    const kept: Array<{ from: string; nonce: string; ts: number }> = [];
    // 10 simulated minutes, 20 signals every 100 ms (200/s), half of them claiming times up to 119 s ahead.
    for (let step = 0; step < 6_000; step++) {
      now += 100;
      for (let j = 0; j < 20; j++) {
        const sig = {
          from,
          nonce: (n++).toString(16).padStart(16, '0'),
          ts: now + (j % 2 === 0 ? 119_000 : -Math.round((119_000 * j) / 20)),
        };
        const v = guard.check(sig);
        if (v === null) {
          accepted++;
          if (kept.length < 50 && step > 3_000) kept.push(sig);
        } else if (v === 'rate_limited') refused++;
        maxSize = Math.max(maxSize, guard.size);
      }
      // Every accepted signal stays a replay as long as it is fresh.
      for (const sig of kept) if (Math.abs(now - sig.ts) <= 120_000) expect(guard.check(sig)).toBe('replay');
    }
    expect(maxSize).toBeLessThanOrEqual(512);
    expect(refused).toBeGreaterThan(accepted);
    expect(accepted).toBeGreaterThan(600 * 2); // ≈ 512 / 241 per second for 600 s
  });

  it('one source gets a quarter of the new-signal rate; the others still get through', () => {
    const from = generateIdentity().nodeId;
    const now = 1_000_000;
    const guard = new ReplayGuard({ now: () => now });
    let n = 0;
    const sig = () => ({ from, nonce: (n++).toString(16).padStart(16, '0'), ts: now });
    const flood = Array.from({ length: 100 }, () => guard.check(sig(), '203.0.113.0/24'));
    expect(flood.filter((v) => v === null)).toHaveLength(16);
    expect(flood.filter((v) => v === 'source_rate_limited')).toHaveLength(84);
    expect(guard.check(sig(), '198.51.100.0/24')).toBeNull();
    expect(guard.check(sig())).toBeNull();
  });
});
