import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { generateIdentity, memoryKvStore, secureAccept } from '@dpc/core';
import { createGossip, type Gossip, type GossipLinks, startGossipLinks } from '@dpc/gossip';
import { afterEach, describe, expect, it } from 'vitest';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function peer(seeds: string[] = [], listen = false, identity = generateIdentity(), store = memoryKvStore(), allowLocal = true) {
  const g = await createGossip({ identity, store, cleanupIntervalMs: 0, redeliverIntervalMs: 0 });
  const links = await startGossipLinks({
    gossip: g,
    identity,
    seeds,
    host: '127.0.0.1',
    allowLocal,
    counters: g.counters,
    retryMs: 50,
    retryMaxMs: 200,
    ...(listen && { port: 0 }),
  });
  const stop = async () => {
    await links.stop();
    await g.stop();
  };
  cleanup.push(stop);
  return { g, links, identity, store, stop };
}
const until = async (cond: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('gossip links (TLS over TCP on loopback)', () => {
  it('connections still in their handshake count against maxLinks: a peer that opens many and never speaks holds no more than that', async () => {
    const identity = generateIdentity();
    const g = await createGossip({ identity, store: memoryKvStore(), cleanupIntervalMs: 0, redeliverIntervalMs: 0 });
    const links = await startGossipLinks({
      gossip: g,
      identity,
      host: '127.0.0.1',
      port: 0,
      maxLinks: 4,
      // the global bound alone (the per-address and inbound share bounds: hostile.test.ts)
      reservedOutbound: 0,
      maxPendingPerIp: 10,
      handshakeTimeoutMs: 60_000,
      counters: g.counters,
    });
    const silent: Socket[] = [];
    cleanup.push(async () => {
      for (const s of silent) s.destroy();
      await links.stop();
      await g.stop();
    });
    let closedByServer = 0;
    for (let i = 0; i < 10; i++) {
      const s = connect(links.port as number, '127.0.0.1');
      s.on('error', () => {});
      s.on('close', () => closedByServer++);
      silent.push(s);
      await once(s, 'connect');
    }
    // six are refused at once; four wait in their handshake (60 s here)
    await until(() => closedByServer >= 6);
    expect(g.counters.get('gossip_links_refused')).toBe(6);
    // once they are gone, a real peer links
    for (const s of silent.splice(0)) s.destroy();
    const p = await peer([`127.0.0.1:${links.port}`]);
    await until(() => links.peers().includes(p.identity.nodeId));
  });

  it('dial() (addresses from DHT lookups, i.e. named by other nodes) refuses loopback and private addresses unless allowLocal, and non-IP hosts always', async () => {
    const target = await peer([], true);
    let accepted = 0;
    const lan = createServer((s) => {
      accepted++;
      s.destroy();
    });
    lan.listen(0, '127.0.0.1');
    await once(lan, 'listening');
    cleanup.push(() => new Promise<void>((r) => lan.close(() => r())));
    const strict = await peer([], false, generateIdentity(), memoryKvStore(), false);
    const port = target.links.port as number;
    expect(await strict.links.dial({ host: '127.0.0.1', port, nodeId: target.identity.nodeId })).toBe(false);
    expect(await strict.links.dial({ host: '::ffff:127.0.0.1', port })).toBe(false);
    expect(await strict.links.dial({ host: '::1', port })).toBe(false);
    expect(await strict.links.dial({ host: '127.0.0.1', port: (lan.address() as { port: number }).port })).toBe(false);
    expect(await strict.links.dial({ host: '192.168.1.1', port: 6379 })).toBe(false);
    expect(await strict.links.dial({ host: '0.0.0.0', port })).toBe(false);
    expect(await strict.links.dial({ host: 'localhost', port })).toBe(false);
    expect(strict.g.counters.get('gossip_link_dials_refused')).toBe(7);
    expect(strict.g.counters.get('gossip_link_dials') ?? 0).toBe(0);
    expect(accepted).toBe(0);
    expect(target.links.peers()).toEqual([]);
    // the same dial with allowLocal (a testnet on one machine) links
    const local = await peer([], false);
    expect(await local.links.dial({ host: '127.0.0.1', port, nodeId: target.identity.nodeId })).toBe(true);
    await until(() => target.links.peers().includes(local.identity.nodeId));
  });

  it('two nodes dialling each other at once (DHT neighbours) keep one link, the same on both sides', async () => {
    const a = await peer([], true);
    const b = await peer([], true);
    const counts = { a: 0, b: 0 };
    const linksDown = () => (a.g.counters.get('gossip_links_down') ?? 0) + (b.g.counters.get('gossip_links_down') ?? 0);
    for (let round = 0; round < 5; round++) {
      const [x, y] = await Promise.all([
        a.links.dial({ host: '127.0.0.1', port: b.links.port as number, nodeId: b.identity.nodeId }),
        b.links.dial({ host: '127.0.0.1', port: a.links.port as number, nodeId: a.identity.nodeId }),
      ]);
      if (x) counts.a++;
      if (y) counts.b++;
      await until(() => a.links.peers().includes(b.identity.nodeId) && b.links.peers().includes(a.identity.nodeId));
      await new Promise((r) => setTimeout(r, 200));
      // still linked after the dust settles: neither side closed the connection the other kept
      expect(a.links.peers()).toEqual([b.identity.nodeId]);
      expect(b.links.peers()).toEqual([a.identity.nodeId]);
      expect(linksDown()).toBe(0);
    }
    // a dial to a node already linked is skipped
    expect(await a.links.dial({ host: '127.0.0.1', port: b.links.port as number, nodeId: b.identity.nodeId })).toBe(false);
    expect(counts.a + counts.b).toBeGreaterThanOrEqual(1);
  });

  it('carries a message from A to B through C when A and B are never linked at the same time', async () => {
    const c = await peer([], true);
    const seed = `127.0.0.1:${(c.links as GossipLinks).port}`;
    const a = await peer([seed]);
    const bId = generateIdentity();
    await until(() => c.g.links().includes(a.identity.nodeId));
    await a.g.submit({ nodeId: bId.nodeId, publicKey: bId.publicKey }, { id: 'x:1', body: 'through c' });
    await until(() => c.g.store.size === 1);
    await a.stop();
    const b = await peer([seed], false, bId);
    const got = await new Promise<{ from: string; body: unknown }>((resolve) =>
      (b.g as Gossip).on('message', (e) => {
        void b.g.receipt({ nodeId: e.from, publicKey: e.publicKey }, [e.item.id]);
        resolve({ from: e.from, body: e.item.body });
      }),
    );
    expect(got).toEqual({ from: a.identity.nodeId, body: 'through c' });
    await until(() => [...c.g.store.entries()].every((e) => e.kind === 'receipt'));
    await b.stop();
    const a2 = await peer([seed], false, a.identity, a.store);
    const [r] = (await once(a2.g, 'receipt')) as [{ from: string; ids: string[] }];
    expect(r).toEqual({ from: bId.nodeId, ids: ['x:1'] });
  });

  it('does not link to a listener whose banner names another node than the one its TLS key proves', async () => {
    const liar = generateIdentity();
    const claimed = generateIdentity().nodeId;
    let handshakes = 0;
    const srv = createServer((s) => {
      s.on('error', () => {});
      s.write(`DPCG1 ${claimed}\n`);
      handshakes++;
      secureAccept(s, { identity: liar, tier: 'gossip' }).catch(() => s.destroy());
    }).listen(0, '127.0.0.1');
    await once(srv, 'listening');
    cleanup.push(() => new Promise((r) => srv.close(() => r())));
    const a = await peer([`127.0.0.1:${(srv.address() as { port: number }).port}`]);
    const end = Date.now() + 5_000;
    while (handshakes < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(handshakes).toBeGreaterThanOrEqual(2); // it dialled, was refused, and dialled again
    expect(a.g.links()).toEqual([]);
  });

  it('does not link to a listener that is not a gossip peer', async () => {
    const srv = createServer((s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n')).listen(0, '127.0.0.1');
    await once(srv, 'listening');
    cleanup.push(() => new Promise((r) => srv.close(() => r())));
    const a = await peer([`127.0.0.1:${(srv.address() as { port: number }).port}`]);
    await new Promise((r) => setTimeout(r, 300));
    expect(a.g.links()).toEqual([]);
  });
});
