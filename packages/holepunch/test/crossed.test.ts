// Crossed punches: both peers call connect() to each other at once (both users send, or both
// upgrade loops fire). Real DHT nodes (the testnet), real UDP, UDX and TLS 1.3 on loopback.
import type { Connection } from '@dpc/core';
import type { Testnet } from '@dpc/dht/testnet';
import { holePunchStrategy } from '@dpc/holepunch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PunchNode, punchNode, ready, testnet, waitUntil } from './helpers.js';

/** Sends one message each way over the pair and waits for both (the two ends are one connection). */
async function sameConnection(x: Connection, y: Connection, tag: string): Promise<void> {
  const atY: unknown[] = [];
  const atX: unknown[] = [];
  const onY = (m: unknown) => atY.push(m);
  const onX = (m: unknown) => atX.push(m);
  y.on('message', onY);
  x.on('message', onX);
  await x.send({ tag, dir: 'x→y' });
  await y.send({ tag, dir: 'y→x' });
  await waitUntil(() => atY.length === 1 && atX.length === 1, 10_000);
  expect(atY).toEqual([{ tag, dir: 'x→y' }]);
  expect(atX).toEqual([{ tag, dir: 'y→x' }]);
  y.off('message', onY);
  x.off('message', onX);
}

describe('crossed punches (both peers connect to each other at once)', () => {
  let net: Testnet;
  let a: PunchNode;
  let b: PunchNode;
  beforeAll(async () => {
    net = await testnet();
    a = await punchNode(net, { timeoutMs: 10_000 });
    b = await punchNode(net, { timeoutMs: 10_000 });
    await Promise.all([ready(a), ready(b)]);
  });
  afterAll(async () => {
    await a?.hp.stop();
    await b?.hp.stop();
    await net?.destroy();
  });

  it('both connect() calls succeed with one and the same connection, and neither side gets a duplicate inbound one', async () => {
    const recB = await a.dht.findPeer(b.dht.nodeId, { signal: AbortSignal.timeout(10_000) });
    const recA = await b.dht.findPeer(a.dht.nodeId, { signal: AbortSignal.timeout(10_000) });
    const [small, large] = a.dht.nodeId < b.dht.nodeId ? [a, b] : [b, a];
    for (let round = 0; round < 5; round++) {
      const [ca, cb] = await Promise.all([
        holePunchStrategy(a.hp).connect(recB, { signal: AbortSignal.timeout(30_000) }),
        holePunchStrategy(b.hp).connect(recA, { signal: AbortSignal.timeout(30_000) }),
      ]);
      try {
        expect(ca.tier).toBe('udp_hole_punch');
        expect(ca.remoteNodeId).toBe(b.dht.nodeId);
        expect(cb.remoteNodeId).toBe(a.dht.nodeId);
        // One connection: both ends agree on who dialed it (the winner, answered by the other).
        expect(ca.initiator).toBe(small.dht.nodeId);
        expect(cb.initiator).toBe(small.dht.nodeId);
        await sameConnection(ca, cb, `round ${round}`);
        expect(a.incoming.length + b.incoming.length).toBe(0);
      } finally {
        const closed = new Promise<void>((resolve) => cb.once('close', () => resolve()));
        await ca.close();
        await closed;
      }
    }
    // The smaller node id's offer won every time; the other side answered it instead of its own.
    expect(small.counters.get('holepunch.crossed_kept')).toBeGreaterThan(0);
    expect(large.counters.get('holepunch.crossed_yielded')).toBe(5);
    expect(small.counters.get('holepunch.crossed_yielded')).toBe(0);
    expect(a.counters.get('holepunch.failures') + b.counters.get('holepunch.failures')).toBe(0);
  });

  it("a connect() that starts while the peer's offer is being answered joins that punch (no second offer)", async () => {
    const c = await punchNode(net, { timeoutMs: 10_000 });
    const d = await punchNode(net, { timeoutMs: 10_000 });
    try {
      await Promise.all([ready(c), ready(d)]);
      const recD = await c.dht.findPeer(d.dht.nodeId, { signal: AbortSignal.timeout(10_000) });
      const recC = await d.dht.findPeer(c.dht.nodeId, { signal: AbortSignal.timeout(10_000) });
      for (let round = 0; round < 3; round++) {
        // c offers first; d calls connect() the moment c's offer reaches it (its hole puncher,
        // listening first, has just taken the offer up).
        const before = d.counters.get('holepunch.joined');
        const second = new Promise<Connection>((resolve, reject) => {
          const onSignal = (e: { from: string; payload: unknown }) => {
            if (e.from !== c.dht.nodeId || (e.payload as { k?: unknown }).k !== 'offer') return;
            d.dht.off('signal', onSignal);
            holePunchStrategy(d.hp)
              .connect(recC, { signal: AbortSignal.timeout(30_000) })
              .then(resolve, reject);
          };
          d.dht.on('signal', onSignal);
        });
        const [cc, cd] = await Promise.all([holePunchStrategy(c.hp).connect(recD, { signal: AbortSignal.timeout(30_000) }), second]);
        try {
          expect(d.counters.get('holepunch.joined')).toBe(before + 1);
          await sameConnection(cc, cd, `join ${round}`);
          expect(c.incoming.length + d.incoming.length).toBe(0);
        } finally {
          const closed = new Promise<void>((resolve) => cd.once('close', () => resolve()));
          await cc.close();
          await closed;
        }
      }
    } finally {
      await c.hp.stop();
      await d.hp.stop();
    }
  });

  it('a NAT measurement that a connect() started and then gave up (its offer lost to a crossing one) still serves the others waiting for it', async () => {
    // The side whose offer loses stops its own connect at once, perhaps while it measures its NAT
    // (the verdict is cached 60 s); its answer to the winning offer waits for that same measurement.
    const e = await punchNode(net);
    try {
      const gaveUp = new AbortController();
      const first = e.hp.measureNat({ signal: gaveUp.signal });
      const second = e.hp.measureNat({ signal: AbortSignal.timeout(20_000) });
      gaveUp.abort();
      await expect(first).rejects.toBeTruthy();
      expect(await second).toMatchObject({ type: 'none' });
    } finally {
      await e.hp.stop();
    }
  });
});
