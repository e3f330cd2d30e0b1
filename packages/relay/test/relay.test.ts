import { once } from 'node:events';
import { type Connection, createRecord, emptyEndpointBody, generateIdentity } from '@dpc/core';
import { createRelayServer, type RelayServerOptions, volunteerRelayStrategy } from '@dpc/relay';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cleanups,
  client,
  closeError,
  MemoryDirectory,
  MemorySignaller,
  nextMessage,
  nextOf,
  pair,
  rawClient,
  rawPair as rawPairAt,
  relay,
  runCleanups,
  tappedListener,
} from './helpers.js';

afterEach(runCleanups);

describe('@dpc/relay over real TCP on loopback', () => {
  it('pairs an initiator with a reserved target; both ends are authenticated volunteer_relay connections', async () => {
    const { server, ref } = await relay();
    const a = client();
    const b = client();
    expect(await b.reserve({ relays: [ref] })).toEqual([ref]);
    // The orchestrator's path: tier 5 with the target's endpoint record listing its relay.
    const record = createRecord(b.id, { kind: 'endpoint', body: { ...emptyEndpointBody(), relays: b.reservations() } });
    const tier5 = volunteerRelayStrategy({ client: a, canDiscover: false });
    expect(tier5.priority).toBe(5);
    expect(tier5.isApplicable(record, { hubConnected: false })).toEqual({ applicable: true });
    const bare = createRecord(b.id, { kind: 'endpoint', body: emptyEndpointBody() });
    expect(tier5.isApplicable(bare, { hubConnected: false }).applicable).toBe(false);
    const inbound = once(b, 'incoming') as Promise<[Connection]>;
    const alice = await tier5.connect(record, { signal: AbortSignal.timeout(10_000) });
    const [bob] = await inbound;
    expect([alice.tier, bob.tier]).toEqual(['volunteer_relay', 'volunteer_relay']);
    expect(alice.remoteNodeId).toBe(b.id.nodeId);
    expect(bob.remoteNodeId).toBe(a.id.nodeId);
    const got = nextMessage(bob);
    await alice.send({ n: 1, text: 'hi bob' });
    expect(await got).toEqual({ n: 1, text: 'hi bob' });
    const back = nextMessage(alice);
    await bob.send('hi alice');
    expect(await back).toBe('hi alice');
    expect(server.stats()).toMatchObject({ sessions_opened: 1, open_sessions: 1, incoming_notified: 1 });
    await alice.close();
    await closeError(bob);
    await expect.poll(() => server.stats().open_sessions).toBe(0);
  });

  it('finds the relay in the directory and invites an unreserved target through the signaller', async () => {
    const dir = new MemoryDirectory();
    const sig = new MemorySignaller();
    const r = await relay({ directory: undefined });
    const rid = r.id;
    dir.put(rid, { ...r.server.offer(), uptime: 1 });
    const aid = generateIdentity();
    const bid = generateIdentity();
    const a2 = client({ identity: aid, directory: dir.forNode(aid), signaller: sig.forNode(aid) });
    // b2 follows the invite because the relay it names is offered in the directory at that address.
    const b2 = client({ identity: bid, directory: dir.forNode(bid), signaller: sig.forNode(bid) });
    const b = { id: bid };
    const inbound = once(b2, 'incoming') as Promise<[Connection]>;
    const alice = await a2.connect(b.id.nodeId, { signal: AbortSignal.timeout(10_000) });
    const [bob] = await inbound;
    expect(sig.sent).toBe(1);
    expect(a2.measuredLatency().get(rid.nodeId)).toBeGreaterThan(0);
    const got = nextMessage(bob);
    await alice.send('via invite');
    expect(await got).toBe('via invite');
    expect(a2.stats().connected_via_directory).toBe(1);
    expect(b2.stats()).toMatchObject({ invites_received: 1, invites_accepted: 1 });
  });

  it('a waiting registration expires with a clear answer', async () => {
    const { server, ref } = await relay({ registrationTimeoutMs: 200 });
    const a = client();
    const offline = generateIdentity();
    const err = await a.connect(offline.nodeId, { relays: [ref] }).catch((e) => e);
    expect(err.code).toBe('DPC_DIAL_FAILED');
    expect(err.causes[0]).toMatchObject({ code: 'DPC_RELAY_REFUSED', refusal: 'expired' });
    expect(server.stats()).toMatchObject({ refused_expired: 1, waiting_registrations: 0 });
  });

  it('the relay handles only ciphertext: plaintext sent by the peers never appears in what it forwards', async () => {
    const rid = generateIdentity();
    const server = createRelayServer({ identity: rid, host: '127.0.0.1', port: 0 });
    cleanups.push(() => server.stop());
    const seen: Buffer[] = [];
    const tap = await tappedListener(rid, (conn) => {
      // Every decrypted control message the relay process receives.
      conn.on('message', (m: { type: string; data?: Uint8Array }) => {
        if (m.type === 'RELAY_MESSAGE' && m.data) seen.push(Buffer.from(m.data));
      });
      server.accept(conn);
    });
    cleanups.push(() => tap.server.close());
    const { alice, bob } = await pair({ node_id: rid.nodeId, ip: '127.0.0.1', port: tap.port });
    const marker = 'PLAINTEXT-MARKER-7f3a9c';
    const got: unknown[] = [];
    bob.on('message', (m) => got.push(m));
    for (let i = 0; i < 20; i++) await alice.send({ text: `${marker} #${i}`, blob: Buffer.from(marker.repeat(50)) });
    await expect.poll(() => got.length).toBe(20);
    const all = Buffer.concat(seen);
    expect(all.length).toBeGreaterThan(20 * 50 * marker.length);
    expect(all.includes(Buffer.from(marker))).toBe(false);
    expect(all.includes(Buffer.from('MARKER'))).toBe(false);
  });

  it('limits sessions to max_peers: the next registration is refused as full', async () => {
    const { server, ref } = await relay({ maxPeers: 1 });
    await pair(ref);
    const c = client();
    const d = generateIdentity();
    const err = await c.connect(d.nodeId, { relays: [ref] }).catch((e) => e);
    expect(err.causes[0]).toMatchObject({ code: 'DPC_RELAY_REFUSED', refusal: 'full', retryable: true });
    expect(server.stats().refused_full).toBe(1);
    expect(server.offer()).toMatchObject({ available: false, current_peers: 1, max_peers: 1 });
  });

  it('fails over: a relay that is down and one that is full are skipped for the next one', async () => {
    const dir = new MemoryDirectory();
    const sig = new MemorySignaller();
    // best: down; second: full (its offer is stale); third: fine.
    const down = await relay();
    dir.put(down.id, { ...down.server.offer(), uptime: 1 });
    await down.server.stop();
    const full = await relay({ maxPeers: 1 });
    dir.put(full.id, { ...full.server.offer(), uptime: 0.9 });
    await pair(full.ref);
    const good = await relay();
    dir.put(good.id, { ...good.server.offer(), uptime: 0.2 });
    const aid = generateIdentity();
    const aa = client({ identity: aid, directory: dir.forNode(aid), signaller: sig.forNode(aid), probeCount: 3 });
    const bid = generateIdentity();
    // bb follows the invite only to a relay the directory offers (issue 10 §4)
    const bb = client({ identity: bid, directory: dir.forNode(bid), signaller: sig.forNode(bid) });
    const inbound = once(bb, 'incoming') as Promise<[Connection]>;
    const alice = await aa.connect(bid.nodeId, { signal: AbortSignal.timeout(10_000) });
    await inbound;
    expect(alice.tier).toBe('volunteer_relay');
    expect(full.server.stats().refused_full).toBe(1);
    expect(good.server.stats().sessions_opened).toBe(1);
    expect(aa.stats()).toMatchObject({ relay_link_failures: 1, connect_failover_DPC_RELAY_REFUSED: 1 });
  });

  it('killing the relay mid-session closes both relayed connections with a typed error', async () => {
    const rid = generateIdentity();
    const server = createRelayServer({ identity: rid, host: '127.0.0.1', port: 0 });
    cleanups.push(() => server.stop());
    const tap = await tappedListener(rid, (conn) => server.accept(conn));
    cleanups.push(() => tap.server.close());
    const { alice, bob } = await pair({ node_id: rid.nodeId, ip: '127.0.0.1', port: tap.port });
    const closing = [closeError(alice), closeError(bob)];
    for (const s of tap.sockets) s.destroy(); // the relay vanishes: no goodbye
    const [ea, eb] = await Promise.all(closing);
    expect(ea).toMatchObject({ code: 'DPC_RELAY_PATH_CLOSED', reason: 'relay_lost' });
    expect(eb).toMatchObject({ code: 'DPC_RELAY_PATH_CLOSED', reason: 'relay_lost' });
    await expect(alice.send('lost')).rejects.toMatchObject({ code: 'DPC_CONNECTION_CLOSED' });
  });

  it('closes an idle session with RELAY_DISCONNECT: both ends see reason idle', async () => {
    const { server, ref } = await relay({ idleTimeoutMs: 300 });
    const { alice, bob } = await pair(ref);
    const [ea, eb] = await Promise.all([closeError(alice), closeError(bob)]);
    expect(ea).toMatchObject({ code: 'DPC_RELAY_PATH_CLOSED', reason: 'idle' });
    expect(eb).toMatchObject({ code: 'DPC_RELAY_PATH_CLOSED', reason: 'idle' });
    expect(server.stats().sessions_closed_idle).toBe(1);
  });

  it('announces its offer and refreshes it when the load changes', async () => {
    const dir = new MemoryDirectory();
    const rid = generateIdentity();
    const { server, ref } = await relay({ identity: rid, directory: dir.forNode(rid), region: 'eu-west', announceDebounceMs: 20 });
    expect(dir.get(rid.nodeId)).toMatchObject({
      node_id: rid.nodeId,
      port: server.port,
      current_peers: 0,
      region: 'eu-west',
      available: true,
    });
    await pair(ref);
    await expect.poll(() => dir.get(rid.nodeId)?.current_peers).toBe(1);
  });

  it('re-takes a reservation after the relay is lost', async () => {
    const rid = generateIdentity();
    const server = createRelayServer({ identity: rid, host: '127.0.0.1', port: 0 });
    cleanups.push(() => server.stop());
    const tap = await tappedListener(rid, (conn) => server.accept(conn));
    cleanups.push(() => tap.server.close());
    const b = client({ reserveBackoffsMs: [20] });
    const ref = { node_id: rid.nodeId, ip: '127.0.0.1', port: tap.port };
    await b.reserve({ relays: [ref] });
    const lost = once(b, 'reservations');
    for (const s of tap.sockets) s.destroy();
    expect((await lost)[0]).toEqual([]);
    await expect.poll(() => b.reservations().length).toBe(1);
  });
});

describe('lost reservations are taken again (issue 10 §6)', () => {
  it('a relay stopped for a while and restarted on the same port: the client retries with backoff, re-reserves and is reached again', async () => {
    const rid = generateIdentity();
    const first = createRelayServer({ identity: rid, host: '127.0.0.1', port: 0 });
    await first.start();
    const port = first.port;
    const ref = { node_id: rid.nodeId, ip: '127.0.0.1', port };
    const b = client({ reserveBackoffsMs: [100, 200, 400], reserveJitter: 0 });
    expect(await b.reserve({ relays: [ref] })).toEqual([ref]);
    const seen: number[] = [];
    b.on('reservations', (r) => seen.push(r.length));
    await first.stop();
    await expect.poll(() => seen[0]).toBe(0);
    // Down for ~1.5 s: several attempts fail (a single retry, as before, would give up here).
    await new Promise((r) => setTimeout(r, 1500));
    expect(b.stats().reservations_failed).toBeGreaterThanOrEqual(3);
    expect(b.reservations()).toEqual([]);
    const second = createRelayServer({ identity: rid, host: '127.0.0.1', port });
    await second.start();
    cleanups.push(() => second.stop());
    const back = performance.now();
    await expect.poll(() => b.reservations().length, { timeout: 5_000 }).toBe(1);
    expect(performance.now() - back).toBeLessThan(3_000);
    expect(seen.at(-1)).toBe(1);
    expect(b.stats()).toMatchObject({ reservations_lost: 1, reservations: 1 });
    const a = client();
    const inbound = once(b, 'incoming') as Promise<[Connection]>;
    const alice = await a.connect(b.id.nodeId, { relays: [ref], signal: AbortSignal.timeout(10_000) });
    const [bob] = await inbound;
    const got = nextMessage(bob);
    await alice.send('after the relay came back');
    expect(await got).toBe('after the relay came back');
  });

  it('remembers the latency of a bounded number of relays', async () => {
    const r1 = await relay();
    const r2 = await relay();
    const c = client({ maxMeasuredRelays: 1 });
    await c.reserve({ relays: [r1.ref] });
    await c.reserve({ relays: [r2.ref] });
    expect([...c.measuredLatency().keys()]).toEqual([r2.ref.node_id]);
  });
});

/**
 * A TCP forwarder in front of the relay that can silently stop forwarding the connections it
 * carries (as a NAT that lost its mappings does), while new connections go through.
 */
async function natLikeProxy(target: number): Promise<{ port: number; blackhole(): void }> {
  const { createServer, connect } = await import('node:net');
  const live: Array<{ dead: boolean }> = [];
  const server = createServer((inbound) => {
    const state = { dead: false };
    live.push(state);
    const outbound = connect(target, '127.0.0.1');
    inbound.on('data', (d) => state.dead || outbound.write(d));
    outbound.on('data', (d) => state.dead || inbound.write(d));
    const end = () => {
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on('error', end).on('close', () => state.dead || end());
    outbound.on('error', end).on('close', () => state.dead || end());
    cleanups.push(end);
  }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => server.close());
  return {
    port: (server.address() as { port: number }).port,
    blackhole: () => {
      for (const s of live) s.dead = true;
    },
  };
}

describe('reservations survive a NAT that forgets its mapping', () => {
  it('a reserved link whose pings go unanswered is dropped and the reservation is taken again', async () => {
    const { server, id: rid } = await relay();
    const nat = await natLikeProxy(server.port);
    const b = client({ reservationKeepaliveMs: 200, reserveBackoffsMs: [20] });
    const ref = { node_id: rid.nodeId, ip: '127.0.0.1', port: nat.port };
    expect(await b.reserve({ relays: [ref] })).toEqual([ref]);
    const seen: number[] = [];
    b.on('reservations', (r) => seen.push(r.length));
    nat.blackhole(); // the old link now goes nowhere, silently
    await expect.poll(() => seen.join(','), { timeout: 15_000 }).toMatch(/^0,1/);
    expect(b.stats()).toMatchObject({ reservations_lost: 1, reservations: 1 });
    // and the fresh reservation works: a peer reaches b through the relay
    const a = client();
    const inbound = once(b, 'incoming') as Promise<[Connection]>;
    const alice = await a.connect(b.id.nodeId, { relays: [{ ...ref, port: server.port }], signal: AbortSignal.timeout(10_000) });
    const [bob] = await inbound;
    const got = nextMessage(bob);
    await alice.send('after the NAT forgot us');
    expect(await got).toBe('after the NAT forgot us');
  });
});

describe('relay limits and identity, speaking the wire protocol directly', () => {
  async function rawPair(opts: Partial<RelayServerOptions> = {}) {
    const { ga, gb, ...r } = await rawPairAt(opts, { ids: [1, 7] });
    expect(ga).toMatchObject({ id: 1, peer: r.ib.nodeId, session_id: gb.session_id });
    expect(gb).toMatchObject({ id: 7, peer: r.ia.nodeId });
    return { ...r, sid: ga.session_id };
  }
  const data = (sid: string, n: number) => ({ type: 'RELAY_MESSAGE', session_id: sid, data: new Uint8Array(n).fill(7) });

  it('refuses a client that claims another node id, or writes into a session not its own', async () => {
    const { server, id, a, b, ia, ib, sid } = await rawPair();
    const carol = await rawClient(generateIdentity(), id, server.port);
    cleanups.push(() => carol.close());
    await carol.send({ type: 'RELAY_REGISTER', id: 1, target: ib.nodeId, from: ia.nodeId });
    expect(await nextOf(carol, 'RELAY_REFUSED')).toMatchObject({ code: 'identity', id: 1 });
    const got: unknown[] = [];
    b.on('message', (m) => got.push(m));
    await carol.send(data(sid, 10));
    expect(await nextOf(carol, 'RELAY_REFUSED')).toMatchObject({ code: 'identity', session_id: sid });
    await a.send(data(sid, 3));
    await expect.poll(() => got.length).toBe(1); // only Alice's message reached Bob
    expect(server.stats().refused_identity).toBe(2);
  });

  it('a relayed stream coalesces writes into messages of up to max_message_bytes and stays under the message rate', async () => {
    const { server, ref } = await relay({ messagesPerSecond: 20, messageBurst: 20 });
    // The RELAY_MESSAGE path (spliced sessions carry no messages).
    const { alice, bob } = await pair(ref, client({ splice: false }), client({ splice: false }));
    const n = 40;
    const payload = Buffer.alloc(16 * 1024, 9);
    let bytes = 0;
    const all = new Promise<void>((resolve) => {
      bob.on('message', (m: unknown) => {
        bytes += (m as Uint8Array).length;
        if (bytes >= n * payload.length) resolve();
      });
    });
    for (let i = 0; i < n; i++) await alice.send(payload);
    await all;
    const stats = server.stats();
    expect(stats.refused_rate_limited).toBeUndefined();
    expect(stats.open_sessions).toBe(1);
    // 640 KiB of TLS records in 64 KiB messages, not one message per record.
    expect(stats.messages_forwarded).toBeLessThan(n);
  });

  it('refuses a peer over its message rate and ends the session (a dropped chunk would break the stream)', async () => {
    const { server, a, b, sid } = await rawPair({ messagesPerSecond: 10, messageBurst: 10 });
    const disc = nextOf(b, 'RELAY_DISCONNECT');
    const refused = nextOf(a, 'RELAY_REFUSED');
    for (let i = 0; i < 30; i++) await a.send(data(sid, 1));
    expect(await refused).toMatchObject({ code: 'rate_limited', session_id: sid });
    expect(await disc).toMatchObject({ reason: 'rate_limited' });
    expect(server.stats()).toMatchObject({ refused_rate_limited: 1, messages_forwarded: 10 });
  });

  it('caps bandwidth: the sender is held back, nothing is lost, and new sessions are refused meanwhile', async () => {
    // 0.08 Mbit/s = 10 000 B/s with a one-second burst
    const { server, id, a, b, sid } = await rawPair({ bandwidthLimitMbps: 0.08 });
    const got: number[] = [];
    b.on('message', (m: { type: string; data?: Uint8Array }) => m.data && got.push(m.data.length));
    for (let i = 0; i < 3; i++) await a.send(data(sid, 9000));
    await expect.poll(() => got.length).toBeGreaterThanOrEqual(2);
    const carol = await rawClient(generateIdentity(), id, server.port);
    cleanups.push(() => carol.close());
    await carol.send({ type: 'RELAY_REGISTER', id: 1, target: generateIdentity().nodeId });
    expect(await nextOf(carol, 'RELAY_REFUSED')).toMatchObject({ code: 'bandwidth' });
    await expect.poll(() => got.length, { timeout: 5000 }).toBe(3);
    expect(server.stats().bandwidth_throttled).toBeGreaterThanOrEqual(1);
  });

  it('ends a session over its byte cap and refuses messages over the size limit', async () => {
    const { server, a, b, sid } = await rawPair({ maxSessionBytes: 1000, maxMessageBytes: 800 });
    const disc = nextOf(b, 'RELAY_DISCONNECT');
    await a.send(data(sid, 700));
    await a.send(data(sid, 700));
    expect(await disc).toMatchObject({ session_id: sid, reason: 'bytes' });
    const second = await rawPair({ maxMessageBytes: 800 });
    await second.a.send(data(second.sid, 801));
    expect(await nextOf(second.a, 'RELAY_REFUSED')).toMatchObject({ code: 'too_large' });
    expect(second.server.stats().sessions_closed_too_large).toBe(1);
    expect(server.stats().sessions_closed_bytes).toBe(1);
  });
});
