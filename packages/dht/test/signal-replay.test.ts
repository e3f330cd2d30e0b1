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
    // A larger bound (nothing is allocated up front) raises the accepted rate, capacity / 241 s, and a
    // quarter of it for one place: 8.7k/s, so the 4,101 signals from this one socket go through at once.
    const { dht, delivered } = await victim({ signalReplayCacheBytes: 1024 * 1024 * 1024 });
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

  it('with the default 2 MiB cache, fresh signals beyond 68/s are refused and counted, and one place gets a quarter', async () => {
    const { dht, delivered } = await victim({});
    const raws = await Promise.all(Array.from({ length: 6 }, () => RawClient.open()));
    clients.push(...raws);
    const alice = generateIdentity();
    const port = dht.address?.port as number;
    // Six places (each loopback port is its own source here) send 50 fresh signals each, in waves of 10.
    const perPlace = await Promise.all(
      raws.map(async (raw, r) => {
        const batch = Array.from({ length: 50 }, (_, j) => createSignalEnvelope(alice, dht.kademliaId, r * 100 + j));
        const answers: Array<Record<string, unknown>> = [];
        for (let i = 0; i < batch.length; i += 10) {
          const wave = batch.slice(i, i + 10).map((e) => raw.request(port, { t: 'signal', to: dht.kademliaId, h: 0, e }, 5_000));
          answers.push(...(await Promise.all(wave)));
        }
        expect(answers.filter((a) => a.t === 'err').every((a) => a.c === 'rate_limited')).toBe(true);
        return answers.filter((a) => a.t === 'ok').length;
      }),
    );
    const ok = perPlace.reduce((a, b) => a + b, 0);
    for (const n of perPlace) expect(n).toBeLessThanOrEqual(20); // a quarter of 68/s, and a one-second burst
    expect(ok).toBeGreaterThanOrEqual(60);
    expect(ok).toBeLessThan(100);
    expect(delivered).toHaveLength(ok);
    const r = dht.stats().rejects;
    expect((r.signal_rate_limited ?? 0) + (r.signal_source_rate_limited ?? 0)).toBe(300 - ok);
    expect(r.signal_source_rate_limited).toBeGreaterThan(0);
  });
});
