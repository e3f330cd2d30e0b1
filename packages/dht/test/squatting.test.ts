import { createRecord, generateIdentity, type RelayOfferBody } from '@dpc/core';
import { type Dht, relayIndexKeys } from '@dpc/dht';
import { createTestnet } from '@dpc/dht/testnet';
import { describe, expect, it } from 'vitest';
import { RawClient } from './raw-client.js';

const offerBody = (nodeId: string, ip: string): RelayOfferBody => ({
  node_id: nodeId,
  ip,
  port: 443,
  available: true,
  max_peers: 1000,
  current_peers: 0,
  region: 'us-west',
  uptime: 1,
  latency_ms: 1,
  bandwidth_mbps: 10_000,
});

describe('DHT squatting over the wire', () => {
  it('64 fake relay offers expiring in 9999, from 4 places and 64 identities, leave the real relay findable', async () => {
    const net = await createTestnet(10, { dht: { rateLimit: { perSecond: 1e6, burst: 1e6 } } });
    const attackers = await Promise.all(Array.from({ length: 4 }, () => RawClient.open()));
    try {
      const relay = net.nodes[0] as Dht;
      const { node_id: _, ...real } = offerBody(relay.nodeId, '198.51.100.20');
      await relay.announceRelay(real);
      const year9999 = Date.UTC(9999, 0, 1) - Date.now();
      const fakes = Array.from({ length: 64 }, (_, i) => {
        const id = generateIdentity();
        return createRecord(id, { kind: 'relay-offer', body: offerBody(id.nodeId, `203.0.113.${i}`), ttlMs: year9999 });
      });
      const answers: string[] = [];
      for (const d of [net.bootstrap, ...net.nodes]) {
        const port = d.address?.port as number;
        await Promise.all(
          attackers.map(async (raw, a) => {
            for (const k of relayIndexKeys('us-west')) {
              const { tk } = await raw.request(port, { t: 'find_node', k });
              for (const f of fakes.slice(a * 16, a * 16 + 16)) {
                const res = await raw.request(port, { t: 'store', k, r: f.encoded, tk });
                answers.push(res.t === 'err' ? String(res.c) : String(res.t));
              }
            }
          }),
        );
      }
      // Each place gets 4 slots per key on each node; the rest is refused and counted.
      expect(answers.filter((a) => a === 'ok')).toHaveLength(10 * 4 * 2 * 4);
      expect(answers.filter((a) => a === 'source_key_quota')).toHaveLength(10 * 4 * 2 * 12);
      const counters = [net.bootstrap, ...net.nodes].map((d) => d.stats());
      expect(counters.every((s) => s.rejects.source_key_quota === 4 * 2 * 12)).toBe(true);
      expect(counters.every((s) => s.counters['store.expiry_capped'] === 4 * 2 * 4)).toBe(true);
      // A node that joins now still finds the real relay, in its region and globally.
      const newcomer = await net.add();
      for (const region of ['us-west', undefined]) {
        const relays = await newcomer.findRelays(region ? { region } : {});
        expect(relays.map((r) => r.nodeId)).toContain(relay.nodeId);
      }
    } finally {
      await Promise.all(attackers.map((r) => r.close()));
      await net.destroy();
    }
  });
});
