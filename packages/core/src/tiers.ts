import type { EventEmitter } from 'node:events';
import type { SignedRecord } from './records.js';

/** The six tiers, with the spec's names (used in stats as `strategy_usage` keys). */
export const TIERS = ['ipv6_direct', 'ipv4_direct', 'hub_webrtc', 'udp_hole_punch', 'volunteer_relay', 'gossip'] as const;
export type TierName = (typeof TIERS)[number];

/** Priority of a tier: 1 (best) to 6. */
export function tierPriority(tier: TierName): number {
  return TIERS.indexOf(tier) + 1;
}

/** A framed, mutually authenticated, encrypted connection to one peer over some tier. */
export interface Connection extends EventEmitter {
  readonly tier: TierName;
  readonly localNodeId: string;
  readonly remoteNodeId: string;
  /** Raw 32-byte Ed25519 key of the peer, proven in the TLS handshake. */
  readonly remotePublicKey: Buffer;
  /**
   * Node id of the side that opened the handshake (the TLS client), the same at both ends, even
   * when both asked for the connection (tier 4's crossed punches: one punch, handed to both
   * connect() calls). Undefined when the connection does not know.
   */
  readonly initiator?: string | undefined;
  /** Last measured round-trip time in ms (from the handshake, then from each ping). */
  readonly rttMs: number;
  readonly closed: boolean;
  /** The remote transport address when the pipe has one (direct TCP); undefined over relays. */
  readonly remoteAddress?: string | undefined;
  /**
   * Set when the peer said goodbye (its close(), e.g. a node stopping): a clean close, not a
   * lost path. Undefined while open and when the path broke (reset, timeout, a killed process).
   */
  readonly closedByPeer?: { reason?: string } | undefined;
  /** Sends one application message; resolves once it is handed to the transport (backpressure). */
  send(message: unknown, opts?: { signal?: AbortSignal }): Promise<void>;
  /** Measures the round-trip time. */
  ping(opts?: { signal?: AbortSignal }): Promise<number>;
  /** Stops delivering 'message' events until resume(); the peer is slowed by TCP/flow control. */
  pause(): void;
  resume(): void;
  /** Graceful close. */
  close(reason?: string): Promise<void>;
  on(event: 'message', listener: (message: unknown) => void): this;
  on(event: 'close', listener: (error?: Error) => void): this;
  on(event: 'error', listener: (error: Error) => void): this;
}

/** What a node knows about its own network right now (input to applicability checks). */
export interface NetworkState {
  /** Whether a Hub connection is up (tier 3 usable; hybrid rule skips tiers 4–5). */
  hubConnected: boolean;
  /** This node's own addresses and NAT type, when known. */
  localIPv6?: string[];
  localIPv4?: Array<{ ip: string; prefix: number }>;
  /**
   * This node's external IPv4 addresses as peers see them (learned from the DHT or configured);
   * tier 2 dials a peer's LAN address only when one equals the peer's. Undefined: unknown.
   */
  externalIPv4?: string[];
  natType?: 'none' | 'cone' | 'symmetric' | 'blocked' | 'unknown';
}

export type Applicability = { applicable: true } | { applicable: false; reason: string };

/** One tier's way of reaching a peer. All six tiers implement this. */
export interface Strategy {
  readonly name: TierName;
  /** 1 (best) to 6. */
  readonly priority: number;
  /** Decides, without waiting, whether this tier can be tried for the peer. */
  isApplicable(peer: SignedRecord<'endpoint'>, network: NetworkState): Applicability;
  /** Reaches the peer and returns a secure Connection, or rejects with a typed error. */
  connect(peer: SignedRecord<'endpoint'>, opts: { signal: AbortSignal; network?: NetworkState }): Promise<Connection>;
  /**
   * This tier's deadline for this peer, ms, when it is not `[connection] <tier>_timeout` (tier 4
   * gives a birthday punch `[hole_punch] birthday_timeout`). Undefined or absent: the config key.
   */
  deadlineMs?(peer: SignedRecord<'endpoint'>, network: NetworkState): number | undefined;
}
