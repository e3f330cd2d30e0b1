import type { DpcConfig } from './config.js';
import type { Counters } from './counters.js';
import type { DeferredDelivery } from './deferred.js';
import { DpcError } from './errors.js';
import type { Identity } from './identity.js';
import type { KvStore } from './kv-store.js';
import { type EndpointBody, endpointBodySchema, type RelayOfferBody, type SignedRecord } from './records.js';
import type { Connection, NetworkState, Strategy, TierName } from './tiers.js';

/** A part of this node's endpoint record: one key of `EndpointBody`. */
export type EndpointPart = keyof EndpointBody;

/**
 * The DHT as a tier sees it: a directory of signed records and a signaller to nodes behind NAT.
 * `@dpc/dht`'s `Dht` satisfies it structurally (core does not import the DHT).
 */
export interface TierDht {
  /**
   * The peer's verified endpoint record. With `newerThan`, only a record of a higher seq ends the
   * lookup early (the caller holds that seq and wants a newer one); else the highest seq seen.
   */
  findPeer(nodeId: string, opts?: { signal?: AbortSignal; newerThan?: number }): Promise<SignedRecord<'endpoint'>>;
  /** Verified relay offers, optionally of one region. */
  findRelays(opts?: { signal?: AbortSignal; region?: string }): Promise<SignedRecord<'relay-offer'>[]>;
  /** Signs and stores this node's relay offer (`node_id` is filled in from the identity). */
  announceRelay(offer: Omit<RelayOfferBody, 'node_id'> & { node_id?: string }, opts?: { signal?: AbortSignal }): Promise<unknown>;
  /** Sends a signed payload to a node, through its `signal_via` forwarders when it is behind NAT. */
  signal(nodeId: string, payload: unknown, opts?: { signal?: AbortSignal; via?: Array<{ host: string; port: number }> }): Promise<void>;
  on(event: 'signal', fn: (e: { from: string; payload: unknown }) => void): unknown;
  off(event: 'signal', fn: (e: { from: string; payload: unknown }) => void): unknown;
  /**
   * This node's reflexive UDP endpoint as DHT peers see it (majority vote), asking `peers` when
   * given (else a few contacts); `samples` are the single answers (tier 4 classifies the NAT).
   */
  discoverEndpoint(opts?: { signal?: AbortSignal; peers?: Array<{ host: string; port: number }> }): Promise<{
    ip: string;
    port: number;
    votes: number;
    majority: boolean;
    samples?: Array<{ ip: string; port: number; responder: { nodeId: string; host: string; port: number } }>;
  }>;
  /** The DHT nodes closest to a 16-byte key, found by a lookup (beyond this node's contacts). */
  closestPeers?(key: Uint8Array, opts?: { signal?: AbortSignal }): Promise<Array<{ nodeId: string; host: string; port: number }>>;
  /** The UDP port the DHT is bound to (differs from `[dht] port` when that is 0), if bound. */
  localPort?(): number | undefined;
  /** The endpoint record body as announced now (read only: tiers change it with `setEndpointPart`). */
  endpointBody(): EndpointBody;
  /**
   * Shares the DHT's UDP socket (and so its NAT mapping, the one `discoverEndpoint` measured)
   * with another protocol: datagrams starting with `prefix` (never a DHT byte: 0x80–0x8f, 0xde,
   * 0xdf) go to `onMessage`; the handle sends from the same socket. Tier 4 punches through it.
   */
  registerProtocol(opts: {
    name: string;
    prefix: number | Uint8Array;
    onMessage: (msg: Buffer, from: { host: string; port: number }) => void | Promise<void>;
  }): TierUdpProtocol;
}

/** A protocol sharing the DHT's UDP socket (see `TierDht.registerProtocol`). */
export interface TierUdpProtocol {
  readonly name: string;
  send(msg: Uint8Array, to: { host: string; port: number }): Promise<void>;
  close(): void;
}

/** Structured logging; `fields` are key/value context. The app's logger satisfies it. */
export interface TierLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/**
 * What a tier plugin sees of the node (instead of the whole node). Built by the app for each
 * plugin; every call is on behalf of that plugin (`name`).
 */
export interface TierContext {
  /** The plugin this context was built for. */
  readonly name: TierName;
  readonly identity: Identity;
  readonly config: DpcConfig;
  /** The DHT as directory and signaller. */
  readonly dht: TierDht;
  /** The node's shared counters. */
  readonly counters: Counters;
  /**
   * The node's durable store, when it has one (shared: a tier keeps to its own key prefix, e.g.
   * `gossip/`). Tier 6 keeps its messages here.
   */
  readonly store?: KvStore;
  readonly log: TierLogger;
  /** Loopback addresses may be announced and dialled (single-machine tests and demos). */
  readonly allowLoopback: boolean;
  /** Aborts when the node shuts down. */
  readonly signal: AbortSignal;
  /** Hands an inbound, authenticated Connection of this tier to the orchestrator. */
  accept(conn: Connection): void;
  /**
   * Sets one part of this node's endpoint record. The first plugin to set a part owns it; a
   * part owned by another (plugin or the node itself) throws `EndpointPartOwnedError`. The node
   * re-signs and re-announces the record when a part changes (debounced). The value is checked
   * against the record schema at once (throws `RecordMalformedError`).
   */
  setEndpointPart<K extends EndpointPart>(part: K, value: EndpointBody[K]): void;
  /**
   * Merges what this tier knows about the node's network into the state the orchestrator's
   * applicability checks read: tier 3 reports `hubConnected`, tier 4 `natType`.
   */
  reportNetwork(partial: Partial<NetworkState>): void;
  /**
   * An event for the node's user (`dpc-node start --json` prints `{ event, ...fields }`), e.g.
   * `emit('relay', { kind: 'session', peers })`.
   */
  emit(event: string, fields: Record<string, unknown>): void;
}

/** What a started tier hands back to the node. */
export interface StartedTier {
  /** The live-pipe strategy offered to the orchestrator, when this tier has one. */
  strategy?: Strategy;
  /** A deferred path (tier 6, store-and-forward), when this tier is one; at most one per node. */
  deferred?: DeferredDelivery;
  /** Stops everything the tier started (the node calls it on shutdown). */
  stop(): Promise<void>;
  /** Shown when the tier is ready (`tier volunteer_relay ready client=true ...`). */
  info?: Record<string, unknown>;
}

/**
 * A tier package's entry point for the node app. An installed tier package exports one as
 * `tierPlugin`; the app imports the package and starts it with a `TierContext`.
 */
export interface TierPlugin {
  readonly name: TierName;
  start(ctx: TierContext): Promise<StartedTier>;
}

/** A plugin claimed a part of the endpoint record that another owner holds. */
export class EndpointPartOwnedError extends DpcError {
  readonly part: EndpointPart;
  readonly owner: string;
  readonly claimant: string;
  constructor(part: EndpointPart, owner: string, claimant: string) {
    super('DPC_ENDPOINT_PART_OWNED', `endpoint record part '${part}' belongs to ${owner}; ${claimant} cannot set it`);
    this.part = part;
    this.owner = owner;
    this.claimant = claimant;
  }
}

export interface EndpointPartsOptions {
  /** Starting body (e.g. `emptyEndpointBody()`). */
  initial: EndpointBody;
  /** Called with the new body after changes settle (`debounceMs` after the last one). */
  onChange: (body: EndpointBody) => void;
  /** Quiet time before `onChange`, ms. Default 200. */
  debounceMs?: number;
}

/**
 * The endpoint record's parts and their owners: each part has one owner (the first to claim or
 * set it). Changes are validated at once and reported, debounced, through `onChange`.
 */
export class EndpointParts {
  readonly #owners = new Map<EndpointPart, string>();
  readonly #o: EndpointPartsOptions;
  #body: EndpointBody;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(o: EndpointPartsOptions) {
    this.#o = o;
    this.#body = endpointBodySchema(o.initial, 'endpoint');
  }

  /** Claims parts for `owner` without setting them (throws when another owner holds one). */
  claim(owner: string, ...parts: EndpointPart[]): void {
    for (const p of parts) this.#check(owner, p);
    for (const p of parts) this.#owners.set(p, owner);
  }

  /** Owner of a part, if any. */
  owner(part: EndpointPart): string | undefined {
    return this.#owners.get(part);
  }

  /** Sets a part on behalf of `owner`; returns whether the body changed. */
  set<K extends EndpointPart>(owner: string, part: K, value: EndpointBody[K]): boolean {
    this.#check(owner, part);
    const next = endpointBodySchema({ ...this.#body, [part]: value }, 'endpoint');
    this.#owners.set(part, owner);
    if (JSON.stringify(next[part]) === JSON.stringify(this.#body[part])) return false;
    this.#body = next;
    this.#schedule();
    return true;
  }

  body(): EndpointBody {
    return structuredClone(this.#body);
  }

  /** Reports a pending change now. */
  flush(): void {
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#o.onChange(this.body());
  }

  /** Drops a pending change; no timer is left running. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #check(owner: string, part: EndpointPart): void {
    const held = this.#owners.get(part);
    if (held !== undefined && held !== owner) throw new EndpointPartOwnedError(part, held, owner);
  }

  #schedule(): void {
    if (this.#closed) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#o.onChange(this.body());
    }, this.#o.debounceMs ?? 200);
    this.#timer.unref?.();
  }
}
