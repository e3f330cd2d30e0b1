import type { EventEmitter } from 'node:events';
import type { Connection, Counters, Identity, RelayOfferBody } from '@dpc/core';
import type { RelayDirectory } from './directory.js';
import type { DisconnectReason, RefusalCode } from './messages.js';

export interface RelayServerOptions {
  identity: Identity;
  /** Address the relay listens on. Default '0.0.0.0'. */
  host?: string;
  /** TCP port; 0 picks a free one. Default 8889. */
  port?: number;
  /**
   * Address announced in the offer. Default `host` when it is not a wildcard. With a directory,
   * `start()` refuses (RelayPublicAddressError) an address nobody on the internet can reach:
   * private, loopback, link-local, CGNAT, multicast, unspecified (see `publicAddressProblem`).
   */
  publicIp?: string;
  /**
   * Announce a loopback address (tests and demos on one machine); also counts each loopback
   * ip:port as its own source for the per-source caps. Default false.
   */
  allowLoopback?: boolean;
  /** Port announced in the offer. Default the bound port. */
  publicPort?: number;
  /** Where the offer is announced (the DHT). Without one, nothing is announced. */
  directory?: RelayDirectory;
  /** Region announced in the offer (spec `[relay] region`). Default ''. */
  region?: string;
  /** Sessions at most (spec `[relay] max_peers`). Default 20. */
  maxPeers?: number;
  /** Bytes forwarded per second, relay-wide, in Mbit/s (spec `[relay] bandwidth_limit_mbps`). Default 50. */
  bandwidthLimitMbps?: number;
  /** RELAY_MESSAGEs per second per peer. Default 100 (spec). */
  messagesPerSecond?: number;
  /** Burst of the per-peer message bucket. Default 100. */
  messageBurst?: number;
  /** A waiting registration expires after this, ms. Default 10 000. */
  registrationTimeoutMs?: number;
  /** A session without traffic is closed after this, ms. Default 300 000. */
  idleTimeoutMs?: number;
  /** A session lasts at most this long, ms. Default 3 600 000. */
  maxSessionDurationMs?: number;
  /** A session carries at most this many bytes. Default 1 GiB. */
  maxSessionBytes?: number;
  /** Largest RELAY_MESSAGE payload, bytes. Default 65 536. */
  maxMessageBytes?: number;
  /** Control connections at most. Default 1024. */
  maxConnections?: number;
  /** Standing reservations at most. Default 256. */
  maxReservations?: number;
  /** Waiting registrations at most (relay-wide). Default 256. */
  maxPending?: number;
  /**
   * Connections not yet secured (sorting, TLS handshake, data connections not yet bound) from
   * one source (IPv4 /24, IPv6 /64, one loopback address) at most. Default 8.
   */
  maxPendingPerSource?: number;
  /** Connections (control and data) from one source at most. Default 64. */
  maxConnectionsPerSource?: number;
  /** Standing reservations held for clients of one source at most. Default 16. */
  maxReservationsPerSource?: number;
  /** Sessions and waiting registrations initiated from one source at most (the answering side is not charged). Default 8. */
  maxSessionsPerSource?: number;
  /** Sessions and waiting registrations initiated by one identity at most. Default 4. */
  maxSessionsPerPeer?: number;
  /** Offer refresh period, ms. Default 600 000. */
  announceIntervalMs?: number;
  /** Load changes are announced at most this often, ms. Default 1000. */
  announceDebounceMs?: number;
  /** Fraction of time up, 0–1, for the offer. Default: share of the last 24 h this process has run. */
  uptime?: () => number;
  handshakeTimeoutMs?: number;
  /**
   * Offer spliced sessions (plain TCP data connections on the relay's own port, bytes copied
   * between them) to clients that ask for them. Default true; without the relay's own listener
   * (`start()` not called) sessions use RELAY_MESSAGEs.
   */
  splice?: boolean;
  /** A spliced session whose two data connections did not both arrive by then ends (`data_timeout`), ms. Default 5000. */
  dataConnectionTimeoutMs?: number;
  counters?: Counters;
}

export interface RelaySessionInfo {
  session_id: string;
  peers: [string, string];
}

export interface RelayServer extends EventEmitter {
  /** Binds the listener and announces the offer. */
  start(opts?: { signal?: AbortSignal }): Promise<void>;
  /** Ends every session and connection, withdraws nothing (the offer expires), clears every timer. */
  stop(): Promise<void>;
  /** Serves a control connection secured elsewhere (e.g. by a shared @dpc/direct listener). */
  accept(conn: Connection): void;
  readonly port: number;
  /** The offer as it would be announced now. */
  offer(): RelayOfferBody;
  stats(): Record<string, number>;
  on(event: 'session', fn: (s: RelaySessionInfo) => void): this;
  on(event: 'session-end', fn: (s: RelaySessionInfo & { reason: DisconnectReason }) => void): this;
  on(event: 'refused', fn: (e: { code: RefusalCode; nodeId: string }) => void): this;
  on(event: 'error', fn: (err: Error) => void): this;
}
