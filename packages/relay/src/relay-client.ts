import { EventEmitter, setMaxListeners } from 'node:events';
import {
  type Connection,
  Counters,
  DialError,
  HandshakeError,
  hostPort,
  type Identity,
  isDpcError,
  isRecordExpired,
  PeerIdentityMismatchError,
  type SecureChannelOptions,
  type SecureConnection,
  type SignedRecord,
  secureAccept,
  secureConnect,
  timeoutSignal,
  toAbortError,
} from '@dpc/core';
import * as C from './constants.js';
import type { RelayDirectory, RelayRef, Signaller } from './directory.js';
import { NoRelayError } from './errors.js';
import { InviteRateLimit, type InviteRefusalCode, inviteAddressProblem, sameRelay } from './invite-policy.js';
import { type RelayInvite, relayInviteSchema } from './messages.js';
import { dialRelay, type RelayLink, type SessionGrant } from './relay-link.js';
import { rankRelays } from './relay-score.js';
import { SplicePath } from './splice-path.js';

export interface RelayClientOptions {
  identity: Identity;
  /** Where relay offers are found (the DHT). Without one, only relays passed explicitly are used. */
  directory?: RelayDirectory;
  /** Tells a peer without a reservation that we wait for it at a relay (the DHT's SIGNAL). */
  signaller?: Signaller;
  /** Rank only relays of this region when there are any (spec `[relay] prefer_region`). Default ''. */
  preferRegion?: string;
  /** How long offers from the directory are reused, ms (spec `[relay] cache_timeout`). Default 300 000. */
  cacheTimeoutMs?: number;
  /** Deadline of a whole relayed connect, ms (spec `[connection] relay_timeout`). Default 20 000. */
  relayTimeoutMs?: number;
  /** Handshake deadline of control connections and of the end-to-end channel, ms. Default 10 000. */
  handshakeTimeoutMs?: number;
  /** Ping period of reserved links, ms (a failed ping re-reserves). Default 25 000; 0 disables. */
  reservationKeepaliveMs?: number;
  /** Relays `reserve()` keeps a reservation with. Default 2. */
  reservations?: number;
  /**
   * Delays between attempts to take reservations again after one is lost, ms; the last one
   * repeats until `reservations` are held again. Default 1 s, 2 s, 4 s, 8 s, 16 s, 30 s.
   */
  reserveBackoffsMs?: readonly number[];
  /** Each re-reserve delay is spread by ± this fraction. Default 0.2; 0 disables (tests). */
  reserveJitter?: number;
  /** Relays whose measured latency is remembered (least recently measured forgotten). Default 256. */
  maxMeasuredRelays?: number;
  /** Random source of the jitter, in [0, 1). Default Math.random. */
  random?: () => number;
  /** Relays of unknown latency probed (handshake RTT) in parallel before ranking. Default 3. */
  probeCount?: number;
  /**
   * Admit or refuse a peer that wants to reach us through a relay. Default: everyone. Checked
   * before a relay invite from that peer is acted on (refused: `invites_refused_unauthorized`).
   */
  authorize?: (nodeId: string) => boolean;
  /** Follow relay invites to loopback relay addresses (tests on one machine). Default false. */
  allowLoopback?: boolean;
  /** Follow relay invites to private / CGNAT / unique-local relay addresses (a LAN). Default false. */
  allowPrivate?: boolean;
  /** Relay invites answered per second from one sender. Default 1. */
  invitesPerSenderPerSecond?: number;
  /** Burst of invites from one sender. Default 4. */
  inviteSenderBurst?: number;
  /** Relay invites answered per second from all senders. Default 5. */
  invitesPerSecond?: number;
  /** Burst of invites from all senders. Default 20. */
  inviteBurst?: number;
  /** Invites being answered at once, at most. Default 8. */
  maxInvitesInFlight?: number;
  /**
   * Ask relays for spliced sessions (a plain TCP data connection per side, bytes copied by the
   * relay) rather than RELAY_MESSAGEs inside the control connection. Default true.
   */
  splice?: boolean;
  counters?: Counters;
}

export interface RelayClient extends EventEmitter {
  /** Reaches `target` through a relay: the listed `relays` first (where it holds a reservation), then the best scored ones. */
  connect(target: string, opts?: { signal?: AbortSignal; relays?: readonly RelayRef[] }): Promise<Connection>;
  /** Takes standing reservations (re-taken when a relay is lost); returns the relays to list in our endpoint record. */
  reserve(opts?: { signal?: AbortSignal; relays?: readonly RelayRef[] }): Promise<RelayRef[]>;
  /** The relays holding a reservation for us now. */
  reservations(): RelayRef[];
  /** Relay offers from the directory, best first (cached for `cacheTimeoutMs`). */
  findRelays(opts?: { signal?: AbortSignal }): Promise<SignedRecord<'relay-offer'>[]>;
  /** Latency this client measured to each relay, ms. */
  measuredLatency(): ReadonlyMap<string, number>;
  stats(): Record<string, number>;
  /** Closes every control connection and relayed connection; clears every timer. */
  stop(): Promise<void>;
  on(event: 'incoming', fn: (conn: Connection) => void): this;
  on(event: 'reservations', fn: (relays: RelayRef[]) => void): this;
  /** A relay invite that was not acted on, with its typed reason (also counted `invites_refused_<code>`). */
  on(event: 'invite-refused', fn: (e: { from: string; code: InviteRefusalCode; reason: string }) => void): this;
  on(event: 'error', fn: (err: Error) => void): this;
}

const refOf = (o: SignedRecord<'relay-offer'>): RelayRef => ({ node_id: o.body.node_id, ip: o.body.ip, port: o.body.port });

class VolunteerRelayClient extends EventEmitter implements RelayClient {
  readonly #o: RelayClientOptions;
  readonly #counters: Counters;
  readonly #shutdown = new AbortController();
  readonly #links = new Map<string, Promise<RelayLink>>();
  readonly #measured = new Map<string, number>();
  readonly #reserved = new Map<string, RelayRef>();
  readonly #conns = new Set<SecureConnection>();
  #cache: { at: number; offers: SignedRecord<'relay-offer'>[] } | undefined;
  #reserveFailures = 0;
  #retry: NodeJS.Timeout | undefined;
  readonly #inviteRate: InviteRateLimit;
  #invitesInFlight = 0;
  readonly #onSignal = (e: { from: string; payload: unknown }) => this.#onInvite(e);

  constructor(o: RelayClientOptions) {
    super();
    this.#o = o;
    // One listener per running operation on the shutdown signal: many may run at once.
    setMaxListeners(0, this.#shutdown.signal);
    this.#counters = o.counters ?? new Counters();
    this.#inviteRate = new InviteRateLimit({
      perSenderPerSecond: o.invitesPerSenderPerSecond ?? C.DEFAULT_INVITES_PER_SENDER_PER_SECOND,
      senderBurst: o.inviteSenderBurst ?? C.DEFAULT_INVITE_SENDER_BURST,
      perSecond: o.invitesPerSecond ?? C.DEFAULT_INVITES_PER_SECOND,
      burst: o.inviteBurst ?? C.DEFAULT_INVITE_BURST,
      maxSenders: C.MAX_INVITE_SENDERS_TRACKED,
    });
    o.signaller?.on('signal', this.#onSignal);
  }

  get #handshakeMs(): number {
    return this.#o.handshakeTimeoutMs ?? C.DEFAULT_HANDSHAKE_TIMEOUT_MS;
  }

  measuredLatency(): ReadonlyMap<string, number> {
    return this.#measured;
  }

  async findRelays(opts: { signal?: AbortSignal } = {}): Promise<SignedRecord<'relay-offer'>[]> {
    const dir = this.#o.directory;
    if (!dir) return [];
    const now = Date.now();
    const ttl = this.#o.cacheTimeoutMs ?? C.DEFAULT_CACHE_TIMEOUT_MS;
    if (!this.#cache || now - this.#cache.at >= ttl) {
      const signal = AbortSignal.any([this.#shutdown.signal, ...(opts.signal ? [opts.signal] : [])]);
      // Every region is asked for: the preference is applied when ranking, with a fallback.
      this.#cache = { at: now, offers: await dir.findRelays({ signal }) };
      this.#counters.inc('directory_lookups');
    }
    const live = this.#cache.offers.filter((o) => !isRecordExpired(o, now));
    return rankRelays(live, {
      ...(this.#o.preferRegion && { preferRegion: this.#o.preferRegion }),
      measuredLatencyMs: this.#measured,
      exclude: new Set([this.#o.identity.nodeId]),
    });
  }

  /** Directory relays, with the unmeasured leaders probed first so ranking uses our own latency. */
  async #rankedRelays(signal: AbortSignal, exclude: ReadonlySet<string>): Promise<RelayRef[]> {
    let offers = (await this.findRelays({ signal })).filter((o) => !exclude.has(o.body.node_id));
    const probe = offers.filter((o) => !this.#measured.has(o.body.node_id)).slice(0, this.#o.probeCount ?? C.DEFAULT_PROBE_COUNT);
    if (probe.length > 0) {
      const down = new Set<string>();
      await Promise.all(probe.map((o) => this.#link(refOf(o), signal).catch(() => down.add(o.body.node_id))));
      offers = rankRelays(
        offers.filter((o) => !down.has(o.body.node_id)),
        { measuredLatencyMs: this.#measured },
      );
    }
    return offers.map(refOf);
  }

  #link(relay: RelayRef, signal: AbortSignal): Promise<RelayLink> {
    const existing = this.#links.get(relay.node_id);
    if (existing) return existing;
    const dialSignal = AbortSignal.any([this.#shutdown.signal, signal]);
    const p = dialRelay(relay, { identity: this.#o.identity, signal: dialSignal, handshakeTimeoutMs: this.#handshakeMs }).then(
      (link) => {
        this.#counters.inc('relay_links');
        this.#remember(relay.node_id, link.rttMs);
        link.on('close', () => {
          if (this.#links.get(relay.node_id) === p) this.#links.delete(relay.node_id);
          this.#onLinkClosed(link);
        });
        link.on('idle-check', () => this.#closeIfIdle(link));
        link.on('incoming', (e: { from: string }) => this.#onIncoming(link, e.from));
        return link;
      },
      (err: unknown) => {
        this.#counters.inc('relay_link_failures');
        if (this.#links.get(relay.node_id) === p) this.#links.delete(relay.node_id);
        throw err;
      },
    );
    this.#links.set(relay.node_id, p);
    return p;
  }

  /** Remembers a relay's latency; the least recently measured is forgotten past MAX_MEASURED_RELAYS. */
  #remember(nodeId: string, rttMs: number): void {
    this.#measured.delete(nodeId);
    this.#measured.set(nodeId, rttMs);
    while (this.#measured.size > (this.#o.maxMeasuredRelays ?? C.MAX_MEASURED_RELAYS)) {
      const oldest = this.#measured.keys().next().value as string;
      this.#measured.delete(oldest);
    }
  }

  #closeIfIdle(link: RelayLink): void {
    if (link.refs <= 0 && !link.reserved && !link.closed) void link.close();
  }

  async #closeIdleLinks(): Promise<void> {
    for (const p of this.#links.values()) {
      p.then(
        (l) => this.#closeIfIdle(l),
        () => {},
      );
    }
  }

  async connect(target: string, opts: { signal?: AbortSignal; relays?: readonly RelayRef[] } = {}): Promise<Connection> {
    const deadline = timeoutSignal(this.#o.relayTimeoutMs ?? C.DEFAULT_RELAY_TIMEOUT_MS, 'volunteer relay', opts.signal);
    const signal = AbortSignal.any([deadline.signal, this.#shutdown.signal]);
    const errors: unknown[] = [];
    const tried: string[] = [];
    try {
      const self = this.#o.identity.nodeId;
      const listed = (opts.relays ?? []).filter((r) => r.node_id !== self);
      const seen = new Set<string>([self]);
      const attempt = async (relay: RelayRef, listedByPeer: boolean): Promise<Connection | undefined> => {
        seen.add(relay.node_id);
        tried.push(relay.node_id);
        try {
          return await this.#via(relay, target, signal, listedByPeer);
        } catch (err) {
          errors.push(err);
          this.#counters.inc(`connect_failover_${isDpcError(err) ? err.code : 'other'}`);
          if (signal.aborted) throw toAbortError(signal);
          return undefined;
        }
      };
      for (const r of listed) {
        const conn = await attempt(r, true);
        if (conn) return conn;
      }
      const ranked = await this.#rankedRelays(signal, seen);
      for (const r of ranked) {
        if (seen.has(r.node_id)) continue;
        const conn = await attempt(r, false);
        if (conn) return conn;
      }
      if (tried.length === 0) throw new NoRelayError(`no relay to reach ${target}: none listed by the peer, none in the directory`);
      const reasons = errors.map((e, i) => `${tried[i]}: ${isDpcError(e) ? `${e.code}: ${e.message}` : String(e)}`);
      throw new DialError(`volunteer_relay: every relay failed: ${reasons.join('; ')}`, errors);
    } catch (err) {
      this.#counters.inc('connect_failed');
      if (deadline.signal.aborted) throw toAbortError(deadline.signal);
      throw err;
    } finally {
      deadline.clear();
      void this.#closeIdleLinks();
    }
  }

  async #via(relay: RelayRef, target: string, signal: AbortSignal, listedByPeer: boolean): Promise<Connection> {
    const link = await this.#link(relay, signal);
    link.refs++;
    try {
      const grant = await link.register(
        target,
        signal,
        (w) => {
          // Not reserved here: tell the target where we wait (the DHT's SIGNAL), when we can.
          if (!w.notified && this.#o.signaller) {
            this.#counters.inc('invites_sent');
            const invite: RelayInvite = { type: 'relay-invite', relay };
            this.#o.signaller.signal(target, invite, { signal }).catch(() => this.#counters.inc('invite_errors'));
          }
        },
        this.#o.splice ?? true,
      );
      const conn = await this.#secure(grant, target, 'connect', signal);
      this.#counters.inc(listedByPeer ? 'connected_via_reservation' : 'connected_via_directory');
      return conn;
    } finally {
      link.refs--;
    }
  }

  /**
   * Runs the end-to-end TLS handshake over a granted session. The peer must prove `expected`
   * (the node we asked for), whatever the relay says the session's peer is: a relay that pairs
   * us with another node gets a typed refusal, never a connection.
   */
  async #secure(grant: SessionGrant, expected: string, role: 'connect' | 'accept', signal: AbortSignal): Promise<SecureConnection> {
    const stream = grant.stream;
    if (grant.peer !== expected) {
      stream.destroy();
      this.#counters.inc('session_wrong_peer');
      throw new PeerIdentityMismatchError(expected, grant.peer);
    }
    const common = {
      identity: this.#o.identity,
      tier: 'volunteer_relay' as const,
      expectedNodeId: expected,
      signal,
      handshakeTimeoutMs: this.#handshakeMs,
    };
    if (stream instanceof SplicePath) return this.#secureSpliced(stream, role, common);
    try {
      const conn = role === 'connect' ? await secureConnect(stream, common) : await secureAccept(stream, common);
      stream.onPathClosed = (err) => conn.destroy(err);
      this.#counters.inc('message_connections');
      this.#track(conn);
      return conn;
    } catch (err) {
      stream.destroy();
      throw err;
    }
  }

  /**
   * A spliced session: TLS runs on the data connection's socket itself (Node's native TLS path;
   * the socket is not wrapped in a JS stream), the path being the connection's hop: a data
   * connection that closes unannounced waits for the relay's reason.
   */
  async #secureSpliced(
    path: SplicePath,
    role: 'connect' | 'accept',
    common: SecureChannelOptions & { expectedNodeId: string },
  ): Promise<SecureConnection> {
    try {
      const socket = await path.ready(common.signal);
      const opts = { ...common, hop: path };
      const conn = role === 'connect' ? await secureConnect(socket, opts) : await secureAccept(socket, opts);
      path.onPathClosed = (err) => conn.destroy(err);
      this.#counters.inc('spliced_connections');
      this.#track(conn);
      conn.once('close', () => path.destroy());
      return conn;
    } catch (err) {
      // A broken handshake: a relay refusal or the path's end, when the relay gives one, says more.
      const why = err instanceof HandshakeError ? await path.handshakeFailed(err) : (path.pathError ?? err);
      path.destroy();
      throw why;
    }
  }

  #track(conn: SecureConnection): void {
    this.#conns.add(conn);
    conn.on('close', () => this.#conns.delete(conn));
  }

  /** A peer registered for us at a relay where we hold a reservation. */
  #onIncoming(link: RelayLink, from: string): void {
    this.#answer(link, from);
  }

  /**
   * A peer told us (DHT SIGNAL) that it waits for us at a relay. Acted on only when the sender is
   * authorised, within its rate and the total rate, the address is an IP we may dial, and the
   * relay is one we hold a reservation with or one the directory offers at that very address.
   */
  #onInvite(e: { from: string; payload: unknown }): void {
    let invite: RelayInvite;
    try {
      invite = relayInviteSchema(e.payload);
    } catch {
      return; // some other signal
    }
    if (this.#shutdown.signal.aborted) return;
    this.#counters.inc('invites_received');
    const refuse = (code: InviteRefusalCode, reason: string): void => {
      this.#counters.inc(`invites_refused_${code}`);
      if (this.listenerCount('invite-refused') > 0) this.emit('invite-refused', { from: e.from, code, reason });
    };
    const relay = invite.relay;
    if (e.from === this.#o.identity.nodeId || relay.node_id === this.#o.identity.nodeId) {
      refuse('unauthorized', 'an invite from or to ourselves');
      return;
    }
    if (this.#o.authorize && !this.#o.authorize(e.from)) {
      refuse('unauthorized', `${e.from} is not authorised`);
      return;
    }
    const limited = this.#inviteRate.take(e.from);
    if (limited) {
      refuse(limited.code, limited.reason);
      return;
    }
    const policy = { allowLoopback: this.#o.allowLoopback ?? false, allowPrivate: this.#o.allowPrivate ?? false };
    const bad = inviteAddressProblem(relay.ip, policy);
    if (bad) {
      refuse('address', bad);
      return;
    }
    const max = this.#o.maxInvitesInFlight ?? C.DEFAULT_MAX_INVITES_IN_FLIGHT;
    if (this.#invitesInFlight >= max) {
      refuse('busy', `${max} invites being answered`);
      return;
    }
    this.#invitesInFlight++;
    const t = timeoutSignal(this.#o.relayTimeoutMs ?? C.DEFAULT_RELAY_TIMEOUT_MS, 'relay invite', this.#shutdown.signal);
    const done = () => {
      this.#invitesInFlight--;
      t.clear();
    };
    this.#knownRelay(relay, t.signal).then((known) => {
      if (!known) {
        refuse('unknown_relay', `no relay offer for ${relay.node_id} at ${hostPort(relay.ip, relay.port)}`);
        return done();
      }
      this.#counters.inc('invites_accepted');
      this.#link(relay, t.signal).then((link) => this.#answer(link, e.from, t, () => this.#invitesInFlight--), done);
    }, done);
  }

  /** Whether `relay` (node id, ip, port) is one we hold a reservation with, or one the directory offers. */
  async #knownRelay(relay: RelayRef, signal: AbortSignal): Promise<boolean> {
    if ([...this.#reserved.values()].some((r) => sameRelay(r, relay))) return true;
    const dir = this.#o.directory;
    if (!dir) return false;
    const offered = (offers: readonly SignedRecord<'relay-offer'>[]) =>
      offers.some((o) => !isRecordExpired(o) && sameRelay(refOf(o), relay));
    if (this.#cache && offered(this.#cache.offers)) return true;
    // Not in the cached offers: look again, at most every INVITE_DIRECTORY_REFRESH_MS.
    if (this.#cache && Date.now() - this.#cache.at < C.INVITE_DIRECTORY_REFRESH_MS) return false;
    this.#cache = undefined;
    await this.findRelays({ signal });
    return this.#cache !== undefined && offered((this.#cache as { offers: SignedRecord<'relay-offer'>[] }).offers);
  }

  #answer(
    link: RelayLink,
    from: string,
    t = timeoutSignal(this.#o.relayTimeoutMs ?? C.DEFAULT_RELAY_TIMEOUT_MS, 'relay answer', this.#shutdown.signal),
    finished?: () => void,
  ): void {
    if (this.#o.authorize && !this.#o.authorize(from)) {
      this.#counters.inc('incoming_refused');
      t.clear();
      finished?.();
      return;
    }
    link.refs++;
    link
      .register(from, t.signal, undefined, this.#o.splice ?? true)
      .then((grant) => this.#secure(grant, from, 'accept', t.signal))
      .then(
        (conn) => {
          this.#counters.inc('incoming_connections');
          this.emit('incoming', conn);
        },
        (err: Error) => {
          this.#counters.inc('incoming_failed');
          if (this.listenerCount('error') > 0) this.emit('error', err);
        },
      )
      .finally(() => {
        link.refs--;
        t.clear();
        finished?.();
        this.#closeIfIdle(link);
      });
  }

  reservations(): RelayRef[] {
    return [...this.#reserved.values()];
  }

  reserve(opts: { signal?: AbortSignal; relays?: readonly RelayRef[] } = {}): Promise<RelayRef[]> {
    return this.#reserve(opts, false);
  }

  async #reserve(opts: { signal?: AbortSignal; relays?: readonly RelayRef[] }, retrying: boolean): Promise<RelayRef[]> {
    const signal = AbortSignal.any([this.#shutdown.signal, ...(opts.signal ? [opts.signal] : [])]);
    const want = this.#o.reservations ?? C.DEFAULT_RESERVATIONS;
    const self = this.#o.identity.nodeId;
    const exclude = new Set<string>([self, ...this.#reserved.keys()]);
    const before = [...this.#reserved.keys()].join();
    const candidates = [...(opts.relays ?? []).filter((r) => !exclude.has(r.node_id))];
    if (candidates.length < want - this.#reserved.size) {
      const more = await this.#rankedRelays(signal, exclude);
      for (const r of more) if (!candidates.some((c) => c.node_id === r.node_id)) candidates.push(r);
    }
    for (const relay of candidates) {
      if (this.#reserved.size >= want) break;
      try {
        const link = await this.#link(relay, signal);
        await link.reserve(signal, this.#o.reservationKeepaliveMs ?? C.DEFAULT_RESERVATION_KEEPALIVE_MS);
        this.#reserved.set(relay.node_id, relay);
        this.#counters.inc('reservations_taken');
      } catch {
        this.#counters.inc('reservations_failed');
        if (signal.aborted) throw toAbortError(signal);
      }
    }
    void this.#closeIdleLinks();
    // Unchanged reservations are not announced again (the retry loop calls this repeatedly).
    if (!retrying || before !== [...this.#reserved.keys()].join()) {
      this.emit('reservations', this.reservations());
    }
    // None held: keep trying in the background (the node is unreachable by relay until then).
    if (this.#reserved.size === 0 && !this.#retry) this.#scheduleReserve(candidates[0]);
    return this.reservations();
  }

  #onLinkClosed(link: RelayLink): void {
    if (!link.reserved || !this.#reserved.delete(link.relay.node_id)) return;
    this.#counters.inc('reservations_lost');
    this.emit('reservations', this.reservations());
    this.#scheduleReserve(link.relay);
  }

  /**
   * Takes reservations again after a loss: attempts (the lost relay first, then the directory's)
   * with a growing, jittered delay, until `reservations` are held; one loop at a time.
   */
  #scheduleReserve(prefer?: RelayRef): void {
    if (this.#shutdown.signal.aborted || this.#retry) return;
    const backoffs = this.#o.reserveBackoffsMs ?? C.DEFAULT_RESERVE_BACKOFFS_MS;
    const base = backoffs[Math.min(this.#reserveFailures, backoffs.length - 1)] ?? 1000;
    const jitter = this.#o.reserveJitter ?? C.DEFAULT_RESERVE_JITTER;
    const delay = Math.max(0, Math.round(base * (1 + jitter * (2 * (this.#o.random ?? Math.random)() - 1))));
    this.#reserveFailures++;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.#counters.inc('reserve_retries');
      this.#reserve(prefer ? { relays: [prefer] } : {}, true).then(
        (held) => {
          if (held.length >= (this.#o.reservations ?? C.DEFAULT_RESERVATIONS)) this.#reserveFailures = 0;
          else this.#scheduleReserve(prefer);
        },
        () => this.#scheduleReserve(prefer),
      );
    }, delay);
    this.#retry.unref();
  }

  stats(): Record<string, number> {
    return {
      ...this.#counters.snapshot(),
      relay_links: this.#links.size,
      relayed_connections: this.#conns.size,
      reservations: this.#reserved.size,
    };
  }

  async stop(): Promise<void> {
    this.#shutdown.abort();
    this.#o.signaller?.off?.('signal', this.#onSignal);
    clearTimeout(this.#retry);
    this.#retry = undefined;
    this.#reserved.clear();
    await Promise.all([...this.#conns].map((c) => c.close().catch(() => {})));
    const links = await Promise.allSettled([...this.#links.values()]);
    await Promise.all(links.map((r) => (r.status === 'fulfilled' ? r.value.close().catch(() => {}) : undefined)));
    this.#links.clear();
  }
}

/** A relay client: reaches peers through volunteer relays and answers peers that reach us through one. */
export function createRelayClient(opts: RelayClientOptions): RelayClient {
  return new VolunteerRelayClient(opts);
}
