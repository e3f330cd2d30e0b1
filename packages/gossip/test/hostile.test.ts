import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { encodeCanonical, generateIdentity, type Identity, memoryKvStore, type SecureConnection, secureConnect } from '@dpc/core';
import {
  createGossip,
  createMessage,
  type GossipLinksOptions,
  type GossipOptions,
  type LinkFrame,
  linkFrameSchema,
  remoteAddressKey,
  startGossipLinks,
  verifyMessage,
} from '@dpc/gossip';
import { afterEach, describe, expect, it } from 'vitest';

/**
 * A hostile peer: raw TCP from a chosen loopback address (127.0.0.2 and so on: one "host"), the
 * gossip banner, then the TLS handshake with a throwaway identity; it never acknowledges anything.
 */
const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const until = async (cond: () => boolean, ms = 20_000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
};

async function node(extra: Partial<GossipLinksOptions> = {}, listen = true, seeds: string[] = [], more: Partial<GossipOptions> = {}) {
  const identity = generateIdentity();
  const g = await createGossip({
    identity,
    store: memoryKvStore(),
    cleanupIntervalMs: 0,
    redeliverIntervalMs: 0,
    resendIntervalMs: 0,
    ...more,
  });
  const links = await startGossipLinks({
    gossip: g,
    identity,
    host: '127.0.0.1',
    allowLocal: true,
    counters: g.counters,
    retryMs: 50,
    retryMaxMs: 200,
    seeds,
    handshakeTimeoutMs: 60_000,
    ...(listen && { port: 0 }),
    ...extra,
  });
  cleanup.push(async () => {
    await links.stop();
    await g.stop();
  });
  return { g, links, identity };
}

/** Opens a TCP connection from `from` that never speaks (it holds a handshake slot). */
async function silent(port: number, from: string): Promise<{ socket: Socket; closed: Promise<void> }> {
  const socket = connect({ port, host: '127.0.0.1', localAddress: from });
  socket.on('error', () => {});
  const closed = once(socket, 'close').then(() => {});
  cleanup.push(() => void socket.destroy());
  await once(socket, 'connect');
  return { socket, closed };
}

/** Links to `port` from `from` as a throwaway identity; undefined when the listener refuses. */
async function hostileLink(port: number, from: string, identity: Identity = generateIdentity()): Promise<SecureConnection | undefined> {
  const socket = connect({ port, host: '127.0.0.1', localAddress: from });
  socket.on('error', () => {});
  cleanup.push(() => void socket.destroy());
  try {
    await once(socket, 'connect');
    let buf = Buffer.alloc(0);
    while (buf.length < 48) {
      const chunk = await Promise.race([once(socket, 'data').then(([c]) => c as Buffer), once(socket, 'close').then(() => undefined)]);
      if (!chunk) return undefined;
      buf = Buffer.concat([buf, chunk]);
    }
    socket.pause();
    if (buf.length > 48) socket.unshift(buf.subarray(48));
    const id = buf.subarray(6, 47).toString('latin1');
    const conn = await secureConnect(socket, {
      identity,
      tier: 'gossip',
      expectedNodeId: id,
      maxFrameBytes: 256 * 1024,
      messageSchema: linkFrameSchema,
      handshakeTimeoutMs: 20_000,
    });
    conn.on('error', () => {});
    cleanup.push(() => conn.close('test over').catch(() => {}));
    return conn;
  } catch {
    socket.destroy();
    return undefined;
  }
}

/** A message to `to` from `from` (a throwaway identity, by default: it never comes back for its receipt). */
function messageTo(to: { nodeId: string; publicKey: Uint8Array }, plaintext: Uint8Array, { from = generateIdentity(), seq = 1 } = {}) {
  return createMessage(from, {
    destination: to.nodeId,
    destinationKey: to.publicKey,
    plaintext,
    maxHops: 8,
    ttlSeconds: 3600,
    priority: 'normal',
    vectorClock: { [from.nodeId]: seq },
  });
}

describe('gossip links against a hostile peer', () => {
  it('remoteAddressKey: IPv4 (also mapped) by address, IPv6 by /64', () => {
    expect(remoteAddressKey('192.0.2.7')).toBe('192.0.2.7');
    expect(remoteAddressKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(remoteAddressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(remoteAddressKey('2001:db8:1:2::9')).toBe('2001:db8:1:2::/64');
    expect(remoteAddressKey('2001:DB8:0001:0002:ffff:0:0:1')).toBe('2001:db8:1:2::/64');
    expect(remoteAddressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(remoteAddressKey('::1')).toBe('0:0:0:0::/64');
  });

  it('one host holding handshakes open takes at most maxPendingPerIp (default 4) of the slots; a peer from another address still links', async () => {
    const c = await node({ maxLinks: 8 });
    const port = c.links.port as number;
    const held: Array<{ socket: Socket; closed: Promise<void> }> = [];
    let closedByServer = 0;
    for (let i = 0; i < 20; i++) {
      const h = await silent(port, '127.0.0.2');
      void h.closed.then(() => closedByServer++);
      held.push(h);
    }
    // 4 wait in their handshake (60 s here), the others are refused at once, each counted
    await until(() => closedByServer >= 16);
    expect(c.g.counters.get('gossip_links_refused_ip_pending')).toBe(16);
    // an honest peer (from 127.0.0.1) links while the attacker's handshakes are still open
    const a = await node({}, false, [`127.0.0.1:${port}`]);
    await until(() => c.links.peers().includes(a.identity.nodeId));
    expect(held.filter((h) => !h.socket.destroyed && h.socket.readyState === 'open').length).toBeGreaterThanOrEqual(4);
  });

  it('established inbound links from one address stop at maxInboundPerIp (throwaway identities from one host)', async () => {
    const c = await node({ maxLinks: 32, maxInboundPerIp: 3 });
    const port = c.links.port as number;
    let linked = 0;
    for (let i = 0; i < 6; i++) if (await hostileLink(port, '127.0.0.3')) linked++;
    await until(() => c.links.peers().length === 3);
    expect(c.g.counters.get('gossip_links_refused_ip_links') ?? 0).toBeGreaterThanOrEqual(3);
    expect(linked).toBeGreaterThanOrEqual(3);
    // another address is not affected
    expect(await hostileLink(port, '127.0.0.4')).toBeDefined();
    await until(() => c.links.peers().length === 4);
  });

  it("sybil identities dialling in cannot take the slots kept for this node's own (neighbour) dials", async () => {
    const c = await node({ maxLinks: 8, reservedOutbound: 2, maxInboundPerIp: 8, maxPendingPerIp: 8 });
    const port = c.links.port as number;
    const neighbours = [await node(), await node()];
    // 10 throwaway identities from 5 addresses try to fill all 8 slots: 6 get in
    for (let i = 0; i < 10; i++) await hostileLink(port, `127.0.1.${1 + (i % 5)}`);
    await until(() => c.links.peers().length === 6);
    expect(c.g.counters.get('gossip_links_refused_inbound_full') ?? 0).toBeGreaterThanOrEqual(4);
    // the node's own dials to its neighbours still link
    for (const n of neighbours) {
      expect(await c.links.dial({ host: '127.0.0.1', port: n.links.port as number, nodeId: n.identity.nodeId }, { neighbour: true })).toBe(
        true,
      );
    }
    await until(() => c.links.peers().length === 8);
    for (const n of neighbours) expect(c.links.peers()).toContain(n.identity.nodeId);
  });

  it.each([
    { mode: 'epidemic', replicas: 0 },
    { mode: 'scoped', replicas: 2 },
  ])(
    'a peer that links again and again gets the store walked once ($mode): later links carry only what is addressed to it',
    async ({ replicas }) => {
      // a clock that stands still: however slow the machine, every link after the first is within the minute
      const t0 = Date.now();
      const c = await node({}, true, [], { replicas, now: () => t0 });
      const port = c.links.port as number;
      const source = generateIdentity();
      const hostile = generateIdentity();
      const msg = (to: Identity, i: number) => messageTo(to, Buffer.from(`m${i}`), { from: source, seq: i + 1 });
      // 40 messages for others (fewer than `fanout` copies each: every one goes to a new link), then one for the hostile peer
      for (let i = 0; i < 40; i++) expect(await c.g.receive(msg(generateIdentity(), i).encoded)).toBe('stored');
      const sentinel = msg(hostile, 40);
      expect(await c.g.receive(sentinel.encoded)).toBe('stored');
      const sentinelHex = sentinel.id.toString('hex');
      let received = 0;
      for (let round = 0; round < 8; round++) {
        const conn = await hostileLink(port, '127.0.0.5', hostile);
        expect(conn).toBeDefined();
        if (!conn) return;
        // it never acknowledges; each link lasts until the message addressed to it arrives (a store walk sends it last)
        await new Promise<void>((resolve) =>
          conn.on('message', (f: LinkFrame) => {
            if (f.t !== 'm') return;
            received++;
            if (verifyMessage(f.b).id.toString('hex') === sentinelHex) resolve();
          }),
        );
        await conn.close('again');
        await until(() => !c.links.peers().includes(hostile.nodeId));
      }
      // one walk (41 copies), then the sentinel alone on each of the 7 links after it
      expect(received).toBe(41 + 7);
      expect(c.g.counters.get('gossip_catchups_limited')).toBe(7);
    },
  );

  it.each([
    { name: 'the own-receipt cap', maxOwnReceipts: 5, kept: 5 },
    // 20 = the own message, the receipts, and the next message for B (its copy goes after the receipt is stored)
    { name: 'a full store (cap above the store size)', maxOwnReceipts: 1000, kept: 18 },
  ])(
    "receipts to many throwaway senders are bounded by $name (oldest go) and never push out the user's own undelivered message",
    async ({ maxOwnReceipts, kept }) => {
      // B (the target, a small store) and R, a relay linked to it that passes on what throwaway senders post
      const b = await node({}, true, [], { limits: { maxCount: 20, maxOwnReceipts } });
      const r = await node({}, false, [`127.0.0.1:${b.links.port}`]);
      await until(() => b.links.peers().includes(r.identity.nodeId));
      // the user's own message to a peer that is offline (no receipt comes)
      const offline = generateIdentity();
      await b.g.submit({ nodeId: offline.nodeId, publicKey: offline.publicKey }, { id: 'mine:1', body: 'keep me' });
      const mine = [...b.g.store.entries()].find((e) => e.source === b.identity.nodeId && e.kind === 'msg')?.hex;
      expect(mine).toBeDefined();
      let delivered = 0;
      let receipted = 0;
      let receiptErrors = 0;
      b.g.on('message', (e) => {
        delivered++;
        b.g.receipt({ nodeId: e.from, publicKey: e.publicKey }, [e.item.id]).then(
          () => receipted++,
          () => receiptErrors++,
        );
      });
      for (let i = 0; i < 40; i++) {
        const m = messageTo(b.identity, encodeCanonical({ id: `spam:${i}`, body: 'x' }));
        expect(await r.g.receive(m.encoded)).toBe('stored');
        await until(() => receipted + receiptErrors === i + 1);
      }
      expect(delivered).toBe(40);
      expect(receiptErrors).toBe(0);
      expect(b.g.store.ownReceipts).toBe(kept);
      expect(b.g.counters.get('gossip_own_receipts_evicted')).toBe(40 - kept);
      expect(b.g.store.has(mine as string)).toBe(true);
      // the user can still send
      await b.g.submit({ nodeId: offline.nodeId, publicKey: offline.publicKey }, { id: 'mine:2', body: 'and me' });
      expect([...b.g.store.entries()].filter((e) => e.source === b.identity.nodeId && e.kind === 'msg').length).toBe(2);
    },
  );

  it('scoped: a holder that acknowledges copies, leaves and links again in a loop makes the node re-place its copies once a minute, not on every departure', async () => {
    const t0 = Date.now();
    const c = await node({}, true, [], { replicas: 3, now: () => t0 });
    const port = c.links.port as number;
    const source = generateIdentity();
    const n = 20;
    for (let i = 0; i < n; i++) {
      const to = generateIdentity();
      const m = messageTo(to, Buffer.from(`m${i}`), { from: source, seq: i + 1 });
      expect(await c.g.receive(m.encoded)).toBe('stored');
    }
    // Q: linked throughout, never acknowledges (so it never counts as a holder)
    const q = await hostileLink(port, '127.0.0.6');
    expect(q).toBeDefined();
    let toQ = 0;
    q?.on('message', (f: LinkFrame) => {
      if (f.t === 'm') toQ++;
    });
    await until(() => toQ === n);
    // P: acknowledges every copy, then leaves; C re-places its copies (on Q), P links again, leaves again...
    const p = generateIdentity();
    const cycles = 5;
    for (let cycle = 0; cycle < cycles; cycle++) {
      const downs = c.g.counters.get('gossip_links_down') ?? 0;
      const conn = await hostileLink(port, '127.0.0.7', p);
      expect(conn).toBeDefined();
      if (!conn) return;
      conn.on('message', (f: LinkFrame) => {
        if (f.t === 'm') void conn.send({ t: 'a', id: verifyMessage(f.b).id }).catch(() => {});
      });
      await until(() => c.links.peers().includes(p.nodeId));
      if (cycle === 0) await until(() => (c.g.counters.get('gossip_hop_acks') ?? 0) === n);
      await conn.close('leaving');
      await until(() => (c.g.counters.get('gossip_links_down') ?? 0) === downs + 1);
      if (cycle === 0) await until(() => toQ === 2 * n);
    }
    await until(() => c.g.counters.get('gossip_holder_replacements_skipped') === cycles - 1);
    expect(toQ).toBe(2 * n);
  });

  it("messages for this node that its application does not take stop at maxForMe (refused, not acknowledged): the user's own messages still fit", async () => {
    const b = await node({}, true, [], { limits: { maxCount: 20, maxForMe: 5 } });
    const r = await node({}, false, [`127.0.0.1:${b.links.port}`]);
    await until(() => b.links.peers().includes(r.identity.nodeId));
    const offline = generateIdentity();
    await b.g.submit({ nodeId: offline.nodeId, publicKey: offline.publicKey }, { id: 'mine:1', body: 'keep me' });
    // nobody takes B's messages (no 'message' listener: no receipts)
    const answered = () => (r.g.counters.get('gossip_hop_acks') ?? 0) + (r.g.counters.get('gossip_hop_refusals') ?? 0);
    for (let i = 0; i < 40; i++) {
      const m = messageTo(b.identity, encodeCanonical({ id: `spam:${i}`, body: 'x' }));
      expect(await r.g.receive(m.encoded)).toBe('stored');
      await until(() => answered() >= i + 1);
    }
    // the user can still send
    await b.g.submit({ nodeId: offline.nodeId, publicKey: offline.publicKey }, { id: 'mine:2', body: 'and me' });
    expect([...b.g.store.entries()].filter((e) => e.source === b.identity.nodeId && e.kind === 'msg').length).toBe(2);
    expect(b.g.store.forMe).toBe(5);
    expect(r.g.counters.get('gossip_hop_refusals')).toBe(35);
    // the refused ones stay with the previous hop
    expect(r.g.store.entriesFor(b.identity.nodeId).length).toBe(40);
  });

  it("dials other than to the node's own keyspace neighbours (destinations' neighbourhoods, triggered by remote input) leave slots for the neighbours", async () => {
    const c = await node({ maxLinks: 8, reservedOutbound: 4 }, false);
    const others = await Promise.all(Array.from({ length: 6 }, () => node()));
    const neighbours = await Promise.all(Array.from({ length: 4 }, () => node()));
    const results: boolean[] = [];
    for (const o of others)
      results.push(await c.links.dial({ host: '127.0.0.1', port: o.links.port as number, nodeId: o.identity.nodeId }));
    // 8 links, min(8, reservedOutbound) = 4 of them kept for neighbour dials
    expect(results).toEqual([true, true, true, true, false, false]);
    expect(c.g.counters.get('gossip_link_dials_skipped')).toBe(2);
    for (const n of neighbours) {
      expect(await c.links.dial({ host: '127.0.0.1', port: n.links.port as number, nodeId: n.identity.nodeId }, { neighbour: true })).toBe(
        true,
      );
    }
    await until(() => c.links.peers().length === 8);
    // full now, for neighbour dials too
    const late = await node();
    expect(
      await c.links.dial({ host: '127.0.0.1', port: late.links.port as number, nodeId: late.identity.nodeId }, { neighbour: true }),
    ).toBe(false);
  });
});
