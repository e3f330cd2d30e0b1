import { TIERS } from '@dpc/core';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { NodeMonitor, Overview } from './dashboard-state.js';

/** Connect times and ack round trips, seconds: from a LAN handshake to the slowest tier's timeout. */
const DURATION_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 60];

/**
 * Counters (from @dpc/core `Counters`) that count refused, rejected or malformed input: what an
 * attack or a misbehaving peer moves. They carry `security="true"` in `dpc_counter_total`.
 */
const SECURITY_COUNTER =
  /unauthorized|foreign|refused|rejects\.|handshakes?_(failed|errors)|handshake_failed|frame_errors|protocol_errors|socket_errors|bad_|wrong|invalid|oversized|rate_limited|duplicates_dropped|evicted|limit/;

export function isSecurityCounter(name: string): boolean {
  return SECURITY_COUNTER.test(name);
}

export interface NodeMetrics {
  readonly contentType: string;
  /** The Prometheus text exposition of the node now. */
  text(): Promise<string>;
  close(): void;
}

/**
 * The node's Prometheus metrics (`GET /metrics` of the API server): the spec's stats, per-tier
 * connect times and ack round trips as histograms, DHT size, relay load when volunteering, the
 * Hub connection, every `Counters` entry (security ones labelled), and the process defaults. One
 * registry per node, never prom-client's global one.
 */
export function createMetrics(monitor: NodeMonitor): NodeMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  let snap: Overview | undefined;
  const now = (): Overview => {
    snap ??= monitor.overview();
    return snap;
  };
  const registers = [registry];
  const total = (name: string, help: string, value: (o: Overview) => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(value(now()));
      },
    });
  const gauge = (name: string, help: string, value: (o: Overview) => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(value(now()));
      },
    });

  new Gauge({
    name: 'dpc_node_info',
    help: 'This node (always 1), labelled with its node id',
    labelNames: ['node_id'],
    registers,
    collect() {
      this.reset();
      this.set({ node_id: now().nodeId }, 1);
    },
  });
  gauge('dpc_uptime_seconds', 'Seconds since the node started', (o) => o.uptimeS);
  // The spec's stats (ConnectionOrchestrator.stats()).
  total('dpc_connection_attempts_total', 'Connection attempts (spec stats total_attempts)', (o) => o.stats.total_attempts);
  total(
    'dpc_connections_successful_total',
    'Successful connections (spec stats successful_connections)',
    (o) => o.stats.successful_connections,
  );
  total('dpc_connections_failed_total', 'Failed connections (spec stats failed_connections)', (o) => o.stats.failed_connections);
  total('dpc_session_upgrades_total', 'Sessions moved to a better tier', (o) => o.stats.upgrades);
  const perTier = (name: string, help: string, value: (o: Overview, tier: (typeof TIERS)[number]) => number) =>
    new Counter({
      name,
      help,
      labelNames: ['tier'],
      registers,
      collect() {
        this.reset();
        const o = now();
        for (const tier of TIERS) this.inc({ tier }, value(o, tier));
      },
    });
  perTier('dpc_strategy_usage_total', 'Connections established per tier (spec stats strategy_usage)', (o, t) => o.stats.strategy_usage[t]);
  perTier('dpc_tier_attempts_total', 'Attempts per tier', (o, t) => o.stats.tiers[t]?.attempts ?? 0);
  perTier('dpc_tier_successes_total', 'Successful attempts per tier', (o, t) => o.stats.tiers[t]?.successes ?? 0);
  new Counter({
    name: 'dpc_tier_failures_total',
    help: 'Failed attempts per tier and reason (at most 64 reasons a tier)',
    labelNames: ['tier', 'reason'],
    registers,
    collect() {
      this.reset();
      const o = now();
      for (const tier of TIERS)
        for (const [reason, n] of Object.entries(o.stats.tiers[tier]?.failures ?? {})) this.inc({ tier, reason: reason.slice(0, 200) }, n);
    },
  });
  new Gauge({
    name: 'dpc_sessions',
    help: 'Peer sessions by state (connected: with a live path, labelled by its tier)',
    labelNames: ['state', 'tier'],
    registers,
    collect() {
      this.reset();
      const counts = new Map<string, number>();
      for (const s of now().sessions) {
        const key = JSON.stringify([
          s.connected ? 'connected' : s.deferred ? 'deferred' : 'disconnected',
          s.connected ? (s.tier ?? '') : '',
        ]);
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      for (const [key, n] of counts) {
        const [state, tier] = JSON.parse(key) as [string, string];
        this.set({ state, tier }, n);
      }
    },
  });
  gauge('dpc_session_unacked_messages', 'Messages in the outboxes not yet acknowledged', (o) =>
    o.sessions.reduce((n, s) => n + s.unacked, 0),
  );

  const connect = new Histogram({
    name: 'dpc_connect_duration_seconds',
    help: 'Time to connect per tier (from the start of a connect to the winning tier)',
    labelNames: ['tier'],
    buckets: DURATION_BUCKETS_S,
    registers,
  });
  const acked = new Histogram({
    name: 'dpc_message_ack_rtt_seconds',
    help: 'Sent message queued → acknowledged by the peer, per tier of the session',
    labelNames: ['tier'],
    buckets: DURATION_BUCKETS_S,
    registers,
  });
  const onConnect = (tier: string, ms: number) => connect.observe({ tier }, ms / 1000);
  const onAcked = (tier: string | undefined, ms: number) => acked.observe({ tier: tier ?? 'unknown' }, ms / 1000);
  monitor.hooks.connect.add(onConnect);
  monitor.hooks.acked.add(onAcked);

  gauge('dpc_dht_routing_table_size', 'Nodes in the DHT routing table', (o) => o.dht.routingTableSize);
  gauge('dpc_dht_stored_records', 'Records this node stores for the DHT', (o) => o.dht.storedRecords);
  gauge('dpc_dht_registrations', 'Nodes registered here for signalling (signal_via)', (o) => o.dht.registrations);
  gauge('dpc_relay_volunteering', '1 when this node runs a relay server (tier 5 volunteer)', (o) => (o.relay.volunteering ? 1 : 0));
  gauge('dpc_relay_active_sessions', 'Relayed sessions open on this relay server', (o) => o.relay.activeSessions);
  total('dpc_relay_sessions_total', 'Relayed sessions opened on this relay server', (o) => o.relay.sessionsTotal);
  total('dpc_relay_refused_total', 'Requests this relay server refused', (o) => o.relay.refused);
  total('dpc_relay_forwarded_bytes_total', 'Bytes this relay server forwarded', (o) => o.relay.bytesForwarded);
  gauge('dpc_hub_connected', '1 when a Hub connection is up (tier 3)', (o) => (o.nat.hubConnected ? 1 : 0));
  new Counter({
    name: 'dpc_counter_total',
    help: 'Every @dpc/core Counters entry of the node (its own, DHT, tiers, API); security="true" for refused, rejected or malformed input',
    labelNames: ['name', 'security'],
    registers,
    collect() {
      this.reset();
      for (const [name, n] of Object.entries(now().counters)) this.inc({ name, security: String(isSecurityCounter(name)) }, n);
    },
  });

  return {
    contentType: registry.contentType,
    async text() {
      snap = undefined;
      try {
        return await registry.metrics();
      } finally {
        snap = undefined;
      }
    },
    close() {
      monitor.hooks.connect.delete(onConnect);
      monitor.hooks.acked.delete(onAcked);
      registry.clear();
    },
  };
}
