import type { Counters } from '@dpc/core';

/** Options of `createHubServer`. Every limit has a default (see constants.ts). */
export interface HubServerOptions {
  /** Bind address. Default '0.0.0.0'. */
  host?: string;
  /** TCP port; 0 picks a free one. Default 8886 (`[hub] port`). */
  port?: number;
  /**
   * The URL nodes dial (`wss://hub.example.org/`): named in every login challenge, and a node signs
   * only a challenge naming the Hub it dialled. Default `ws://<host>:<port>/` (`wss://` with `tls`) of the listening socket.
   */
  url?: string;
  /**
   * Serve `wss://` (TLS termination in the Hub): PEM certificate chain and private key
   * (`[hub] tls_cert` / `[hub] tls_key` name the files). Default: plain `ws://` (behind a proxy).
   */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Redis URL shared by several Hub instances (`[hub] redis_url`). Default: none, one instance. */
  redisUrl?: string;
  /**
   * `[hub] cluster_secret`: shared by every Hub instance on `redisUrl` (at least 16 characters;
   * required with `redisUrl`). Messages and presence values in Redis are authenticated with it
   * (HMAC-SHA256): whoever can write to Redis without it cannot forge routing, acks or kicks.
   */
  clusterSecret?: string;
  /** Messages between Hubs sent longer ago (by the sender's clock) than this are refused, ms. Default 30 000. */
  busMaxSkewMs?: number;
  /** `start()` fails (DPC_HUB_UNAVAILABLE) when Redis cannot be reached within this, ms. Default 10 000. */
  redisConnectTimeoutMs?: number;
  /** Prefix of Redis keys and channels. Default 'dpc-hub:'. */
  redisPrefix?: string;
  /** STUN URLs handed out (`[webrtc] stun_servers`). Default none. */
  stunServers?: readonly string[];
  /** TURN URLs handed out with REST credentials (`[hub] turn_servers`). Default none. */
  turnServers?: readonly string[];
  /** coturn's `static-auth-secret` (`[hub] turn_secret`). Without it no TURN server is handed out. */
  turnSecret?: string;
  /** Lifetime of TURN credentials, s. Default 600. */
  turnTtlS?: number;
  /** Largest WebSocket message read, bytes (bigger: connection closed, 1009). Default 64 KiB. */
  maxFrameBytes?: number;
  /** Largest signalling payload routed (JSON bytes; bigger: refused, connection kept). Default 16 KiB. */
  maxPayloadBytes?: number;
  /** Connections at once. Default 10 000. */
  maxConnections?: number;
  /** Connections from one source (IPv4 /24, IPv6 /64, each loopback address). Default 32. */
  maxConnectionsPerSource?: number;
  /** Signalling messages per second per node. Default 50. */
  ratePerS?: number;
  /** Burst of the per-node rate. Default 100. */
  rateBurst?: number;
  /** Refusals in a row (rate, size) after which the connection is closed. Default 200. */
  maxStrikes?: number;
  /** Challenge lifetime = time allowed to log in, ms. Default 10 000. */
  loginTimeoutMs?: number;
  /** WebSocket ping period, ms; a connection that missed one pong is closed. Default 5 000. */
  pingIntervalMs?: number;
  /** Presence TTL in Redis, ms. Default 30 000. */
  presenceTtlMs?: number;
  /** Wait for another Hub to confirm a routed message, ms. Default 5 000. */
  routeTimeoutMs?: number;
  /** Shared counters (`hub_*`). Default: a fresh set. */
  counters?: Counters;
  /** Clock, ms (tests of expiry). Default Date.now. */
  now?: () => number;
}

/** A running Hub. */
export interface HubServer {
  /** Listening port (after `start`). */
  readonly port: number;
  /** The URL this Hub names in its challenges. */
  readonly url: string;
  readonly counters: Counters;
  start(opts?: { signal?: AbortSignal }): Promise<void>;
  /** Closes every connection (1001), the listener and Redis. */
  stop(): Promise<void>;
  /** Connections now, and how many of them are logged in. */
  stats(): { connections: number; loggedIn: number };
  /** Whether a node is logged in to this instance. */
  hasNode(nodeId: string): boolean;
}
