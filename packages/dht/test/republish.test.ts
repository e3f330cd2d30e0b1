import { type EndpointBody, emptyEndpointBody, generateIdentity } from '@dpc/core';
import { createDht, type DhtPeer } from '@dpc/dht';
import { createTestnet, TESTNET_DHT_DEFAULTS, type Testnet } from '@dpc/dht/testnet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe('republishing the endpoint record', () => {
  let net: Testnet;

  beforeAll(async () => {
    net = await createTestnet(8);
  }, 60_000);
  afterAll(async () => {
    await net?.destroy();
  });

  it('a body change arriving while a republish stores its record is announced too (not lost until the next period)', async () => {
    const [a, b] = net.nodes as [NonNullable<Testnet['nodes'][0]>, NonNullable<Testnet['nodes'][0]>];
    await a.announceFull();
    const own = async () => a.findPeer(a.nodeId);
    const first = await own();
    const change = (nat: EndpointBody['nat_type']) => a.setEndpointBody({ ...a.endpointBody(), nat_type: nat });
    change('cone');
    // Wait (every turn of the event loop) until the republish has signed and stored its record
    // here: its STOREs to the other nodes are in flight now. Then the body changes again.
    for (;;) {
      const r = await own();
      if (r.seq > first.seq) {
        expect(r.body.nat_type).toBe('cone');
        break;
      }
      await new Promise((res) => setImmediate(res));
    }
    change('symmetric');
    // The change reaches the other nodes without waiting for the next announce period.
    await expect
      .poll(async () => (await b.findPeer(a.nodeId).catch(() => undefined))?.body.nat_type, { timeout: 20_000, interval: 100 })
      .toBe('symmetric');
  });
});

describe('an endpoint announce that reached no other node', () => {
  it('is tried again soon (not at the next period): a node whose only contact was down is found once it is back', async () => {
    const identity = generateIdentity();
    const opts = { ...TESTNET_DHT_DEFAULTS, announceIntervalMs: 3_600_000 };
    let b = createDht({ ...opts, identity });
    await b.start();
    const port = (b.address as DhtPeer).port;
    const x = createDht({ ...opts, identity: generateIdentity(), seeds: [b.address as DhtPeer] });
    let b2: ReturnType<typeof createDht> | undefined;
    try {
      await x.start();
      x.setEndpointBody({ ...emptyEndpointBody(), ipv4_local: [{ ip: '127.0.0.1', port: (x.address as DhtPeer).port, prefix: 8 }] });
      await b.stop();
      // Its only contact is gone: the record is stored nowhere but at x itself.
      const first = await x.announceFull().catch(() => undefined);
      expect(first?.storedAt ?? 0).toBe(0);
      expect(x.stats().counters['announce.unstored']).toBeGreaterThanOrEqual(1);
      // The contact comes back (same identity and port, nothing stored, knowing nobody).
      b2 = createDht({ ...opts, identity, port });
      b = b2;
      await b2.start();
      // Before: the record reached b only at the next announce period (an hour here).
      await expect
        .poll(async () => (await b2?.findPeer(x.nodeId).catch(() => undefined))?.nodeId, { timeout: 30_000, interval: 250 })
        .toBe(x.nodeId);
    } finally {
      await x.stop();
      await b.stop();
    }
  }, 60_000);
});
