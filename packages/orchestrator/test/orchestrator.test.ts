import { once } from 'node:events';
import { type Connection, type DpcConfig, TIERS, type TierName } from '@dpc/core';
import { ipv4DirectStrategy } from '@dpc/direct';
import { type ConnectEvent, type ConnectFailedError, TIER_TIMEOUT_KEY, type TierOutcome } from '@dpc/orchestrator';
import { afterEach, describe, expect, it } from 'vitest';
import { makeNode, type NodeOptions, RecordDirectory, scriptedTier, type TestNode } from './helpers.js';

const nodes: TestNode[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.stop();
});

async function pair(opts: NodeOptions = {}) {
  const dir = new RecordDirectory();
  const a = await makeNode(dir, opts);
  const b = await makeNode(dir);
  nodes.push(a, b);
  return { a, b, dir };
}

const TIMEOUT_KEY = TIER_TIMEOUT_KEY as Record<TierName, 'ipv6_timeout'>;

const outcome = (err: unknown, tier: TierName) => (err as ConnectFailedError).tiers.find((t) => t.tier === tier) as TierOutcome;

describe('ConnectionOrchestrator — sequential mode (the spec)', () => {
  const seq = (c: DpcConfig) => {
    c.connection.mode = 'sequential';
  };

  it('tries tiers in priority order and stops at the first success', async () => {
    const scripted: Record<string, ReturnType<typeof scriptedTier>> = {};
    const { a, b } = await pair({
      config: seq,
      strategies: (id) =>
        (['ipv6_direct', 'ipv4_direct', 'udp_hole_punch', 'volunteer_relay', 'gossip'] as const).map((t) => {
          scripted[t] = scriptedTier(t, id, t === 'ipv6_direct' ? { fail: 'no route' } : {});
          return scripted[t];
        }),
    });
    const ev = once(a.orchestrator, 'connect') as Promise<[ConnectEvent]>;
    const session = await a.orchestrator.connect(b.identity.nodeId, { signal: AbortSignal.timeout(10_000) });
    expect(session.tier).toBe('ipv4_direct');
    expect(Object.fromEntries(Object.entries(scripted).map(([k, v]) => [k, v.calls]))).toEqual({
      ipv6_direct: 1,
      ipv4_direct: 1,
      udp_hole_punch: 0,
      volunteer_relay: 0,
      gossip: 0,
    });
    const [e] = await ev;
    expect(e.outcomes.map((o) => `${o.tier}:${o.result}`)).toEqual(['ipv6_direct:failed', 'ipv4_direct:connected', 'hub_webrtc:skipped']);
  });

  it.each(TIERS.filter((t) => t !== 'hub_webrtc'))('each tier’s *_timeout is read: %s', async (tier) => {
    const { a, b } = await pair({
      config: (c) => {
        seq(c);
        for (const t of TIERS) c.connection[TIMEOUT_KEY[t]] = 5;
        c.connection[TIMEOUT_KEY[tier]] = 0.15;
      },
      strategies: (id) => [scriptedTier(tier, id, { stall: true })],
    });
    const t0 = performance.now();
    const err = await a.orchestrator.connect(b.identity.nodeId, { signal: AbortSignal.timeout(10_000) }).catch((e: unknown) => e);
    const took = performance.now() - t0;
    expect(err).toMatchObject({ code: 'DPC_CONNECT_FAILED' });
    expect(outcome(err, tier)).toMatchObject({ result: 'timed out' });
    expect(took).toBeGreaterThanOrEqual(140);
    expect(took).toBeLessThan(4000);
  });

  it('a strategy naming its own deadline for the peer (tier 4: a birthday punch) gets it instead of its *_timeout', async () => {
    const slow = (id: Parameters<typeof scriptedTier>[1]) =>
      Object.assign(scriptedTier('udp_hole_punch', id, { delayMs: 1_000 }), { deadlineMs: () => 30_000 });
    const { a, b } = await pair({
      config: (c) => {
        seq(c);
        c.connection.hole_punch_timeout = 0.15;
      },
      strategies: (id) => [slow(id)],
    });
    // Connected after 1 s, well past hole_punch_timeout (0.15 s), within the strategy's 30 s.
    const session = await a.orchestrator.connect(b.identity.nodeId, { signal: AbortSignal.timeout(20_000) });
    expect(session.tier).toBe('udp_hole_punch');
  });

  it('webrtc_timeout is read when the Hub is connected', async () => {
    const { a, b } = await pair({
      hub: () => true,
      config: (c) => {
        seq(c);
        c.connection.webrtc_timeout = 0.15;
      },
      strategies: (id) => [scriptedTier('hub_webrtc', id, { stall: true })],
    });
    const err = await a.orchestrator.connect(b.identity.nodeId).catch((e: unknown) => e);
    expect(outcome(err, 'hub_webrtc')).toMatchObject({ result: 'timed out' });
  });

  it('a failure is one typed error listing every tier and why', async () => {
    const { a, b } = await pair({
      config: (c) => {
        seq(c);
        c.connection.enable_gossip = false;
      },
      strategies: (id) => [
        scriptedTier('ipv4_direct', id, { fail: 'connection refused' }),
        scriptedTier('volunteer_relay', id, { fail: 'relay full' }),
      ],
    });
    const err = (await a.orchestrator.connect(b.identity.nodeId).catch((e: unknown) => e)) as ConnectFailedError;
    expect(err.code).toBe('DPC_CONNECT_FAILED');
    expect(err.tiers.map((t) => t.tier)).toEqual([...TIERS]);
    expect(err.tiers.map((t) => (t.result === 'skipped' ? `skipped:${t.reason}` : t.result))).toEqual([
      'skipped:not installed',
      'failed',
      'skipped:not installed',
      'skipped:not installed',
      'failed',
      'skipped:disabled',
    ]);
    expect(err.message).toContain('volunteer_relay: failed (relay full)');
    expect(a.orchestrator.stats()).toMatchObject({ total_attempts: 1, successful_connections: 0, failed_connections: 1 });
  });

  it('total_timeout bounds the whole attempt', async () => {
    const { a, b } = await pair({
      config: (c) => {
        seq(c);
        c.connection.total_timeout = 0.3;
      },
      strategies: (id) => [scriptedTier('ipv4_direct', id, { stall: true }), scriptedTier('volunteer_relay', id, { stall: true })],
    });
    const t0 = performance.now();
    const err = await a.orchestrator.connect(b.identity.nodeId).catch((e: unknown) => e);
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(outcome(err, 'ipv4_direct')).toMatchObject({ result: 'timed out' });
  });

  it('the caller’s AbortSignal cancels connect()', async () => {
    const { a, b } = await pair({ config: seq, strategies: (id) => [scriptedTier('ipv4_direct', id, { stall: true })] });
    const ctrl = new AbortController();
    const p = a.orchestrator.connect(b.identity.nodeId, { signal: ctrl.signal });
    setTimeout(() => ctrl.abort(), 50);
    await expect(p).rejects.toMatchObject({ code: 'DPC_ABORTED' });
  });
});

describe('ConnectionOrchestrator — racing mode', () => {
  it('a stalled better tier does not hold back a working one (Happy Eyeballs across tiers)', async () => {
    let stalled!: ReturnType<typeof scriptedTier>;
    const { a, b } = await pair({
      strategies: (id) => {
        stalled = scriptedTier('ipv6_direct', id, { stall: true });
        return [stalled, ipv4DirectStrategy({ identity: id, allowLoopback: true })];
      },
    });
    const t0 = performance.now();
    const s = await a.orchestrator.connect(b.identity.nodeId);
    expect(s.tier).toBe('ipv4_direct');
    expect(performance.now() - t0).toBeLessThan(3000); // not the 10 s ipv6_timeout
    // the loser is cancelled cleanly once the grace window is over, not left running
    expect(stalled.calls).toBe(1);
    expect(stalled.cancelled).toBe(1);
  });

  it('a better tier that answers within the grace window wins over a worse one that answered first', async () => {
    const { a, b } = await pair({
      config: (c) => {
        c.connection.race_grace = 1;
        c.connection.race_stagger = 0.01;
      },
      strategies: (id) => [scriptedTier('ipv4_direct', id, { delayMs: 150 }), scriptedTier('volunteer_relay', id)],
    });
    const s = await a.orchestrator.connect(b.identity.nodeId);
    expect(s.tier).toBe('ipv4_direct');
  });

  it('a session that starts on a relay moves up when a better tier succeeds later', async () => {
    let direct!: ReturnType<typeof scriptedTier>;
    const { a, b } = await pair({
      upgradeIntervalMs: 200,
      config: (c) => {
        c.connection.race_grace = 0.05;
      },
      strategies: (id) => {
        direct = scriptedTier('ipv4_direct', id, { fail: 'not yet' });
        return [direct, scriptedTier('volunteer_relay', id)];
      },
    });
    const s = await a.orchestrator.connect(b.identity.nodeId);
    expect(s.tier).toBe('volunteer_relay');
    const upgraded = once(a.orchestrator, 'upgrade');
    direct.behaviour = {};
    const [e] = await upgraded;
    expect(e).toMatchObject({ peerId: b.identity.nodeId, from: 'volunteer_relay', to: 'ipv4_direct' });
    expect(s.tier).toBe('ipv4_direct');
    const got = once(b.orchestrator, 'message');
    await s.send('after upgrade');
    expect((await got)[0]).toMatchObject({ body: 'after upgrade' });
    expect(a.orchestrator.stats().upgrades).toBeGreaterThanOrEqual(1);
  });

  it('a session on WebRTC (tier 3) moves to a punched UDP path (tier 4) when the punch succeeds later', async () => {
    let punch!: ReturnType<typeof scriptedTier>;
    const { a, b } = await pair({
      upgradeIntervalMs: 200,
      hub: () => true,
      strategies: (id) => {
        punch = scriptedTier('udp_hole_punch', id, { fail: 'not yet' });
        return [scriptedTier('hub_webrtc', id), punch];
      },
    });
    const s = await a.orchestrator.connect(b.identity.nodeId);
    expect(s.tier).toBe('hub_webrtc');
    const upgraded = once(a.orchestrator, 'upgrade');
    punch.behaviour = {};
    const [e] = await upgraded;
    expect(e).toMatchObject({ peerId: b.identity.nodeId, from: 'hub_webrtc', to: 'udp_hole_punch' });
    expect(s.tier).toBe('udp_hole_punch');
    const got = once(b.orchestrator, 'message');
    await s.send('over the punched path');
    expect((await got)[0]).toMatchObject({ body: 'over the punched path' });
  });

  it('records stats in the spec’s shape with per-tier detail', async () => {
    const { a, b } = await pair();
    await a.orchestrator.connect(b.identity.nodeId);
    const st = a.orchestrator.stats();
    expect(st).toMatchObject({ total_attempts: 1, successful_connections: 1, failed_connections: 0 });
    expect(st.strategy_usage).toEqual({ ipv6_direct: 0, ipv4_direct: 1, hub_webrtc: 0, udp_hole_punch: 0, volunteer_relay: 0, gossip: 0 });
    expect(st.tiers.ipv4_direct.attempts).toBe(1);
    expect(st.tiers.ipv4_direct.time_to_connect_ms.p50).toBeGreaterThan(0);
  });
});

describe('PeerSession', () => {
  it('delivers messages in order, acknowledged, and the receiver side is matched to the same peer', async () => {
    const { a, b } = await pair();
    const received: unknown[] = [];
    b.orchestrator.on('message', (m) => received.push(m.body));
    const inbound = once(b.orchestrator, 'session');
    const s = await a.orchestrator.connect(b.identity.nodeId);
    await Promise.all(Array.from({ length: 50 }, (_, i) => s.send({ i })));
    expect(received).toEqual(Array.from({ length: 50 }, (_, i) => ({ i })));
    const [bs] = await inbound;
    expect(bs.peerId).toBe(a.identity.nodeId);
    // and back over the same session
    const back = once(a.orchestrator, 'message');
    await bs.send('hi a');
    expect((await back)[0]).toMatchObject({ peerId: b.identity.nodeId, body: 'hi a' });
    expect(b.orchestrator.sessions()).toHaveLength(1);
  });

  it('when the path is killed mid-stream it moves to a new path and loses no message, with no duplicate', async () => {
    const { a, b } = await pair();
    const received: number[] = [];
    b.orchestrator.on('message', (m) => received.push((m.body as { i: number }).i));
    const conns: Connection[] = [];
    b.listener.on('connection', (c) => conns.push(c));
    const s = await a.orchestrator.connect(b.identity.nodeId);
    const lost: unknown[] = [];
    s.on('path-lost', (e) => lost.push(e));
    const N = 300;
    const sends: Promise<void>[] = [];
    for (let i = 0; i < N; i++) {
      sends.push(s.send({ i }));
      if (i === 100) {
        // let some of the first 100 be delivered, then kill the path abruptly from the far side
        // (The dialer's connect resolves before the acceptor has read its hello: since the 2-RTT
        // handshake the far side's connection may appear a moment later.)
        await new Promise((r) => setTimeout(r, 5));
        await expect.poll(() => conns.length).toBe(1);
        (conns[0] as Connection & { destroy(e: Error): void }).destroy(new Error('path killed'));
      }
    }
    await Promise.all(sends);
    expect(received).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(s.connected).toBe(true);
    expect(lost).toHaveLength(1);
    expect(conns.length).toBeGreaterThanOrEqual(2); // a second path carried the rest
  });

  it('send() waits for the acknowledgement and fails with a typed error when the session closes', async () => {
    const { a, b } = await pair({ strategies: (id) => [scriptedTier('ipv4_direct', id)] });
    const s = await a.orchestrator.connect(b.identity.nodeId);
    await b.stop();
    nodes.splice(nodes.indexOf(b), 1);
    const p = s.send('into the void');
    await new Promise((r) => setTimeout(r, 100));
    await s.close();
    await expect(p).rejects.toMatchObject({ code: 'DPC_SESSION_CLOSED' });
  });
});
