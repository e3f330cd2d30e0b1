import { createSocket } from 'node:dgram';
import { generateIdentity } from '@dpc/core';
import { createDht, type DhtPeer } from '@dpc/dht';
import { TESTNET_DHT_DEFAULTS } from '@dpc/dht/testnet';
import { describe, expect, it } from 'vitest';

/** Loopback ports with a bound socket that never answers: every request to them times out. */
async function silentPeers(n: number): Promise<{ peers: DhtPeer[]; close: () => void }> {
  const sockets = await Promise.all(
    Array.from({ length: n }, async () => {
      const s = createSocket('udp4');
      await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
      return s;
    }),
  );
  return {
    peers: sockets.map((s) => ({ host: '127.0.0.1', port: s.address().port })),
    close: () => {
      for (const s of sockets) s.close();
    },
  };
}

describe('listeners on shared abort signals', () => {
  it('hundreds of concurrent requests, retries and operations leave no listener leak and no MaxListenersExceededWarning', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    const silent = await silentPeers(40);
    const seed = createDht({ ...TESTNET_DHT_DEFAULTS, identity: generateIdentity() });
    await seed.start();
    // 40 seeds that never answer and one that does: 41 requests (with retries) on the bootstrap deadline.
    const d = createDht({
      ...TESTNET_DHT_DEFAULTS,
      identity: generateIdentity(),
      rpcTimeoutMs: 100,
      retryBackoffMs: 10,
      bootstrapTimeoutMs: 1_500,
      seeds: [...silent.peers, seed.address as DhtPeer],
    });
    try {
      await d.start();
      expect(d.contacts().map((c) => c.nodeId)).toContain(seed.nodeId);
      // 300 operations at once, each with a retry after a backoff, on stop()'s signal and one shared caller signal.
      const caller = new AbortController();
      const results = await Promise.allSettled(
        Array.from({ length: 300 }, (_, i) => d.ping(silent.peers[i % 40] as DhtPeer, i % 2 ? { signal: caller.signal } : {})),
      );
      expect(results.every((r) => r.status === 'rejected' && (r.reason as { code?: string }).code === 'DPC_DHT_RPC_TIMEOUT')).toBe(true);
      // Operations in flight when stop() comes all end at once.
      const pending = Array.from({ length: 100 }, (_, i) =>
        d.ping(silent.peers[i % 40] as DhtPeer).catch((e: { code?: string }) => e.code),
      );
      await d.stop();
      expect(new Set(await Promise.all(pending))).toEqual(new Set(['DPC_DHT_NOT_RUNNING']));
      await new Promise((r) => setImmediate(r));
      expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
      await d.stop();
      await seed.stop();
      silent.close();
    }
  });
});
