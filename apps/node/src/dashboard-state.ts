import { isIPv4 } from 'node:net';
import type { TierName } from '@dpc/core';
import { localAddresses } from '@dpc/direct';
import type { OrchestratorStats } from '@dpc/orchestrator';
import { type DpcNode, hostPort, type NodeEvents } from './node.js';

/** Peers whose upgrades and ack round trips are remembered (the oldest is forgotten first). */
const MAX_PEERS = 1024;
/** Upgrades remembered per peer. */
const MAX_UPGRADES_PER_PEER = 8;

/** What the node sees of one peer session, for the dashboard. */
export interface SessionView {
  peerId: string;
  tier: TierName | null;
  connected: boolean;
  deferred: boolean;
  unacked: number;
  remoteAddress: string | null;
  /** Round trip of the last acknowledged message sent from here (queued → acknowledged), ms. */
  ackRttMs: number | null;
  /** Time to connect of the last connect to this peer, ms. */
  connectMs: number | null;
  upgrades: Array<{ from: TierName | null; to: TierName; at: string }>;
}

/** Tier 5's relay server, when this node volunteers: load from its `relay` events and the shared counters. */
export interface RelayView {
  /** Whether the relay server runs (volunteer = true and a public address to announce). */
  volunteering: boolean;
  activeSessions: number;
  sessionsTotal: number;
  refused: number;
  bytesForwarded: number;
}

/** Everything the dashboard shows, sent as the API's `overview` result. */
export interface Overview {
  nodeId: string;
  startedAt: string;
  uptimeS: number;
  addresses: {
    /** Addresses the direct listener is bound to. */
    tcp: string[];
    /** The DHT's UDP address. */
    dht: string | null;
    /** What the endpoint record announces. */
    announced: { ipv6: string[]; ipv4Local: string[]; ipv4External: string[]; relays: string[] };
  };
  nat: { type: string; externalIPv4: string[]; hubConnected: boolean };
  dht: { routingTableSize: number; storedRecords: number; registrations: number };
  tiers: { installed: TierName[]; missing: string[] };
  sessions: SessionView[];
  stats: OrchestratorStats;
  relay: RelayView;
  counters: Record<string, number>;
}

type Listener<E extends keyof NodeEvents> = (...args: NodeEvents[E]) => void;

/**
 * Watches a node from its events (attach before `start` to see every connect): per-peer upgrades,
 * ack round trips and connect times, and the relay server's load; `overview()` puts them together
 * with the node's own state. Bounded: at most MAX_PEERS peers are remembered.
 */
export class NodeMonitor {
  readonly node: DpcNode;
  readonly startedAt = new Date();
  readonly #peers = new Map<string, { ackRttMs: number | null; connectMs: number | null; upgrades: SessionView['upgrades'] }>();
  readonly #relay = { activeSessions: 0, sessionsTotal: 0, refused: 0 };
  readonly #relaySessions = new Set<string>();
  readonly #listeners: Array<[keyof NodeEvents, (...args: never[]) => void]> = [];
  /** Called for each connect (tier, ms) and each ack round trip (ms): the metrics observe them. */
  readonly hooks: { connect: Set<(tier: TierName, ms: number) => void>; acked: Set<(tier: TierName | undefined, ms: number) => void> } = {
    connect: new Set(),
    acked: new Set(),
  };

  constructor(node: DpcNode) {
    this.node = node;
    this.#on('connected', (e) => {
      this.#peer(e.peerId).connectMs = e.ms;
      for (const h of this.hooks.connect) h(e.tier, e.ms);
    });
    this.#on('upgraded', (e) => {
      const ups = this.#peer(e.peerId).upgrades;
      ups.push({ from: e.from ?? null, to: e.to, at: new Date().toISOString() });
      if (ups.length > MAX_UPGRADES_PER_PEER) ups.shift();
    });
    this.#on('acked', (e) => {
      this.#peer(e.peerId).ackRttMs = e.ms;
      for (const h of this.hooks.acked) h(e.tier, e.ms);
    });
    this.#on('tier-event', (e) => {
      if (e.event !== 'relay') return;
      const id = String(e.fields.session_id ?? '');
      if (e.fields.kind === 'session') {
        this.#relay.sessionsTotal++;
        if (id && this.#relaySessions.size < 65_536) this.#relaySessions.add(id);
      } else if (e.fields.kind === 'session-end') this.#relaySessions.delete(id);
      else if (e.fields.kind === 'refused') this.#relay.refused++;
      this.#relay.activeSessions = this.#relaySessions.size;
    });
  }

  #on<E extends keyof NodeEvents>(event: E, fn: Listener<E>): void {
    this.node.on(event, fn as never);
    this.#listeners.push([event, fn as never]);
  }

  #peer(peerId: string) {
    let p = this.#peers.get(peerId);
    if (p) {
      // most recently seen last, so the oldest is forgotten first
      this.#peers.delete(peerId);
    } else p = { ackRttMs: null, connectMs: null, upgrades: [] };
    this.#peers.set(peerId, p);
    if (this.#peers.size > MAX_PEERS) this.#peers.delete(this.#peers.keys().next().value as string);
    return p;
  }

  /** Relay server load (zero and `volunteering: false` when the node does not volunteer). */
  relay(): RelayView {
    const info = this.node.plugins.find((p) => p.name === 'volunteer_relay')?.info;
    return {
      volunteering: info?.server === true,
      activeSessions: this.#relay.activeSessions,
      sessionsTotal: this.#relay.sessionsTotal,
      refused: this.#relay.refused,
      bytesForwarded: this.node.counters.get('bytes_forwarded'),
    };
  }

  /** The node's state now. Throws DPC_API_NOT_READY while the node is starting. */
  overview(): Overview {
    const node = this.node;
    if (!node.orchestrator) throw Object.assign(new Error('the node is still starting'), { code: 'DPC_API_NOT_READY' });
    const body = node.dht.endpointBody();
    const network = node.network;
    const external = network.externalIPv4 ?? body.ipv4_external.map((e) => e.ip);
    const dhtStats = node.dht.stats();
    const sessions = node.orchestrator.sessions().map((s): SessionView => {
      const p = this.#peers.get(s.peerId);
      return {
        peerId: s.peerId,
        tier: s.tier ?? null,
        connected: s.connected,
        deferred: s.deferred,
        unacked: s.unacked,
        remoteAddress: s.remoteAddress ?? null,
        ackRttMs: p?.ackRttMs ?? null,
        connectMs: p?.connectMs ?? null,
        upgrades: p?.upgrades ?? [],
      };
    });
    return {
      nodeId: node.nodeId,
      startedAt: this.startedAt.toISOString(),
      uptimeS: Math.round((Date.now() - this.startedAt.getTime()) / 1000),
      addresses: {
        tcp: node.listener.addresses(),
        dht: node.dht.address ? hostPort(node.dht.address.host, node.dht.address.port) : null,
        announced: {
          ipv6: body.ipv6.map((a) => hostPort(a.ip, a.port)),
          ipv4Local: body.ipv4_local.map((a) => hostPort(a.ip, a.port)),
          ipv4External: body.ipv4_external.map((a) => hostPort(a.ip, a.port)),
          relays: body.relays.map((r) => hostPort(r.ip, r.port)),
        },
      },
      nat: { type: natType(network.natType, external), externalIPv4: external, hubConnected: network.hubConnected },
      dht: { routingTableSize: dhtStats.routingTableSize, storedRecords: dhtStats.storedRecords, registrations: dhtStats.registrations },
      tiers: { installed: node.installedTiers(), missing: node.missingTiers.map((m) => `${m.tier} (${m.package})`) },
      sessions,
      stats: node.orchestrator.stats(),
      relay: this.relay(),
      counters: node.counters.snapshot(),
    };
  }

  close(): void {
    for (const [ev, fn] of this.#listeners.splice(0)) this.node.off(ev, fn as never);
    this.hooks.connect.clear();
    this.hooks.acked.clear();
  }
}

/**
 * The NAT type a tier measured (tier 4 reports it), else what the external IPv4 address says: one of
 * this host's addresses → 'none (public IPv4)'; another one → 'behind NAT'; none learnt → 'unknown'.
 */
export function natType(reported: string | undefined, externalIPv4: readonly string[]): string {
  if (reported && reported !== 'unknown') return reported;
  const ext = externalIPv4.find((ip) => isIPv4(ip));
  if (!ext) return 'unknown';
  return localAddresses().ipv4.some((a) => a.ip === ext) ? 'none (public IPv4)' : 'behind NAT';
}
