import type { EndpointBody } from '@dpc/core';
import { createTestnet, type Testnet } from '@dpc/dht/testnet';
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
