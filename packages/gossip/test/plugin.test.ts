import { Counters, defaultConfig, generateIdentity, memoryKvStore, type TierContext } from '@dpc/core';
import { type Gossip, gossipTier } from '@dpc/gossip';
import { afterEach, describe, expect, it } from 'vitest';

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of stops.splice(0)) await s();
});

const quiet = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

/**
 * The plugin on a context whose DHT lookups never answer (until the node stops): the test counts
 * how many run at once. Everything else is real (gossip service, links listener on loopback).
 */
async function startPlugin() {
  const identity = generateIdentity();
  const config = defaultConfig();
  config.dht.port = 0;
  config.dht.host = '127.0.0.1';
  config.dht.seed_nodes = [];
  config.gossip.sync_interval = 0;
  const ctrl = new AbortController();
  const lookups = { running: 0, most: 0, total: 0 };
  const ctx = {
    identity,
    config,
    counters: new Counters(),
    store: memoryKvStore(),
    log: quiet,
    allowLoopback: true,
    signal: ctrl.signal,
    emit() {},
    dht: {
      closestPeers(_key: Uint8Array, opts: { signal?: AbortSignal } = {}) {
        lookups.running++;
        lookups.total++;
        lookups.most = Math.max(lookups.most, lookups.running);
        return new Promise<never>((_, reject) => {
          opts.signal?.addEventListener(
            'abort',
            () => {
              lookups.running--;
              reject(opts.signal?.reason);
            },
            { once: true },
          );
        });
      },
      localPort: () => 0,
    },
  } as unknown as TierContext;
  const started = await gossipTier().start(ctx);
  stops.push(async () => {
    ctrl.abort();
    await started.stop();
  });
  return { gossip: started.deferred as Gossip, ctx, lookups };
}

describe('gossip plugin: lookups for destinations it is not linked to', () => {
  it('runs a bounded number at once, however many destinations are sent to', async () => {
    const { gossip, ctx, lookups } = await startPlugin();
    // Each message to a new destination asks for a lookup of its neighbourhood; a remote peer can
    // cause the same by sending from many throwaway identities (each gets a receipt).
    for (let i = 0; i < 50; i++) {
      const to = generateIdentity();
      await gossip.submit({ nodeId: to.nodeId, publicKey: to.publicKey }, { id: `route:${i}`, body: i });
    }
    await new Promise((r) => setTimeout(r, 200));
    // the plugin's own neighbour refresh takes one more
    expect(lookups.most).toBeLessThanOrEqual(5);
    expect(ctx.counters.get('gossip_route_lookups_skipped') ?? 0).toBeGreaterThanOrEqual(40);
  });
});
