import { createHmac, randomBytes } from 'node:crypto';
import { EventEmitter, setMaxListeners } from 'node:events';
import {
  Counters,
  createRecord,
  type EndpointBody,
  emptyEndpointBody,
  encodeCanonical,
  endpointBodySchema,
  kademliaIdOf,
  nodeIdFromPublicKey,
  nodeIdOfKademliaId,
  type SignedRecord,
  timeoutSignal,
  verifyRecord,
  verifySignature,
} from '@dpc/core';
import { type AddressPolicy, hostKey } from './address.js';
import * as C from './constants.js';
import { randomIdInBucket } from './distance.js';
import { type EndpointSample, majorityVote } from './endpoint-vote.js';
import { BootstrapError, DhtNotRunningError, EndpointDiscoveryError, PeerNotFoundError, SignalDeliveryError } from './errors.js';
import { iterativeLookup, type LookupReply, type LookupResult } from './lookup.js';
import { fitAnswer, type Request, type RequestBody, type ResponseBody, type WireContact } from './messages.js';
import { RateLimiter } from './rate-limit.js';
import { relayIndexKey, relayIndexKeys } from './relay-index.js';
import { bucketsToRefresh, type Contact, farBuckets, RoutingTable } from './routing-table.js';
import { type Peer, type Reply, type RequestOptions, Rpc } from './rpc.js';
import { createSignalEnvelope, openSignalEnvelope, Registrations, ReplayGuard, registerPayload } from './signalling.js';
import { keyMatchesRecord, RecordStore } from './storage.js';
import type {
  AnnounceResult,
  DhtEvents,
  DhtOptions,
  DhtPeer,
  DhtProgressEvent,
  DhtStats,
  DiscoveredEndpoint,
  OpOptions,
  RelayOfferInput,
} from './types.js';

type Via = { id: Uint8Array; peer: Peer; token: Uint8Array };
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

class DhtNode extends EventEmitter<DhtEvents> {
  readonly nodeId: string;
  readonly kademliaId: Buffer;
  readonly #o: DhtOptions;
  readonly #k: number;
  readonly #alpha: number;
  readonly #counters: Counters;
  readonly #policy: AddressPolicy;
  readonly #store: RecordStore;
  readonly #table: RoutingTable;
  readonly #rpc: Rpc;
  readonly #registrations: Registrations;
  readonly #replay = new ReplayGuard();
  readonly #forwardLimiter: RateLimiter;
  readonly #secret = randomBytes(32);
  readonly #shutdown = new AbortController();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #verifying = new Set<string>();
  readonly #failures = new Map<string, number>();
  #evictions = 0;
  #state: 'new' | 'running' | 'stopped' = 'new';
  #address: Peer | null = null;
  #body: EndpointBody;
  #via: Via[] = [];
  #seq = 0;
  #announced = false;
  #relayOffer: RelayOfferInput | undefined;
  #republishing: Promise<unknown> | undefined;

  constructor(o: DhtOptions) {
    super();
    this.#o = o;
    setMaxListeners(10_000, this.#shutdown.signal);
    this.nodeId = o.identity.nodeId;
    this.kademliaId = o.identity.kademliaId;
    this.#k = o.k ?? C.DEFAULT_K;
    this.#alpha = o.alpha ?? C.DEFAULT_ALPHA;
    this.#counters = o.counters ?? new Counters();
    this.#policy = { allowLoopback: o.allowLoopback ?? false, allowPrivate: o.allowPrivate ?? false };
    this.#body = endpointBodySchema(o.endpoint ?? emptyEndpointBody(), 'endpoint');
    this.#store = new RecordStore(o.storage);
    this.#registrations = new Registrations(o.maxRegistrations ?? C.DEFAULT_MAX_REGISTRATIONS);
    this.#forwardLimiter = new RateLimiter({ perSecond: C.DEFAULT_SIGNAL_FORWARD_PER_SEC, burst: C.DEFAULT_SIGNAL_FORWARD_PER_SEC });
    this.#table = new RoutingTable({
      localId: this.kademliaId,
      k: this.#k,
      policy: this.#policy,
      onBucketFull: (oldest, candidate) => this.#evict(oldest, candidate),
    });
    this.#rpc = new Rpc({
      localId: this.kademliaId,
      counters: this.#counters,
      policy: this.#policy,
      limiter: new RateLimiter(o.rateLimit),
      rpcTimeoutMs: o.rpcTimeoutMs ?? C.DEFAULT_RPC_TIMEOUT_MS,
      rpcRetries: o.rpcRetries ?? C.DEFAULT_RPC_RETRIES,
      retryBackoffMs: o.retryBackoffMs ?? C.DEFAULT_RETRY_BACKOFF_MS,
      onRequest: (msg, from) => this.#handle(msg, from),
    });
  }

  get address(): DhtPeer | null {
    return this.#address;
  }

  // ---- lifecycle ----

  async start(opts: OpOptions = {}): Promise<void> {
    if (this.#state !== 'new') throw new DhtNotRunningError('start (a DHT node starts once)');
    this.#state = 'running';
    this.#address = await this.#rpc.bind(this.#o.port ?? C.DEFAULT_DHT_PORT, this.#o.host ?? '0.0.0.0');
    this.#every(this.#o.sweepIntervalMs ?? C.DEFAULT_SWEEP_INTERVAL_MS, () => {
      this.#store.sweep();
      this.#registrations.sweep();
    });
    this.#every(this.#o.bucketRefreshIntervalMs ?? C.DEFAULT_BUCKET_REFRESH_INTERVAL_MS, () => this.#refreshBuckets());
    this.#every(this.#o.announceIntervalMs ?? C.DEFAULT_ANNOUNCE_INTERVAL_MS, () => this.#republish());
    this.#every(this.#o.keepaliveIntervalMs ?? C.DEFAULT_KEEPALIVE_INTERVAL_MS, () => this.#keepalive());
    const seeds = this.#o.seeds ?? [];
    if (seeds.length === 0) return;
    const ms = this.#o.bootstrapTimeoutMs ?? C.DEFAULT_BOOTSTRAP_TIMEOUT_MS;
    const t = timeoutSignal(ms, 'DHT bootstrap', this.#signal(opts.signal));
    setMaxListeners(10_000, t.signal);
    try {
      const answers = await Promise.all(
        seeds.map((seed) =>
          this.#request(seed, { t: 'ping' }, { signal: t.signal, retries: 100 }).then(
            () => {
              this.#progress({ type: 'bootstrap:seed', seed, ok: true });
              return true;
            },
            (err: Error) => {
              this.#progress({ type: 'bootstrap:seed', seed, ok: false, error: err.message });
              return false;
            },
          ),
        ),
      );
      const answered = answers.filter(Boolean).length;
      if (answered === 0) {
        const cause = opts.signal?.aborted ? opts.signal.reason : undefined;
        await this.stop();
        throw new BootstrapError(
          seeds.map((p) => `${p.host}:${p.port}`),
          ms,
          { cause },
        );
      }
      await this.#lookupNodes(this.kademliaId, t.signal).catch(() => undefined);
      // The self-lookup fills the buckets near our id; the far ones it leaves short get a lookup
      // each, which also puts us in the tables of nodes there (Kademlia's join refresh).
      await this.#refreshBuckets(t.signal, true);
      this.#progress({ type: 'bootstrap:done', answeredSeeds: answered, routingTableSize: this.#table.size });
    } finally {
      t.clear();
    }
  }

  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'stopped';
    this.#shutdown.abort(new DhtNotRunningError('stopped'));
    for (const t of this.#timers) clearInterval(t);
    this.#timers.clear();
    await this.#rpc.close();
  }

  // ---- public operations ----

  async announceFull(opts: OpOptions = {}): Promise<AnnounceResult<'endpoint'>> {
    return this.#withTimeout(opts, 'announceFull', async (signal) => {
      const res = await this.#lookupNodes(this.kademliaId, signal);
      const count = Math.max(1, Math.min(4, this.#o.signalViaCount ?? C.DEFAULT_SIGNAL_VIA_COUNT));
      const candidates = res.closest.filter((c) => c.token !== undefined).slice(0, count + 2);
      const registered = await Promise.all(candidates.map((c) => this.#register(c.peer, c.token as Uint8Array, signal)));
      this.#via = registered.filter((v): v is Via => v !== null).slice(0, count);
      this.#announced = true;
      const record = createRecord(this.#o.identity, {
        kind: 'endpoint',
        body: { ...this.#body, signal_via: this.#viaBody() },
        seq: this.#nextSeq(),
        ttlMs: this.#o.recordTtlMs ?? C.DEFAULT_RECORD_TTL_MS,
      });
      const storedAt = await this.#storeAt(this.kademliaId, record, res, signal);
      this.#progress({ type: 'announce:done', kind: 'endpoint', storedAt, closest: res.closest.length, signalVia: this.#via.length });
      return { record, storedAt, closest: res.closest.length, signalVia: this.#viaBody() };
    });
  }

  async announceRelay(offer: RelayOfferInput, opts: OpOptions = {}): Promise<AnnounceResult<'relay-offer'>> {
    return this.#withTimeout(opts, 'announceRelay', async (signal) => {
      const record = createRecord(this.#o.identity, {
        kind: 'relay-offer',
        body: { ...offer, node_id: this.nodeId },
        seq: this.#nextSeq(),
        ttlMs: this.#o.recordTtlMs ?? C.DEFAULT_RECORD_TTL_MS,
      });
      this.#relayOffer = offer;
      let storedAt = 0;
      let closest = 0;
      for (const key of relayIndexKeys(offer.region)) {
        const res = await this.#lookupNodes(key, signal);
        closest += res.closest.length;
        storedAt += await this.#storeAt(key, record, res, signal);
      }
      this.#progress({ type: 'announce:done', kind: 'relay-offer', storedAt, closest, signalVia: 0 });
      return { record, storedAt, closest, signalVia: [] };
    });
  }

  setEndpointBody(body: EndpointBody): void {
    const next = endpointBodySchema({ ...body, signal_via: [] }, 'endpoint');
    const same = encodeCanonical(next).equals(encodeCanonical({ ...this.#body, signal_via: [] }));
    this.#body = next;
    if (!same && this.#announced && this.#state === 'running') void this.#republish();
  }

  endpointBody(): EndpointBody {
    return { ...this.#body, signal_via: this.#viaBody() };
  }

  async findPeer(nodeId: string, opts: OpOptions = {}): Promise<SignedRecord<'endpoint'>> {
    const key = kademliaIdOf(nodeId);
    return this.#withTimeout(opts, 'findPeer', async (signal) => {
      const { record } = await this.#findPeer(nodeId, key, signal);
      if (!record) throw new PeerNotFoundError(nodeId);
      return record;
    });
  }

  async findRelays(opts: OpOptions & { region?: string } = {}): Promise<SignedRecord<'relay-offer'>[]> {
    const key = relayIndexKey(opts.region);
    return this.#withTimeout(opts, 'findRelays', async (signal) => {
      const res = await this.#lookupValues(key, false, signal);
      const byNode = new Map<string, SignedRecord<'relay-offer'>>();
      for (const r of [...this.#store.get(key), ...res.values] as SignedRecord<'relay-offer'>[]) {
        if (r.kind !== 'relay-offer' || r.expiresAt <= Date.now()) continue;
        const old = byNode.get(r.nodeId);
        if (!old || r.seq > old.seq) byNode.set(r.nodeId, r);
      }
      return [...byNode.values()].sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1));
    });
  }

  async closestPeers(key: Uint8Array, opts: OpOptions = {}): Promise<Array<DhtPeer & { nodeId: string }>> {
    return this.#withTimeout(opts, 'closestPeers', async (signal) => {
      const res = await this.#lookupNodes(key, signal);
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
            const r = await this.#request(p, { t: 'discover' }, { signal });
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

  async signal(nodeId: string, payload: unknown, opts: OpOptions = {}): Promise<void> {
    const to = kademliaIdOf(nodeId);
    const e = createSignalEnvelope(this.#o.identity, to, payload);
    return this.#withTimeout(opts, 'signal', async (signal) => {
      const { record, direct } = await this.#findPeer(nodeId, to, signal);
      const paths: Peer[] = (record?.body.signal_via ?? [])
        .filter((v) => v.node_id !== this.nodeId)
        .map((v) => ({ host: v.ip, port: v.port }));
      const reg = this.#registrations.get(nodeId);
      if (reg) paths.unshift(reg.peer);
      if (direct) paths.push(direct);
      const causes: unknown[] = [];
      // A forwarder answers after its own request to the target (rpcTimeoutMs): give the two hops time.
      const timeoutMs = 2 * (this.#o.rpcTimeoutMs ?? C.DEFAULT_RPC_TIMEOUT_MS);
      for (const p of paths) {
        try {
          await this.#request(p, { t: 'signal', to, h: 0, e }, { signal, timeoutMs });
          return;
        } catch (err) {
          if (signal.aborted) throw err;
          causes.push(err);
        }
      }
      throw new SignalDeliveryError(nodeId, causes);
    });
  }

  async ping(peer: DhtPeer, opts: OpOptions = {}): Promise<{ nodeId: string; rttMs: number }> {
    return this.#withTimeout(opts, 'ping', async (signal) => {
      const t0 = performance.now();
      const r = await this.#request(peer, { t: 'ping' }, { signal });
      return { nodeId: nodeIdOfKademliaId(r.msg.id), rttMs: performance.now() - t0 };
    });
  }

  contacts(): Array<DhtPeer & { nodeId: string }> {
    return this.#table.toArray().map((c) => ({ nodeId: nodeIdOfKademliaId(c.id), host: c.host, port: c.port }));
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
      routingTableSize: this.#table.size,
      storedRecords: this.#store.size,
      registrations: this.#registrations.size,
      rpcIn: pick('rpc_in.'),
      rpcOut: pick('rpc_out.'),
      rejects: pick('rejects.'),
      counters: all,
    };
  }

  // ---- lookups ----

  /** FIND_NODE lookup of the `k` closest nodes (default: the bucket size). */
  #lookupNodes(target: Uint8Array, signal: AbortSignal, k = this.#k): Promise<LookupResult<never>> {
    return this.#lookup<never>(target, 'node', false, signal, k, async (peer, s) => {
      const r = await this.#request(peer, { t: 'find_node', k: Buffer.from(target) }, { signal: s, retries: this.#lookupRetries() });
      return r.msg.t === 'nodes' ? { contacts: r.msg.n.map(fromWire), token: r.msg.tk } : { contacts: [] };
    });
  }

  #lookupValues(key: Uint8Array, stopWhenFound: boolean, signal: AbortSignal): Promise<LookupResult<SignedRecord>> {
    return this.#lookup<SignedRecord>(key, 'value', stopWhenFound, signal, this.#k, async (peer, s) => {
      const values: SignedRecord[] = [];
      let contacts: WireContact[] = [];
      let token: Uint8Array | undefined;
      let offset: number | undefined;
      let pages = 0;
      do {
        const body: RequestBody = { t: 'find_value', k: Buffer.from(key), ...(offset ? { o: offset } : {}) };
        const r = await this.#request(peer, body, { signal: s, retries: this.#lookupRetries() });
        if (r.msg.t !== 'nodes') break;
        if (pages === 0) contacts = r.msg.n.map(fromWire);
        token = r.msg.tk;
        for (const bytes of r.msg.r ?? []) {
          try {
            const rec = verifyRecord(bytes);
            if (keyMatchesRecord(key, rec)) values.push(rec);
            else this.#counters.inc('rejects.served_wrong_key');
          } catch {
            this.#counters.inc('rejects.served_bad_record');
          }
        }
        offset = r.msg.nx;
        pages++;
      } while (offset !== undefined && !stopWhenFound && pages < C.MAX_VALUE_PAGES);
      return { contacts, values, token, extraRpcs: pages - 1 };
    });
  }

  async #lookup<V>(
    target: Uint8Array,
    kind: 'node' | 'value',
    stopWhenFound: boolean,
    signal: AbortSignal,
    k: number,
    query: (peer: WireContact, s: AbortSignal) => Promise<LookupReply<V>>,
  ): Promise<LookupResult<V>> {
    const t0 = performance.now();
    const targetHex = hex(target);
    const progress = this.listenerCount('progress') > 0;
    const res = await iterativeLookup<V>({
      target,
      localId: this.kademliaId,
      k,
      alpha: this.#alpha,
      start: this.#table.closest(target, this.#k),
      query,
      stopWhenFound,
      signal,
      ...(progress
        ? { onQuery: (p: WireContact) => this.#progress({ type: 'lookup:query', target: targetHex, peer: { host: p.host, port: p.port } }) }
        : {}),
    });
    this.#counters.inc(`lookups.${kind}`);
    this.#counters.inc('lookups.rpcs', res.rpcs);
    this.#progress({
      type: 'lookup:done',
      target: targetHex,
      kind,
      rpcs: res.rpcs,
      responded: res.responded,
      found: res.values.length > 0,
      ms: performance.now() - t0,
    });
    return res;
  }

  async #findPeer(nodeId: string, key: Buffer, signal: AbortSignal): Promise<{ record?: SignedRecord<'endpoint'>; direct?: Peer }> {
    const known = this.#table.get(key);
    const local = this.#store.get(key)[0] as SignedRecord<'endpoint'> | undefined;
    if (local) return { record: local, ...(known ? { direct: known } : {}) };
    let res = await this.#lookupValues(key, true, signal);
    // A miss is retried once: the first lookup taught the nodes on the path about each other.
    if (res.values.length === 0) res = await this.#lookupValues(key, true, signal);
    let record: SignedRecord<'endpoint'> | undefined;
    for (const r of res.values)
      if (r.kind === 'endpoint' && r.nodeId === nodeId && (!record || r.seq > record.seq)) record = r as SignedRecord<'endpoint'>;
    const direct = known ?? res.closest.find((c) => Buffer.from(c.peer.id).equals(key))?.peer;
    return { ...(record ? { record } : {}), ...(direct ? { direct: { host: direct.host, port: direct.port } } : {}) };
  }

  async #storeAt(key: Uint8Array, record: SignedRecord, res: LookupResult<unknown>, signal: AbortSignal): Promise<number> {
    this.#store.put(key, record.encoded, 'self');
    const oks = await Promise.all(
      res.closest.map((c) =>
        c.token === undefined
          ? false
          : this.#request(c.peer, { t: 'store', k: Buffer.from(key), r: record.encoded, tk: c.token }, { signal }).then(
              () => true,
              () => false,
            ),
      ),
    );
    return oks.filter(Boolean).length;
  }

  // ---- signalling (sender side of REGISTER) ----

  async #register(peer: WireContact, token: Uint8Array, signal: AbortSignal): Promise<Via | null> {
    const ts = Date.now();
    const sig = this.#o.identity.sign(registerPayload(peer.id, ts));
    try {
      const r = await this.#request(peer, { t: 'register', pk: this.#o.identity.publicKey, ts, sig, tk: token }, { signal });
      return { id: peer.id, peer: { host: peer.host, port: peer.port }, token: (r.msg.t === 'ok' && r.msg.tk) || token };
    } catch {
      return null;
    }
  }

  #viaBody(): EndpointBody['signal_via'] {
    return this.#via.map((v) => ({ node_id: nodeIdOfKademliaId(v.id), ip: v.peer.host, port: v.peer.port }));
  }

  async #keepalive(): Promise<void> {
    if (this.#via.length === 0) return;
    const signal = this.#shutdown.signal;
    const kept = await Promise.all(this.#via.map((v) => this.#register({ id: v.id, ...v.peer }, v.token, signal)));
    this.#via = kept.filter((v): v is Via => v !== null);
    if (this.#via.length < kept.length) await this.#republish();
  }

  // ---- requests we answer ----

  #handle(msg: Request, from: Peer): ResponseBody | null | Promise<ResponseBody | null> {
    this.#learn(msg.id, from);
    switch (msg.t) {
      case 'ping':
        return { t: 'pong' };
      case 'discover':
        return { t: 'addr', ip: from.host, port: from.port };
      case 'find_node':
      case 'find_value': {
        const contacts = this.#table.closest(msg.k, this.#k + 1).filter((c) => !Buffer.from(c.id).equals(msg.id));
        const all = msg.t === 'find_value' ? this.#store.get(msg.k).map((r) => r.encoded) : [];
        const offset = msg.t === 'find_value' ? (msg.o ?? 0) : 0;
        // 70 bytes of header (t, x, id, tk, nx) stay free under the datagram limit.
        const fit = fitAnswer(all.slice(offset), contacts.slice(0, this.#k), C.MAX_DATAGRAM_BYTES - 90);
        return {
          t: 'nodes',
          n: fit.contacts,
          tk: this.#token(from.host),
          ...(fit.records.length > 0 ? { r: fit.records } : {}),
          ...(fit.recordsLeft > 0 ? { nx: offset + fit.records.length } : {}),
        };
      }
      case 'store': {
        if (!this.#validToken(msg.tk, from.host)) return this.#refuse('bad_token');
        const r = this.#store.put(msg.k, msg.r, hostKey(from.host, from.port, this.#policy));
        return r.ok ? { t: 'ok' } : this.#refuse(r.reason);
      }
      case 'register': {
        if (!this.#validToken(msg.tk, from.host)) return this.#refuse('bad_token');
        const now = Date.now();
        if (Math.abs(now - msg.ts) > C.REGISTER_MAX_SKEW_MS) return this.#refuse('stale');
        if (!verifySignature(msg.pk, registerPayload(this.kademliaId, msg.ts), msg.sig)) return this.#refuse('bad_signature');
        const ttl = this.#o.registrationTtlMs ?? C.DEFAULT_REGISTRATION_TTL_MS;
        const r = this.#registrations.put({ nodeId: nodeIdFromPublicKey(msg.pk), peer: from, ts: msg.ts, expiresAt: now + ttl }, now);
        return r === 'ok' ? { t: 'ok', tk: this.#token(from.host) } : this.#refuse(r === 'full' ? 'storage_full' : 'replay');
      }
      case 'signal':
        return this.#onSignal(msg, from);
    }
  }

  async #onSignal(msg: Extract<Request, { t: 'signal' }>, from: Peer): Promise<ResponseBody> {
    const opened = openSignalEnvelope(msg.e);
    if (typeof opened === 'string') return this.#refuse(opened === 'malformed' ? 'bad_record' : 'bad_signature', `signal_${opened}`);
    if (!opened.to.equals(msg.to)) return this.#refuse('bad_signature', 'signal_wrong_target');
    if (opened.to.equals(this.kademliaId)) {
      const bad = this.#replay.check(opened);
      // A retransmission of a signal we delivered (its answer was lost or late): ack it again, once delivered is enough.
      if (bad === 'replay') {
        this.#counters.inc('signals.duplicate');
        return { t: 'ok' };
      }
      if (bad) return this.#refuse(bad, `signal_${bad}`);
      this.#counters.inc('signals.received');
      this.emit('signal', { from: opened.from, publicKey: opened.publicKey, payload: opened.payload, via: from });
      return { t: 'ok' };
    }
    const target = nodeIdOfKademliaId(msg.to);
    const reg = this.#registrations.get(target);
    if (msg.h !== 0 || !reg) return this.#refuse('not_registered');
    if (!this.#forwardLimiter.take(target)) return this.#refuse('rate_limited', 'signal_forward_rate_limited');
    try {
      await this.#request(reg.peer, { t: 'signal', to: msg.to, h: 1, e: msg.e }, { signal: this.#shutdown.signal, retries: 0 });
      this.#counters.inc('signals.forwarded');
      return { t: 'ok' };
    } catch {
      return this.#refuse('undeliverable');
    }
  }

  #refuse(code: string, counter = code): ResponseBody {
    this.#counters.inc(`rejects.${counter}`);
    return { t: 'err', c: code };
  }

  #token(host: string, window = Math.floor(Date.now() / C.TOKEN_ROTATION_MS)): Buffer {
    return createHmac('sha256', this.#secret).update(`${window}|${host}`).digest().subarray(0, 8);
  }

  #validToken(tk: Uint8Array, host: string): boolean {
    const w = Math.floor(Date.now() / C.TOKEN_ROTATION_MS);
    return this.#token(host, w).equals(tk) || this.#token(host, w - 1).equals(tk);
  }

  // ---- routing table upkeep ----

  /** A node that sent us a request enters the table only after it answers our PING. */
  #learn(id: Uint8Array, from: Peer): void {
    if (this.#table.get(id) || this.#verifying.size >= C.MAX_PENDING_VERIFICATIONS || this.#state !== 'running') return;
    const key = `${from.host}|${from.port}`;
    if (this.#verifying.has(key)) return;
    this.#verifying.add(key);
    this.#rpc
      .request(from, { t: 'ping' }, { signal: this.#shutdown.signal, retries: 0 })
      .then((r) => {
        if (Buffer.from(r.msg.id).equals(id)) this.#table.add({ id: r.msg.id, ...r.from });
      })
      .catch(() => undefined)
      .finally(() => this.#verifying.delete(key));
  }

  #evict(oldest: Contact[], candidate: Contact): void {
    if (this.#evictions >= 8 || this.#state !== 'running') return;
    this.#evictions++;
    void Promise.all(
      oldest.map((c) =>
        this.#rpc.request(c, { t: 'ping' }, { signal: this.#shutdown.signal, retries: 0 }).then(
          () => false,
          () => {
            this.#table.remove(c.id);
            return true;
          },
        ),
      ),
    )
      .then((gone) => gone.some(Boolean) && this.#table.add(candidate))
      .finally(() => this.#evictions--);
  }

  /**
   * Lookups of a random id in each bucket farther than our closest neighbour. At join
   * (`afterJoin`) only the far buckets the self-lookup left short of contacts get one, and it only
   * needs a few live contacts there: it ends when the `alpha` closest have answered.
   */
  async #refreshBuckets(signal = this.#shutdown.signal, afterJoin = false): Promise<void> {
    const contacts = this.#table.toArray();
    const buckets = afterJoin
      ? bucketsToRefresh(this.kademliaId, contacts, this.#k, {
          onlySparse: true,
          maxBuckets: farBuckets(this.kademliaId, contacts, this.#k),
        })
      : bucketsToRefresh(this.kademliaId, contacts, this.#k);
    const targets = [...(afterJoin ? [] : [this.kademliaId]), ...buckets.map((i) => randomIdInBucket(this.kademliaId, i, randomBytes(16)))];
    for (const target of targets) {
      if (signal.aborted) return;
      const t = timeoutSignal(this.#o.lookupTimeoutMs ?? C.DEFAULT_LOOKUP_TIMEOUT_MS, 'bucket refresh', signal);
      await this.#lookupNodes(target, t.signal, afterJoin ? this.#alpha : this.#k).catch(() => undefined);
      t.clear();
    }
  }

  // ---- helpers ----

  /** A request whose answer puts the responder in the routing table. */
  async #request(to: Peer, body: RequestBody, opts: RequestOptions): Promise<Reply> {
    const where = `${to.host}|${to.port}`;
    try {
      const r = await this.#rpc.request(to, body, opts);
      this.#failures.delete(where);
      this.#table.add({ id: r.msg.id, ...r.from });
      return r;
    } catch (err) {
      // A contact leaves the table after MAX_FAILURES timeouts in a row, not at the first one.
      if ((err as { code?: string }).code === 'DPC_DHT_RPC_TIMEOUT') {
        const n = (this.#failures.get(where) ?? 0) + 1;
        this.#failures.set(where, n);
        if (n >= C.MAX_CONTACT_FAILURES) {
          this.#failures.delete(where);
          const gone = this.#table.toArray().find((c) => c.host === to.host && c.port === to.port);
          if (gone) this.#table.remove(gone.id);
        }
        if (this.#failures.size > 4 * this.#k * 128) this.#failures.clear();
      }
      throw err;
    }
  }

  #lookupRetries(): number {
    return this.#o.lookupRpcRetries ?? C.DEFAULT_LOOKUP_RPC_RETRIES;
  }

  #republish(): Promise<unknown> {
    if (this.#state !== 'running' || this.#republishing) return this.#republishing ?? Promise.resolve();
    const run = async () => {
      if (this.#announced) await this.announceFull();
      if (this.#relayOffer) await this.announceRelay(this.#relayOffer);
    };
    this.#republishing = run()
      .catch((err: Error) => {
        this.#counters.inc('errors.republish');
        if (this.#state === 'running') this.emit('warning', err);
      })
      .finally(() => {
        this.#republishing = undefined;
      });
    return this.#republishing;
  }

  #nextSeq(): number {
    this.#seq = Math.max(Date.now(), this.#seq + 1);
    return this.#seq;
  }

  #signal(user: AbortSignal | undefined): AbortSignal {
    return user ? AbortSignal.any([user, this.#shutdown.signal]) : this.#shutdown.signal;
  }

  async #withTimeout<T>(opts: OpOptions, what: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.#state !== 'running') throw new DhtNotRunningError(what);
    const t = timeoutSignal(this.#o.lookupTimeoutMs ?? C.DEFAULT_LOOKUP_TIMEOUT_MS, what, this.#signal(opts.signal));
    setMaxListeners(10_000, t.signal);
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

const fromWire = (c: WireContact): WireContact => ({ id: c.id, host: c.host, port: c.port });

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
