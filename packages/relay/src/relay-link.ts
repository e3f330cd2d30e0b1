import { EventEmitter } from 'node:events';
import { isIPv6, type Socket, connect as tcpConnect } from 'node:net';
import { type Identity, type SecureConnection, secureConnect, toAbortError } from '@dpc/core';
import type { RelayRef } from './directory.js';
import { RelayPathClosedError, RelayRefusedError } from './errors.js';
import { type RelayMessage, type RelayMessageOf, type RelayMessageOut, relayMessageSchema } from './messages.js';
import { type RelayStream, type SessionLimits, RelayStream as Stream, type StreamLink } from './relay-stream.js';
import { SplicePath } from './splice-path.js';

/** A session the relay created, with its byte stream already open (spliced, or in RELAY_MESSAGEs). */
export type SessionGrant = RelayMessageOf<'RELAY_SESSION'> & { stream: RelayStream | SplicePath };

interface PendingRequest {
  resolve: (m: RelayMessage) => void;
  reject: (err: Error) => void;
  onWaiting?: (m: RelayMessageOf<'RELAY_WAITING'>) => void;
}

/**
 * A client's control connection to one relay: request/answer matching by id, the session
 * streams it carries, and relay notices (RELAY_INCOMING). Emits 'incoming' ({ from }) and 'close'.
 */
export class RelayLink extends EventEmitter implements StreamLink {
  readonly relay: RelayRef;
  readonly conn: SecureConnection;
  /** Users of the link (running requests, open streams, a reservation). */
  refs = 0;
  reserved = false;
  #keepalive: NodeJS.Timeout | undefined;
  readonly #requests = new Map<number, PendingRequest>();
  readonly #streams = new Map<string, RelayStream | SplicePath>();
  readonly #readPaused = new Set<RelayStream>();
  #nextId = 1;

  constructor(relay: RelayRef, conn: SecureConnection) {
    super();
    this.relay = relay;
    this.conn = conn;
    conn.on('error', () => {});
    conn.on('message', (m: unknown) => this.#onMessage(m as RelayMessage));
    conn.on('close', (err?: Error) => this.#onClose(err));
  }

  get closed(): boolean {
    return this.conn.closed;
  }

  get rttMs(): number {
    return this.conn.rttMs;
  }

  send(msg: RelayMessageOut, opts?: { signal?: AbortSignal }): Promise<void> {
    return this.conn.send(msg, opts);
  }

  /**
   * Asks for a standing reservation, then pings the relay every `keepaliveMs`: a NAT that lost
   * its mapping (reboot, timeout) leaves a dead link that only traffic reveals. A ping that fails
   * destroys the link, so the client takes the reservation again.
   */
  async reserve(signal: AbortSignal, keepaliveMs: number): Promise<void> {
    await this.#request((id) => ({ type: 'RELAY_RESERVE', id }), signal);
    this.reserved = true;
    if (this.#keepalive || keepaliveMs <= 0) return;
    this.#keepalive = setInterval(() => {
      if (this.closed || this.#readPaused.size > 0) return; // a paused reader cannot answer pings
      this.conn.ping({ signal: AbortSignal.timeout(Math.min(keepaliveMs, 10_000)) }).catch((err: unknown) => {
        if (!this.closed) this.conn.destroy(new RelayPathClosedError('relay_lost', { cause: err }));
      });
    }, keepaliveMs);
    this.#keepalive.unref();
  }

  /** Registers for a session with `target`; resolves when the relay pairs us, rejects on refusal. */
  async register(
    target: string,
    signal: AbortSignal,
    onWaiting?: (m: RelayMessageOf<'RELAY_WAITING'>) => void,
    splice = true,
  ): Promise<SessionGrant> {
    const m = await this.#request((id) => ({ type: 'RELAY_REGISTER', id, target, ...(splice && { splice }) }), signal, onWaiting);
    return m as SessionGrant;
  }

  #openStream(grant: RelayMessageOf<'RELAY_SESSION'>): RelayStream | SplicePath {
    const limits: SessionLimits = grant;
    const { data_token, data_port } = grant;
    const s =
      data_token !== undefined && data_port !== undefined
        ? new SplicePath(this, this.relay, { session_id: grant.session_id, peer: grant.peer, data_port, data_token })
        : new Stream(this, grant.session_id, grant.peer, limits);
    this.#streams.set(grant.session_id, s);
    this.refs++;
    return s;
  }

  setReadPaused(stream: RelayStream, paused: boolean): void {
    const before = this.#readPaused.size;
    if (paused) this.#readPaused.add(stream);
    else this.#readPaused.delete(stream);
    if (before === 0 && this.#readPaused.size > 0) this.conn.pause();
    else if (before > 0 && this.#readPaused.size === 0) this.conn.resume();
  }

  detach(stream: RelayStream | SplicePath): void {
    if (this.#streams.get(stream.sessionId) !== stream) return;
    this.#streams.delete(stream.sessionId);
    if (stream instanceof Stream) this.setReadPaused(stream, false);
    this.refs--;
    this.emit('idle-check');
  }

  #request(make: (id: number) => RelayMessageOut, signal: AbortSignal, onWaiting?: PendingRequest['onWaiting']): Promise<RelayMessage> {
    const id = this.#nextId++;
    return new Promise<RelayMessage>((resolve, reject) => {
      if (signal.aborted) return reject(toAbortError(signal));
      if (this.closed) return reject(new RelayPathClosedError('relay_lost'));
      const onAbort = () => done(undefined, toAbortError(signal));
      const done = (m?: RelayMessage, err?: Error) => {
        this.#requests.delete(id);
        signal.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(m as RelayMessage);
      };
      this.#requests.set(id, { resolve: (m) => done(m), reject: (e) => done(undefined, e), ...(onWaiting && { onWaiting }) });
      signal.addEventListener('abort', onAbort, { once: true });
      this.send(make(id), { signal }).catch((e: Error) => done(undefined, e));
    });
  }

  #onMessage(m: RelayMessage): void {
    switch (m.type) {
      case 'RELAY_MESSAGE': {
        const s = this.#streams.get(m.session_id);
        if (s instanceof Stream) s.deliver(m.data);
        return;
      }
      case 'RELAY_DISCONNECT': {
        const s = this.#streams.get(m.session_id);
        s?.remoteClosed(m.reason);
        return;
      }
      case 'RELAY_SESSION': {
        const r = this.#requests.get(m.id);
        // The stream exists before the next message is read: the peer's first bytes may follow at once.
        if (r) r.resolve({ ...m, stream: this.#openStream(m) } as RelayMessage);
        // Nobody waits any more (aborted): end the session at once.
        else this.send({ type: 'RELAY_DISCONNECT', session_id: m.session_id, reason: 'end' }).catch(() => {});
        return;
      }
      case 'RELAY_WAITING':
        this.#requests.get(m.id)?.onWaiting?.(m);
        return;
      case 'RELAY_RESERVED':
        this.#requests.get(m.id)?.resolve(m);
        return;
      case 'RELAY_REFUSED': {
        if (m.id !== undefined) this.#requests.get(m.id)?.reject(new RelayRefusedError(m.code, m.reason, this.relay.node_id));
        const s = m.session_id === undefined ? undefined : this.#streams.get(m.session_id);
        if (s instanceof SplicePath) s.refused(m.code, m.reason);
        // A refusal on a session is followed by RELAY_DISCONNECT, which closes the stream.
        return;
      }
      case 'RELAY_INCOMING':
        this.emit('incoming', { from: m.from });
        return;
      default:
        return;
    }
  }

  #onClose(err?: Error): void {
    if (this.#keepalive) clearInterval(this.#keepalive);
    const lost = new RelayPathClosedError('relay_lost', err === undefined ? undefined : { cause: err });
    for (const r of [...this.#requests.values()]) r.reject(lost);
    for (const s of [...this.#streams.values()]) s.remoteClosed('relay_lost', err);
    this.emit('close', err);
  }

  close(): Promise<void> {
    return this.conn.close();
  }
}

/** Dials a relay over TCP and secures the control connection (the relay must prove `relay.node_id`). */
export async function dialRelay(
  relay: RelayRef,
  opts: { identity: Identity; signal: AbortSignal; handshakeTimeoutMs: number },
): Promise<RelayLink> {
  const socket = await new Promise<Socket>((resolve, reject) => {
    if (opts.signal.aborted) return reject(toAbortError(opts.signal));
    const sock = tcpConnect({ host: relay.ip, port: relay.port, noDelay: true });
    const cleanup = () => {
      sock.off('connect', onConnect);
      sock.off('error', onError);
      opts.signal.removeEventListener('abort', onAbort);
    };
    const onConnect = () => {
      cleanup();
      resolve(sock);
    };
    const onError = (err: Error) => {
      cleanup();
      sock.destroy();
      reject(err);
    };
    const onAbort = () => {
      cleanup();
      sock.destroy();
      reject(toAbortError(opts.signal));
    };
    sock.once('connect', onConnect);
    sock.once('error', onError);
    opts.signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    const conn = await secureConnect(socket, {
      identity: opts.identity,
      tier: isIPv6(relay.ip) ? 'ipv6_direct' : 'ipv4_direct',
      expectedNodeId: relay.node_id,
      signal: opts.signal,
      handshakeTimeoutMs: opts.handshakeTimeoutMs,
      messageSchema: relayMessageSchema,
    });
    return new RelayLink(relay, conn);
  } catch (err) {
    socket.destroy();
    throw err;
  }
}
