import { generateIdentity } from '@dpc/core';
import type { SignalEvent } from '@dpc/webrtc-hub';
import { describe, expect, it } from 'vitest';
import { loggedInClient, RawClient, startHub } from './hub-helpers.js';

describe('Hub routing (one instance, real sockets)', () => {
  it('routes a signalling message by node id and confirms it to the sender', async () => {
    const hub = await startHub();
    const alice = await loggedInClient(hub);
    const bob = await loggedInClient(hub);
    const got: SignalEvent[] = [];
    bob.on('signal', (e) => got.push(e));
    const offer = { type: 'offer', sdp: 'v=0\r\n...', sig: 'signed end to end by alice' };
    await alice.send(bob.nodeId, offer);
    await until(() => got.length === 1);
    // `from` is the id the Hub checked at login, never what the sender claims.
    expect(got[0]).toEqual({ from: alice.nodeId, payload: offer });
    expect(hub.counters.get('hub_routed_local')).toBe(1);
  });

  it('tells the sender at once when the target is offline (typed error)', async () => {
    const hub = await startHub();
    const alice = await loggedInClient(hub);
    const t0 = performance.now();
    await expect(alice.send(generateIdentity().nodeId, { type: 'offer' })).rejects.toMatchObject({
      code: 'DPC_HUB_PEER_OFFLINE',
      name: 'HubPeerOfflineError',
    });
    expect(performance.now() - t0).toBeLessThan(5_000); // an answer, not the 10 s request timeout
    expect(hub.counters.get('hub_peer_offline')).toBe(1);
    expect(alice.connected).toBe(true);
  });

  it('refuses an oversized payload with a typed error, counted, and the connection stays', async () => {
    const hub = await startHub({ maxPayloadBytes: 1_000 });
    const alice = await loggedInClient(hub, { maxPayloadBytes: 1_000_000 }); // let it through to the Hub
    const bob = await loggedInClient(hub);
    await expect(alice.send(bob.nodeId, 'x'.repeat(2_000))).rejects.toMatchObject({ code: 'DPC_HUB_MESSAGE_TOO_LARGE' });
    expect(hub.counters.get('hub_refused_too_large')).toBe(1);
    await alice.send(bob.nodeId, 'small'); // still usable
    // Our own client refuses it before sending.
    const careful = await loggedInClient(hub, { maxPayloadBytes: 100 });
    await expect(careful.send(bob.nodeId, 'x'.repeat(200))).rejects.toMatchObject({ code: 'DPC_HUB_MESSAGE_TOO_LARGE' });
    expect(hub.counters.get('hub_refused_too_large')).toBe(1);
  });

  it('closes a connection that sends a frame over the frame limit (1009), counted', async () => {
    const hub = await startHub({ maxFrameBytes: 4_096 });
    const raw = await RawClient.login(hub.url);
    raw.send({ t: 'signal', id: 1, to: raw.identity.nodeId, payload: 'x'.repeat(10_000) });
    expect(await raw.closed()).toBe(1009);
    await until(() => hub.counters.get('hub_closed_frame_too_large') === 1);
    expect(hub.hasNode(raw.identity.nodeId)).toBe(false);
  });

  it('refuses a payload nested too deep (it would overflow JSON.stringify) and keeps serving others', async () => {
    const hub = await startHub();
    const bob = await loggedInClient(hub);
    const raw = await RawClient.login(hub.url);
    const n = 20_000;
    raw.send(`{"t":"signal","id":1,"to":"${bob.nodeId}","payload":${'['.repeat(n)}${']'.repeat(n)}}`);
    expect((await raw.next((m) => m.t === 'error')).code).toBe('DPC_HUB_PROTOCOL');
    expect(await raw.closed()).toBe(1008);
    const alice = await loggedInClient(hub);
    await alice.send(bob.nodeId, { nested: [[[['fine']]]] });
    expect(hub.counters.get('hub_protocol_error')).toBe(1);
  });

  it('rate-limits each node (token bucket): typed errors, counted; the connection stays, and is closed after too many strikes', async () => {
    const hub = await startHub({ ratePerS: 1, rateBurst: 5, maxStrikes: 20 });
    const alice = await loggedInClient(hub);
    const bob = await loggedInClient(hub);
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => alice.send(bob.nodeId, { i })));
    const refused = results.filter((r) => r.status === 'rejected');
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
    expect(refused).toHaveLength(5);
    for (const r of refused) expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'DPC_HUB_RATE_LIMITED', retryable: true });
    expect(hub.counters.get('hub_refused_rate')).toBe(5);
    expect(alice.connected).toBe(true);
    // Bob's own bucket is untouched.
    await bob.send(alice.nodeId, 'hi');
    // A node that keeps hammering is disconnected.
    const raw = await RawClient.login(hub.url);
    for (let i = 0; i < 40; i++) raw.send({ t: 'signal', id: i, to: bob.nodeId, payload: i });
    expect(await raw.closed()).toBe(1008);
    expect(hub.counters.get('hub_closed_abusive')).toBe(1);
  });

  it('bounds connections per source and in total: typed DPC_HUB_BUSY, counted', async () => {
    const hub = await startHub({ maxConnectionsPerSource: 2, maxConnections: 3 });
    await RawClient.withChallenge(hub.url);
    await RawClient.withChallenge(hub.url);
    const third = new RawClient(hub.url);
    expect((await third.next((m) => m.t === 'error')).code).toBe('DPC_HUB_BUSY');
    expect(await third.closed()).toBe(1013);
    // Another loopback address is another source, until the total is reached.
    const other = new RawClient(hub.url, { localAddress: '127.0.0.2' });
    expect((await other.next((m) => m.t === 'challenge' || m.t === 'error')).t).toBe('challenge');
    const over = new RawClient(hub.url, { localAddress: '127.0.0.3' });
    expect((await over.next((m) => m.t === 'error')).code).toBe('DPC_HUB_BUSY');
    expect(hub.counters.get('hub_refused_busy')).toBe(2);
    expect(hub.stats().connections).toBe(3);
  });

  it('a second login of the same node replaces the first (typed DPC_HUB_REPLACED to the old one)', async () => {
    const hub = await startHub();
    const me = generateIdentity();
    const first = await RawClient.login(hub.url, me);
    const second = await RawClient.login(hub.url, me);
    expect((await first.next((m) => m.t === 'error')).code).toBe('DPC_HUB_REPLACED');
    expect(await first.closed()).toBe(4000);
    expect(hub.hasNode(me.nodeId)).toBe(true);
    const bob = await loggedInClient(hub);
    await bob.send(me.nodeId, 'to the new connection');
    expect((await second.next((m) => m.t === 'signal')).payload).toBe('to the new connection');
  });

  it('hands out fresh ICE servers on request', async () => {
    let now = 1_700_000_000_000;
    const hub = await startHub({ turnSecret: 's', turnServers: ['turn:192.0.2.9:3478?transport=udp'], turnTtlS: 60, now: () => now });
    const c = await loggedInClient(hub);
    now += 30_000;
    const ice = await c.iceServers();
    expect(ice).toEqual([
      { urls: ['turn:192.0.2.9:3478?transport=udp'], username: `1700000090:${c.nodeId}`, credential: expect.any(String) },
    ]);
    expect(hub.counters.get('hub_ice_servers')).toBe(1);
  });
});

async function until(pred: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
