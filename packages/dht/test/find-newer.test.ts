// findPeer with `newerThan`: a caller holding a record asks for a newer one (tier 4 does, when the
// record it got predates the peer's NAT verdict). Real DHT nodes on loopback (the testnet); the
// newer record is stored at one node only, by hand, as a STORE that reached one node so far.
import { createRecord, generateIdentity, kademliaIdOf } from '@dpc/core';
import type { Dht } from '@dpc/dht';
import { createTestnet, type Testnet } from '@dpc/dht/testnet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from './raw-client.js';

describe('findPeer newerThan', () => {
  let net: Testnet;
  beforeAll(async () => {
    net = await createTestnet(6);
  }, 60_000);
  afterAll(async () => {
    await net?.destroy();
  });

  it('passes over copies of the seq it holds (its own too) and returns the newer record one node has', async () => {
    const identity = generateIdentity();
    const p = await net.add({ identity });
    const first = (await p.announceFull({ signal: AbortSignal.timeout(10_000) })).record;
    const [looker, holder] = net.nodes.filter((d) => d !== p) as [Dht, Dht];
    // The looker holds the first record itself (one of the closest nodes): a plain lookup ends there.
    expect((await looker.findPeer(p.nodeId, { signal: AbortSignal.timeout(10_000) })).seq).toBe(first.seq);
    const newer = createRecord(identity, { kind: 'endpoint', body: { ...first.body, nat_type: 'cone' }, seq: first.seq + 1 });
    const raw = await RawClient.open();
    try {
      const key = kademliaIdOf(p.nodeId);
      const port = holder.address?.port as number;
      const nodes = await raw.request(port, { t: 'find_node', k: key });
      expect(await raw.request(port, { t: 'store', k: key, r: newer.encoded, tk: nodes.tk })).toMatchObject({ t: 'ok' });
    } finally {
      await raw.close();
    }
    const found = await looker.findPeer(p.nodeId, { signal: AbortSignal.timeout(10_000), newerThan: first.seq });
    expect(found.seq).toBe(newer.seq);
    expect(found.body.nat_type).toBe('cone');
    // Nothing newer than that anywhere: the lookup runs to its end and returns the highest seq seen.
    const again = await looker.findPeer(p.nodeId, { signal: AbortSignal.timeout(10_000), newerThan: newer.seq });
    expect(again.seq).toBe(newer.seq);
  });
});
