import { randomBytes } from 'node:crypto';
import {
  type Connection,
  Counters,
  type EndpointBody,
  type Identity,
  type SignedRecord,
  secureAccept,
  secureConnect,
  sleep,
  type TierDht,
  type TierLogger,
  TierNotApplicableError,
  type TierUdpProtocol,
  throwIfAborted,
  timeoutSignal,
  toAbortError,
} from '@dpc/core';
import { candidateProblem } from './address-policy.js';
import { type BirthdayLimits, BirthdaySockets, probeRandomPorts } from './birthday.js';
import * as C from './constants.js';
import { PunchFailedError, PunchRefusedError } from './errors.js';
import {
  CLOSE,
  decodeProbe,
  encodeProbe,
  isPunchSignal,
  KEEPALIVE,
  PROBE,
  PROBE_ACK,
  type PunchSignal,
  punchSignalSchema,
} from './messages.js';
import { NatMonitor } from './nat-monitor.js';
import type { NatType, NatVerdict } from './nat-type.js';
import { punchPlan } from './punch-plan.js';
import { type Carrier, PunchedPath, UdxEngine } from './punched-path.js';

type Endpoint = { ip: string; port: number };
type Addr = { host: string; port: number };

export interface HolePuncherOptions {
  /** The identity proven in the TLS handshake (the node's). */
  identity: Identity;
  /** The DHT: signalling, endpoint discovery and its UDP socket (`registerProtocol`). */
  dht: TierDht;
  counters?: Counters;
  log?: TierLogger;
  /** `enable_hole_punching`: when false the node refuses punch requests. Default true. */
  enabled?: boolean;
  /** `hole_punch_timeout`: deadline of one punch, signalling to TLS, ms. Default 15 000. */
  timeoutMs?: number;
  /**
   * `[hole_punch] birthday_timeout`: deadline of a birthday punch (cone ↔ symmetric), when longer
   * than `timeoutMs`, ms; the cone side then probes for as long. Default 30 000.
   */
  birthdayTimeoutMs?: number;
  /** `punch_attempts`: probe rounds sent to every candidate. Default 3. */
  punchAttempts?: number;
  /** `nat_detection_enabled`. Default true. */
  natDetection?: boolean;
  /** `stun_timeout`: deadline of one endpoint-discovery round, ms. Default 5 000. */
  discoveryTimeoutMs?: number;
  /** Pause between probe rounds, ms. Default 200. */
  roundIntervalMs?: number;
  /** Keepalive period of a punched path, ms. Default 5 000. */
  keepaliveMs?: number;
  /** Silence after which a path is lost, ms. Default 20 000. */
  pathLostMs?: number;
  /** This host's addresses (NAT "open" check). Default: every interface's. */
  localAddresses?: () => string[];
  /** A new NAT verdict (publish it in the endpoint record, report it to the orchestrator). */
  onNat?: (v: NatVerdict) => void;
  /** An inbound punched, authenticated connection. */
  onIncoming?: (conn: Connection) => void;
  /** Bounds of the birthday punch (cone ↔ symmetric). */
  birthday?: BirthdayLimits;
  /**
   * Probe loopback, private and link-local candidates a peer names (tests and demos on one
   * machine). Default false: such candidates are dropped and counted
   * (`holepunch.candidates_refused`).
   */
  allowLocal?: boolean;
}

interface Session {
  sid: string;
  tok: string;
  peer: string;
  role: 'initiator' | 'responder';
  localStream: number;
  candidates: Endpoint[];
  /** The first address a valid probe came from. */
  winner?: Addr;
  onWin: Array<(a: Addr) => void>;
  onSignal?: (m: PunchSignal) => void;
  path?: PunchedPath;
  ctrl: AbortController;
  /** Where signals reach the peer, held for the punch (no DHT lookup per signal); empty: look it up. */
  route: Addr[];
  /** The socket the punch succeeded on, when not the DHT socket (birthday, symmetric side). */
  carrier?: Carrier;
  birthday?: BirthdaySockets;
  /** How this side punches (set when the punch starts). */
  mode?: ReturnType<typeof punchMode>;
  /** The responder's answer, sent again when a copy of the offer arrives. */
  answer?: Record<string, unknown>;
  /**
   * Initiator, while its offer is unanswered: gives the punch up for the peer's crossing offer
   * (the peer's node id is the smaller; see `#crossed`), naming the responder session to join.
   */
  onYield?: (r: Session) => void;
  /** Responder: a connect() of ours to the same peer waits for this punch's connection (it goes there, not to onIncoming). */
  joined?: { resolve: (c: Connection) => void; reject: (e: Error) => void };
}

/**
 * Tier 4's engine: measures the NAT of the DHT socket, answers punch requests arriving as DHT
 * signals, punches (rounds of probes to every candidate; the first probe back wins) on the DHT
 * socket itself, then runs UDX and TLS 1.3 over the punched path.
 */
export class HolePuncher {
  readonly #o: HolePuncherOptions;
  readonly #counters: Counters;
  readonly #nat: NatMonitor;
  readonly #sessions = new Map<string, Session>();
  /** Session ids of crossing offers this side kept its own offer against (their copies are ignored too). */
  readonly #crossedIds = new Set<string>();
  readonly #paths = new Map<string, PunchedPath>();
  readonly #shutdown = new AbortController();
  #engine: UdxEngine | undefined;
  #birthdayBusy = false;
  #probe: TierUdpProtocol | undefined;
  #udx: TierUdpProtocol | undefined;
  readonly #onSignal = (e: { from: string; payload: unknown }) => this.#handleSignal(e.from, e.payload);

  constructor(o: HolePuncherOptions) {
    this.#o = o;
    this.#counters = o.counters ?? new Counters();
    this.#nat = new NatMonitor({
      dht: o.dht,
      detect: o.natDetection ?? true,
      roundTimeoutMs: o.discoveryTimeoutMs ?? 5_000,
      signal: this.#shutdown.signal,
      ...(o.localAddresses && { localAddresses: o.localAddresses }),
    });
  }

  get enabled(): boolean {
    return this.#o.enabled ?? true;
  }

  get timeoutMs(): number {
    return this.#o.timeoutMs ?? 15_000;
  }

  /**
   * The deadline of a punch with a peer behind `theirs` when it is a birthday punch (cone ↔
   * symmetric: `birthdayTimeoutMs` when longer than `timeoutMs`), from our NAT `mine` (default:
   * the last verdict); undefined otherwise (or our NAT unknown yet): `timeoutMs` applies.
   */
  birthdayDeadlineMs(theirs: NatType, mine: NatType | undefined = this.nat?.type): number | undefined {
    if (mine === undefined || pairVerdict(mine, theirs) !== undefined || punchMode(mine, theirs) === 'direct') return undefined;
    const ms = this.#o.birthdayTimeoutMs ?? C.BIRTHDAY_TIMEOUT_MS;
    return ms > this.timeoutMs ? ms : undefined;
  }

  /** The last NAT verdict, if measured. */
  get nat(): NatVerdict | undefined {
    return this.#nat.last;
  }

  /** Registers on the DHT socket and starts listening for punch requests. */
  start(): void {
    this.#engine = new UdxEngine();
    this.#probe = this.#o.dht.registerProtocol({
      name: 'holepunch',
      prefix: C.PUNCH_PREFIX,
      onMessage: (m, f) => this.#onProbe(m, f, this.#carrier),
    });
    this.#udx = this.#o.dht.registerProtocol({ name: 'holepunch-udx', prefix: C.UDX_PREFIX, onMessage: (m, f) => this.#onUdx(m, f) });
    this.#o.dht.on('signal', this.#onSignal);
  }

  /** Measures (or re-measures with `force`) the NAT and reports the verdict through `onNat`. */
  async measureNat(opts: { signal?: AbortSignal; force?: boolean } = {}): Promise<NatVerdict> {
    const signal = AbortSignal.any([this.#shutdown.signal, ...(opts.signal ? [opts.signal] : [])]);
    const before = this.#nat.last;
    const v = await this.#nat.get({ signal, ...(opts.force !== undefined && { force: opts.force }) });
    const changed =
      !before ||
      before.type !== v.type ||
      before.endpoint?.ip !== v.endpoint?.ip ||
      before.endpoint?.port !== v.endpoint?.port ||
      before.samples.length !== v.samples.length;
    if (changed) {
      this.#counters.inc(`holepunch.nat.${v.type}`);
      this.#o.onNat?.(v);
    }
    return v;
  }

  get #carrier(): Carrier {
    const probe = this.#probe;
    if (!probe) throw new PunchFailedError('hole punching is not started');
    // Both protocols send from the same DHT socket; the prefix is part of the datagram.
    return { send: (msg, to) => probe.send(msg, to) };
  }

  /** The candidates we may probe (see `candidateProblem`); the others are counted and dropped. */
  #usable(eps: readonly Endpoint[]): Endpoint[] {
    return eps.filter((e) => {
      const why = candidateProblem(e.ip, { allowLocal: this.#o.allowLocal ?? false });
      if (why === undefined) return true;
      this.#counters.inc('holepunch.candidates_refused');
      this.#o.log?.debug('punch candidate refused', { ip: e.ip, why });
      return false;
    });
  }

  /**
   * Punches to `peer` and returns the TLS connection over the punched path. A record that says
   * the peer does not accept punching is looked up once more when it is young (see
   * `YOUNG_RECORD_MS`): it may be the one from before the peer's NAT verdict.
   */
  async connect(record: SignedRecord<'endpoint'>, opts: { signal: AbortSignal }): Promise<Connection> {
    throwIfAborted(opts.signal);
    const deadlineMs = this.birthdayDeadlineMs(record.body.nat_type) ?? this.timeoutMs;
    const t = timeoutSignal(deadlineMs, 'udp hole punch', AbortSignal.any([opts.signal, this.#shutdown.signal]));
    const signal = t.signal;
    const engine = this.#engine;
    if (!engine) throw new PunchFailedError('hole punching is not started');
    // The peer's offer came first and is being answered: this connect takes that punch's
    // connection (a second offer would cross it).
    const inbound = this.#liveSession(record.nodeId, 'responder');
    if (inbound && !inbound.joined) {
      this.#counters.inc('holepunch.joined');
      try {
        return await this.#join(inbound, signal);
      } finally {
        t.clear();
      }
    }
    let peer = record;
    if (!peer.body.accepts_punch) {
      try {
        peer = await this.#recheck(peer, signal);
      } catch (err) {
        t.clear();
        if (signal.aborted) throw toAbortError(signal);
        throw err;
      }
    }
    if (this.#sessions.size >= C.MAX_CONCURRENT_PUNCHES) throw new PunchFailedError('too many punches in progress');
    const s = this.#newSession(peer.nodeId, 'initiator', engine.allocateStreamId());
    this.#counters.inc('holepunch.attempts');
    // Aborted when this side gives its offer up for the peer's crossing one (see #crossed).
    const yielding = new AbortController();
    let yieldedTo: Session | undefined;
    s.onYield = (r) => {
      s.onYield = undefined;
      yieldedTo = r;
      yielding.abort(new PunchFailedError("gave the punch up for the peer's crossing offer"));
    };
    const outer = signal;
    try {
      const signal = AbortSignal.any([outer, yielding.signal]);
      const mine = await this.#ownNat(signal);
      const why = pairVerdict(mine.type, peer.body.nat_type);
      if (why) throw new TierNotApplicableError('udp_hole_punch', why);
      s.candidates = this.#usable(peer.body.punch);
      s.route = signalRoute(peer.body);
      const answer = new Promise<PunchSignal>((resolve) => {
        s.onSignal = resolve;
      });
      let t0 = performance.now();
      const via = ownRoute(this.#o.dht.endpointBody(), mine);
      const offer = {
        hp: 1,
        k: 'offer',
        sid: s.sid,
        tok: s.tok,
        nat: mine.type,
        eps: mine.endpoint ? [mine.endpoint] : [],
        stream: s.localStream,
      };
      await this.#signal(s, { ...offer, ...(via.length > 0 && { via }) }, signal);
      // Sent again (same session) while no answer came: a signal may be lost (the last hop to a
      // peer behind NAT is not retried), and a 0.1.0 responder drops an offer carrying `via` (its
      // schema refused unknown fields), so the copies go without it.
      const answered = new AbortController();
      // The round trip is measured from the last copy (an answer to an earlier one only comes sooner).
      const resending = this.#resendOffer(s, offer, AbortSignal.any([signal, answered.signal]), () => {
        t0 = performance.now();
      });
      const reply = await waitFor(answer, signal).finally(() => {
        answered.abort();
      });
      // Answered: the peer is punching with this offer, which is no longer given up.
      s.onYield = undefined;
      await resending;
      if (reply.k === 'refuse') throw new PunchRefusedError(reply.reason);
      if (reply.k !== 'answer') throw new PunchFailedError(`expected an answer, got ${reply.k}`);
      const rttMs = performance.now() - t0;
      for (const e of this.#usable(reply.eps)) if (!s.candidates.some((c) => c.ip === e.ip && c.port === e.port)) s.candidates.push(e);
      // The responder starts when `go` reaches it, about half a signalling round trip from now.
      const offset = Math.min(C.MAX_START_OFFSET_MS, Math.round(rttMs / 2));
      // Twice: a lost go would leave the responder waiting while this side punches alone (the
      // responder acts on the first copy and ignores the second).
      for (let i = 0; i < C.GO_COPIES; i++)
        this.#signal(s, { hp: 1, k: 'go', sid: s.sid, offset }, signal).catch((err: Error) => {
          this.#o.log?.debug('punch go not delivered', { peer: peer.nodeId, error: err.message });
        });
      await sleep(offset, signal);
      const remote = await this.#punch(s, punchMode(mine.type, reply.nat), signal);
      const path = await this.#openPath(s, remote, reply.stream);
      const conn = await secureConnect(path.duplex, {
        identity: this.#o.identity,
        tier: 'udp_hole_punch',
        expectedNodeId: peer.nodeId,
        signal,
        handshakeTimeoutMs: this.timeoutMs,
        counters: this.#counters,
      });
      this.#adopt(conn, path);
      this.#counters.inc('holepunch.connected');
      return conn;
    } catch (err) {
      s.path?.close();
      if (!yieldedTo || outer.aborted) {
        this.#counters.inc('holepunch.failures');
        if (outer.aborted) throw toAbortError(outer);
        throw err;
      }
    } finally {
      if (!yieldedTo || outer.aborted) t.clear();
      this.#endSession(s);
    }
    // Gave up for the peer's crossing offer: this connect resolves with that punch's connection.
    try {
      return await this.#join(yieldedTo, outer);
    } finally {
      t.clear();
    }
  }

  /**
   * A young record without `accepts_punch` (see `isYoungRecord`): waits RECORD_RECHECK_MS and
   * looks the peer up once more; returns the newer record when it accepts punching.
   */
  async #recheck(peer: SignedRecord<'endpoint'>, signal: AbortSignal): Promise<SignedRecord<'endpoint'>> {
    const refused = new TierNotApplicableError('udp_hole_punch', 'the peer does not accept hole punching');
    if (!isYoungRecord(peer)) throw refused;
    this.#counters.inc('holepunch.records_rechecked');
    await sleep(C.RECORD_RECHECK_MS, signal);
    let fresh: SignedRecord<'endpoint'>;
    try {
      // Past copies of the record we hold: a node the newer one has not reached yet may answer first.
      fresh = await this.#o.dht.findPeer(peer.nodeId, { signal, newerThan: peer.seq });
    } catch (err) {
      throwIfAborted(signal);
      this.#o.log?.debug('peer record not found again', { peer: peer.nodeId, error: (err as Error).message });
      throw refused;
    }
    if (fresh.nodeId !== peer.nodeId || fresh.seq <= peer.seq || !fresh.body.accepts_punch) throw refused;
    this.#counters.inc('holepunch.records_renewed');
    return fresh;
  }

  /** A punch of `role` with `peer` still running. */
  #liveSession(peer: string, role: Session['role']): Session | undefined {
    for (const s of this.#sessions.values()) if (s.peer === peer && s.role === role && !s.ctrl.signal.aborted) return s;
    return undefined;
  }

  /** Waits for responder session `r`'s connection (it goes here instead of onIncoming). */
  #join(r: Session, signal: AbortSignal): Promise<Connection> {
    if (r.joined) return Promise.reject(new PunchFailedError('another connect already waits for this punch'));
    const conn = new Promise<Connection>((resolve, reject) => {
      r.joined = { resolve, reject };
    });
    return waitFor(conn, signal).catch((err: unknown) => {
      // Given up here (deadline): a connection coming later goes to onIncoming.
      r.joined = undefined;
      throw err;
    });
  }

  /**
   * An offer from `from` while our own offer to it is unanswered (both called connect at once):
   * the offer of the smaller node id wins. The winner ignores the crossing offer (and its copies)
   * and goes on; the other side gives its offer up and answers the winner's, its connect()
   * resolving with that punch's connection. True when the offer was dealt with here.
   */
  #crossed(from: string, offer: Extract<PunchSignal, { k: 'offer' }>): boolean {
    if (this.#crossedIds.has(offer.sid)) {
      this.#counters.inc('holepunch.offers_repeated');
      return true;
    }
    const mine = this.#liveSession(from, 'initiator');
    if (!mine) return false;
    const me = this.#o.identity.nodeId;
    if (me < from) {
      this.#counters.inc('holepunch.crossed_kept');
      if (this.#crossedIds.size >= C.MAX_CONCURRENT_PUNCHES * 4) this.#crossedIds.delete(this.#crossedIds.values().next().value as string);
      this.#crossedIds.add(offer.sid);
      const timer = setTimeout(() => this.#crossedIds.delete(offer.sid), this.timeoutMs * 2);
      timer.unref();
      return true;
    }
    // Already answered by the peer (an older peer, which answers every offer): ours goes on; the
    // crossing offer is answered as a separate punch, as before.
    if (!mine.onYield) return false;
    this.#respond(from, offer).catch((err: Error) => {
      this.#counters.inc('holepunch.responder_failures');
      this.#o.log?.debug('punch as responder failed', { peer: from, error: err.message });
    });
    const r = this.#sessions.get(offer.sid);
    // Refused (busy, disabled): ours goes on.
    if (r?.role !== 'responder' || r.peer !== from) return true;
    this.#counters.inc('holepunch.crossed_yielded');
    mine.onYield(r);
    return true;
  }

  /** Sends `offer` again (without `via`) after each of OFFER_RESEND_MS while `signal` holds. */
  async #resendOffer(s: Session, offer: Record<string, unknown>, signal: AbortSignal, onSent: () => void): Promise<void> {
    for (const wait of C.OFFER_RESEND_MS) {
      await sleep(wait, signal).catch(() => {});
      if (signal.aborted) return;
      this.#counters.inc('holepunch.offers_resent');
      onSent();
      this.#signal(s, offer, signal).catch((err: Error) => {
        this.#o.log?.debug('punch offer not delivered', { peer: s.peer, error: err.message });
      });
    }
  }

  /** A signal of this punch, along the session's route (a DHT lookup only when it fails). */
  #signal(s: Session, payload: Record<string, unknown>, signal: AbortSignal): Promise<void> {
    this.#counters.inc(s.route.length > 0 ? 'holepunch.signals_routed' : 'holepunch.signals_looked_up');
    return this.#o.dht.signal(s.peer, payload, { signal, ...(s.route.length > 0 && { via: s.route }) });
  }

  async #ownNat(signal: AbortSignal): Promise<NatVerdict> {
    const t = timeoutSignal(Math.max(1, (this.#o.discoveryTimeoutMs ?? 5_000) * C.NAT_DISCOVERY_ROUNDS), 'NAT discovery', signal);
    try {
      return await this.measureNat({ signal: t.signal });
    } finally {
      t.clear();
    }
  }

  #newSession(peer: string, role: Session['role'], localStream: number, sid?: string, tok?: string): Session {
    const s: Session = {
      sid: sid ?? randomBytes(8).toString('hex'),
      tok: tok ?? randomBytes(8).toString('hex'),
      peer,
      role,
      localStream,
      candidates: [],
      route: [],
      onWin: [],
      ctrl: new AbortController(),
    };
    this.#sessions.set(s.sid, s);
    return s;
  }

  #endSession(s: Session): void {
    s.ctrl.abort();
    if (!s.path) s.birthday?.close();
    if (this.#sessions.get(s.sid) === s) this.#sessions.delete(s.sid);
    if (!s.path) this.#engine?.releaseStreamId(s.localStream);
  }

  /** Punches in `mode`; resolves with the first address a valid probe came from. */
  async #punch(s: Session, mode: ReturnType<typeof punchMode>, signal: AbortSignal): Promise<Addr> {
    s.mode = mode;
    if (mode === 'direct') return this.#punchDirect(s, signal);
    if (this.#birthdayBusy) throw new PunchFailedError('a birthday punch is already running on this node');
    this.#birthdayBusy = true;
    this.#counters.inc('holepunch.birthday_attempts');
    try {
      return mode === 'birthday-open' ? await this.#birthdayOpen(s, signal) : await this.#birthdayProbe(s, signal);
    } finally {
      this.#birthdayBusy = false;
    }
  }

  /**
   * Resolves with the punch's winning address: at once when a valid probe already came (the
   * peer may start first: its probe can arrive while this side still waits out the start offset),
   * else on the first one.
   */
  #won(s: Session): Promise<Addr> {
    if (s.winner) return Promise.resolve(s.winner);
    return new Promise<Addr>((resolve) => s.onWin.push(resolve));
  }

  /** Symmetric side: many sockets, low-TTL packets towards the cone side, the first probe through wins. */
  async #birthdayOpen(s: Session, signal: AbortSignal): Promise<Addr> {
    // The peer's probe may have come through already (see #won): nothing to open or probe.
    if (s.winner) return s.winner;
    const target = s.candidates[0];
    if (!target)
      throw new PunchFailedError(
        'the peer published no punch endpoint we may probe (loopback and private ones only with allowLocal, dpc-node --allow-loopback)',
      );
    const won = this.#won(s);
    const limits = this.#o.birthday ?? {};
    const sockets = await BirthdaySockets.open(limits.sockets ?? C.BIRTHDAY_SOCKETS, (msg, from, sock) => {
      const carrier: Carrier = { send: (b, to) => new Promise((res, rej) => sock.send(b, to.port, to.host, (e) => (e ? rej(e) : res()))) };
      if (msg.length >= 2 && msg[0] === C.UDX_PREFIX[0] && msg[1] === C.UDX_PREFIX[1]) this.#onUdx(msg, from);
      else if (msg.length >= 2 && msg[0] === C.PUNCH_PREFIX[0] && msg[1] === C.PUNCH_PREFIX[1]) {
        const p = decodeProbe(msg);
        if (!s.winner && p?.sid === s.sid && p.tok === s.tok) {
          s.carrier = carrier;
          sockets.keep(sock);
        }
        this.#onProbe(msg, from, carrier);
      }
    });
    s.birthday = sockets;
    const probe = encodeProbe(PROBE, s.sid, s.tok);
    // Ends the re-opening loop (and its 10 s pause) as soon as the punch is decided.
    const done = new AbortController();
    const loop = AbortSignal.any([signal, done.signal]);
    const opening = (async () => {
      while (!s.winner && !loop.aborted) {
        await sockets.openMappings({ host: target.ip, port: target.port }, probe, limits.ttl ?? C.BIRTHDAY_TTL, loop);
        this.#counters.inc('holepunch.birthday_rounds');
        this.#counters.inc('holepunch.birthday_packets', sockets.size);
        await sleep(C.BIRTHDAY_REOPEN_MS, loop).catch(() => {});
      }
    })();
    try {
      return await waitFor(won, signal);
    } finally {
      done.abort();
      await opening;
    }
  }

  /** Cone side: probes random ports of the symmetric side's address at a bounded rate. */
  async #birthdayProbe(s: Session, signal: AbortSignal): Promise<Addr> {
    // The peer's probe may have come through already (see #won): nothing to open or probe.
    if (s.winner) return s.winner;
    const target = s.candidates[0];
    if (!target)
      throw new PunchFailedError(
        'the peer published no punch endpoint we may probe (loopback and private ones only with allowLocal, dpc-node --allow-loopback)',
      );
    const won = this.#won(s);
    const carrier = this.#carrier;
    // Probes for as long as the punch may take (a longer birthday_timeout means more of them).
    const limits = this.#o.birthday ?? {};
    const interval = limits.probeIntervalMs ?? C.BIRTHDAY_PROBE_INTERVAL_MS;
    const deadline = Math.max(this.timeoutMs, this.#o.birthdayTimeoutMs ?? C.BIRTHDAY_TIMEOUT_MS);
    const probes = limits.probes ?? Math.max(C.BIRTHDAY_PROBES, Math.ceil(deadline / interval));
    const probing = probeRandomPorts(
      (b, to) => {
        this.#counters.inc('holepunch.probes_sent');
        carrier.send(b, to).catch(() => this.#counters.inc('holepunch.send_errors'));
      },
      target.ip,
      s.sid,
      s.tok,
      { ...limits, probes },
      () => s.winner !== undefined,
      signal,
    );
    try {
      return await waitFor(won, signal);
    } finally {
      await probing;
    }
  }

  /** Rounds of probes to every candidate; resolves with the first address a valid probe came from. */
  async #punchDirect(s: Session, signal: AbortSignal): Promise<Addr> {
    if (s.winner) return s.winner;
    const won = this.#won(s);
    const carrier = this.#carrier;
    const plan = punchPlan(s.candidates, { rounds: this.#o.punchAttempts ?? 3, probesPerRound: C.PROBES_PER_ROUND });
    if (plan.length === 0)
      throw new PunchFailedError(
        'the peer published no punch endpoint we may probe (loopback and private ones only with allowLocal, dpc-node --allow-loopback)',
      );
    const probe = encodeProbe(PROBE, s.sid, s.tok);
    const sending = (async () => {
      for (const round of plan) {
        if (s.winner || signal.aborted) return;
        for (const to of round) {
          this.#counters.inc('holepunch.probes_sent');
          carrier.send(probe, { host: to.ip, port: to.port }).catch(() => this.#counters.inc('holepunch.send_errors'));
        }
        await sleep(this.#o.roundIntervalMs ?? C.PUNCH_ROUND_INTERVAL_MS, signal).catch(() => {});
      }
    })();
    try {
      // After the last round, the peer's probes may still arrive (our mapping is open): wait for them.
      return await waitFor(won, signal);
    } finally {
      await sending;
    }
  }

  async #openPath(s: Session, remote: Addr, remoteStream: number): Promise<PunchedPath> {
    const engine = this.#engine as UdxEngine;
    if (this.#paths.size >= C.MAX_PATHS) throw new PunchFailedError('too many punched paths');
    const key = addrKey(remote);
    const birthday = s.birthday;
    const path = await PunchedPath.open({
      engine,
      carrier: s.carrier ?? this.#carrier,
      remote,
      sessionId: s.sid,
      token: s.tok,
      localStreamId: s.localStream,
      remoteStreamId: remoteStream,
      keepaliveMs: this.#o.keepaliveMs ?? C.KEEPALIVE_MS,
      pathLostMs: this.#o.pathLostMs ?? C.PATH_LOST_MS,
      counters: this.#counters,
      onClose: () => {
        birthday?.close();
        if (this.#paths.get(key) === path) this.#paths.delete(key);
        // retargeted since (see #onProbe)
        if (this.#paths.get(addrKey(path.remote)) === path) this.#paths.delete(addrKey(path.remote));
        if (this.#paths.get(s.sid) === path) this.#paths.delete(s.sid);
      },
    });
    this.#paths.get(key)?.close();
    this.#paths.set(key, path);
    this.#paths.set(s.sid, path);
    s.path = path;
    void this.#confirm(s, path);
    return path;
  }

  /**
   * Repeats PROBE_ACK to the peer until its first UDX datagram arrives (it has won and opened its
   * side of the path), the path closes or the session ends. One ACK per win is not enough: over a
   * lossy link a lost one leaves the peer punching on (a birthday punch's cone side would go on
   * probing random ports) while this side waits in the TLS handshake until its deadline.
   */
  async #confirm(s: Session, path: PunchedPath): Promise<void> {
    const carrier = s.carrier ?? this.#carrier;
    const ack = encodeProbe(PROBE_ACK, s.sid, s.tok);
    const signal = s.ctrl.signal;
    while (!path.udxHeard && !path.closed && !signal.aborted) {
      this.#counters.inc('holepunch.confirm_acks');
      carrier.send(ack, path.remote).catch(() => this.#counters.inc('holepunch.send_errors'));
      await sleep(C.CONFIRM_INTERVAL_MS, signal).catch(() => {});
    }
  }

  #adopt(conn: Connection, path: PunchedPath): void {
    conn.on('close', () => path.close());
  }

  #win(s: Session, from: Addr): void {
    if (s.winner) return;
    s.winner = from;
    this.#counters.inc('holepunch.punched');
    for (const f of s.onWin.splice(0)) f(from);
  }

  #onProbe(msg: Buffer, from: Addr, reply: Carrier): void {
    const p = decodeProbe(msg);
    if (!p) {
      this.#counters.inc('holepunch.rejects.malformed');
      return;
    }
    const s = this.#sessions.get(p.sid);
    const path = this.#paths.get(p.sid);
    const tok = s?.tok ?? path?.token;
    if (tok === undefined || tok !== p.tok) {
      this.#counters.inc('holepunch.rejects.unknown_session');
      return;
    }
    // A path is only ever made to an address we would probe ourselves (no loopback or private
    // path without allowLocal, whichever side probed first).
    if (candidateProblem(from.host, { allowLocal: this.#o.allowLocal ?? false }) !== undefined) {
      this.#counters.inc('holepunch.rejects.local_source');
      return;
    }
    // Cone side of a birthday punch: the peer's token from another address of the symmetric NAT
    // while no UDX datagram came yet. The symmetric side kept another socket than the one whose
    // probe won here, and sends from there: this path follows it, or each side would send where
    // the other is not (seen in the lab bench: both handshakes ran into the deadline).
    if (
      s?.mode === 'birthday-probe' &&
      path &&
      !path.closed &&
      !path.udxHeard &&
      (p.kind === PROBE || p.kind === PROBE_ACK) &&
      addrKey(path.remote) !== addrKey(from)
    ) {
      const old = addrKey(path.remote);
      path.retarget(from);
      if (this.#paths.get(old) === path) this.#paths.delete(old);
      const prev = this.#paths.get(addrKey(from));
      if (prev && prev !== path) prev.close();
      this.#paths.set(addrKey(from), path);
      this.#counters.inc('holepunch.paths_retargeted');
    }
    if (p.kind === PROBE) {
      this.#counters.inc('holepunch.probes_received');
      reply.send(encodeProbe(PROBE_ACK, p.sid, p.tok), from).catch(() => {});
      if (s) this.#win(s, from);
    } else if (p.kind === PROBE_ACK) {
      if (s) this.#win(s, from);
    } else if (p.kind === KEEPALIVE) {
      if (path && addrKey(path.remote) === addrKey(from)) path.heard();
    } else if (p.kind === CLOSE) {
      if (path && addrKey(path.remote) === addrKey(from)) path.close();
    }
    if (path && p.kind !== CLOSE && addrKey(path.remote) === addrKey(from)) path.heard();
  }

  #onUdx(msg: Buffer, from: Addr): void {
    const path = this.#paths.get(addrKey(from));
    if (!path) {
      this.#counters.inc('holepunch.rejects.udx_unknown_peer');
      return;
    }
    path.deliver(msg);
  }

  #handleSignal(from: string, payload: unknown): void {
    if (!isPunchSignal(payload)) return;
    let m: PunchSignal;
    try {
      m = punchSignalSchema(payload, 'signal');
    } catch {
      this.#counters.inc('holepunch.rejects.signal');
      return;
    }
    const s = this.#sessions.get(m.sid);
    if (s) {
      if (s.peer !== from) {
        this.#counters.inc('holepunch.rejects.signal_sender');
        return;
      }
      if (m.k === 'offer') {
        // A copy of the offer (the initiator had no answer yet): answer again if we have.
        this.#counters.inc('holepunch.offers_repeated');
        if (s.role === 'responder' && s.answer)
          this.#signal(s, s.answer, AbortSignal.timeout(this.timeoutMs)).catch((err: Error) => {
            this.#o.log?.debug('punch answer not delivered', { peer: from, error: err.message });
          });
        return;
      }
      s.onSignal?.(m);
      return;
    }
    if (m.k === 'offer') {
      this.#counters.inc('holepunch.offers_received');
      if (this.#crossed(from, m)) return;
      this.#respond(from, m).catch((err: Error) => {
        this.#counters.inc('holepunch.responder_failures');
        this.#o.log?.debug('punch as responder failed', { peer: from, error: err.message });
      });
    }
  }

  /** The responder side: answers the offer, waits for go, punches and accepts TLS. */
  async #respond(from: string, offer: Extract<PunchSignal, { k: 'offer' }>): Promise<void> {
    // The initiator named where signals reach it: answer there, without a DHT lookup.
    const route = (offer.via ?? [])
      .filter((e) => candidateProblem(e.ip, { allowLocal: this.#o.allowLocal ?? false }) === undefined)
      .map((e) => ({ host: e.ip, port: e.port }));
    const refuse = (reason: string) => {
      this.#counters.inc('holepunch.refused');
      return this.#o.dht.signal(
        from,
        { hp: 1, k: 'refuse', sid: offer.sid, reason },
        { signal: AbortSignal.timeout(this.timeoutMs), ...(route.length > 0 && { via: route }) },
      );
    };
    const engine = this.#engine;
    if (!this.enabled || !engine) return refuse('hole punching is disabled');
    if (this.#sessions.size >= C.MAX_CONCURRENT_PUNCHES) return refuse('busy');
    const t = timeoutSignal(this.birthdayDeadlineMs(offer.nat) ?? this.timeoutMs, 'udp hole punch (responder)', this.#shutdown.signal);
    const signal = t.signal;
    const s = this.#newSession(from, 'responder', engine.allocateStreamId(), offer.sid, offer.tok);
    s.route = route;
    try {
      const mine = await this.#ownNat(signal);
      const verdict = pairVerdict(mine.type, offer.nat);
      if (verdict) {
        await refuse(verdict);
        return;
      }
      s.candidates = this.#usable(offer.eps);
      const go = new Promise<PunchSignal>((resolve) => {
        s.onSignal = resolve;
      });
      s.answer = { hp: 1, k: 'answer', sid: s.sid, nat: mine.type, eps: mine.endpoint ? [mine.endpoint] : [], stream: s.localStream };
      await this.#signal(s, s.answer, signal);
      const g = await waitFor(go, signal);
      if (g.k !== 'go') throw new PunchFailedError(`expected go, got ${g.k}`);
      const remote = await this.#punch(s, punchMode(mine.type, offer.nat), signal);
      const path = await this.#openPath(s, remote, offer.stream);
      const conn = await secureAccept(path.duplex, {
        identity: this.#o.identity,
        tier: 'udp_hole_punch',
        expectedNodeId: from,
        signal,
        handshakeTimeoutMs: this.timeoutMs,
        counters: this.#counters,
      });
      this.#adopt(conn, path);
      this.#counters.inc('holepunch.accepted');
      const joined = s.joined;
      s.joined = undefined;
      if (joined) joined.resolve(conn);
      else this.#o.onIncoming?.(conn);
    } catch (err) {
      s.path?.close();
      s.joined?.reject(err as Error);
      s.joined = undefined;
      throw err;
    } finally {
      t.clear();
      s.joined?.reject(new PunchFailedError("the peer's punch ended without a connection"));
      s.joined = undefined;
      this.#endSession(s);
    }
  }

  async stop(): Promise<void> {
    this.#shutdown.abort();
    this.#o.dht.off('signal', this.#onSignal);
    for (const p of new Set(this.#paths.values())) p.close();
    this.#paths.clear();
    this.#probe?.close();
    this.#udx?.close();
    await this.#engine?.close();
    this.#engine = undefined;
  }
}

/**
 * The record was issued less than YOUNG_RECORD_MS ago (or in the future, by a clock ahead of
 * ours): without `accepts_punch` it may be the one from before the peer's NAT verdict.
 */
export function isYoungRecord(peer: SignedRecord<'endpoint'>, now = Date.now()): boolean {
  return now - peer.issuedAt < C.YOUNG_RECORD_MS;
}

/** Why a pair of NAT types cannot be punched, or undefined when it can. */
export function pairVerdict(mine: NatType, theirs: NatType): string | undefined {
  if (mine === 'blocked' || theirs === 'blocked') return 'UDP is blocked on one side';
  if (mine === 'symmetric' && theirs === 'symmetric') return 'both sides are behind symmetric NATs';
  if (mine === 'symmetric' || theirs === 'symmetric') {
    const other = mine === 'symmetric' ? theirs : mine;
    if (other !== 'cone' && other !== 'none') return `a birthday punch needs a cone NAT or none opposite a symmetric one, not ${other}`;
  }
  return undefined;
}

/** How a punchable pair is punched: both consistent → direct; symmetric ↔ cone → birthday (my role). */
export function punchMode(mine: NatType, theirs: NatType): 'direct' | 'birthday-open' | 'birthday-probe' {
  if (mine === 'symmetric' && theirs !== 'symmetric') return 'birthday-open';
  if (theirs === 'symmetric' && mine !== 'symmetric') return 'birthday-probe';
  return 'direct';
}

function addrKey(a: Addr): string {
  return `${a.host}|${a.port}`;
}

/**
 * Where signals reach a peer, from its verified endpoint record: its `signal_via` forwarders, or
 * its punch endpoint (the DHT socket's address) when it is not behind NAT.
 */
function signalRoute(body: EndpointBody): Addr[] {
  const via = body.signal_via.map((v) => ({ host: v.ip, port: v.port }));
  if (body.nat_type === 'none') for (const e of body.punch) via.push({ host: e.ip, port: e.port });
  return via.slice(0, 4);
}

/** Where signals reach this node (sent in the offer): the forwarders it registered with, or its own endpoint when open. */
function ownRoute(body: EndpointBody, mine: NatVerdict): Endpoint[] {
  const via: Endpoint[] = body.signal_via.map((v) => ({ ip: v.ip, port: v.port }));
  if (mine.type === 'none' && mine.endpoint) via.push(mine.endpoint);
  return via.slice(0, 4);
}

function waitFor<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(toAbortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(toAbortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
