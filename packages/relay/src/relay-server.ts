import { randomBytes } from 'node:crypto';
import { EventEmitter, once, setMaxListeners } from 'node:events';
import { createServer, isIPv6, type Server, type Socket } from 'node:net';
import { type Connection, Counters, type RelayOfferBody, SourceCounts, secureAccept, sourceKey, throwIfAborted } from '@dpc/core';
import * as C from './constants.js';
import { RelayConfigError, RelayPublicAddressError } from './errors.js';
import { type DisconnectReason, type RefusalCode, type RelayMessage, type RelayMessageOf, relayMessageSchema } from './messages.js';
import { publicAddressProblem } from './public-address.js';
import { RelayAnnouncer } from './relay-announcer.js';
import { bindDataConnection, sortConnection } from './relay-data.js';
import type { RelayServer, RelayServerOptions } from './relay-server-options.js';
import {
  type Client,
  FORWARD_HIGH_WATER,
  type Pending,
  pauseReading,
  resumeReading,
  type Session,
  type Side,
  sendTo,
} from './relay-session.js';
import { Splice } from './relay-splice.js';
import { TokenBucket } from './token-bucket.js';

/** Socket errors end in 'close', which is handled; one shared listener for every socket. */
const ignoreError = (): void => {};

class VolunteerRelayServer extends EventEmitter implements RelayServer {
  readonly #o: RelayServerOptions;
  readonly #counters: Counters;
  readonly #shutdown = new AbortController();
  readonly #clients = new Set<Client>();
  readonly #reserved = new Map<string, Client>();
  readonly #pending = new Map<string, Pending>();
  readonly #sessions = new Map<string, Session>();
  readonly #bandwidth: TokenBucket;
  readonly #timers = new Set<NodeJS.Timeout>();
  /** Sockets not yet known as control or data connections, and data connections not yet spliced. */
  readonly #unbound = new Set<Socket>();
  readonly #startedAt = Date.now();
  /** Per source: sockets open, sockets not yet secured / bound, reservations, initiated sessions + registrations. */
  readonly #connsBySource = new SourceCounts();
  readonly #pendingBySource = new SourceCounts();
  readonly #reservedBySource = new SourceCounts();
  readonly #initiatedBySource = new SourceCounts();
  readonly #initiatedByPeer = new SourceCounts();
  /** Where each secured control connection came from, until accept() takes it. */
  readonly #sourceOf = new WeakMap<object, string>();
  #server: Server | undefined;
  #port = 0;
  #sweep: NodeJS.Timeout | undefined;
  #announcer: RelayAnnouncer | undefined;
  #stopping = false;

  constructor(o: RelayServerOptions) {
    super();
    this.#o = o;
    // One listener per running operation on the shutdown signal: many may run at once.
    setMaxListeners(0, this.#shutdown.signal);
    this.#counters = o.counters ?? new Counters();
    const bytesPerSec = ((o.bandwidthLimitMbps ?? C.DEFAULT_BANDWIDTH_LIMIT_MBPS) * 1_000_000) / 8;
    this.#bandwidth = new TokenBucket({ ratePerSec: bytesPerSec, burst: bytesPerSec });
  }

  get port(): number {
    return this.#port;
  }

  async start(opts: { signal?: AbortSignal } = {}): Promise<void> {
    throwIfAborted(opts.signal);
    const host = this.#o.host ?? '0.0.0.0';
    if (this.#o.directory) {
      const ip = this.#announceIp();
      if (!ip) throw new RelayConfigError(`relay listens on ${host}: set publicIp, the address to announce in the relay offer`);
      const problem = publicAddressProblem(ip, { allowLoopback: this.#o.allowLoopback ?? false });
      if (problem) throw new RelayPublicAddressError(ip, problem);
    }
    const server = createServer({ noDelay: true }, (s) => this.#onSocket(s));
    server.on('error', (err) => {
      if (this.listenerCount('error') > 0) this.emit('error', err);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port: this.#o.port ?? C.DEFAULT_RELAY_PORT }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#server = server;
    this.#port = (server.address() as { port: number }).port;
    const idle = this.#o.idleTimeoutMs ?? C.DEFAULT_IDLE_TIMEOUT_MS;
    const dur = this.#o.maxSessionDurationMs ?? C.DEFAULT_MAX_SESSION_DURATION_MS;
    const every = Math.max(25, Math.min(1000, Math.floor(Math.min(idle, dur) / 4)));
    this.#sweep = setInterval(() => this.#sweepSessions(), every);
    this.#sweep.unref();
    if (this.#o.directory) {
      this.#announcer = new RelayAnnouncer({
        directory: this.#o.directory,
        offer: () => this.offer(),
        counters: this.#counters,
        signal: this.#shutdown.signal,
        intervalMs: this.#o.announceIntervalMs ?? C.DEFAULT_ANNOUNCE_INTERVAL_MS,
        debounceMs: this.#o.announceDebounceMs ?? C.DEFAULT_ANNOUNCE_DEBOUNCE_MS,
      });
      this.#announcer.start();
    }
  }

  #announceIp(): string | undefined {
    if (this.#o.publicIp) return this.#o.publicIp;
    const h = this.#o.host ?? '0.0.0.0';
    return h === '0.0.0.0' || h === '::' ? undefined : h;
  }

  #source(ip: string | undefined, port: number | undefined): string {
    return sourceKey(ip ?? '', port, { loopbackPerPort: this.#o.allowLoopback ?? false });
  }

  #onSocket(socket: Socket): void {
    const max = this.#o.maxConnections ?? C.DEFAULT_MAX_CONNECTIONS;
    if (this.#stopping || this.#clients.size + this.#unbound.size >= max) {
      this.#counters.inc('connections_refused_overload');
      socket.destroy();
      return;
    }
    const source = this.#source(socket.remoteAddress, socket.remotePort);
    if (this.#connsBySource.get(source) >= (this.#o.maxConnectionsPerSource ?? C.DEFAULT_MAX_CONNECTIONS_PER_SOURCE)) {
      this.#counters.inc('connections_refused_source_limit');
      socket.destroy();
      return;
    }
    if (this.#pendingBySource.get(source) >= (this.#o.maxPendingPerSource ?? C.DEFAULT_MAX_PENDING_PER_SOURCE)) {
      this.#counters.inc('connections_refused_source_pending');
      socket.destroy();
      return;
    }
    socket.on('error', ignoreError);
    this.#connsBySource.inc(source);
    this.#pendingBySource.inc(source);
    let pending = true;
    const settled = () => {
      if (!pending) return;
      pending = false;
      this.#pendingBySource.dec(source);
    };
    this.#sourceOf.set(socket, source);
    this.#unbound.add(socket);
    socket.once('close', () => {
      this.#unbound.delete(socket);
      settled();
      this.#connsBySource.dec(source);
    });
    socket.once('dpc-settled', settled);
    sortConnection(socket, this.#o.handshakeTimeoutMs ?? C.DEFAULT_HANDSHAKE_TIMEOUT_MS, {
      data: (sock) => void this.#onDataSocket(sock),
      control: (sock) => {
        this.#unbound.delete(sock);
        this.#onControlSocket(sock);
      },
    });
  }

  async #onDataSocket(socket: Socket): Promise<void> {
    const timeoutMs = this.#o.dataConnectionTimeoutMs ?? C.DEFAULT_DATA_CONNECTION_TIMEOUT_MS;
    const s = await bindDataConnection(socket, timeoutMs, (id) => this.#sessions.get(id), this.#counters);
    if (s) socket.emit('dpc-settled');
    if (s?.splice?.ready) {
      for (const sock of s.splice.sockets) if (sock) this.#unbound.delete(sock);
      this.#startSplice(s, s.splice);
    }
  }

  #startSplice(s: Session, sp: Splice): void {
    const maxBytes = this.#o.maxSessionBytes ?? C.DEFAULT_MAX_SESSION_BYTES;
    this.#counters.inc('sessions_spliced');
    sp.start({
      onBytes: (n) => {
        s.bytes += n;
        s.last = performance.now();
        if (s.bytes > maxBytes) {
          this.#endSession(s, 'bytes');
          return false;
        }
        this.#counters.inc('bytes_forwarded', n);
        return true;
      },
      debtMs: (n) => {
        const wait = this.#bandwidth.takeDebt(n);
        if (wait > 0) this.#counters.inc('bandwidth_throttled');
        return wait;
      },
      onClose: (reason) => this.#endSession(s, reason),
    });
  }

  #onControlSocket(socket: Socket): void {
    const tier = isIPv6(socket.remoteAddress ?? '') && !socket.remoteAddress?.startsWith('::ffff:') ? 'ipv6_direct' : 'ipv4_direct';
    secureAccept(socket, {
      identity: this.#o.identity,
      tier,
      signal: this.#shutdown.signal,
      handshakeTimeoutMs: this.#o.handshakeTimeoutMs ?? C.DEFAULT_HANDSHAKE_TIMEOUT_MS,
      // handshake_errors_<code>, frame_errors_<code> (DPC_DECODE_LIMIT: a MessagePack bomb)
      counters: this.#counters,
    }).then(
      (conn) => {
        socket.emit('dpc-settled');
        this.#sourceOf.set(conn, this.#sourceOf.get(socket) ?? this.#source(socket.remoteAddress, socket.remotePort));
        this.accept(conn);
      },
      () => {
        this.#counters.inc('handshakes_failed');
        socket.destroy();
      },
    );
  }

  accept(conn: Connection): void {
    if (this.#stopping) {
      void conn.close('stopping');
      return;
    }
    const rate = this.#o.messagesPerSecond ?? C.DEFAULT_MESSAGES_PER_SECOND;
    const source = this.#sourceOf.get(conn) ?? this.#source((conn as { remoteAddress?: string }).remoteAddress, undefined);
    const c: Client = {
      conn,
      nodeId: conn.remoteNodeId,
      source,
      rate: new TokenBucket({ ratePerSec: rate, burst: this.#o.messageBurst ?? C.DEFAULT_MESSAGE_BURST }),
      pending: new Set(),
      sessions: new Set(),
      pauses: 0,
      inflight: 0,
      blocked: new Set(),
    };
    this.#clients.add(c);
    this.#counters.inc('connections');
    conn.on('error', () => {});
    conn.on('close', () => this.#onClientClose(c));
    conn.on('message', (m: unknown) => this.#onMessage(c, m));
  }

  #refuse(c: Client, code: RefusalCode, reason: string, ref: { id?: number; session_id?: string } = {}): void {
    this.#counters.inc(`refused_${code}`);
    sendTo(c, { type: 'RELAY_REFUSED', code, reason, ...ref });
    if (this.listenerCount('refused') > 0) this.emit('refused', { code, nodeId: c.nodeId });
  }

  #onMessage(c: Client, raw: unknown): void {
    let m: RelayMessage;
    try {
      m = relayMessageSchema(raw);
    } catch {
      this.#counters.inc('protocol_errors');
      void c.conn.close('protocol error');
      return;
    }
    switch (m.type) {
      case 'RELAY_MESSAGE':
        this.#onData(c, m);
        return;
      case 'RELAY_REGISTER':
        this.#onRegister(c, m);
        return;
      case 'RELAY_RESERVE':
        this.#onReserve(c, m);
        return;
      case 'RELAY_DISCONNECT': {
        const s = this.#sessions.get(m.session_id);
        if (!s) return; // already over: nothing to answer
        if (s.a.client !== c && s.b.client !== c) {
          this.#refuse(c, 'identity', 'not your session', { session_id: m.session_id });
          return;
        }
        this.#endSession(s, m.reason, c);
        return;
      }
      default:
        this.#counters.inc('protocol_errors');
        this.#refuse(c, 'bad_request', `${m.type} is not a client message`);
        return;
    }
  }

  #onReserve(c: Client, m: RelayMessageOf<'RELAY_RESERVE'>): void {
    if (this.#stopping) {
      this.#refuse(c, 'stopping', 'relay is stopping', { id: m.id });
      return;
    }
    const max = this.#o.maxReservations ?? C.DEFAULT_MAX_RESERVATIONS;
    const held = this.#reserved.get(c.nodeId);
    if (!held && this.#reserved.size >= max) {
      this.#refuse(c, 'full', `${max} reservations held`, { id: m.id });
      return;
    }
    const perSource = this.#o.maxReservationsPerSource ?? C.DEFAULT_MAX_RESERVATIONS_PER_SOURCE;
    if (held?.source !== c.source && this.#reservedBySource.get(c.source) >= perSource) {
      this.#counters.inc('reservations_refused_source');
      this.#refuse(c, 'full', `${perSource} reservations held for your address`, { id: m.id });
      return;
    }
    if (held !== c) {
      if (held) this.#reservedBySource.dec(held.source);
      this.#reservedBySource.inc(c.source);
    }
    this.#reserved.set(c.nodeId, c);
    this.#counters.inc('reservations');
    sendTo(c, { type: 'RELAY_RESERVED', id: m.id, ttl_ms: 0 });
  }

  #onRegister(c: Client, m: RelayMessageOf<'RELAY_REGISTER'>): void {
    const me = c.nodeId;
    const ref = { id: m.id };
    if (m.from !== undefined && m.from !== me) {
      this.#refuse(c, 'identity', `you are ${me}, not ${m.from}`, ref);
      return;
    }
    if (m.target === me) {
      this.#refuse(c, 'bad_request', 'cannot register for yourself', ref);
      return;
    }
    if (this.#stopping) {
      this.#refuse(c, 'stopping', 'relay is stopping', ref);
      return;
    }
    const maxPeers = this.#o.maxPeers ?? C.DEFAULT_MAX_PEERS;
    if (this.#sessions.size >= maxPeers) {
      this.#refuse(c, 'full', `${maxPeers} sessions open`, ref);
      return;
    }
    if (this.#bandwidth.tokens < 0) {
      this.#refuse(c, 'bandwidth', 'relay is at its bandwidth limit', ref);
      return;
    }
    const other = this.#pending.get(`${m.target}>${me}`);
    if (other) {
      this.#dropPending(other, true);
      this.#openSession({ client: other.from, id: other.id, splice: other.splice }, { client: c, id: m.id, splice: m.splice === true });
      return;
    }
    const key = `${me}>${m.target}`;
    const old = this.#pending.get(key);
    if (old) {
      this.#dropPending(old);
      this.#refuse(old.from, 'replaced', 'a newer registration replaced this one', { id: old.id });
    }
    if (this.#pending.size >= (this.#o.maxPending ?? C.DEFAULT_MAX_PENDING) || c.pending.size >= C.DEFAULT_MAX_PENDING_PER_PEER) {
      this.#refuse(c, 'full', 'too many waiting registrations', ref);
      return;
    }
    // The initiator is charged (sessions + waiting registrations), never the answering side: a
    // reserved victim that does the TLS work for an attacker's sessions does not lose its own.
    const perPeer = this.#o.maxSessionsPerPeer ?? C.DEFAULT_MAX_SESSIONS_PER_PEER;
    if (this.#initiatedByPeer.get(me) >= perPeer) {
      this.#counters.inc('registrations_refused_peer');
      this.#refuse(c, 'full', `${perPeer} sessions or registrations of yours open`, ref);
      return;
    }
    const perSource = this.#o.maxSessionsPerSource ?? C.DEFAULT_MAX_SESSIONS_PER_SOURCE;
    if (this.#initiatedBySource.get(c.source) >= perSource) {
      this.#counters.inc('registrations_refused_source');
      this.#refuse(c, 'full', `${perSource} sessions or registrations from your address open`, ref);
      return;
    }
    this.#initiatedByPeer.inc(me);
    this.#initiatedBySource.inc(c.source);
    const timeout = this.#o.registrationTimeoutMs ?? C.DEFAULT_REGISTRATION_TIMEOUT_MS;
    const p: Pending = {
      key,
      from: c,
      target: m.target,
      id: m.id,
      splice: m.splice === true,
      timer: setTimeout(() => {
        this.#dropPending(p);
        this.#refuse(c, 'expired', `${m.target} did not register within ${timeout} ms`, ref);
      }, timeout),
    };
    p.timer.unref();
    this.#pending.set(key, p);
    c.pending.add(p);
    const target = this.#reserved.get(m.target);
    if (target) {
      this.#counters.inc('incoming_notified');
      sendTo(target, { type: 'RELAY_INCOMING', from: me });
    }
    sendTo(c, { type: 'RELAY_WAITING', id: m.id, notified: target !== undefined, timeout_ms: timeout });
  }

  /** Drops a waiting registration; its initiator's charge goes with it unless it became a session. */
  #dropPending(p: Pending, toSession = false): void {
    clearTimeout(p.timer);
    this.#pending.delete(p.key);
    p.from.pending.delete(p);
    if (!toSession) this.#release(p.from);
  }

  #release(initiator: Client): void {
    this.#initiatedByPeer.dec(initiator.nodeId);
    this.#initiatedBySource.dec(initiator.source);
  }

  #openSession(a: Side, b: Side): void {
    const now = performance.now();
    const s: Session = { id: randomBytes(12).toString('base64url'), a, b, started: now, last: now, bytes: 0 };
    this.#sessions.set(s.id, s);
    a.client.sessions.add(s);
    b.client.sessions.add(s);
    this.#counters.inc('sessions_opened');
    const limits = {
      msgs_per_s: this.#o.messagesPerSecond ?? C.DEFAULT_MESSAGES_PER_SECOND,
      msg_burst: this.#o.messageBurst ?? C.DEFAULT_MESSAGE_BURST,
      max_message_bytes: this.#o.maxMessageBytes ?? C.DEFAULT_MAX_MESSAGE_BYTES,
    };
    if (a.splice && b.splice && this.#server && this.#o.splice !== false) {
      const sp = new Splice();
      s.splice = sp;
      const data_port = this.#o.publicPort ?? this.#port;
      sendTo(a.client, {
        type: 'RELAY_SESSION',
        id: a.id,
        session_id: s.id,
        peer: b.client.nodeId,
        ...limits,
        data_token: sp.token(0),
        data_port,
      });
      sendTo(b.client, {
        type: 'RELAY_SESSION',
        id: b.id,
        session_id: s.id,
        peer: a.client.nodeId,
        ...limits,
        data_token: sp.token(1),
        data_port,
      });
      const ms = this.#o.dataConnectionTimeoutMs ?? C.DEFAULT_DATA_CONNECTION_TIMEOUT_MS;
      sp.deadline = setTimeout(() => {
        for (const side of [a, b])
          this.#refuse(side.client, 'data_timeout', `data connections did not arrive within ${ms} ms`, { session_id: s.id });
        this.#endSession(s, 'data_timeout');
      }, ms);
      sp.deadline.unref();
    } else {
      sendTo(a.client, { type: 'RELAY_SESSION', id: a.id, session_id: s.id, peer: b.client.nodeId, ...limits });
      sendTo(b.client, { type: 'RELAY_SESSION', id: b.id, session_id: s.id, peer: a.client.nodeId, ...limits });
    }
    if (this.listenerCount('session') > 0) this.emit('session', { session_id: s.id, peers: [a.client.nodeId, b.client.nodeId] });
    this.#loadChanged();
  }

  #onData(c: Client, m: RelayMessageOf<'RELAY_MESSAGE'>): void {
    const s = this.#sessions.get(m.session_id);
    if (!s) {
      this.#refuse(c, 'not_registered', 'no such session', { session_id: m.session_id });
      return;
    }
    const to = s.a.client === c ? s.b.client : s.b.client === c ? s.a.client : undefined;
    if (!to) {
      this.#refuse(c, 'identity', 'not your session', { session_id: m.session_id });
      return;
    }
    if (s.splice) {
      this.#refuseAndEnd(c, s, 'bad_request', 'a spliced session carries its bytes on the data connections');
      return;
    }
    const len = m.data.length;
    const max = this.#o.maxMessageBytes ?? C.DEFAULT_MAX_MESSAGE_BYTES;
    if (len > max) {
      this.#refuseAndEnd(c, s, 'too_large', `message of ${len} bytes, the limit is ${max}`);
      return;
    }
    if (!c.rate.tryTake(1)) {
      this.#refuseAndEnd(c, s, 'rate_limited', `more than ${c.rate.ratePerSec} messages/s`);
      return;
    }
    s.bytes += len;
    s.last = performance.now();
    this.#counters.inc('messages_forwarded');
    this.#counters.inc('bytes_forwarded', len);
    sendTo(to, m);
    if (s.bytes > (this.#o.maxSessionBytes ?? C.DEFAULT_MAX_SESSION_BYTES)) {
      this.#endSession(s, 'bytes');
      return;
    }
    // Bandwidth: forward now, then hold the sender back until the relay-wide debt is paid.
    const wait = this.#bandwidth.takeDebt(len);
    if (wait > 0) {
      this.#counters.inc('bandwidth_throttled');
      pauseReading(c);
      const t = setTimeout(() => {
        this.#timers.delete(t);
        resumeReading(c);
      }, wait);
      this.#timers.add(t);
    }
    if (to.inflight >= FORWARD_HIGH_WATER && !to.blocked.has(c)) {
      to.blocked.add(c);
      pauseReading(c);
    }
  }

  #refuseAndEnd(c: Client, s: Session, code: RefusalCode, reason: string): void {
    // A dropped chunk would break the peers' end-to-end stream: the session ends with it.
    this.#refuse(c, code, reason, { session_id: s.id });
    this.#endSession(s, code);
  }

  #endSession(s: Session, reason: DisconnectReason, initiator?: Client): void {
    if (!this.#sessions.delete(s.id)) return;
    this.#release(s.a.client);
    s.a.client.sessions.delete(s);
    s.b.client.sessions.delete(s);
    this.#counters.inc(`sessions_closed_${reason}`);
    for (const side of [s.a, s.b]) {
      if (side.client !== initiator) sendTo(side.client, { type: 'RELAY_DISCONNECT', session_id: s.id, reason });
    }
    if (s.splice) {
      for (const sock of s.splice.sockets) if (sock) this.#unbound.delete(sock);
      s.splice.close(reason === 'end');
    }
    if (this.listenerCount('session-end') > 0) {
      this.emit('session-end', { session_id: s.id, peers: [s.a.client.nodeId, s.b.client.nodeId], reason });
    }
    this.#loadChanged();
  }

  #onClientClose(c: Client): void {
    this.#clients.delete(c);
    if (this.#reserved.get(c.nodeId) === c) {
      this.#reserved.delete(c.nodeId);
      this.#reservedBySource.dec(c.source);
    }
    for (const p of c.pending) this.#dropPending(p);
    for (const s of c.sessions) this.#endSession(s, 'peer_lost', c);
    for (const b of c.blocked) resumeReading(b);
    c.blocked.clear();
  }

  #sweepSessions(): void {
    const now = performance.now();
    const idle = this.#o.idleTimeoutMs ?? C.DEFAULT_IDLE_TIMEOUT_MS;
    const dur = this.#o.maxSessionDurationMs ?? C.DEFAULT_MAX_SESSION_DURATION_MS;
    for (const s of this.#sessions.values()) {
      if (now - s.started >= dur) this.#endSession(s, 'duration');
      else if (now - s.last >= idle) this.#endSession(s, 'idle');
    }
  }

  offer(): RelayOfferBody {
    const maxPeers = this.#o.maxPeers ?? C.DEFAULT_MAX_PEERS;
    const rtts = [...this.#clients].map((c) => c.conn.rttMs).filter((x) => x > 0);
    const up = this.#o.uptime?.() ?? Math.min(1, (Date.now() - this.#startedAt) / C.UPTIME_WINDOW_MS);
    return {
      node_id: this.#o.identity.nodeId,
      ip: this.#announceIp() ?? '127.0.0.1',
      port: this.#o.publicPort ?? this.#port,
      available: !this.#stopping && this.#sessions.size < maxPeers,
      max_peers: maxPeers,
      current_peers: this.#sessions.size,
      region: this.#o.region ?? '',
      uptime: Math.min(1, Math.max(0, up)),
      latency_ms: rtts.length ? Math.round(rtts.reduce((x, y) => x + y, 0) / rtts.length) : 0,
      bandwidth_mbps: this.#o.bandwidthLimitMbps ?? C.DEFAULT_BANDWIDTH_LIMIT_MBPS,
    };
  }

  #loadChanged(): void {
    if (!this.#stopping) this.#announcer?.loadChanged();
  }

  stats(): Record<string, number> {
    return {
      ...this.#counters.snapshot(),
      open_sessions: this.#sessions.size,
      waiting_registrations: this.#pending.size,
      open_reservations: this.#reserved.size,
      open_connections: this.#clients.size,
      connected_sources: this.#connsBySource.size,
    };
  }

  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#shutdown.abort();
    clearInterval(this.#sweep);
    this.#announcer?.stop();
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const s of [...this.#sessions.values()]) this.#endSession(s, 'stopping');
    for (const sock of this.#unbound) sock.destroy();
    this.#unbound.clear();
    for (const p of [...this.#pending.values()]) {
      this.#dropPending(p);
      this.#refuse(p.from, 'stopping', 'relay is stopping', { id: p.id });
    }
    const closing = this.#server ? once(this.#server, 'close') : undefined;
    this.#server?.close();
    await Promise.all([...this.#clients].map((c) => c.conn.close('relay stopped').catch(() => {})));
    await closing;
  }
}

/**
 * A volunteer relay: accepts secured control connections, pairs registrations into sessions and
 * forwards the sessions' opaque bytes within its limits, announcing its offer in the directory.
 */
export function createRelayServer(opts: RelayServerOptions): RelayServer {
  return new VolunteerRelayServer(opts);
}
