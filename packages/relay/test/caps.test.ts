import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { type Connection, generateIdentity, type Identity, type SecureConnection, secureConnect } from '@dpc/core';
import { relayMessageSchema } from '@dpc/relay';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanups, client, nextMessage, nextOf, relay, runCleanups } from './helpers.js';

afterEach(runCleanups);

// Per-source caps of a relay (issue 10 §7). Sources are told apart by local address: Linux routes
// all of 127/8 to lo, so a client can take 127.0.0.2 or 127.0.0.3 as its own address, and with
// allowLoopback false each loopback address is one source (the relay client library dials from
// 127.0.0.1). No directory here, so the relay may run without allowLoopback.

async function tcpFrom(port: number, localAddress: string): Promise<Socket> {
  const s = connect({ host: '127.0.0.1', port, localAddress });
  s.on('error', () => {});
  cleanups.push(() => void s.destroy());
  await once(s, 'connect');
  return s;
}

async function rawFrom(identity: Identity, relayId: Identity, port: number, localAddress: string): Promise<SecureConnection> {
  const socket = await tcpFrom(port, localAddress);
  const conn = await secureConnect(socket, {
    identity,
    tier: 'ipv4_direct',
    expectedNodeId: relayId.nodeId,
    messageSchema: relayMessageSchema,
  });
  cleanups.push(() => conn.close().catch(() => {}));
  // secureConnect returns after the TLS handshake; the relay has admitted (and counted) the
  // connection once its hello_ack is here
  await conn.accepted;
  return conn;
}

describe('per-source and per-identity caps at a relay (issue 10 §7)', () => {
  it('one source cannot fill the relay with connections that never finish their handshake', async () => {
    const r = await relay({ allowLoopback: false, maxPendingPerSource: 8 });
    for (let i = 0; i < 12; i++) await tcpFrom(r.server.port, '127.0.0.2');
    await expect.poll(() => r.server.stats().connections_refused_source_pending).toBe(4);
    for (let i = 0; i < 3; i++) await tcpFrom(r.server.port, '127.0.0.3');
    // Another place still gets a reservation.
    const b = client();
    expect(await b.reserve({ relays: [r.ref] })).toEqual([r.ref]);
    expect(r.server.stats().connections_refused_source_pending).toBe(4);
  });

  it('caps connections per source', async () => {
    const r = await relay({ allowLoopback: false, maxConnectionsPerSource: 5 });
    for (let i = 0; i < 5; i++) await rawFrom(generateIdentity(), r.id, r.server.port, '127.0.0.2');
    await tcpFrom(r.server.port, '127.0.0.2');
    await expect.poll(() => r.server.stats().connections_refused_source_limit).toBe(1);
    await rawFrom(generateIdentity(), r.id, r.server.port, '127.0.0.3');
    expect(r.server.stats().open_connections).toBe(6);
  });

  it('throwaway identities from one source cannot take every reservation', async () => {
    const r = await relay({ allowLoopback: false, maxReservations: 8, maxReservationsPerSource: 3 });
    const codes: string[] = [];
    for (let i = 0; i < 6; i++) {
      const c = await rawFrom(generateIdentity(), r.id, r.server.port, '127.0.0.2');
      const answer = Promise.race([nextOf(c, 'RELAY_RESERVED').then(() => 'reserved'), nextOf(c, 'RELAY_REFUSED').then((m) => m.code)]);
      await c.send({ type: 'RELAY_RESERVE', id: 1 });
      codes.push(await answer);
    }
    expect(codes).toEqual(['reserved', 'reserved', 'reserved', 'full', 'full', 'full']);
    expect(r.server.stats()).toMatchObject({ reservations_refused_source: 3, open_reservations: 3 });
    const b = client();
    expect(await b.reserve({ relays: [r.ref] })).toEqual([r.ref]);
    expect(r.server.stats().open_reservations).toBe(4);
  });

  it('one identity and one source are capped in the sessions they start; a reserved victim is not charged and stays reachable', async () => {
    const r = await relay({ allowLoopback: false, maxPeers: 20, maxSessionsPerPeer: 2, maxSessionsPerSource: 5 });
    const victim = client();
    await victim.reserve({ relays: [r.ref] });
    // One identity registers for 4 targets: 2 held, 2 refused.
    const mallory = await rawFrom(generateIdentity(), r.id, r.server.port, '127.0.0.2');
    for (let i = 0; i < 4; i++) await mallory.send({ type: 'RELAY_REGISTER', id: i + 1, target: generateIdentity().nodeId });
    await expect.poll(() => r.server.stats().registrations_refused_peer).toBe(2);
    // Throwaway identities of the same source register for the victim, who answers each (doing the TLS work).
    for (let i = 0; i < 6; i++) {
      const c = await rawFrom(generateIdentity(), r.id, r.server.port, '127.0.0.2');
      await c.send({ type: 'RELAY_REGISTER', id: 1, target: victim.id.nodeId });
    }
    await expect.poll(() => r.server.stats().registrations_refused_source).toBe(3);
    await expect.poll(() => r.server.stats().sessions_opened).toBe(3);
    // Someone else still reaches the victim through the relay.
    const alice = client();
    const inbound = once(victim, 'incoming') as Promise<[Connection]>;
    const conn = await alice.connect(victim.id.nodeId, { relays: [r.ref], signal: AbortSignal.timeout(10_000) });
    const [bob] = await inbound;
    const got = nextMessage(bob);
    await conn.send('through the capped relay');
    expect(await got).toBe('through the capped relay');
    expect(r.server.stats().sessions_opened).toBe(4);
  });
});
