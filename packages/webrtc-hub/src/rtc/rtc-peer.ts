import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  abortable,
  type Connection,
  type Counters,
  type DpcError,
  type Identity,
  isDpcError,
  type Schema,
  secureAccept,
  secureConnect,
  throwIfAborted,
  timeoutSignal,
  toAbortError,
} from '@dpc/core';
import { type RTCDataChannel, type RTCIceServer, RTCPeerConnection } from 'werift';
import type { Signaller } from '../hub/signaller.js';
import { sdpFingerprint, signBinding, verifyBinding } from './binding.js';
import {
  BINDING_MAX_SKEW_MS,
  DC_LABEL,
  DEFAULT_STEP_TIMEOUT_MS,
  DEFAULT_WEBRTC_TIMEOUT_MS,
  MAX_CANDIDATES_PER_SESSION,
  MAX_PENDING_SESSIONS,
  MAX_SEEN_OFFERS,
  TURN_UNUSABLE_MS,
} from './constants.js';
import { DataChannelStream } from './datachannel-stream.js';
import {
  RtcBindingError,
  RtcBusyError,
  RtcPeerEndedError,
  RtcSessionError,
  RtcSignalMalformedError,
  RtcTurnUnusableError,
} from './errors.js';
import { MessageConnection } from './message-connection.js';
import { isRtcSignal, type RtcAnswer, type RtcOffer, type RtcProtocol, type RtcSignal, rtcSignalSchema } from './messages.js';

/** Candidate types of the ICE pair a session uses (from werift's stats). */
export interface SelectedPair {
  local: string;
  remote: string;
  /** `udp` or `tcp` between this node and its first hop (the TURN server for a relay candidate). */
  protocol: string;
  localAddress?: string;
  remoteAddress?: string;
}

export interface RtcPeerOptions {
  identity: Identity;
  /** Carries offers, answers and candidates (the Hub). */
  signaller: Signaller;
  /**
   * STUN and TURN servers (werift uses the first STUN and the first TURN URL), or a function
   * called at each attempt (short-lived TURN credentials from the Hub). Default none.
   */
  iceServers?: RTCIceServer[] | ((opts: { signal: AbortSignal }) => RTCIceServer[] | Promise<RTCIceServer[]>);
  /** `relay`: only TURN relay candidates. Default `all`. */
  iceTransportPolicy?: 'all' | 'relay';
  /** Extra host addresses to offer as candidates (e.g. 127.0.0.1, which werift leaves out). */
  additionalHostAddresses?: string[];
  /** Use IPv6 host candidates too. Default false. */
  useIpv6?: boolean;
  /** A whole attempt (webrtc_timeout), ms. Default 30 000. */
  timeoutMs?: number;
  /** Each step of an attempt, ms. Default 10 000 (never more than what is left of `timeoutMs`). */
  stepTimeoutMs?: number;
  /** Accept offers from other nodes. Default true. */
  accept?: boolean;
  /** Accepting side: true to admit a verified node, or a reason to refuse it. */
  authorize?: (nodeId: string) => true | string;
  /** Sessions being set up at once, each direction. Default 32. */
  maxPendingSessions?: number;
  messageSchema?: Schema<unknown>;
  counters?: Counters;
}

export interface RtcConnectOptions {
  signal?: AbortSignal;
  /** What runs over the data channel. Default `dpc-tls/1` (node ↔ node). */
  proto?: RtcProtocol;
}

export interface RtcConnectionInfo {
  sid: string;
  proto: RtcProtocol;
  pair: SelectedPair | undefined;
  role: 'offerer' | 'answerer';
}

interface Session {
  sid: string;
  peer: string;
  role: 'offerer' | 'answerer';
  pc: RTCPeerConnection;
  /** Aborted with RtcPeerEndedError when the peer sends rtc-end. */
  ended: AbortController;
  candidates: number;
  /** TURN servers were configured for this session. */
  turn: boolean;
  /** Inside the gather step. */
  gathering?: boolean;
  answer?: (a: RtcAnswer) => void;
}

const urlsOf = (s: RTCIceServer) => (Array.isArray(s.urls) ? s.urls : [s.urls]);
const isTurnUrl = (u: string) => /^turns?:/i.test(u);
/** The ICE servers with every TURN URL left out. */
function withoutTurn(servers: RTCIceServer[]): RTCIceServer[] {
  return servers.flatMap((s) => {
    const urls = urlsOf(s).filter((u) => !isTurnUrl(u));
    return urls.length > 0 ? [{ ...s, urls }] : [];
  });
}
/** The attempt failed because TURN stalled gathering, here or at the peer. */
function turnUnusable(err: unknown): boolean {
  if (isDpcError(err, 'DPC_RTC_TURN_UNUSABLE')) return true;
  return isDpcError(err, 'DPC_RTC_PEER_ENDED') && (err as RtcPeerEndedError).reason.startsWith(TURN_UNUSABLE_REASON);
}
/** rtc-end reason when TURN stalled gathering (the caller then retries without it). */
const TURN_UNUSABLE_REASON = 'turn unusable';
const endReason = (e: Error) => `${isDpcError(e, 'DPC_RTC_TURN_UNUSABLE') ? `${TURN_UNUSABLE_REASON}: ` : ''}${e.message}`.slice(0, 200);

const key = (peer: string, sid: string) => `${peer}/${sid}`;

/**
 * Tier 3's engine: WebRTC data channels with werift, signalled through a `Signaller` (the Hub)
 * that it does not trust. Each offer and answer carries an Ed25519 signature of the sender's node
 * key over (kind, session id, from, to, DTLS fingerprint, protocol, expiry); the other side
 * checks the key is the node it wanted and that the SDP's fingerprint is the signed one, so DTLS
 * terminates at that node. Node ↔ node, the @dpc/core TLS 1.3 channel then runs over the data
 * channel too (`dpc-tls/1`). Events: `connection` (Connection, RtcConnectionInfo) for accepted
 * sessions, `refused` ({ from, code, message }) for offers turned down.
 */
export class RtcPeer extends EventEmitter {
  readonly #o: RtcPeerOptions;
  readonly #sessions = new Map<string, Session>();
  readonly #live = new Set<RTCPeerConnection>();
  /** (sender, session) of answered offers → until when their binding could still verify. */
  readonly #seenOffers = new Map<string, number>();
  /** After TURN stalled gathering, attempts leave TURN out until then (ms since the epoch). */
  #turnUnusableUntil = 0;
  readonly #shutdown = new AbortController();
  readonly #onSignal = (e: { from: string; payload: unknown }) => this.#handle(e.from, e.payload);
  #pendingIn = 0;
  #pendingOut = 0;

  constructor(o: RtcPeerOptions) {
    super();
    this.#o = o;
    o.signaller.on('signal', this.#onSignal);
  }

  get nodeId(): string {
    return this.#o.identity.nodeId;
  }

  /** Reaches `nodeId`: a Connection over a data channel whose DTLS peer is proven to be that node. */
  async connect(nodeId: string, opts: RtcConnectOptions = {}): Promise<Connection & { rtc?: RtcConnectionInfo }> {
    throwIfAborted(opts.signal);
    throwIfAborted(this.#shutdown.signal);
    const max = this.#o.maxPendingSessions ?? MAX_PENDING_SESSIONS;
    if (this.#pendingOut >= max) throw new RtcBusyError(`${max} outgoing WebRTC sessions are being set up already`);
    const proto = opts.proto ?? 'dpc-tls/1';
    const total = timeoutSignal(
      this.#o.timeoutMs ?? DEFAULT_WEBRTC_TIMEOUT_MS,
      'webrtc connect',
      AbortSignal.any([opts.signal ?? new AbortController().signal, this.#shutdown.signal]),
    );
    this.#pendingOut++;
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          return await this.#offer(nodeId, proto, total.signal);
        } catch (err) {
          // TURN that never answers (or refuses the credentials) stalls werift's gathering: once,
          // try again without it (both sides leave TURN out for a while after such a timeout).
          if (attempt > 0 || total.signal.aborted || !turnUnusable(err)) throw err;
          this.#o.counters?.inc('rtc_retries_without_turn');
        }
      }
    } finally {
      total.clear();
      this.#pendingOut--;
    }
  }

  async #offer(nodeId: string, proto: RtcProtocol, total: AbortSignal): Promise<Connection & { rtc?: RtcConnectionInfo }> {
    const sid = randomBytes(16).toString('hex');
    let s: Session | undefined;
    let conn: (Connection & { rtc?: RtcConnectionInfo }) | undefined;
    let signal = total;
    try {
      const ice = await this.#step('get ICE servers', this.#iceServers(total), total);
      s = this.#newSession(nodeId, sid, 'offerer', ice);
      signal = AbortSignal.any([total, s.ended.signal]);
      const dc = s.pc.createDataChannel(DC_LABEL, { ordered: true });
      const offer = await this.#step('create offer', s.pc.createOffer(), signal);
      const fingerprint = sdpFingerprint(offer.sdp);
      const binding = signBinding(this.#o.identity, { kind: 'offer', sid, to: nodeId, fingerprint, proto });
      const session = s;
      const answered = new Promise<RtcAnswer>((resolve) => {
        session.answer = resolve;
      });
      await this.#step('send offer', this.#send(nodeId, { t: 'rtc-offer', sid, proto, sdp: offer.sdp, ...binding }, signal), signal);
      // Trickle: the offer went out before gathering; candidates follow as werift finds them.
      this.#trickle(s, signal);
      const gathered = this.#gather(s, s.pc.setLocalDescription(offer), signal);
      gathered.catch(() => {}); // awaited below, after the answer
      const answer = await this.#step('wait for the answer', answered, signal);
      const verified = verifyBinding(answer, { kind: 'answer', from: nodeId, to: this.nodeId, expectedSigner: nodeId, proto });
      await gathered;
      await this.#step('apply the answer', s.pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp }), signal);
      const t0 = performance.now();
      await this.#step('connect ICE, DTLS and the data channel', waitOpen(dc, s.pc), signal);
      const info: RtcConnectionInfo = { sid, proto, pair: await selectedPair(s.pc), role: 'offerer' };
      conn = await this.#overChannel(dc, s, proto, verified.publicKey, performance.now() - t0, signal);
      conn.rtc = info;
      this.#o.counters?.inc(`rtc_connected_${info.pair?.local ?? 'unknown'}`);
      return conn;
    } catch (err) {
      const e = this.#typed(err, signal);
      this.#o.counters?.inc(`rtc_connect_errors_${(e as DpcError).code ?? 'unknown'}`);
      if (s) {
        this.#send(nodeId, { t: 'rtc-end', sid, reason: endReason(e) }).catch(() => {});
        this.#closePc(s.pc);
      }
      throw e;
    } finally {
      this.#sessions.delete(key(nodeId, sid));
    }
  }

  /** The gather step; a timeout with TURN configured marks TURN unusable for a while. */
  async #gather(s: Session, p: Promise<unknown>, signal: AbortSignal): Promise<void> {
    s.gathering = true;
    try {
      await this.#step('gather candidates', p, signal);
    } catch (err) {
      if (!signal.aborted && s.turn && isDpcError(err, 'DPC_TIMEOUT')) {
        this.#turnUnusable();
        throw new RtcTurnUnusableError(`gathering did not finish within ${this.#stepMs()} ms with TURN configured`, { cause: err });
      }
      throw err;
    } finally {
      s.gathering = false;
    }
  }

  #turnUnusable(): void {
    this.#turnUnusableUntil = Date.now() + TURN_UNUSABLE_MS;
    this.#o.counters?.inc('rtc_turn_gather_timeouts');
  }

  /** Stops accepting, aborts every session being set up and closes every live one. */
  async stop(): Promise<void> {
    this.#shutdown.abort(new RtcSessionError('WebRTC peer stopped'));
    this.#o.signaller.off('signal', this.#onSignal);
    for (const s of this.#sessions.values()) this.#closePc(s.pc);
    this.#sessions.clear();
    for (const pc of [...this.#live]) this.#closePc(pc);
  }

  async #iceServers(signal: AbortSignal): Promise<RTCIceServer[]> {
    const o = this.#o.iceServers;
    const all = typeof o === 'function' ? await o({ signal }) : (o ?? []);
    return Date.now() < this.#turnUnusableUntil ? withoutTurn(all) : all;
  }

  #newSession(peer: string, sid: string, role: 'offerer' | 'answerer', iceServers: RTCIceServer[]): Session {
    const pc = new RTCPeerConnection({
      iceServers,
      iceTransportPolicy: this.#o.iceTransportPolicy ?? 'all',
      iceUseIpv6: this.#o.useIpv6 ?? false,
      ...(this.#o.additionalHostAddresses && { iceAdditionalHostAddresses: this.#o.additionalHostAddresses }),
    });
    this.#live.add(pc);
    const turn = iceServers.some((x) => urlsOf(x).some(isTurnUrl));
    const s: Session = { sid, peer, role, pc, ended: new AbortController(), candidates: 0, turn };
    this.#sessions.set(key(peer, sid), s);
    return s;
  }

  /** Forwards this side's candidates to the peer as they are found. */
  #trickle(s: Session, signal: AbortSignal): void {
    const sub = s.pc.onIceCandidate.subscribe((c) => {
      if (signal.aborted) return;
      const payload = c?.candidate
        ? { t: 'rtc-ice', sid: s.sid, c: c.candidate, ...(c.sdpMid != null && { mid: String(c.sdpMid) }) }
        : { t: 'rtc-ice', sid: s.sid, c: '' };
      this.#send(s.peer, payload, signal).catch(() => this.#o.counters?.inc('rtc_ice_send_errors'));
    });
    signal.addEventListener('abort', () => sub.unSubscribe(), { once: true });
    s.pc.connectionStateChange.subscribe((st) => {
      if (st === 'connected' || st === 'closed' || st === 'failed') sub.unSubscribe();
    });
  }

  async #overChannel(
    dc: RTCDataChannel,
    s: Session,
    proto: RtcProtocol,
    remotePublicKey: Buffer,
    rttMs: number,
    signal: AbortSignal,
  ): Promise<Connection & { rtc?: RtcConnectionInfo }> {
    const release = () => {
      setTimeout(() => this.#closePc(s.pc), 200).unref();
    };
    if (proto === 'dpc-msg/1') {
      return new MessageConnection({
        dc,
        localNodeId: this.nodeId,
        remoteNodeId: s.peer,
        remotePublicKey,
        rttMs,
        onClose: release,
        ...(this.#o.messageSchema && { messageSchema: this.#o.messageSchema }),
        ...(this.#o.counters && { counters: this.#o.counters }),
      });
    }
    const stream = new DataChannelStream(dc);
    stream.on('error', () => {});
    const opts = {
      identity: this.#o.identity,
      tier: 'hub_webrtc' as const,
      expectedNodeId: s.peer,
      signal,
      handshakeTimeoutMs: this.#stepMs(),
      ...(this.#o.messageSchema && { messageSchema: this.#o.messageSchema }),
      ...(this.#o.counters && { counters: this.#o.counters }),
    };
    try {
      const conn = s.role === 'offerer' ? await secureConnect(stream, opts) : await secureAccept(stream, opts);
      conn.once('close', release);
      return conn;
    } catch (err) {
      stream.destroy();
      throw err;
    }
  }

  #stepMs(): number {
    return this.#o.stepTimeoutMs ?? DEFAULT_STEP_TIMEOUT_MS;
  }

  /** Waits for `p` within a step deadline and the attempt's signal; both give typed errors. */
  async #step<T>(what: string, p: Promise<T>, signal: AbortSignal): Promise<T> {
    p.catch(() => {}); // may be left behind when the step times out
    const t = timeoutSignal(this.#stepMs(), `webrtc step '${what}'`, signal);
    try {
      return await abortable(p, t.signal);
    } catch (err) {
      throw this.#typed(err, t.signal, what);
    } finally {
      t.clear();
    }
  }

  #typed(err: unknown, signal: AbortSignal, what?: string): Error {
    if (isDpcError(err)) return err;
    if (signal.aborted) return toAbortError(signal);
    return new RtcSessionError(`${what ?? 'webrtc'}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }

  async #send(to: string, payload: unknown, signal?: AbortSignal): Promise<void> {
    await this.#o.signaller.send(to, payload, signal ? { signal } : undefined);
  }

  #closePc(pc: RTCPeerConnection): void {
    if (!this.#live.delete(pc)) return;
    pc.close().catch(() => {});
  }

  #handle(from: string, payload: unknown): void {
    if (!isRtcSignal(payload)) return;
    let m: RtcSignal;
    try {
      m = rtcSignalSchema(payload);
    } catch (err) {
      this.#refused(from, new RtcSignalMalformedError(`bad tier-3 signal from ${from}: ${(err as Error).message}`, { cause: err }));
      return;
    }
    if (m.t === 'rtc-offer') {
      this.#answer(from, m).catch(() => {});
      return;
    }
    const s = this.#sessions.get(key(from, m.sid));
    if (!s) {
      this.#o.counters?.inc('rtc_signals_unknown_session');
      return;
    }
    if (m.t === 'rtc-answer') {
      if (s.role !== 'offerer' || !s.answer) return void this.#o.counters?.inc('rtc_signals_unexpected');
      const resolve = s.answer;
      s.answer = undefined;
      resolve(m);
    } else if (m.t === 'rtc-ice') {
      if (++s.candidates > MAX_CANDIDATES_PER_SESSION) return void this.#o.counters?.inc('rtc_candidates_dropped');
      if (m.c === '') return;
      s.pc.addIceCandidate({ candidate: m.c, ...(m.mid !== undefined && { sdpMid: m.mid }) }).catch(() => {
        this.#o.counters?.inc('rtc_candidates_bad');
      });
    } else {
      // The peer gave up because TURN stalled its gathering, and ours with TURN is stalled too.
      if (m.reason.startsWith(TURN_UNUSABLE_REASON) && s.turn && s.gathering) this.#turnUnusable();
      s.ended.abort(new RtcPeerEndedError(m.reason));
    }
  }

  /**
   * Each signed offer is answered once: its (sender, session) is remembered until the binding
   * expires, so an offer the Hub replays is refused. Full of live entries: refuse (fail closed).
   */
  #replayed(from: string, offer: RtcOffer): DpcError | undefined {
    const k = key(from, offer.sid);
    const now = Date.now();
    if ((this.#seenOffers.get(k) ?? 0) > now) return new RtcBindingError(`offer ${offer.sid} from ${from} was already answered (replayed)`);
    if (this.#seenOffers.size >= MAX_SEEN_OFFERS) {
      for (const [x, until] of this.#seenOffers) if (until <= now) this.#seenOffers.delete(x);
      if (this.#seenOffers.size >= MAX_SEEN_OFFERS) throw new RtcBusyError(`${MAX_SEEN_OFFERS} offers answered within their validity`);
    }
    this.#seenOffers.set(k, offer.exp + BINDING_MAX_SKEW_MS);
    return undefined;
  }

  #refused(from: string, err: DpcError): void {
    this.#o.counters?.inc(`rtc_refused_${err.code}`);
    this.emit('refused', { from, code: err.code, message: err.message });
  }

  /** Answers an offer: verify its binding, answer with ours, trickle, wait for the channel. */
  async #answer(from: string, offer: RtcOffer): Promise<void> {
    const sid = offer.sid;
    const end = (reason: string) => this.#send(from, { t: 'rtc-end', sid, reason }).catch(() => {});
    if (this.#shutdown.signal.aborted) return;
    if (this.#o.accept === false) {
      end('not accepting WebRTC sessions');
      return;
    }
    const max = this.#o.maxPendingSessions ?? MAX_PENDING_SESSIONS;
    if (this.#pendingIn >= max) {
      this.#refused(from, new RtcBusyError(`${max} incoming WebRTC sessions are being set up already`));
      end('busy');
      return;
    }
    let verified: ReturnType<typeof verifyBinding>;
    try {
      verified = verifyBinding(offer, { kind: 'offer', from, to: this.nodeId, proto: offer.proto });
      const replayed = this.#replayed(from, offer);
      if (replayed) {
        // No rtc-end: that would end the genuine session of this id.
        this.#refused(from, replayed);
        return;
      }
      const verdict = this.#o.authorize?.(verified.nodeId) ?? true;
      if (verdict !== true) throw new RtcSessionError(`not authorized: ${verdict}`);
    } catch (err) {
      this.#refused(from, err as DpcError);
      end('refused');
      return;
    }
    this.#pendingIn++;
    const total = timeoutSignal(this.#o.timeoutMs ?? DEFAULT_WEBRTC_TIMEOUT_MS, 'webrtc accept', this.#shutdown.signal);
    let s: Session | undefined;
    let signal = total.signal;
    try {
      const ice = await this.#step('get ICE servers', this.#iceServers(total.signal), total.signal);
      s = this.#newSession(from, sid, 'answerer', ice);
      signal = AbortSignal.any([total.signal, s.ended.signal]);
      const pc = s.pc;
      const channel = new Promise<RTCDataChannel>((resolve) => {
        const sub = pc.onDataChannel.subscribe((dc) => {
          sub.unSubscribe();
          resolve(dc);
        });
      });
      await this.#step('apply the offer', s.pc.setRemoteDescription({ type: 'offer', sdp: offer.sdp }), signal);
      const answer = await this.#step('create answer', s.pc.createAnswer(), signal);
      const fingerprint = sdpFingerprint(answer.sdp);
      const binding = signBinding(this.#o.identity, { kind: 'answer', sid, to: from, fingerprint, proto: offer.proto });
      await this.#step('send answer', this.#send(from, { t: 'rtc-answer', sid, sdp: answer.sdp, ...binding }, signal), signal);
      this.#trickle(s, signal);
      await this.#gather(s, s.pc.setLocalDescription(answer), signal);
      const t0 = performance.now();
      const dc = await this.#step(
        'connect ICE, DTLS and the data channel',
        channel.then((d) => waitOpen(d, pc).then(() => d)),
        signal,
      );
      const info: RtcConnectionInfo = { sid, proto: offer.proto, pair: await selectedPair(s.pc), role: 'answerer' };
      const conn = await this.#overChannel(dc, s, offer.proto, verified.publicKey, performance.now() - t0, signal);
      conn.rtc = info;
      this.#o.counters?.inc(`rtc_accepted_${info.pair?.local ?? 'unknown'}`);
      this.emit('connection', conn, info);
    } catch (err) {
      const e = this.#typed(err, signal);
      this.#o.counters?.inc(`rtc_accept_errors_${(e as DpcError).code ?? 'unknown'}`);
      if (!s?.ended.signal.aborted) end(endReason(e));
      if (s) this.#closePc(s.pc);
    } finally {
      total.clear();
      this.#pendingIn--;
      this.#sessions.delete(key(from, sid));
    }
  }
}

/** Resolves when the channel is open; rejects when ICE or DTLS fails or the peer connection closes. */
function waitOpen(dc: RTCDataChannel, pc: RTCPeerConnection): Promise<void> {
  if (dc.readyState === 'open') return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const a = dc.stateChanged.subscribe((st) => {
      if (st === 'open') done();
      else if (st === 'closed') done(new RtcSessionError('data channel closed before it opened'));
    });
    const b = pc.connectionStateChange.subscribe((st) => {
      if (st === 'failed' || st === 'closed') done(new RtcSessionError(`peer connection ${st} (ICE or DTLS)`));
    });
    function done(err?: Error) {
      a.unSubscribe();
      b.unSubscribe();
      if (err) reject(err);
      else resolve();
    }
  });
}

/** The nominated ICE pair's candidate types, from werift's stats. */
export async function selectedPair(pc: RTCPeerConnection): Promise<SelectedPair | undefined> {
  try {
    const report = await pc.getStats();
    const stats = [...(report as unknown as Map<string, Record<string, unknown>>).values()];
    const pair =
      stats.find((x) => x.type === 'candidate-pair' && x.nominated) ??
      stats.find((x) => x.type === 'candidate-pair' && x.state === 'succeeded');
    if (!pair) return undefined;
    const local = stats.find((x) => x.id === pair.localCandidateId);
    const remote = stats.find((x) => x.id === pair.remoteCandidateId);
    return {
      local: String(local?.candidateType ?? 'unknown'),
      remote: String(remote?.candidateType ?? 'unknown'),
      protocol: String(local?.protocol ?? 'unknown'),
      ...(local?.address !== undefined && { localAddress: `${local.address}:${local.port}` }),
      ...(remote?.address !== undefined && { remoteAddress: `${remote.address}:${remote.port}` }),
    };
  } catch {
    return undefined;
  }
}
