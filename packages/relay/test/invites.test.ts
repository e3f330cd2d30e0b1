import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { type Connection, generateIdentity } from '@dpc/core';
import { inviteAddressProblem } from '@dpc/relay';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanups, client, MemoryDirectory, MemorySignaller, nextMessage, relay, runCleanups } from './helpers.js';

afterEach(runCleanups);

/** A TCP port that counts the connections made to it (the "address of the sender's choosing"). */
async function countingPort(): Promise<{ port: number; connections: () => number }> {
  let n = 0;
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    n++;
    sockets.add(s);
    s.on('error', () => {});
  }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { port: (server.address() as { port: number }).port, connections: () => n };
}

const settle = () => new Promise((r) => setTimeout(r, 300));

describe('relay invites (DHT SIGNAL) are authorised, filtered and rate-limited (issue 10 §4)', () => {
  it('an invite naming a relay that no offer in the directory lists is refused, and nothing is dialled', async () => {
    const dir = new MemoryDirectory();
    const sig = new MemorySignaller();
    const target = await countingPort();
    const mallory = generateIdentity();
    const bid = generateIdentity();
    const b = client({ identity: bid, directory: dir.forNode(bid), signaller: sig.forNode(bid) });
    const refused: string[] = [];
    b.on('invite-refused', (e) => refused.push(e.code));
    const m = sig.forNode(mallory);
    const fake = { node_id: generateIdentity().nodeId, ip: '127.0.0.1', port: target.port };
    for (let i = 0; i < 3; i++) await m.signal(bid.nodeId, { type: 'relay-invite', relay: fake });
    // A real relay's id with the victim's port: the address must match the offer too.
    const r = await relay();
    dir.put(r.id, r.server.offer());
    await m.signal(bid.nodeId, { type: 'relay-invite', relay: { ...r.ref, port: target.port } });
    await expect.poll(() => refused.length).toBe(4);
    await settle();
    expect(refused).toEqual(['unknown_relay', 'unknown_relay', 'unknown_relay', 'unknown_relay']);
    expect(target.connections()).toBe(0);
    expect(b.stats()).toMatchObject({ invites_received: 4, invites_refused_unknown_relay: 4 });
  });

  it('hostnames always, loopback and private addresses unless allowed, are refused before any lookup', async () => {
    const dir = new MemoryDirectory();
    let lookups = 0;
    const sig = new MemorySignaller();
    const bid = generateIdentity();
    const inner = dir.forNode(bid);
    const b = client({
      identity: bid,
      allowLoopback: false,
      directory: {
        ...inner,
        findRelays: (o) => {
          lookups++;
          return inner.findRelays(o);
        },
      },
      signaller: sig.forNode(bid),
      inviteSenderBurst: 100,
    });
    const m = sig.forNode(generateIdentity());
    const relayId = generateIdentity().nodeId;
    for (const ip of ['localhost', 'example.com', '127.0.0.1', '::1', '10.1.2.3', '192.168.1.1', 'fd00::1', '169.254.1.1', '0.0.0.0']) {
      await m.signal(bid.nodeId, { type: 'relay-invite', relay: { node_id: relayId, ip, port: 8891 } });
    }
    await expect.poll(() => b.stats().invites_refused_address).toBe(9);
    expect(lookups).toBe(0);
    expect(inviteAddressProblem('192.168.1.1', { allowPrivate: true })).toBeUndefined();
    expect(inviteAddressProblem('fd00::1', { allowPrivate: true })).toBeUndefined();
    expect(inviteAddressProblem('127.0.0.1', { allowPrivate: true })).toMatch(/loopback/);
    expect(inviteAddressProblem('localhost', { allowLoopback: true, allowPrivate: true })).toMatch(/not an IP address/);
    expect(inviteAddressProblem('203.0.113.7', {})).toBeUndefined();
  });

  it('an unauthorised sender is refused; one sender is rate-limited while another still gets through', async () => {
    const dir = new MemoryDirectory();
    const sig = new MemorySignaller();
    const r = await relay();
    dir.put(r.id, r.server.offer());
    const mallory = generateIdentity();
    const banned = generateIdentity();
    const alice = generateIdentity();
    const bid = generateIdentity();
    const b = client({
      identity: bid,
      directory: dir.forNode(bid),
      signaller: sig.forNode(bid),
      authorize: (id) => id !== banned.nodeId,
      inviteSenderBurst: 3,
      invitesPerSenderPerSecond: 0.01,
      relayTimeoutMs: 1_000,
    });
    await sig.forNode(banned).signal(bid.nodeId, { type: 'relay-invite', relay: r.ref });
    const m = sig.forNode(mallory);
    for (let i = 0; i < 40; i++) await m.signal(bid.nodeId, { type: 'relay-invite', relay: r.ref });
    await expect.poll(() => b.stats().invites_received).toBe(41);
    await expect.poll(() => b.stats().invites_accepted).toBe(3);
    expect(b.stats()).toMatchObject({ invites_refused_unauthorized: 1, invites_refused_sender_rate_limited: 37, invites_accepted: 3 });
    // Alice, waiting for b at the relay, invites b: her invite is answered and the session opens.
    const a = client({ identity: alice, signaller: sig.forNode(alice) });
    // Not events.once: it would also reject on the 'error' b emits when one of mallory's three
    // waiting registrations is replaced by the next (a refusal of an answer nobody awaits).
    const inbound = new Promise<Connection>((resolve) => b.once('incoming', resolve));
    const conn = await a.connect(bid.nodeId, { relays: [r.ref], signal: AbortSignal.timeout(10_000) });
    const bob = await inbound;
    const got = nextMessage(bob);
    await conn.send('still reachable');
    expect(await got).toBe('still reachable');
  });

  it('invites from many senders are bounded in total and in flight', async () => {
    const dir = new MemoryDirectory();
    const sig = new MemorySignaller();
    const r = await relay();
    dir.put(r.id, r.server.offer());
    const bid = generateIdentity();
    const b = client({
      identity: bid,
      directory: dir.forNode(bid),
      signaller: sig.forNode(bid),
      inviteBurst: 10,
      invitesPerSecond: 0.01,
      maxInvitesInFlight: 4,
      relayTimeoutMs: 2_000,
    });
    for (let i = 0; i < 30; i++) await sig.forNode(generateIdentity()).signal(bid.nodeId, { type: 'relay-invite', relay: r.ref });
    await expect.poll(() => b.stats().invites_received).toBe(30);
    await expect.poll(() => b.stats().invites_accepted).toBe(4);
    const s = b.stats();
    expect(s.invites_refused_rate_limited).toBe(20);
    expect(s.invites_refused_busy).toBe(6);
    expect(s.invites_accepted).toBe(4);
    expect(r.server.stats().waiting_registrations).toBeLessThanOrEqual(4);
  });
});
