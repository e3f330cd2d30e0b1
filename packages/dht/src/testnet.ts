import { emptyEndpointBody, generateIdentity } from '@dpc/core';
import { createDht } from './dht.js';
import type { Dht, DhtOptions, DhtPeer } from './types.js';

/**
 * A DHT network on 127.0.0.1 in one process, for tests of this package and of the tiers
 * (`import { createTestnet } from '@dpc/dht/testnet'`).
 *
 * @example
 * ```ts
 * const net = await createTestnet(20);
 * try {
 *   await net.nodes[0].announceFull();
 *   const rec = await net.nodes[5].findPeer(net.nodes[0].nodeId);
 * } finally {
 *   await net.destroy();
 * }
 * ```
 */
export interface Testnet {
  /** The bootstrap node (no seeds). */
  bootstrap: Dht;
  /** The other nodes, bootstrapped through `bootstrap`. */
  nodes: Dht[];
  /** Seed list to start more nodes with. */
  seeds: DhtPeer[];
  /** Creates, starts and adds one more node. */
  add(options?: Partial<DhtOptions>): Promise<Dht>;
  /** Stops every node. */
  destroy(): Promise<void>;
}

export interface TestnetOptions {
  /** Options for every node (identity, port, host and seeds are set by the testnet). */
  dht?: Partial<DhtOptions>;
  /** Nodes started at once. Default 25. */
  concurrency?: number;
  /** Announce every node's endpoint record after start. Default false. */
  announce?: boolean;
}

/** Loopback-friendly defaults: every loopback ip:port counts as its own host; RPC timeouts short, yet long enough for a loaded CI machine running 100+ nodes in one process. */
export const TESTNET_DHT_DEFAULTS: Partial<DhtOptions> = {
  host: '127.0.0.1',
  port: 0,
  allowLoopback: true,
  rpcTimeoutMs: 1_000,
  retryBackoffMs: 50,
  bootstrapTimeoutMs: 5_000,
  lookupTimeoutMs: 10_000,
};

/** Starts `n` nodes (the bootstrap node plus n - 1) on 127.0.0.1. */
export async function createTestnet(n: number, opts: TestnetOptions = {}): Promise<Testnet> {
  const all: Dht[] = [];
  const make = (extra: Partial<DhtOptions> = {}, seeds: DhtPeer[] = []) =>
    createDht({ ...TESTNET_DHT_DEFAULTS, ...opts.dht, ...extra, identity: extra.identity ?? generateIdentity(), seeds });
  const bootstrap = make();
  await bootstrap.start();
  all.push(bootstrap);
  const seeds = [bootstrap.address as DhtPeer];
  const startOne = async (extra: Partial<DhtOptions> = {}) => {
    const node = make(extra, seeds);
    all.push(node);
    await node.start();
    const a = node.address as DhtPeer;
    node.setEndpointBody({ ...emptyEndpointBody(), ipv4_local: [{ ip: '127.0.0.1', port: a.port, prefix: 8 }] });
    if (opts.announce) await node.announceFull();
    return node;
  };
  const nodes: Dht[] = [];
  const destroy = async () => {
    await Promise.all(all.map((d) => d.stop()));
  };
  try {
    const batch = opts.concurrency ?? 25;
    for (let i = 1; i < n; i += batch) {
      nodes.push(...(await Promise.all(Array.from({ length: Math.min(batch, n - i) }, () => startOne()))));
    }
  } catch (err) {
    await destroy();
    throw err;
  }
  return {
    bootstrap,
    nodes,
    seeds,
    add: async (extra) => {
      const node = await startOne(extra);
      nodes.push(node);
      return node;
    },
    destroy,
  };
}
