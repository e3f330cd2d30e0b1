// Tier 4 on loopback: real DHT nodes (the testnet), real UDP, UDX and TLS 1.3 through the DHT socket.
import type { Connection } from '@dpc/core';
import type { Testnet } from '@dpc/dht/testnet';
import { constants, holePunchStrategy, punchSignalSchema } from '@dpc/holepunch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { as010Responder, type PunchNode, punchNode, ready, testnet, waitUntil } from './helpers.js';

describe('hole punch on loopback', () => {
  let net: Testnet;
  let a: PunchNode;
  let b: PunchNode;
  beforeAll(async () => {
    net = await testnet();
    a = await punchNode(net);
    b = await punchNode(net);
    await Promise.all([ready(a), ready(b)]);
  });
  afterAll(async () => {
    await a?.hp.stop();
    await b?.hp.stop();
    await net?.destroy();
  });

  it('classifies loopback as no NAT from several distinct DHT peers', () => {
    const v = a.hp.nat;
    expect(v?.type).toBe('none');
    expect(v?.samples.length).toBeGreaterThanOrEqual(3);
    expect(new Set(v?.samples.map((s) => s.responder)).size).toBe(v?.samples.length);
    expect(v?.endpoint?.port).toBe(a.dht.address?.port);
  });

  it('connects through the DHT socket, both ways carry messages, and the responder gets an authenticated connection', async () => {
    const rec = await a.dht.findPeer(b.dht.nodeId, { signal: AbortSignal.timeout(5_000) });
    const conn = await holePunchStrategy(a.hp).connect(rec, { signal: AbortSignal.timeout(10_000) });
    try {
      expect(conn.tier).toBe('udp_hole_punch');
      expect(conn.remoteNodeId).toBe(b.dht.nodeId);
      await waitUntil(() => b.incoming.length > 0);
      const inbound = b.incoming[0] as Connection;
      expect(inbound.remoteNodeId).toBe(a.dht.nodeId);
      const got: unknown[] = [];
      inbound.on('message', (m) => got.push(m));
      for (let i = 0; i < 50; i++) await conn.send({ i, pad: 'x'.repeat(2000) });
      await waitUntil(() => got.length === 50);
      expect(got.map((m) => (m as { i: number }).i)).toEqual([...Array(50).keys()]);
      const back: unknown[] = [];
      conn.on('message', (m) => back.push(m));
      await inbound.send({ reply: true });
      await waitUntil(() => back.length === 1);
      // The stream really went through the DHT sockets' demultiplexers.
      expect(b.dht.stats().counters['udp.in.holepunch-udx'] ?? 0).toBeGreaterThan(0);
      expect(a.dht.stats().counters['udp.in.holepunch'] ?? 0).toBeGreaterThan(0);
    } finally {
      await conn.close();
    }
  });

  it('a punch looks the peer up once at most: offer, answer and go travel along the route the record and the offer name', async () => {
    const c = await punchNode(net);
    const d = await punchNode(net);
    await Promise.all([ready(c), ready(d)]);
    const rec = await c.dht.findPeer(d.dht.nodeId, { signal: AbortSignal.timeout(5_000) });
    const lookups = (n: PunchNode) => n.dht.stats().counters['lookups.value'] ?? 0;
    const routed = (n: PunchNode) => n.dht.stats().counters['signals.sent_by_route'] ?? 0;
    const before = { c: lookups(c), d: lookups(d), cRouted: routed(c), dRouted: routed(d) };
    const conn = await holePunchStrategy(c.hp).connect(rec, { signal: AbortSignal.timeout(10_000) });
    try {
      await waitUntil(() => d.incoming.length > 0);
      // offer and go (sent twice) from the initiator, answer from the responder: all by route, none looked up.
      await waitUntil(() => routed(c) - before.cRouted === 1 + constants.GO_COPIES);
      expect(routed(d) - before.dRouted).toBe(1);
      expect(lookups(c)).toBe(before.c);
      expect(lookups(d)).toBe(before.d);
      expect(c.counters.get('holepunch.signals_looked_up') + d.counters.get('holepunch.signals_looked_up')).toBe(0);
    } finally {
      await conn.close();
      await c.hp.stop();
      await d.hp.stop();
    }
  });

  it('a birthday pair (cone ↔ symmetric) gets birthday_timeout as its deadline, other pairs hole_punch_timeout', async () => {
    // a: hole_punch_timeout 4 s (helpers.ts), birthday_timeout the default 30 s; its own NAT: none.
    expect(a.hp.birthdayDeadlineMs('symmetric', 'cone')).toBe(constants.BIRTHDAY_TIMEOUT_MS);
    expect(a.hp.birthdayDeadlineMs('cone', 'symmetric')).toBe(constants.BIRTHDAY_TIMEOUT_MS);
    expect(a.hp.birthdayDeadlineMs('symmetric')).toBe(constants.BIRTHDAY_TIMEOUT_MS); // from its verdict (none)
    expect(a.hp.birthdayDeadlineMs('cone', 'cone')).toBeUndefined();
    expect(a.hp.birthdayDeadlineMs('symmetric', 'symmetric')).toBeUndefined(); // not applicable at all
    const rec = await a.dht.findPeer(b.dht.nodeId, { signal: AbortSignal.timeout(5_000) });
    const st = holePunchStrategy(a.hp);
    const symmetric = { ...rec, body: { ...rec.body, nat_type: 'symmetric' as const } };
    expect(st.deadlineMs?.(symmetric, { hubConnected: false, natType: 'cone' })).toBe(constants.BIRTHDAY_TIMEOUT_MS);
    expect(st.deadlineMs?.(rec, { hubConnected: false, natType: 'cone' })).toBeUndefined(); // the orchestrator's hole_punch_timeout
    // A birthday_timeout shorter than hole_punch_timeout never shortens the punch.
    const c = await punchNode(net, { birthdayTimeoutMs: 1_000 });
    try {
      expect(c.hp.birthdayDeadlineMs('symmetric', 'cone')).toBeUndefined();
    } finally {
      await c.hp.stop();
    }
  });

  it('signals with fields this version does not know are read, not refused (a later version may add optional ones)', () => {
    const offer = {
      hp: 1,
      k: 'offer',
      sid: '0123456789abcdef',
      tok: 'fedcba9876543210',
      nat: 'cone',
      eps: [{ ip: '198.51.100.7', port: 4000 }],
      stream: 7,
      via: [{ ip: '198.51.100.8', port: 8889 }],
      future: { anything: true },
    };
    expect(punchSignalSchema(offer, 'signal')).toEqual({ ...offer, future: undefined });
    expect(punchSignalSchema({ hp: 1, k: 'go', sid: '0123456789abcdef', offset: 5, later: 'x' }, 'signal')).toEqual({
      hp: 1,
      k: 'go',
      sid: '0123456789abcdef',
      offset: 5,
    });
    // Known fields are still checked.
    expect(() => punchSignalSchema({ ...offer, stream: 0 }, 'signal')).toThrow();
  });

  it('a 0.1.0 responder (drops offers carrying via) is still reached: the offer is sent again without via', async () => {
    let old: ReturnType<typeof as010Responder> | undefined;
    const c = await punchNode(net);
    const d = await punchNode(net, {
      wrapDht: (dht) => {
        old = as010Responder(dht);
        return old.dht;
      },
    });
    await Promise.all([ready(c), ready(d)]);
    const rec = await c.dht.findPeer(d.dht.nodeId, { signal: AbortSignal.timeout(5_000) });
    const conn = await holePunchStrategy(c.hp).connect(rec, { signal: AbortSignal.timeout(10_000) });
    try {
      expect(conn.remoteNodeId).toBe(d.dht.nodeId);
      await waitUntil(() => d.incoming.length > 0);
      // The first offer (with via, since c names its forwarders) was dropped there; a copy got through.
      expect(old?.dropped()).toBe(1);
      expect(c.counters.get('holepunch.offers_resent')).toBeGreaterThanOrEqual(1);
      const got: unknown[] = [];
      (d.incoming[0] as Connection).on('message', (m) => got.push(m));
      await conn.send({ hello: 'old peer' });
      await waitUntil(() => got.length === 1);
    } finally {
      await conn.close();
      await c.hp.stop();
      await d.hp.stop();
    }
  });

  it('a path that goes silent closes the connection with DPC_PATH_LOST', async () => {
    const c = await punchNode(net);
    const d = await punchNode(net);
    await Promise.all([ready(c), ready(d)]);
    const rec = await c.dht.findPeer(d.dht.nodeId, { signal: AbortSignal.timeout(5_000) });
    const conn = await holePunchStrategy(c.hp).connect(rec, { signal: AbortSignal.timeout(10_000) });
    const closed = new Promise<Error | undefined>((resolve) => conn.on('close', resolve));
    conn.on('error', () => {});
    try {
      // The peer vanishes without a word: its UDP socket is gone, no keepalive arrives any more.
      await d.dht.stop();
      const err = await closed;
      expect((err as { code?: string } | undefined)?.code).toBe('DPC_PATH_LOST');
      expect(c.counters.get('holepunch.paths_lost')).toBe(1);
    } finally {
      await conn.close();
      await c.hp.stop();
      await d.hp.stop();
    }
  });
});
