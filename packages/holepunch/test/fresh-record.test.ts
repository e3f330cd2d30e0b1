// A peer's endpoint record from before its NAT verdict (no accepts_punch) found right after the
// verdict: tier 4 looks the peer up once more instead of skipping. Real DHT nodes (the testnet),
// real UDP, UDX and TLS 1.3 on loopback.
import type { NetworkState } from '@dpc/core';
import type { Testnet } from '@dpc/dht/testnet';
import { holePunchStrategy } from '@dpc/holepunch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PunchNode, punchNode, ready, testnet } from './helpers.js';

const network: NetworkState = { hubConnected: false };

describe("a young record without accepts_punch (the peer's NAT verdict came after it)", () => {
  let net: Testnet;
  let a: PunchNode;
  beforeAll(async () => {
    net = await testnet();
    a = await punchNode(net, { timeoutMs: 15_000 });
    await ready(a);
  });
  afterAll(async () => {
    await a?.hp.stop();
    await net?.destroy();
  });

  it('is looked up once more: the newer record (accepts_punch) is used and the punch succeeds', async () => {
    const b = await punchNode(net);
    try {
      // b joined and announced before measuring its NAT: the record a finds says no punching.
      await b.dht.announceFull({ signal: AbortSignal.timeout(10_000) });
      const stale = await a.dht.findPeer(b.dht.nodeId, { signal: AbortSignal.timeout(10_000) });
      expect(stale.body.accepts_punch).toBe(false);
      // Then b's verdict and the record that says yes (what a peer sending right then misses).
      await ready(b);
      const st = holePunchStrategy(a.hp);
      expect(st.isApplicable(stale, network)).toEqual({ applicable: true });
      const conn = await st.connect(stale, { signal: AbortSignal.timeout(30_000), network });
      try {
        expect(conn.tier).toBe('udp_hole_punch');
        expect(conn.remoteNodeId).toBe(b.dht.nodeId);
        expect(a.counters.get('holepunch.records_renewed')).toBe(1);
      } finally {
        await conn.close();
      }
    } finally {
      await b.hp.stop();
    }
  });

  it('a young record whose newer lookup still says no is not applicable (one lookup, typed error); an old one is skipped at once', async () => {
    const c = await punchNode(net, { enabled: false });
    try {
      await c.dht.announceFull({ signal: AbortSignal.timeout(10_000) });
      const rec = await a.dht.findPeer(c.dht.nodeId, { signal: AbortSignal.timeout(10_000) });
      expect(rec.body.accepts_punch).toBe(false);
      const st = holePunchStrategy(a.hp);
      const before = a.counters.get('holepunch.records_rechecked');
      await expect(st.connect(rec, { signal: AbortSignal.timeout(30_000), network })).rejects.toMatchObject({
        code: 'DPC_TIER_NOT_APPLICABLE',
      });
      expect(a.counters.get('holepunch.records_rechecked')).toBe(before + 1);
      const old = { ...rec, issuedAt: Date.now() - 10 * 60_000 };
      expect(st.isApplicable(old, network)).toMatchObject({ applicable: false, reason: 'the peer does not accept hole punching' });
    } finally {
      await c.hp.stop();
    }
  });
});
