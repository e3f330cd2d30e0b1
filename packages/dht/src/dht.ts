import { EventEmitter } from 'node:events';
import {
  Counters,
  type EndpointBody,
  emptyEndpointBody,
  hostPort,
  isRecordExpired,
  kademliaIdOf,
  nodeIdOfKademliaId,
  type SignedRecord,
} from '@dpc/core';
import { deadline, sleepUnless } from './abort-fanout.js';
import type { AddressPolicy } from './address.js';
import { Announcer } from './announce.js';
import * as C from './constants.js';
import { ContactUpkeep } from './contact-upkeep.js';
import { loadContacts, type SavedContact, sameNetwork, saveContacts } from './contacts-file.js';
import { type EndpointSample, majorityVote } from './endpoint-vote.js';
import {
  BootstrapError,
  DhtNotRunningError,
  EndpointDiscoveryError,
  PeerNotFoundError,
  ProtocolPrefixError,
  SignalDeliveryError,
} from './errors.js';
import { RequestHandler } from './handlers.js';
import type { NodeContext } from './node-context.js';
import { Queries } from './queries.js';
import { RateLimiter } from './rate-limit.js';
import { relayIndexKey } from './relay-index.js';
import { RoutingTable } from './routing-table.js';
import { type Peer, Rpc } from './rpc.js';
import { createSignalEnvelope, Registrations } from './signalling.js';
import { RecordStore } from './storage.js';
import type {
  AnnounceResult,
  DhtEvents,
  DhtOptions,
  DhtPeer,
  DhtProgressEvent,
  DhtStats,
  DiscoveredEndpoint,
  FindPeerOptions,
  OpOptions,
  RelayOfferInput,
  SignalOptions,
  UdpProtocol,
  UdpProtocolOptions,
} from './types.js';
import { isDhtFirstByte, UdpMux } from './udp-mux.js';
import { WriteTokens } from './write-tokens.js';

/**
 * A DHT node: lifecycle, timers and the public operations. The parts live beside it: `queries.ts`
 * (lookups, STORE, bucket refresh), `announce.ts` (endpoint record, relay offer, keepalive),
 * `handlers.ts` (requests we answer), `contact-upkeep.ts` (who enters the routing table).
 */
class DhtNode extends EventEmitter<DhtEvents> {
  readonly nodeId: string;
  readonly kademliaId: Buffer;
  readonly #o: DhtOptions;
  readonly #counters: Counters;
  readonly #store: RecordStore;
  readonly #table: RoutingTable;
  readonly #rpc: Rpc;
  readonly #mux: UdpMux;
  readonly #registrations: Registrations;
  readonly #shutdown = new AbortController();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #upkeep: ContactUpkeep;
  readonly #queries: Queries;
  readonly #announcer: Announcer;
  #state: 'new' | 'running' | 'stopped' = 'new';
  #address: Peer | null = null;

  constructor(o: DhtOptions) {
    super();
    this.#o = o;
    this.nodeId = o.identity.nodeId;
    this.kademliaId = o.identity.kademliaId;
    const k = o.k ?? C.DEFAULT_K;
    this.#counters = o.counters ?? new Counters();
    const policy: AddressPolicy = { allowLoopback: o.allowLoopback ?? false, allowPrivate: o.allowPrivate ?? false };
    this.#store = new RecordStore(o.storage);
    this.#registrations = new Registrations(o.maxRegistrations ?? C.DEFAULT_MAX_REGISTRATIONS);
    this.#table = new RoutingTable({
      localId: this.kademliaId,
      k,
      policy,
      onBucketFull: (oldest, candidate) => this.#upkeep.evict(oldest, candidate),
    });
    let handler: RequestHandler | undefined;
    this.#mux = new UdpMux(this.#counters, (buf, from) => this.#rpc.onDatagram(buf, from));
    this.#rpc = new Rpc({
      send: (bytes, to) => this.#mux.send(bytes, to),
      localId: this.kademliaId,
      counters: this.#counters,
      policy,
      limiter: new RateLimiter(o.rateLimit),
      rpcTimeoutMs: o.rpcTimeoutMs ?? C.DEFAULT_RPC_TIMEOUT_MS,
      rpcRetries: o.rpcRetries ?? C.DEFAULT_RPC_RETRIES,
      retryBackoffMs: o.retryBackoffMs ?? C.DEFAULT_RETRY_BACKOFF_MS,
      onRequest: (msg, from) => (handler as RequestHandler).handle(msg, from),
    });
    const running = () => this.#state === 'running';
    this.#upkeep = new ContactUpkeep({
      table: this.#table,
      rpc: this.#rpc,
      k,
      shutdown: this.#shutdown.signal,
      running,
      counters: this.#counters,
    });
    const ctx: NodeContext = {
      o,
      identity: o.identity,
      nodeId: this.nodeId,
      kademliaId: this.kademliaId,
      k,
      alpha: o.alpha ?? C.DEFAULT_ALPHA,
      counters: this.#counters,
      policy,
      store: this.#store,
      table: this.#table,
      rpc: this.#rpc,
      registrations: this.#registrations,
      shutdown: this.#shutdown.signal,
      running,
      request: (to, body, opts) => this.#upkeep.request(to, body, opts),
      withTimeout: (opts, what, fn) => this.#withTimeout(opts, what, fn),
      progress: (e) => this.#progress(e),
      hasProgressListeners: () => this.listenerCount('progress') > 0,
      emitSignal: (e) => this.emit('signal', e),
      warn: (err) => this.emit('warning', err),
    };
    this.#queries = new Queries(ctx);
    this.#announcer = new Announcer(ctx, this.#queries, o.endpoint ?? emptyEndpointBody());
    handler = new RequestHandler(ctx, new WriteTokens(), (id, from) => this.#upkeep.learn(id, from));
  }

  get address(): DhtPeer | null {
    return this.#address;
  }

  // ---- lifecycle ----

  async start(opts: OpOptions = {}): Promise<void> {
    if (this.#state !== 'new') throw new DhtNotRunningError('start (a DHT node starts once)');
    this.#state = 'running';
    this.#address = await this.#mux.bind(this.#o.port ?? C.DEFAULT_DHT_PORT, this.#o.host ?? C.DEFAULT_DHT_HOST);
    this.#every(this.#o.sweepIntervalMs ?? C.DEFAULT_SWEEP_INTERVAL_MS, () => {
      this.#store.sweep();
      this.#registrations.sweep();
    });
    // Buckets no lookup went into for a refresh interval get one; checked every quarter interval, so
    // refreshes spread over time (a bucket the node's own lookups keep using is never refreshed).
    const refreshMs = this.#o.bucketRefreshIntervalMs ?? C.DEFAULT_BUCKET_REFRESH_INTERVAL_MS;
    this.#every(refreshMs / 4, () => this.#queries.refreshBuckets(refreshMs));
    this.#every(this.#o.announceIntervalMs ?? C.DEFAULT_ANNOUNCE_INTERVAL_MS, () => this.#announcer.republish());
    this.#every(this.#o.keepaliveIntervalMs ?? C.DEFAULT_KEEPALIVE_INTERVAL_MS, () => this.#announcer.keepalive());
    const seeds = this.#o.seeds ?? [];
    const saved = await this.#savedContacts(seeds);
    if (seeds.length === 0) return; // a bootstrap node: the root of its network, it starts alone
    const ms = this.#o.bootstrapTimeoutMs ?? C.DEFAULT_BOOTSTRAP_TIMEOUT_MS;
    const t = deadline(ms, 'DHT bootstrap', this.#signal(opts.signal));
    // Ends the pings still running (seeds retried until the deadline) once the node has joined.
    const joined = new AbortController();
    const signal = AbortSignal.any([t.signal, joined.signal]);
    let answered = 0;
    let wake = () => {};
    const someoneAnswered = new Promise<void>((r) => {
      wake = r;
    });
    // Seeds and saved contacts that answer are counted; the first answer ends the wait.
    const ping = (peer: DhtPeer, retries: number, fromFile: boolean) =>
      this.#upkeep.request(peer, { t: 'ping' }, { signal, retries }).then(
        () => {
          answered++;
          this.#progress({ type: 'bootstrap:seed', seed: peer, ok: true, ...(fromFile && { saved: true }) });
          wake(); // one answer is enough to join: the self-lookup finds the rest
        },
        (err: Error) => {
          if (!joined.signal.aborted)
            this.#progress({ type: 'bootstrap:seed', seed: peer, ok: false, error: err.message, ...(fromFile && { saved: true }) });
        },
      );
    try {
      // The configured seeds first. Saved contacts (of the same seeds) are a fallback for seeds
      // that are down: asked once each, only when no seed answered within one RPC timeout.
      const seedsSettled = Promise.all(seeds.map((seed) => ping(seed, 100, false)));
      const fallback = (async () => {
        if (saved.length === 0) return;
        const first = await Promise.race([
          seedsSettled.then(() => 'settled' as const),
          sleepUnless(this.#o.rpcTimeoutMs ?? C.DEFAULT_RPC_TIMEOUT_MS, signal, () => new Error('aborted')).then(
            () => 'timeout' as const,
            () => 'aborted' as const,
          ),
        ]);
        if (first === 'aborted' || answered > 0) return;
        this.#progress({ type: 'bootstrap:saved', action: 'tried', contacts: saved.length });
        await Promise.all(saved.map((c) => ping({ host: c.host, port: c.port }, 0, true)));
      })();
      await Promise.race([seedsSettled, someoneAnswered]);
      if (answered === 0) await Promise.race([fallback, someoneAnswered]);
      if (answered === 0) {
        const cause = opts.signal?.aborted ? opts.signal.reason : undefined;
        await this.stop();
        throw new BootstrapError(
          seeds.map((p) => hostPort(p.host, p.port)),
          ms,
          { cause },
        );
      }
      joined.abort();
      // The self-lookup fills the buckets near our id and puts us in our neighbours' tables; the far
      // buckets it leaves short get a few contacts each (one FIND_NODE, a PING per contact).
      await this.#queries.lookupNodes(this.kademliaId, t.signal).catch(() => undefined);
      await this.#queries.fillFarBuckets(t.signal);
      this.#progress({ type: 'bootstrap:done', answeredSeeds: answered, routingTableSize: this.#table.size });
      // The file now holds who answered (saved contacts that did not are dropped), also if the
      // process is killed before stop().
      await this.#saveContacts();
    } finally {
      joined.abort();
      t.clear();
    }
  }

  /**
   * Contacts saved by an earlier run with the same `[dht] seed_nodes`. Contacts saved under
   * other seeds (another network) or by a bootstrap node (no seeds: the root of a network, maybe
   * a fresh one) are never used: a node does not leave the network its config names.
   */
  async #savedContacts(seeds: readonly DhtPeer[]): Promise<SavedContact[]> {
    if (!this.#o.dataDir) return [];
    const file = await loadContacts(this.#o.dataDir);
    if (file.contacts.length === 0) return [];
    if (!sameNetwork(file.seeds, seeds)) {
      this.#counters.inc('dht.saved_contacts_ignored', file.contacts.length);
      this.#progress({
        type: 'bootstrap:saved',
        action: 'ignored',
        contacts: file.contacts.length,
        reason: seeds.length === 0 ? 'bootstrap-node' : 'other-seeds',
      });
      return [];
    }
    const own = this.kademliaId.toString('hex');
    return file.contacts.filter((c) => !seeds.some((s) => s.host === c.host && s.port === c.port) && c.id !== own);
  }

  /** Saves the routing table's contacts with this node's seeds (nothing when the table is empty). */
  async #saveContacts(): Promise<void> {
    if (!this.#o.dataDir || this.#table.size === 0) return;
    const contacts = this.#table.toArray().map((c) => ({ id: Buffer.from(c.id).toString('hex'), host: c.host, port: c.port }));
    await saveContacts(this.#o.dataDir, contacts, this.#o.seeds ?? []).catch(() => this.#counters.inc('errors.save_contacts'));
  }

  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    const wasRunning = this.#state === 'running';
    this.#state = 'stopped';
    this.#shutdown.abort(new DhtNotRunningError('stopped'));
    for (const t of this.#timers) clearInterval(t);
    this.#timers.clear();
    this.#rpc.close();
    await this.#mux.close();
    if (wasRunning) await this.#saveContacts();
  }

  // ---- public operations ----

  async announceFull(opts: OpOptions = {}): Promise<AnnounceResult<'endpoint'>> {
    return this.#withTimeout(opts, 'announceFull', (signal) => this.#announcer.announceFull(signal));
  }

  async announceRelay(offer: RelayOfferInput, opts: OpOptions = {}): Promise<AnnounceResult<'relay-offer'>> {
    return this.#withTimeout(opts, 'announceRelay', (signal) => this.#announcer.announceRelay(offer, signal));
  }

  setEndpointBody(body: EndpointBody): void {
    this.#announcer.setEndpointBody(body);
  }

  endpointBody(): EndpointBody {
    return this.#announcer.endpointBody();
  }

  async findPeer(nodeId: string, opts: FindPeerOptions = {}): Promise<SignedRecord<'endpoint'>> {
    const key = kademliaIdOf(nodeId);
    return this.#withTimeout(opts, 'findPeer', async (signal) => {
      const { record } = await this.#queries.findPeer(nodeId, key, signal, opts.newerThan);
      if (!record) throw new PeerNotFoundError(nodeId);
      return record;
    });
  }

  async findRelays(opts: OpOptions & { region?: string } = {}): Promise<SignedRecord<'relay-offer'>[]> {
    const key = relayIndexKey(opts.region);
    return this.#withTimeout(opts, 'findRelays', async (signal) => {
      const res = await this.#queries.lookupValues(key, false, signal);
      const byNode = new Map<string, SignedRecord<'relay-offer'>>();
      for (const r of [...this.#store.get(key), ...res.values] as SignedRecord<'relay-offer'>[]) {
        if (r.kind !== 'relay-offer' || isRecordExpired(r)) continue;
        const old = byNode.get(r.nodeId);
        if (!old || r.seq > old.seq) byNode.set(r.nodeId, r);
      }
      return [...byNode.values()].sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1));
    });
  }

  async closestPeers(key: Uint8Array, opts: OpOptions = {}): Promise<Array<DhtPeer & { nodeId: string }>> {
    return this.#withTimeout(opts, 'closestPeers', async (signal) => {
      const res = await this.#queries.lookupNodes(key, signal);
      return res.closest.map((c) => ({ nodeId: nodeIdOfKademliaId(c.peer.id), host: c.peer.host, port: c.peer.port }));
    });
  }

  async discoverEndpoint(opts: OpOptions & { peers?: DhtPeer[] } = {}): Promise<DiscoveredEndpoint> {
    return this.#withTimeout(opts, 'discoverEndpoint', async (signal) => {
      const peers: Peer[] = opts.peers ?? shuffle(this.#table.toArray()).slice(0, C.DISCOVER_ENDPOINT_PEERS);
      if (peers.length === 0) throw new EndpointDiscoveryError('no DHT peer known to ask for our endpoint');
      const samples: EndpointSample[] = [];
      const errors: unknown[] = [];
      await Promise.all(
        peers.map(async (p) => {
          try {
            const r = await this.#upkeep.request(p, { t: 'discover' }, { signal });
            if (r.msg.t === 'addr')
              samples.push({ ip: r.msg.ip, port: r.msg.port, responder: { nodeId: nodeIdOfKademliaId(r.msg.id), ...r.from } });
          } catch (err) {
            errors.push(err);
          }
        }),
      );
      const vote = majorityVote(samples);
      if (!vote) throw new EndpointDiscoveryError(`none of ${peers.length} peers answered DISCOVER_ENDPOINT`, { cause: errors[0] });
      return { ip: vote.ip, port: vote.port, votes: vote.votes, majority: vote.majority, samples };
    });
  }

  async signal(nodeId: string, payload: unknown, opts: SignalOptions = {}): Promise<void> {
    const to = kademliaIdOf(nodeId);
    const e = createSignalEnvelope(this.#o.identity, to, payload);
    return this.#withTimeout(opts, 'signal', async (signal) => {
      const causes: unknown[] = [];
      const tried = new Set<string>();
      // A forwarder answers after its own request to the target (rpcTimeoutMs): give the two hops time.
      const timeoutMs = 2 * (this.#o.rpcTimeoutMs ?? C.DEFAULT_RPC_TIMEOUT_MS);
      const send = async (paths: Peer[]): Promise<boolean> => {
        for (const p of paths) {
          const k = `${p.host}|${p.port}`;
          if (tried.has(k)) continue;
          tried.add(k);
          try {
            await this.#upkeep.request(p, { t: 'signal', to, h: 0, e }, { signal, timeoutMs });
            return true;
          } catch (err) {
            if (signal.aborted) throw err;
            causes.push(err);
          }
        }
        return false;
      };
      const reg = this.#registrations.get(nodeId);
      if (opts.via && opts.via.length > 0) {
        // The caller's route first (no lookup); a lookup only when none of it delivers.
        const known = this.#table.get(to);
        const route = opts.via.slice(0, C.MAX_SIGNAL_ROUTE).map((v) => ({ host: v.host, port: v.port }));
        if (await send([...(reg ? [reg.peer] : []), ...route, ...(known ? [{ host: known.host, port: known.port }] : [])])) {
          this.#counters.inc('signals.sent_by_route');
          return;
        }
        this.#counters.inc('signals.route_failed');
      }
      const { record, direct } = await this.#queries.findPeer(nodeId, to, signal);
      const paths: Peer[] = (record?.body.signal_via ?? [])
        .filter((v) => v.node_id !== this.nodeId)
        .map((v) => ({ host: v.ip, port: v.port }));
      if (reg) paths.unshift(reg.peer);
      if (direct) paths.push(direct);
      if (await send(paths)) return;
      throw new SignalDeliveryError(nodeId, causes);
    });
  }

  async ping(peer: DhtPeer, opts: OpOptions = {}): Promise<{ nodeId: string; rttMs: number }> {
    return this.#withTimeout(opts, 'ping', async (signal) => {
      const t0 = performance.now();
      const r = await this.#upkeep.request(peer, { t: 'ping' }, { signal });
      return { nodeId: nodeIdOfKademliaId(r.msg.id), rttMs: performance.now() - t0 };
    });
  }

  contacts(): Array<DhtPeer & { nodeId: string }> {
    return this.#table.toArray().map((c) => ({ nodeId: nodeIdOfKademliaId(c.id), host: c.host, port: c.port }));
  }

  registerProtocol(opts: UdpProtocolOptions): UdpProtocol {
    if (this.#state === 'stopped') throw new DhtNotRunningError('registerProtocol');
    return this.#mux.register(opts);
  }

  async sendRaw(msg: Uint8Array, host: string, port: number): Promise<void> {
    const first = msg[0];
    if (first === undefined || isDhtFirstByte(first)) {
      throw new ProtocolPrefixError(
        `a raw datagram must start with a byte the DHT does not use (got ${first === undefined ? 'none' : `0x${first.toString(16)}`})`,
      );
    }
    if (this.#state !== 'running') throw new DhtNotRunningError('sendRaw');
    this.#counters.inc('udp.out.raw');
    return this.#mux.send(msg, { host, port });
  }

  stats(): DhtStats {
    const all = this.#counters.snapshot();
    const pick = (prefix: string) =>
      Object.fromEntries(
        Object.entries(all)
          .filter(([k]) => k.startsWith(prefix))
          .map(([k, v]) => [k.slice(prefix.length), v]),
      );
    return {
      nodeId: this.nodeId,
      address: this.#address,
      udp: { ...this.#mux.families, protocols: this.#mux.protocols },
      routingTableSize: this.#table.size,
      storedRecords: this.#store.size,
      registrations: this.#registrations.size,
      rpcIn: pick('rpc_in.'),
      rpcOut: pick('rpc_out.'),
      rejects: pick('rejects.'),
      counters: all,
    };
  }

  #signal(user: AbortSignal | undefined): AbortSignal {
    return user ? AbortSignal.any([user, this.#shutdown.signal]) : this.#shutdown.signal;
  }

  async #withTimeout<T>(opts: OpOptions, what: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.#state !== 'running') throw new DhtNotRunningError(what);
    const t = deadline(this.#o.lookupTimeoutMs ?? C.DEFAULT_LOOKUP_TIMEOUT_MS, what, this.#signal(opts.signal));
    try {
      return await fn(t.signal);
    } finally {
      t.clear();
    }
  }

  #every(ms: number, fn: () => unknown): void {
    const timer = setInterval(() => {
      if (this.#state === 'running') void Promise.resolve(fn()).catch(() => this.#counters.inc('errors.timer'));
    }, ms);
    timer.unref();
    this.#timers.add(timer);
  }

  #progress(e: DhtProgressEvent): void {
    if (this.listenerCount('progress') > 0) this.emit('progress', e);
  }
}

function shuffle<T>(list: T[]): T[] {
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [list[i], list[j]] = [list[j] as T, list[i] as T];
  }
  return list;
}

/** Creates a DHT node (not started). */
export function createDht(options: DhtOptions): DhtNode {
  return new DhtNode(options);
}
