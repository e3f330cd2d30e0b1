import { randomBytes } from 'node:crypto';
import { kademliaIdOf, memoryKvStore, secondsToMs, sleep, type TierContext, type TierPlugin, timeoutSignal } from '@dpc/core';
import { dialProblem } from './address.js';
import {
  DEFAULT_MAX_LINKS,
  DEFAULT_NEIGHBOUR_LINKS,
  DEFAULT_RANDOM_LINKS,
  NEIGHBOUR_REFRESH_MS,
  ROUTE_LOOKUP_MIN_MS,
  ROUTE_LOOKUPS_AT_ONCE,
} from './constants.js';
import { createGossip } from './gossip.js';
import { type GossipLinks, startGossipLinks } from './links.js';

/**
 * Links to the DHT nodes closest to `key` that are not linked yet (at most `count` new ones).
 * Gossip listens on the TCP port with the number of each node's DHT UDP port. `neighbour`: the
 * node's own keyspace neighbours, which may use the slots kept for them (see `dial`).
 */
async function linkNear(
  ctx: TierContext,
  links: GossipLinks,
  key: Uint8Array,
  count: number,
  signal: AbortSignal,
  neighbour = false,
): Promise<number> {
  if (!ctx.dht.closestPeers || signal.aborted) return 0;
  let peers: Array<{ nodeId: string; host: string; port: number }>;
  try {
    // A timer-held deadline (on Node 20 an AbortSignal.timeout inside AbortSignal.any can be
    // garbage-collected before it fires).
    const deadline = timeoutSignal(15_000, 'gossip neighbour lookup', signal);
    peers = await ctx.dht.closestPeers(key, { signal: deadline.signal }).finally(deadline.clear);
  } catch {
    ctx.counters.inc('gossip_neighbour_lookup_errors');
    return 0;
  }
  const linked = new Set(links.peers());
  // Addresses links.dial() would refuse (dialProblem) take no place among the `count`.
  const todo = peers
    .filter((p) => p.nodeId !== ctx.identity.nodeId && !linked.has(p.nodeId))
    .filter((p) => dialProblem(p.host, { allowLocal: ctx.allowLoopback }) === undefined)
    .slice(0, count);
  const ok = await Promise.all(todo.map((p) => links.dial(p, { neighbour })));
  return ok.filter(Boolean).length;
}

/**
 * Tier 6 as a node plugin: the gossip service on the node's durable store (`ctx.store`; without
 * one, in memory and said so), its links (TLS over TCP on the `[dht] port` number, dialling the
 * `[dht] seed_nodes`) and its deferred path for the orchestrator. Honours `[gossip] enabled,
 * max_hops, fanout, replicas, ttl_seconds, sync_interval, cleanup_interval, priority`. Events
 * for the user: `gossip` with `kind` delivered, receipt, refused.
 *
 * Links: besides the seeds and inbound peers, the node links to its own DHT keyspace neighbours
 * and to the nodes closest to a random key (a bounded peer exchange through the DHT: at start,
 * 5 s later, then every minute; at most 64 links), and, when it sends to a peer it is not linked
 * to, to that destination's neighbours: with `replicas` > 0 the copies are held by the nodes
 * closest to the destination, which are the ones the destination links to when it comes online.
 * The listener takes the TCP port with the DHT's UDP port number (the bound one when
 * `[dht] port = 0`); when that port is taken the node only dials out (no inbound gossip links).
 */
export function gossipTier(): TierPlugin {
  return {
    name: 'gossip',
    async start(ctx: TierContext) {
      const cfg = ctx.config.gossip;
      if (!cfg.enabled) {
        ctx.log.info('gossip disabled ([gossip] enabled = false)');
        return { info: { enabled: false }, async stop() {} };
      }
      if (!ctx.store) ctx.log.warn('gossip: the node has no durable store; messages are kept in memory only');
      const gossip = await createGossip({
        identity: ctx.identity,
        store: ctx.store ?? memoryKvStore(),
        counters: ctx.counters,
        maxHops: cfg.max_hops,
        fanout: cfg.fanout,
        replicas: cfg.replicas,
        ttlSeconds: cfg.ttl_seconds,
        priority: cfg.priority,
        cleanupIntervalMs: secondsToMs(cfg.cleanup_interval),
        syncIntervalMs: secondsToMs(cfg.sync_interval),
      });
      gossip.on('delivered-copy', (e) => ctx.emit('gossip', { kind: 'delivered', id: e.id, hops: e.hops }));
      gossip.on('receipt', (e) => ctx.emit('gossip', { kind: 'receipt', from: e.from, ids: e.ids }));
      gossip.on('refused', (e) => ctx.emit('gossip', { kind: 'refused', reason: e.reason, ...(e.from && { from: e.from }) }));
      const dhtHost = ctx.config.dht.host;
      const links = await startGossipLinks({
        gossip,
        identity: ctx.identity,
        port: ctx.dht.localPort?.() ?? ctx.config.dht.port,
        host: dhtHost === 'dual' ? '::' : dhtHost,
        seeds: ctx.config.dht.seed_nodes,
        counters: ctx.counters,
        log: ctx.log,
        signal: ctx.signal,
        // Neighbours come from DHT lookups (addresses other nodes name): local ones only in a testnet.
        allowLocal: ctx.allowLoopback,
        // A testnet on one machine: every peer dials in from the same address.
        ...(ctx.allowLoopback && { maxPendingPerIp: DEFAULT_MAX_LINKS, maxInboundPerIp: DEFAULT_MAX_LINKS }),
      });
      // Keyspace neighbours and a bounded peer exchange (DHT lookups), then each destination's neighbourhood.
      const stopping = new AbortController();
      const signal = AbortSignal.any([ctx.signal, stopping.signal]);
      const refresh = async () => {
        await linkNear(ctx, links, kademliaIdOf(ctx.identity.nodeId), DEFAULT_NEIGHBOUR_LINKS, signal, true);
        await linkNear(ctx, links, randomBytes(16), DEFAULT_RANDOM_LINKS, signal);
      };
      void (async () => {
        for (let round = 0; !signal.aborted; round++) {
          await refresh().catch(() => ctx.counters.inc('gossip_neighbour_lookup_errors'));
          await sleep(round === 0 ? 5_000 : NEIGHBOUR_REFRESH_MS, signal).catch(() => {});
        }
      })();
      const routed = new Map<string, number>();
      // Destinations come also from remote input (a receipt goes to whoever sent us a message, any
      // throwaway identity): the lookups run ROUTE_LOOKUPS_AT_ONCE at most; the others are skipped
      // (the destination is routed again on the message's next re-send).
      let routing = 0;
      gossip.on('route', ({ destination }) => {
        const now = Date.now();
        if (now - (routed.get(destination) ?? 0) < ROUTE_LOOKUP_MIN_MS) return;
        if (routing >= ROUTE_LOOKUPS_AT_ONCE) {
          ctx.counters.inc('gossip_route_lookups_skipped');
          return;
        }
        routed.delete(destination);
        routed.set(destination, now);
        if (routed.size > 1024) routed.delete(routed.keys().next().value as string);
        routing++;
        void linkNear(ctx, links, kademliaIdOf(destination), Math.max(cfg.replicas, 1) + 1, signal)
          .then((n) => {
            if (n > 0) ctx.counters.inc('gossip_route_links', n);
          })
          .finally(() => routing--);
      });
      return {
        deferred: gossip,
        info: {
          port: links.port ?? null,
          seeds: ctx.config.dht.seed_nodes.length,
          replicas: cfg.replicas,
          stored: gossip.store.size,
        },
        async stop() {
          stopping.abort();
          await links.stop();
          await gossip.stop();
        },
      };
    },
  };
}

/** The plugin the node app loads when @dpc/gossip is installed. */
export const tierPlugin: TierPlugin = gossipTier();
