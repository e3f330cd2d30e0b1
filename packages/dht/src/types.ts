import type { Counters, EndpointBody, Identity, RelayOfferBody, SignedRecord } from '@dpc/core';
import type { EndpointSample } from './endpoint-vote.js';

/** A UDP address of a DHT node. */
export interface DhtPeer {
  host: string;
  port: number;
}

/** Options of createDht(). Times are in milliseconds. */
export interface DhtOptions {
  /** The node's identity: its Kademlia id is `identity.kademliaId`. Required. */
  identity: Identity;
  /** UDP port. Default 8889 (`[dht] port`); 0 picks a free port. */
  port?: number;
  /**
   * Bind address (`[dht] host`). Default 'dual': one socket on `::` that also receives IPv4
   * (IPV6_V6ONLY off), falling back to IPv4 only on a host without IPv6. An IPv4 address binds
   * that address only (IPv4); an IPv6 address binds that address only (IPv6, `::` = any IPv6).
   */
  host?: string;
  /** Bootstrap nodes (`[dht] seed_nodes`). Default none: this node is a bootstrap node. */
  seeds?: DhtPeer[];
  /**
   * Directory where the routing table's contacts are saved (`dht-contacts.json`, at most 256,
   * after joining and on `stop()`, with the seeds the node ran with). The next `start()` with the
   * same seeds asks them once when no seed answers within one RPC timeout; contacts saved under
   * other seeds, or used by a node without seeds, are ignored. Default none: nothing is saved.
   */
  dataDir?: string;
  /** Bucket size and replication factor. Default 20. */
  k?: number;
  /** Lookup parallelism. Default 3. */
  alpha?: number;
  /** Deadline for a seed to answer in start(). Default 10 000. */
  bootstrapTimeoutMs?: number;
  /** Default deadline of findPeer/findRelays/announce lookups. Default 10 000. */
  lookupTimeoutMs?: number;
  /** Bucket refresh period. Default 3 600 000. */
  bucketRefreshIntervalMs?: number;
  /** Republish period of the endpoint record and relay offer. Default 1 800 000. */
  announceIntervalMs?: number;
  /** Deadline of one RPC. Default 2 000. */
  rpcTimeoutMs?: number;
  /** Retries of a timed-out RPC outside lookups. Default 1. */
  rpcRetries?: number;
  /** Retries of a timed-out RPC inside lookups. Default 0. */
  lookupRpcRetries?: number;
  /** First retry delay, doubled per retry. Default 200. */
  retryBackoffMs?: number;
  /** Lifetime of the records this node signs. Default 3 600 000. */
  recordTtlMs?: number;
  /**
   * Sequence numbers of the records this node signs; each call must return more than the last
   * (e.g. `openSequenceStore(dataDir).next` from @dpc/core, which survives restarts and a clock
   * set back). Default the clock in ms (kept increasing within one run).
   */
  sequence?: () => number;
  /**
   * The clock the records this node signs are stamped with (`ts`, and the expiry from it), ms
   * since the epoch. Default Date.now. Protocol timestamps (REGISTER, signals) keep the system
   * clock. For tests of a node whose clock is off (see `DpcNodeOptions.clockOffsetMs`).
   */
  recordClock?: () => number;
  /** Re-REGISTER period with the signal_via nodes (NAT keepalive). Default 20 000. */
  keepaliveIntervalMs?: number;
  /** How long this node, as a forwarder, keeps a registration. Default 65 000. */
  registrationTtlMs?: number;
  /** Expired record / registration sweep period. Default 60 000. */
  sweepIntervalMs?: number;
  /** DHT nodes to register with for signalling (1–4). Default 2. */
  signalViaCount?: number;
  /** The endpoint record body to announce (signal_via is filled in by the DHT). Default empty. */
  endpoint?: EndpointBody;
  /** Exempt loopback addresses from the per-host and per-/24 rules (each ip:port counts as a host). Default false. */
  allowLoopback?: boolean;
  /** Same for private (RFC 1918, ULA) addresses. Default false. */
  allowPrivate?: boolean;
  /** Per-host datagram rate limit (a host is an IPv4 address or an IPv6 /64). Default 50/s, burst 100. */
  rateLimit?: { perSecond?: number; burst?: number };
  /**
   * Storage bounds against squatting. Defaults: 10 000 records, 256 per source (its /24 or /64),
   * 64 per key, 4 per key from one source, one per publisher per key, and no record kept more than
   * 70 min after it was stored (`maxTtlMs` per kind), whatever expiry it claims. A full key or
   * store evicts the oldest record of the most represented source, never by expiry.
   */
  storage?: {
    maxRecords?: number;
    maxRecordsPerHost?: number;
    maxOffersPerKey?: number;
    maxRecordsPerKeyPerSource?: number;
    maxTtlMs?: { endpoint?: number; 'relay-offer'?: number };
  };
  /**
   * Memory bound of the signal replay cache, in bytes. Every signal is remembered until it turns
   * stale (120 s), and new signals beyond capacity / 241 s per second are refused
   * (`rejects.signal_rate_limited`), so the bound always suffices. Default 2 MiB (16 384 signals, 68/s).
   */
  signalReplayCacheBytes?: number;
  /** Registrations held as a forwarder. Default 1024. */
  maxRegistrations?: number;
  /** Counters to share with the rest of the node. Default: a new set. */
  counters?: Counters;
}

/** Every async method takes these. Without a signal, the default timeout of the operation applies. */
/** Options of `Dht.signal`. */
export interface SignalOptions extends OpOptions {
  /**
   * A route the caller already holds (the target's `signal_via` forwarders, or its own address):
   * tried before any lookup, so a conversation of several signals costs one lookup at most. At most
   * 4 are tried; when none delivers, the target is looked up as without it.
   */
  via?: DhtPeer[];
}

export interface OpOptions {
  signal?: AbortSignal;
}

export interface FindPeerOptions extends OpOptions {
  /**
   * Only a record with a higher seq ends the lookup early (a caller holding this seq wants a newer
   * one): this node's own copy and answers carrying older records do not; without any newer one
   * the lookup runs to its end and returns the highest seq it saw.
   */
  newerThan?: number;
}

/** Progress of slow operations (for CLIs and logs). */
export type DhtProgressEvent =
  /** A seed (or, with `saved`, a contact saved by an earlier run) answered the join PING or not. */
  | { type: 'bootstrap:seed'; seed: DhtPeer; ok: boolean; error?: string; saved?: boolean }
  /**
   * Saved contacts (`dht-contacts.json`): `tried` when no seed answered within one RPC timeout;
   * `ignored` when they were saved under other seeds or the node has none (a bootstrap node).
   */
  | { type: 'bootstrap:saved'; action: 'tried' | 'ignored'; contacts: number; reason?: 'other-seeds' | 'bootstrap-node' }
  | { type: 'bootstrap:done'; answeredSeeds: number; routingTableSize: number }
  | { type: 'lookup:query'; target: string; peer: DhtPeer }
  | { type: 'lookup:done'; target: string; kind: 'node' | 'value'; rpcs: number; responded: number; found: boolean; ms: number }
  | {
      type: 'announce:done';
      kind: 'endpoint' | 'relay-offer';
      storedAt: number;
      closest: number;
      signalVia: number;
      /** The stored record's seq and signing time (ms since the epoch, by `recordClock`). */
      seq: number;
      issuedAt: number;
    };

/** A signal received from another node (its signature is verified). */
export interface SignalEvent {
  from: string;
  publicKey: Buffer;
  payload: unknown;
  /** The node that delivered it (a forwarder, or the sender itself). */
  via: DhtPeer;
}

export interface DhtEvents {
  signal: [SignalEvent];
  progress: [DhtProgressEvent];
  /** Background failures (republish, keepalive) that do not stop the node. */
  warning: [Error];
}

export interface AnnounceResult<K extends 'endpoint' | 'relay-offer' = 'endpoint' | 'relay-offer'> {
  record: SignedRecord<K>;
  /** Nodes that accepted the STORE (per key for relay offers, summed). */
  storedAt: number;
  closest: number;
  signalVia: EndpointBody['signal_via'];
}

export interface DiscoveredEndpoint {
  ip: string;
  port: number;
  votes: number;
  majority: boolean;
  samples: EndpointSample[];
}

export interface DhtStats {
  nodeId: string;
  address: DhtPeer | null;
  /** The address families the socket is bound to, and the protocols sharing it. */
  udp: { ipv4: boolean; ipv6: boolean; protocols: Array<{ name: string; prefix: string }> };
  routingTableSize: number;
  storedRecords: number;
  registrations: number;
  rpcIn: Record<string, number>;
  rpcOut: Record<string, number>;
  rejects: Record<string, number>;
  counters: Record<string, number>;
}

/**
 * A protocol sharing the DHT's UDP socket (and so its NAT mapping): hole punching, a UDX stream.
 * Its datagrams start with `prefix`, whose first byte must not be one the DHT uses (0x80–0x8f,
 * 0xde, 0xdf: MessagePack map headers).
 */
export interface UdpProtocolOptions {
  /** Short name for counters (`udp.in.<name>`, `udp.out.<name>`, `udp.handler_errors.<name>`): [a-z0-9_-], ≤ 32. */
  name: string;
  /** One byte, or 1–8 bytes (a magic); may not overlap another registered protocol's prefix. */
  prefix: number | Uint8Array;
  /**
   * Called with every datagram starting with `prefix` (the prefix included) and its source (an
   * IPv4-mapped address is given as plain IPv4). A throw or a rejection is counted, nothing more.
   */
  onMessage: (msg: Buffer, from: DhtPeer) => void | Promise<void>;
}

/** A registered protocol: send from the DHT's socket, close to unregister. */
export interface UdpProtocol {
  readonly name: string;
  readonly prefix: Buffer;
  /** Sends one datagram from the DHT's socket (the same port and NAT mapping); it may not start with a DHT byte. */
  send(msg: Uint8Array, to: DhtPeer): Promise<void>;
  /** Unregisters: datagrams with this prefix are dropped again (`rejects.unmatched`). Idempotent. */
  close(): void;
}

/** Body of a relay offer without node_id (filled in from the identity). */
export type RelayOfferInput = Omit<RelayOfferBody, 'node_id'>;

/** The DHT service. */
export interface Dht {
  readonly nodeId: string;
  readonly kademliaId: Buffer;
  /** The bound UDP address (after start); `::` for the default dual-stack socket. */
  readonly address: DhtPeer | null;
  start(opts?: OpOptions): Promise<void>;
  stop(): Promise<void>;
  announceFull(opts?: OpOptions): Promise<AnnounceResult<'endpoint'>>;
  announceRelay(offer: RelayOfferInput, opts?: OpOptions): Promise<AnnounceResult<'relay-offer'>>;
  setEndpointBody(body: EndpointBody): void;
  endpointBody(): EndpointBody;
  findPeer(nodeId: string, opts?: FindPeerOptions): Promise<SignedRecord<'endpoint'>>;
  findRelays(opts?: OpOptions & { region?: string }): Promise<SignedRecord<'relay-offer'>[]>;
  closestPeers(key: Uint8Array, opts?: OpOptions): Promise<Array<DhtPeer & { nodeId: string }>>;
  discoverEndpoint(opts?: OpOptions & { peers?: DhtPeer[] }): Promise<DiscoveredEndpoint>;
  signal(nodeId: string, payload: unknown, opts?: SignalOptions): Promise<void>;
  ping(peer: DhtPeer, opts?: OpOptions): Promise<{ nodeId: string; rttMs: number }>;
  contacts(): Array<DhtPeer & { nodeId: string }>;
  stats(): DhtStats;
  /**
   * Shares the DHT's UDP socket with another protocol. Register before or after start(); the
   * registration ends with `close()` or stop(). The reflexive address of this very socket (the
   * mapping a tier punches from) is what discoverEndpoint() measures.
   */
  registerProtocol(opts: UdpProtocolOptions): UdpProtocol;
  /** Sends one raw datagram from the DHT's socket. Its first byte must not be a DHT byte (0x80–0x8f, 0xde, 0xdf). */
  sendRaw(msg: Uint8Array, host: string, port: number): Promise<void>;
  on<E extends keyof DhtEvents>(event: E, listener: (...args: DhtEvents[E]) => void): this;
  once<E extends keyof DhtEvents>(event: E, listener: (...args: DhtEvents[E]) => void): this;
  off<E extends keyof DhtEvents>(event: E, listener: (...args: DhtEvents[E]) => void): this;
}
