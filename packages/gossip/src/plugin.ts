import { memoryKvStore, secondsToMs, type TierContext, type TierPlugin } from '@dpc/core';
import { createGossip } from './gossip.js';
import { startGossipLinks } from './links.js';

/**
 * Tier 6 as a node plugin: the gossip service on the node's durable store (`ctx.store`; without
 * one, in memory and said so), its links (TLS over TCP on the `[dht] port` number, dialling the
 * `[dht] seed_nodes`) and its deferred path for the orchestrator. Honours `[gossip] enabled,
 * max_hops, fanout, ttl_seconds, sync_interval, cleanup_interval, priority`. Events for the
 * user: `gossip` with `kind` delivered, receipt, refused.
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
        port: ctx.config.dht.port,
        host: dhtHost === 'dual' ? '::' : dhtHost,
        seeds: ctx.config.dht.seed_nodes,
        counters: ctx.counters,
        log: ctx.log,
        signal: ctx.signal,
      });
      return {
        deferred: gossip,
        info: { port: links.port ?? null, seeds: ctx.config.dht.seed_nodes.length, stored: gossip.store.size },
        async stop() {
          await links.stop();
          await gossip.stop();
        },
      };
    },
  };
}

/** The plugin the node app loads when @dpc/gossip is installed. */
export const tierPlugin: TierPlugin = gossipTier();
