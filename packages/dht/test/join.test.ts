import { kademliaIdOf } from '@dpc/core';
import { commonPrefixLength, compareDistance, type Dht } from '@dpc/dht';
import { createTestnet, type Testnet } from '@dpc/dht/testnet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The cost of joining (issue 15): a node joins a 200-node network over real UDP on loopback with
// at most 80 RPCs, counting every node's requests (the joiner's own and the PINGs back of the nodes
// it asked), and lookups keep finding every record. Counts, not timings.
const N = 200;
const JOINS = 10;
const MAX_JOIN_RPCS = 80;

const rpcsOut = (d: Dht) => Object.values(d.stats().rpcOut).reduce((a, b) => a + b, 0);
const pick = <T>(list: T[]): T => list[Math.floor(Math.random() * list.length)] as T;

/** Sum of every node's requests once it stops moving (the PINGs back follow the join's answers). */
async function settledRpcs(nodes: Dht[]): Promise<number> {
  let last = -1;
  for (;;) {
    const now = nodes.reduce((a, d) => a + rpcsOut(d), 0);
    if (now === last) return now;
    last = now;
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe(`joining a ${N}-node DHT on loopback`, () => {
  let net: Testnet;
  const joins: Array<{ node: Dht; own: number; network: number; buckets: Array<{ i: number; known: number; inNetwork: number }> }> = [];

  beforeAll(async () => {
    net = await createTestnet(N);
    for (let i = 0; i < JOINS; i++) {
      const everyone = [net.bootstrap, ...net.nodes];
      const before = await settledRpcs(everyone);
      const node = await net.add();
      const after = await settledRpcs([...everyone, node]);
      // Its far buckets right after the join: those below the common prefix of its k-th (20th) closest contact.
      const me = kademliaIdOf(node.nodeId);
      const cpls = node.contacts().map((c) => commonPrefixLength(kademliaIdOf(c.nodeId), me));
      const kth = [...cpls].sort((a, b) => b - a)[19] ?? 0;
      const buckets = Array.from({ length: kth }, (_, i) => ({
        i,
        known: cpls.filter((c) => c === i).length,
        inNetwork: everyone.filter((d) => commonPrefixLength(kademliaIdOf(d.nodeId), me) === i).length,
      }));
      joins.push({ node, own: rpcsOut(node), network: after - before, buckets });
    }
  }, 120_000);
  afterAll(async () => {
    await net?.destroy();
  });

  it(`costs at most ${MAX_JOIN_RPCS} RPCs per join, all nodes counted`, () => {
    for (const j of joins) {
      // At least the seed PING and a self-lookup reaching the k = 20 closest nodes.
      expect(j.own).toBeGreaterThanOrEqual(21);
      expect(j.network).toBeGreaterThanOrEqual(j.own);
      expect(j.network).toBeLessThanOrEqual(MAX_JOIN_RPCS);
    }
  });

  it('leaves each joiner with contacts in every far bucket and in the tables of its closest nodes', () => {
    const all = [net.bootstrap, ...net.nodes];
    for (const { node, buckets } of joins) {
      const me = kademliaIdOf(node.nodeId);
      expect(buckets.length).toBeGreaterThanOrEqual(1);
      for (const b of buckets)
        expect(b.known, `bucket ${b.i} (${b.inNetwork} nodes in it)`).toBeGreaterThanOrEqual(Math.min(3, b.inNetwork));
      // Its 10 closest nodes in the network know it (they answered its self-lookup and PINGed it back).
      const closest = all
        .filter((d) => d !== node)
        .sort((a, b) => compareDistance(kademliaIdOf(a.nodeId), kademliaIdOf(b.nodeId), me))
        .slice(0, 10);
      for (const d of closest) expect(d.contacts().map((c) => c.nodeId)).toContain(node.nodeId);
    }
  });

  it('finds every record, those of the joiners included, from random nodes', async () => {
    const all = [net.bootstrap, ...net.nodes];
    const publishers = [...joins.map((j) => j.node), ...net.nodes.slice(0, 40)];
    for (let i = 0; i < publishers.length; i += 25) await Promise.all(publishers.slice(i, i + 25).map((d) => d.announceFull()));
    let found = 0;
    for (const p of publishers) {
      const asker = pick(all.filter((d) => d !== p));
      const rec = await asker.findPeer(p.nodeId);
      if (rec.nodeId === p.nodeId) found++;
    }
    expect(found).toBe(publishers.length);
    // The joiners ask too: a joined node routes to records anywhere in the id space.
    for (const { node } of joins) {
      const target = pick(publishers.filter((d) => d !== node));
      expect((await node.findPeer(target.nodeId)).nodeId).toBe(target.nodeId);
    }
  });
});
