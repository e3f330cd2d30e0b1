import { decodeUntrusted, encodeCanonical, generateIdentity, type Identity, kademliaIdOf, memoryKvStore } from '@dpc/core';
import { createGossip, createMessage, type Gossip, type GossipLink, xorDistanceCompare } from '@dpc/gossip';
import { afterEach, describe, expect, it } from 'vitest';

type Frame = Parameters<Gossip['onFrame']>[1];
const started: Gossip[] = [];
afterEach(async () => {
  for (const g of started.splice(0)) await g.stop();
});

async function node(identity: Identity, extra: Partial<Parameters<typeof createGossip>[0]> = {}) {
  const g = await createGossip({
    identity,
    store: memoryKvStore(),
    cleanupIntervalMs: 0,
    redeliverIntervalMs: 0,
    syncIntervalMs: 0,
    replicas: 2,
    maxHops: 8,
    ...extra,
  });
  started.push(g);
  return g;
}

/** A bidirectional in-process link; frames are delivered asynchronously, as over a socket. */
function link(a: Gossip, b: Gossip): void {
  const aToB: GossipLink = { nodeId: b.nodeId, send: async (f: Frame) => void setImmediate(() => void b.onFrame(bToA, f)) };
  const bToA: GossipLink = { nodeId: a.nodeId, send: async (f: Frame) => void setImmediate(() => void a.onFrame(aToB, f)) };
  a.addLink(aToB);
  b.addLink(bToA);
}

/** A forwarder that acknowledges every message (a durable copy, it claims) and drops it. */
function liar(a: Gossip, id: Identity): { got: number } {
  const seen = { got: 0 };
  const toLiar: GossipLink = {
    nodeId: id.nodeId,
    send: async (f: Frame) => {
      if (f.t !== 'm') return;
      seen.got++;
      const env = decodeUntrusted(f.b) as unknown[];
      setImmediate(() => void a.onFrame(toLiar, { t: 'a', id: env[2] as Uint8Array }));
    },
  };
  a.addLink(toLiar);
  return seen;
}

const until = async (cond: () => boolean, ms = 15_000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
};
const recipient = (i: Identity) => ({ nodeId: i.nodeId, publicKey: i.publicKey });
/** `n` identities ordered from the farthest to the closest to `dest` in XOR keyspace. */
const byDistance = (dest: Identity, n: number) =>
  Array.from({ length: n }, () => generateIdentity()).sort(
    (a, b) => -xorDistanceCompare(kademliaIdOf(a.nodeId), kademliaIdOf(b.nodeId), kademliaIdOf(dest.nodeId)),
  );

describe('a forwarder’s acknowledgement is not delivery', () => {
  /** A (source), honest C, liars L2 and L1 (closest to B): A first hands the message to the liars. */
  async function setup(resendIntervalMs: number) {
    const bId = generateIdentity();
    const [aId, cId, l2Id, l1Id] = byDistance(bId, 4) as [Identity, Identity, Identity, Identity];
    const a = await node(aId, { resendIntervalMs });
    const c = await node(cId);
    const l1 = liar(a, l1Id);
    const l2 = liar(a, l2Id);
    link(a, c);
    const receipts: string[][] = [];
    a.on('receipt', (e) => receipts.push(e.ids));
    await a.submit(recipient(bId), { id: 'trust:1', body: 'keep it until B signs' });
    return { a, aId, c, l1, l2, bId, receipts };
  }

  it('the source keeps its copy and sends it again, to peers not tried yet, until B’s signed receipt arrives', async () => {
    const { a, c, l1, l2, bId, receipts } = await setup(200);
    // The closest liar took it first and "acknowledged" it; the source still holds its copy.
    await until(() => l1.got === 1);
    expect(a.store.size).toBe(1);
    // Re-sends go to the next liar, then to the honest C (not tried before), which stores it.
    await until(() => c.store.size === 1);
    expect(l2.got).toBeGreaterThanOrEqual(1);
    expect(a.counters.get('gossip_resent') ?? 0).toBeGreaterThanOrEqual(2);
    expect(a.store.size).toBe(1); // acknowledgements from forwarders never end the source's copy
    // B comes online linked to C only: it gets the message; its signed receipt reaches A through C.
    const b = await node(bId);
    const got: string[] = [];
    b.on('message', (e) => {
      got.push(e.item.id);
      void b.receipt({ nodeId: e.from, publicKey: e.publicKey }, [e.item.id]);
    });
    link(b, c);
    await until(() => got.length >= 1 && receipts.length === 1);
    expect(got[0]).toBe('trust:1');
    expect(receipts[0]).toEqual(['trust:1']);
    await until(() => a.store.size === 0); // only the destination's receipt ends it
    expect(await a.resend()).toBe(0); // and with it the re-sends
  });

  it('without re-sends the lying forwarders would have lost it (control)', async () => {
    const { a, c, l1, l2 } = await setup(0);
    await until(() => l1.got === 1);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(c.store.size).toBe(0);
    expect(l2.got).toBe(0);
    expect(a.store.size).toBe(1);
  });

  it('a forged receipt (not signed by the destination) does not end the source’s copy', async () => {
    const { a, aId } = await setup(0);
    const mallory = generateIdentity();
    const hex = [...a.store.entries()][0]?.hex as string;
    // Mallory "confirms" the message in a receipt of its own, sealed and signed by itself.
    const forged = createMessage(mallory, {
      kind: 'receipt',
      destination: a.nodeId,
      destinationKey: aId.publicKey,
      plaintext: encodeCanonical({ ids: ['trust:1'] }),
      maxHops: 8,
      ttlSeconds: 600,
      priority: 'normal',
      vectorClock: {},
      acks: [Buffer.from(hex, 'hex')],
    });
    const receipts: unknown[] = [];
    a.on('receipt', (e) => receipts.push(e));
    await a.receive(forged.encoded);
    expect(receipts).toHaveLength(1); // taken as Mallory's receipt for Mallory's messages…
    expect(a.store.has(hex)).toBe(true); // …which ends nothing of B's
    expect(a.store.size).toBe(1);
  });
});

describe('the re-send of a receipt', () => {
  for (const replicas of [2, 0]) {
    it(`ends once the receipt's destination itself acknowledged it (replicas = ${replicas}): no receipt re-sent for its whole lifetime`, async () => {
      const aId = generateIdentity();
      const bId = generateIdentity();
      const a = await node(aId, { replicas, resendIntervalMs: 100 });
      const b = await node(bId, { replicas, resendIntervalMs: 100 });
      const receipts: string[][] = [];
      a.on('receipt', (e) => receipts.push(e.ids));
      b.on('message', (e) => void b.receipt({ nodeId: e.from, publicKey: e.publicKey }, [e.item.id]));
      link(a, b);
      await a.submit(recipient(bId), { id: 'direct:1', body: 'over one link' });
      await until(() => receipts.length === 1 && a.store.size === 0);
      // A holds B's receipt (it acknowledged it over the link): B keeps no copy to send again.
      await until(() => b.store.size === 0, 5_000);
      const resent = b.counters.get('gossip_resent') ?? 0;
      await new Promise((r) => setTimeout(r, 500));
      expect(b.counters.get('gossip_resent') ?? 0).toBe(resent);
      expect(a.counters.get('gossip_refused_replayed') ?? 0).toBe(0);
    });
  }
});
