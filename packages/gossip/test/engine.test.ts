import { encodeCanonical, generateIdentity, type Identity, type KvStore, kademliaIdOf, memoryKvStore } from '@dpc/core';
import { chooseForwardPeers, createGossip, createMessage, type Gossip, GossipStore, xorDistanceCompare } from '@dpc/gossip';
import { afterEach, describe, expect, it } from 'vitest';

const started: Gossip[] = [];
afterEach(async () => {
  for (const g of started.splice(0)) await g.stop();
});

async function node(
  identity = generateIdentity(),
  store: KvStore = memoryKvStore(),
  extra: Partial<Parameters<typeof createGossip>[0]> = {},
) {
  const g = await createGossip({ identity, store, cleanupIntervalMs: 0, redeliverIntervalMs: 0, ...extra });
  started.push(g);
  return { g, identity, store };
}

/** A bidirectional in-process link; frames are delivered asynchronously, as over a socket. */
function link(a: Gossip, b: Gossip): () => void {
  let up = true;
  type Frame = Parameters<Gossip['onFrame']>[1];
  // a's handle for b sends to b, which answers through its handle for a
  const aToB = { nodeId: b.nodeId, send: async (f: Frame) => void (up && setImmediate(() => void b.onFrame(bToA, f))) };
  const bToA = { nodeId: a.nodeId, send: async (f: Frame) => void (up && setImmediate(() => void a.onFrame(aToB, f))) };
  a.addLink(aToB);
  b.addLink(bToA);
  return () => {
    up = false;
    a.removeLink(b.nodeId);
    b.removeLink(a.nodeId);
  };
}

const until = async (cond: () => boolean, ms = 5_000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
};
const recipient = (i: Identity) => ({ nodeId: i.nodeId, publicKey: i.publicKey });

describe('gossip engine', () => {
  it('A and B never online together: C stores, B delivers, the receipt reaches A and C drops its copy', async () => {
    const a = await node();
    const c = await node();
    const bId = generateIdentity();
    const cutAC = link(a.g, c.g);
    await a.g.submit(recipient(bId), { id: 'ep:1', body: { text: 'for bob' } });
    await until(() => c.g.store.size === 1);
    cutAC(); // A goes away
    await a.g.stop();
    const b = await node(bId);
    const got: unknown[] = [];
    b.g.on('message', (e) => {
      got.push(e.item.body);
      expect(e.from).toBe(a.identity.nodeId);
      void b.g.receipt({ nodeId: e.from, publicKey: e.publicKey }, [e.item.id]);
    });
    const cutBC = link(b.g, c.g);
    await until(() => got.length === 1);
    expect(got[0]).toEqual({ text: 'for bob' });
    // C has dropped the message (receipt seen) and keeps the receipt for A
    await until(() => [...c.g.store.entries()].every((e) => e.kind === 'receipt') && c.g.store.size === 1);
    cutBC();
    // A comes back (same store): the receipt arrives
    const a2 = await node(a.identity, a.store);
    const receipts: Array<{ from: string; ids: string[] }> = [];
    a2.g.on('receipt', (e) => receipts.push(e));
    link(a2.g, c.g);
    await until(() => receipts.length === 1);
    expect(receipts[0]).toEqual({ from: bId.nodeId, ids: ['ep:1'] });
    expect(a2.g.store.size).toBe(0); // its own copy went with the receipt
  });

  it('a restarted forwarder still holds the message, and B delivers it', async () => {
    const a = await node();
    const cKv = memoryKvStore();
    const c = await node(undefined, cKv);
    const bId = generateIdentity();
    link(a.g, c.g);
    await a.g.submit(recipient(bId), { id: 'ep:7', body: 'x' });
    await until(() => c.g.store.size === 1);
    await c.g.stop();
    const c2 = await node(c.identity, cKv);
    expect(c2.g.store.size).toBe(1);
    const b = await node(bId);
    const got: string[] = [];
    b.g.on('message', (e) => got.push(e.item.id));
    link(b.g, c2.g);
    await until(() => got.length === 1);
    expect(got).toEqual(['ep:7']);
  });

  it('refuses and counts forged, tampered, expired and replayed messages; duplicates are dropped', async () => {
    const a = generateIdentity();
    const b = await node();
    const m = createMessage(a, {
      destination: b.identity.nodeId,
      destinationKey: b.identity.publicKey,
      plaintext: Buffer.from([0x82, 0xa2, 0x69, 0x64, 0xa1, 0x31, 0xa4, 0x62, 0x6f, 0x64, 0x79, 0xc0]), // {id:'1',body:null}
      maxHops: 5,
      ttlSeconds: 60,
      priority: 'normal',
      vectorClock: { [a.nodeId]: 1 },
    });
    const tampered = Buffer.from(m.encoded);
    tampered[20] = (tampered[20] as number) ^ 1;
    await expect(b.g.receive(tampered)).rejects.toMatchObject({ code: expect.stringMatching(/DPC_GOSSIP_(TAMPERED|MALFORMED)/) });
    const sig = m.encoded.indexOf(m.signature);
    const forged = Buffer.from(m.encoded);
    forged[sig + 3] = (forged[sig + 3] as number) ^ 1;
    await expect(b.g.receive(forged)).rejects.toMatchObject({ code: 'DPC_GOSSIP_FORGED' });
    const old = createMessage(a, {
      destination: b.identity.nodeId,
      destinationKey: b.identity.publicKey,
      plaintext: Buffer.from([0xc0]),
      maxHops: 5,
      ttlSeconds: 1,
      priority: 'normal',
      vectorClock: {},
      now: Date.now() - 5_000,
    });
    await expect(b.g.receive(old.encoded)).rejects.toMatchObject({ code: 'DPC_GOSSIP_EXPIRED' });
    const ids: string[] = [];
    b.g.on('message', (e) => ids.push(e.item.id));
    expect(await b.g.receive(m.encoded)).toBe('stored');
    expect(await b.g.receive(m.encoded)).toBe('duplicate');
    expect(ids).toEqual(['1']);
    await b.g.receipt(recipient(a), ['1']);
    await expect(b.g.receive(m.encoded)).rejects.toMatchObject({ code: 'DPC_GOSSIP_REPLAYED' });
    const c = b.g.counters.snapshot();
    expect(c.gossip_refused_forged).toBe(1);
    expect((c.gossip_refused_tampered ?? 0) + (c.gossip_refused_malformed ?? 0)).toBe(1);
    expect(c.gossip_refused_expired).toBe(1);
    expect(c.gossip_refused_replayed).toBe(1);
    expect(c.gossip_duplicates).toBe(1);
  });

  it('forwards to at most fanout peers, and only the destination when it is linked', async () => {
    const a = await node(undefined, undefined, { fanout: 2 });
    const peers = await Promise.all([0, 1, 2, 3].map(() => node()));
    for (const p of peers) link(a.g, p.g);
    const far = generateIdentity();
    await a.g.submit(recipient(far), { id: 'e:1', body: 1 });
    await new Promise((r) => setTimeout(r, 100));
    expect(peers.filter((p) => p.g.store.size === 1)).toHaveLength(2);
    const dest = peers[3] as (typeof peers)[number];
    const b = await node(undefined, undefined, { fanout: 2 });
    for (const p of peers) link(b.g, p.g);
    await b.g.submit(recipient(dest.identity), { id: 'e:2', body: 2 });
    await new Promise((r) => setTimeout(r, 100));
    expect(peers.map((p) => [...p.g.store.entries()].filter((e) => e.source === b.identity.nodeId).length)).toEqual([0, 0, 0, 1]);
  });
});

describe('anti-entropy', () => {
  it('Negentropy sync gives both sides the union; a pair in sync needs one round trip', async () => {
    const a = await node();
    const b = await node();
    const make = (from: Identity) =>
      createMessage(from, {
        destination: generateIdentity().nodeId,
        destinationKey: generateIdentity().publicKey,
        plaintext: Buffer.from('x'),
        maxHops: 0, // never forwarded: only anti-entropy moves them
        ttlSeconds: 600,
        priority: 'normal',
        vectorClock: {},
      });
    const src = generateIdentity();
    const shared = Array.from({ length: 1200 }, () => make(src));
    for (const m of shared) {
      await a.g.store.put(m);
      await b.g.store.put(m);
    }
    const onlyA = Array.from({ length: 40 }, () => make(src));
    const onlyB = Array.from({ length: 30 }, () => make(src));
    for (const m of onlyA) await a.g.store.put(m);
    for (const m of onlyB) await b.g.store.put(m);
    link(a.g, b.g);
    await new Promise((r) => setTimeout(r, 50));
    expect(a.g.store.size).toBe(1240); // maxHops 0: the link alone moved nothing
    const r = await a.g.sync(b.g.nodeId);
    expect(r).toMatchObject({ peer: b.g.nodeId, have: 40, need: 30 });
    expect(r?.rounds).toBeGreaterThan(1); // a fresh responder per round: NIP-77 is stateless there
    // …but the sorted set behind it is built once for the whole sync on each side, not per message
    const built = (g: Gossip) => g.counters.get('gossip_sync_storage_built') ?? 0;
    expect(built(a.g)).toBe(1);
    expect(built(b.g)).toBe(1);
    expect(b.g.counters.get('gossip_sync_storage_reused')).toBe((r?.rounds ?? 0) - 1);
    await until(() => a.g.store.size === 1270 && b.g.store.size === 1270);
    const again = await a.g.sync(b.g.nodeId);
    expect(again).toMatchObject({ have: 0, need: 0, rounds: 1 });
    expect(built(a.g)).toBe(2); // the stores changed in between: built again
    expect(built(b.g)).toBe(2);
  }, 90_000); // 1,270 sealed and signed messages (16 buckets of ~80 ids: at least two rounds)
});

describe('forwarding choice', () => {
  const id = (hex: string) => ({ nodeId: `dpc-node-${hex.padEnd(32, '0')}`, kademliaId: Buffer.from(hex.padEnd(32, '0'), 'hex') });
  const dest = id('ff');
  const peers = [id('00'), id('0f'), id('f0'), id('fe'), id('80'), id('7f')];
  it.each([
    { exclude: [], fanout: 2, first: id('fe').nodeId },
    { exclude: [id('fe').nodeId], fanout: 2, first: id('f0').nodeId },
    { exclude: [id('fe').nodeId, id('f0').nodeId], fanout: 1, first: id('80').nodeId },
  ])('closest peer first (exclude $exclude.length, fanout $fanout)', ({ exclude, fanout, first }) => {
    const picks = chooseForwardPeers(peers, dest, new Set(exclude), fanout, () => 0.5);
    expect(picks).toHaveLength(fanout);
    expect(picks[0]?.nodeId).toBe(first);
    for (const p of picks) expect(exclude).not.toContain(p.nodeId);
  });
  it('the destination alone when it is a candidate; everyone when fewer than fanout', () => {
    expect(chooseForwardPeers([...peers, dest], dest, new Set(), 3)).toEqual([dest]);
    expect(chooseForwardPeers(peers.slice(0, 2), dest, new Set(), 3)).toHaveLength(2);
    expect(chooseForwardPeers(peers, dest, new Set(peers.map((p) => p.nodeId)), 3)).toEqual([]);
  });
});

describe('gossip store', () => {
  const me = generateIdentity();
  const msg = (from: Identity, priority: 'low' | 'normal' | 'high', now = Date.now(), ttlSeconds = 60) =>
    createMessage(from, {
      destination: me.nodeId.replace(/.$/, '0') === me.nodeId ? generateIdentity().nodeId : generateIdentity().nodeId,
      destinationKey: generateIdentity().publicKey,
      plaintext: Buffer.from('x'),
      maxHops: 5,
      ttlSeconds,
      priority,
      vectorClock: {},
      now,
    });

  it('evicts lower priority first, refuses what would push out higher priority, and bounds each origin', async () => {
    const kv = memoryKvStore();
    const { store } = await GossipStore.open(kv, { localNodeId: me.nodeId, maxCount: 3, maxOriginCount: 2 });
    const [x, y, z] = [generateIdentity(), generateIdentity(), generateIdentity()];
    const low = msg(x, 'low');
    await store.put(low);
    await store.put(msg(y, 'high'));
    await store.put(msg(z, 'normal'));
    const evicted: string[] = [];
    await store.put(msg(y, 'normal'), evicted);
    expect(evicted).toEqual([low.id.toString('hex')]);
    await expect(store.put(msg(x, 'low'))).rejects.toMatchObject({ code: 'DPC_GOSSIP_STORE_FULL' });
    // y is at its share (2): a third from y pushes out y's own lowest, oldest
    const ev2: string[] = [];
    await store.put(msg(y, 'high'), ev2);
    expect(ev2).toHaveLength(1);
    expect(store.size).toBe(3);
    // survives a reopen
    const again = await GossipStore.open(kv, { localNodeId: me.nodeId });
    expect(again.store.size).toBe(3);
  });

  it('the sweep drops expired messages and tombstones', async () => {
    let now = Date.now();
    const kv = memoryKvStore();
    const { store } = await GossipStore.open(kv, { localNodeId: me.nodeId, now: () => now });
    const m = msg(generateIdentity(), 'normal', now, 10);
    const keep = msg(generateIdentity(), 'normal', now, 100);
    await store.put(m);
    await store.put(keep);
    await store.remove([keep.id.toString('hex')], true);
    expect(store.tombstones).toBe(1);
    now += 11_000;
    expect(await store.sweep()).toBe(1);
    expect(store.size).toBe(0);
    expect(store.tombstones).toBe(1);
    now += 100_000;
    await store.sweep();
    expect(store.tombstones).toBe(0);
  });
});

describe('keyspace-scoped copies (replicas)', () => {
  /** `n` identities ordered from the farthest to the closest to `dest` in XOR keyspace. */
  const byDistance = (dest: Identity, n: number) =>
    Array.from({ length: n }, () => generateIdentity()).sort(
      (a, b) => -xorDistanceCompare(kademliaIdOf(a.nodeId), kademliaIdOf(b.nodeId), kademliaIdOf(dest.nodeId)),
    );
  const count = (g: Gossip, name: string) => g.counters.get(name) ?? 0;

  it('passes a message along the keyspace without storing it on the way; only the responsible node holds it until the destination acks', async () => {
    const dId = generateIdentity();
    const [sId, x1Id, x2Id, rId] = byDistance(dId, 4) as [Identity, Identity, Identity, Identity];
    const opts = { replicas: 1 };
    const s = await node(sId, memoryKvStore(), opts);
    const x1 = await node(x1Id, memoryKvStore(), opts);
    const x2 = await node(x2Id, memoryKvStore(), opts);
    const r = await node(rId, memoryKvStore(), opts);
    link(s.g, x1.g);
    link(x1.g, x2.g);
    link(x2.g, r.g);
    await s.g.submit(recipient(dId), { id: 'sc:1', body: 'far away' });
    await until(() => r.g.store.size === 1 && count(x1.g, 'gossip_relayed') === 1);
    // each forwarder passed it on (cut-through, acked upstream after the next hop held it) and stored nothing
    for (const x of [x1, x2]) {
      expect(count(x.g, 'gossip_relayed')).toBe(1);
      expect(count(x.g, 'gossip_stored')).toBe(0);
      expect(x.g.store.size).toBe(0);
    }
    expect(count(r.g, 'gossip_stored')).toBe(1);
    expect(count(r.g, 'gossip_handed_off')).toBe(0);
    expect(s.g.store.size).toBe(1);
    const hex = [...r.g.store.entries()][0]?.hex as string;
    // the destination links to the responsible node: it gets the message; its ack ends r's copy
    const d = await node(dId, memoryKvStore(), opts);
    const got: string[] = [];
    d.g.on('message', (e) => got.push(e.item.id));
    link(r.g, d.g);
    await until(() => got.length === 1 && r.g.store.size === 0);
    expect(got).toEqual(['sc:1']);
    expect(count(r.g, 'gossip_dropped_at_destination')).toBe(1);
    expect(r.g.store.isTombstoned(hex)).toBe(true);
    expect(count(x1.g, 'gossip_stored') + count(x2.g, 'gossip_stored') + count(r.g, 'gossip_stored')).toBe(1);
  });

  it('a holder whose copy has used up max_hops still hands it to the destination itself (unchanged, as anti-entropy would)', async () => {
    const dId = generateIdentity();
    const src = generateIdentity();
    const m = createMessage(src, {
      destination: dId.nodeId,
      destinationKey: dId.publicKey,
      plaintext: encodeCanonical({ id: 'hl:1', body: 'last hop' }),
      maxHops: 0,
      ttlSeconds: 3600,
      priority: 'normal',
      vectorClock: {},
    });
    const r = await node(generateIdentity(), memoryKvStore(), { replicas: 1 });
    const other = await node(generateIdentity(), memoryKvStore(), { replicas: 1 });
    expect(await r.g.receive(m.encoded)).toBe('stored');
    link(r.g, other.g); // not the destination: nothing goes (no hops left)
    const d = await node(dId, memoryKvStore(), { replicas: 1 });
    const got: string[] = [];
    d.g.on('message', (e) => got.push(e.item.id));
    link(r.g, d.g);
    await until(() => got.length === 1);
    expect(got).toEqual(['hl:1']);
    expect(other.g.store.size).toBe(0);
    expect(count(other.g, 'gossip_stored')).toBe(0);
  });

  it('a forwarder whose next hop fails stores the message itself before acknowledging it', async () => {
    const dId = generateIdentity();
    const [sId, xId, yId] = byDistance(dId, 3) as [Identity, Identity, Identity];
    const opts = { replicas: 1 };
    const s = await node(sId, memoryKvStore(), opts);
    const x = await node(xId, memoryKvStore(), opts);
    link(s.g, x.g);
    // y is nearer the destination but its link is broken: every send fails
    x.g.addLink({
      nodeId: yId.nodeId,
      send: async () => {
        throw new Error('link down');
      },
    });
    await s.g.submit(recipient(dId), { id: 'sc:2', body: 'kept' });
    await until(() => x.g.store.size === 1 && count(s.g, 'gossip_hop_acks') === 1);
    expect(count(x.g, 'gossip_relayed')).toBe(0);
    expect(count(x.g, 'gossip_stored')).toBe(1);
  });

  it('a new link closer to the destination takes the copy over; a farther one gets nothing, even by asking in anti-entropy', async () => {
    const dId = generateIdentity();
    const [farId, aId, nearId] = byDistance(dId, 3) as [Identity, Identity, Identity];
    const src = generateIdentity();
    const m = createMessage(src, {
      destination: dId.nodeId,
      destinationKey: dId.publicKey,
      plaintext: new Uint8Array([1]),
      maxHops: 5,
      ttlSeconds: 3600,
      priority: 'normal',
      vectorClock: {},
    });
    const opts = { replicas: 1 };
    const a = await node(aId, memoryKvStore(), opts);
    expect(await a.g.receive(m.encoded)).toBe('stored');
    // farther peer: not handed over on link-up, and its anti-entropy "want" is refused as out of scope
    const far = await node(farId, memoryKvStore(), opts);
    link(a.g, far.g);
    const r = await far.g.sync(a.g.nodeId);
    expect(r?.need).toBe(1);
    await until(() => count(a.g, 'gossip_sync_wants_out_of_scope') === 1);
    expect(far.g.store.size).toBe(0);
    expect(count(a.g, 'gossip_sync_sent')).toBe(0);
    expect(a.g.store.size).toBe(1);
    // nearer peer: catch-up hands it over and a, no longer among the 1 closest it knows, drops its copy
    const near = await node(nearId, memoryKvStore(), opts);
    link(a.g, near.g);
    await until(() => near.g.store.size === 1 && a.g.store.size === 0);
    expect(count(a.g, 'gossip_handoffs')).toBe(1);
    expect(count(a.g, 'gossip_handed_off')).toBe(1);
    expect(a.g.store.isTombstoned(m.id.toString('hex'))).toBe(false);
    // the dropped copy is not taken again (seen): a second offer is a duplicate, not a new copy
    expect(await a.g.receive(m.encoded)).toBe('duplicate');
    expect(count(a.g, 'gossip_stored')).toBe(1);
  });

  it('a holder that goes away is replaced by the next peer responsible (k copies stay reachable); the source takes no place among the k', async () => {
    const dId = generateIdentity();
    const [sId, r3Id, r2Id, r1Id] = byDistance(dId, 4) as [Identity, Identity, Identity, Identity];
    const opts = { replicas: 2, syncIntervalMs: 0 };
    const s = await node(sId, memoryKvStore(), opts);
    const r1 = await node(r1Id, memoryKvStore(), opts);
    const r2 = await node(r2Id, memoryKvStore(), opts);
    const r3 = await node(r3Id, memoryKvStore(), opts);
    const cuts = new Map<string, () => void>();
    for (const [x, y] of [
      [s, r1],
      [s, r2],
      [s, r3],
      [r1, r2],
      [r1, r3],
      [r2, r3],
    ] as const)
      cuts.set(`${x.g.nodeId}${y.g.nodeId}`, link(x.g, y.g));
    await s.g.submit(recipient(dId), { id: 'rh:1', body: 'held near d' });
    // the two closest to d hold it (the source's own copy does not count as one of them)
    await until(() => r1.g.store.size === 1 && r2.g.store.size === 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(r3.g.store.size).toBe(0);
    // r1 goes away: r2 knows one holder short and hands a copy to r3, now among the two closest
    for (const [k, cut] of cuts) if (k.includes(r1.g.nodeId)) cut();
    await until(() => r3.g.store.size === 1);
    expect(count(r2.g, 'gossip_holders_replaced')).toBe(1);
  });

  it('in a 40-node keyspace-linked network a message is stored by at most 2k nodes, none on the way (epidemic: many more)', async () => {
    const run = async (replicas: number) => {
      const gs: Gossip[] = [];
      for (let i = 0; i < 40; i++) gs.push((await node(generateIdentity(), memoryKvStore(), { replicas, syncIntervalMs: 0 })).g);
      const kid = (g: Gossip) => kademliaIdOf(g.nodeId);
      const linked = new Set<string>();
      const join = (x: Gossip, y: Gossip) => {
        const key = [x.nodeId, y.nodeId].sort().join();
        if (x === y || linked.has(key)) return;
        linked.add(key);
        link(x, y);
      };
      // each node: its 3 closest in keyspace, and the first node of each other shared-prefix bucket
      for (const x of gs) {
        const others = gs.filter((y) => y !== x).sort((p, q) => xorDistanceCompare(kid(p), kid(q), kid(x)));
        for (const y of others.slice(0, 3)) join(x, y);
        const seenBucket = new Set<number>();
        for (const y of others) {
          const b = Buffer.from(kid(x)).readUInt32BE(0) ^ Buffer.from(kid(y)).readUInt32BE(0);
          const bucket = Math.clz32(b);
          if (!seenBucket.has(bucket)) {
            seenBucket.add(bucket);
            join(x, y);
          }
        }
      }
      const dest = generateIdentity(); // offline: the message stays with the responsible nodes
      const sender = gs[0] as Gossip;
      await sender.submit(recipient(dest), { id: `k${replicas}`, body: 1 });
      const total = () => gs.reduce((a, g) => a + (g.counters.get('gossip_stored') ?? 0) + (g.counters.get('gossip_handed_off') ?? 0), 0);
      // quiescent: no store or hand-off for 10 polls in a row
      let last = -1;
      let still = 0;
      await until(() => {
        const t = total();
        still = t === last && t > 0 ? still + 1 : 0;
        last = t;
        return still >= 10;
      }, 20_000);
      const stored = gs.reduce((a, g) => a + (g.counters.get('gossip_stored') ?? 0), 0);
      const holding = gs.filter((g) => g !== sender && g.store.size > 0).length;
      for (const g of gs) await g.stop();
      return { stored, holding };
    };
    const scoped = await run(2);
    expect(scoped.stored).toBeLessThanOrEqual(2 * 2);
    expect(scoped.holding).toBeGreaterThanOrEqual(1);
    expect(scoped.holding).toBeLessThanOrEqual(2 * 2);
    const epidemic = await run(0);
    expect(epidemic.stored).toBeGreaterThan(scoped.stored);
  });
});
