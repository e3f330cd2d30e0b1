import { generateIdentity } from '@dpc/core';
import { createDht, type Dht, type DhtOptions } from '@dpc/dht';
import { TESTNET_DHT_DEFAULTS } from '@dpc/dht/testnet';
import { afterEach, describe, expect, it } from 'vitest';
import { createSignalEnvelope } from '../src/signalling.js';
import { RawClient } from './raw-client.js';

const started: Dht[] = [];
const clients: RawClient[] = [];
afterEach(async () => {
  await Promise.all([...started.splice(0).map((d) => d.stop()), ...clients.splice(0).map((c) => c.close())]);
});

async function victim(extra: Partial<DhtOptions>): Promise<{ dht: Dht; delivered: unknown[] }> {
  const dht = createDht({ ...TESTNET_DHT_DEFAULTS, rateLimit: { perSecond: 1e9, burst: 1e9 }, ...extra, identity: generateIdentity() });
  started.push(dht);
  await dht.start();
  const delivered: unknown[] = [];
  dht.on('signal', (e) => delivered.push(e.payload));
  return { dht, delivered };
}

describe('signal replay over the wire', () => {
  it('a SIGNAL replayed after 4,101 fresh ones is not delivered again', async () => {
    // A larger cache raises the accepted rate (capacity / 241 s) so the 4,101 signals go through in a second.
    const { dht, delivered } = await victim({ signalReplayCacheBytes: 256 * 1024 * 1024 });
    const raw = await RawClient.open();
    clients.push(raw);
    const alice = generateIdentity();
    const port = dht.address?.port as number;
    const envelopes = Array.from({ length: 4_101 }, (_, i) => createSignalEnvelope(alice, dht.kademliaId, i));
    for (let i = 0; i < envelopes.length; i += 100) {
      const answers = await Promise.all(
        envelopes.slice(i, i + 100).map((e) => raw.request(port, { t: 'signal', to: dht.kademliaId, h: 0, e }, 5_000)),
      );
      for (const a of answers) expect(a.t).toBe('ok');
    }
    expect(delivered).toHaveLength(4_101);
    const replay = await raw.request(port, { t: 'signal', to: dht.kademliaId, h: 0, e: envelopes[0] });
    expect(replay.t).toBe('ok'); // acknowledged like a retransmission, never delivered twice
    expect(delivered).toHaveLength(4_101);
    expect(dht.stats().counters['signals.duplicate']).toBe(1);
  });

  it('with the default 2 MiB cache, a burst of fresh signals beyond 68/s is refused and counted', async () => {
    const { dht, delivered } = await victim({});
    const raw = await RawClient.open();
    clients.push(raw);
    const alice = generateIdentity();
    const port = dht.address?.port as number;
    const answers: Array<Record<string, unknown>> = [];
    for (let i = 0; i < 200; i += 50) {
      const batch = Array.from({ length: 50 }, (_, j) => createSignalEnvelope(alice, dht.kademliaId, i + j));
      answers.push(...(await Promise.all(batch.map((e) => raw.request(port, { t: 'signal', to: dht.kademliaId, h: 0, e }, 5_000)))));
    }
    const ok = answers.filter((a) => a.t === 'ok').length;
    expect(ok).toBeGreaterThanOrEqual(67);
    expect(ok).toBeLessThan(100);
    expect(answers.filter((a) => a.t === 'err').every((a) => a.c === 'rate_limited')).toBe(true);
    expect(delivered).toHaveLength(ok);
    expect(dht.stats().rejects.signal_rate_limited).toBe(200 - ok);
  });
});
