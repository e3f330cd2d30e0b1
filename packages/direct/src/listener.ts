import { EventEmitter, once } from 'node:events';
import { createServer, isIPv4, type Server, type Socket } from 'node:net';
import {
  type Connection,
  Counters,
  DpcError,
  hostPort,
  type Identity,
  type Schema,
  type SecureConnection,
  SourceCounts,
  secureAccept,
  sourceKey,
  throwIfAborted,
} from '@dpc/core';
import { acceptsExternal, type BoundSocket, type LocalAddresses, listenedAddresses, localAddresses, localEndpointBody } from './address.js';
import {
  DEFAULT_LISTEN_PORT,
  DEFAULT_MAX_INBOUND_CONNECTIONS,
  DEFAULT_MAX_PENDING_HANDSHAKES,
  DEFAULT_MAX_PENDING_HANDSHAKES_PER_SOURCE,
} from './constants.js';

export class ListenError extends DpcError {
  constructor(message: string, cause?: unknown) {
    super('DPC_LISTEN_FAILED', message, { cause });
  }
}

export interface DirectListenerOptions {
  identity: Identity;
  /** `'dual'` (IPv6 and IPv4) or one address. Default 'dual' (spec: `[p2p] listen_host`). */
  host?: string;
  /** TCP port; 0 picks a free one. Default 8888 (spec: `[p2p] listen_port`). */
  port?: number;
  /** Handshake deadline for inbound connections, ms. Default 10 000. */
  handshakeTimeoutMs?: number;
  /** Inbound connections in their handshake at most. Default 64. */
  maxPendingHandshakes?: number;
  /**
   * Inbound connections in their handshake from one source at most: an IPv4 /24, an IPv6 /64,
   * one loopback address (each loopback ip:port with `allowLoopback`). Default 8.
   */
  maxPendingHandshakesPerSource?: number;
  /** Count each loopback ip:port as its own source (many nodes of a test network on one host). Default false. */
  allowLoopback?: boolean;
  /** Established inbound connections at most. Default 1024. */
  maxConnections?: number;
  /** Admit or refuse an authenticated peer (return a reason to refuse). */
  authorize?: (nodeId: string) => true | string;
  /** Validates every application message received on inbound connections. */
  messageSchema?: Schema<unknown>;
  maxFrameBytes?: number;
  counters?: Counters;
}

export interface DirectListener extends EventEmitter {
  /** Binds the sockets. Rejects with ListenError when no address could be bound. */
  start(opts?: { signal?: AbortSignal }): Promise<void>;
  /** Closes the sockets and every inbound connection. */
  stop(): Promise<void>;
  /** The bound TCP port. */
  readonly port: number;
  /** Bound addresses, e.g. ['0.0.0.0:8888', '[::]:8888']. */
  addresses(): string[];
  /** The sockets as bound (address, family, IPv6-only); empty before start(). */
  bound(): BoundSocket[];
  /**
   * Tier 1–2 part of this node's endpoint record (global IPv6, local IPv4 with prefix): only
   * addresses the bound sockets listen on (`listen_host = 127.0.0.1` announces no LAN address,
   * an IPv4-only bind no IPv6). `addresses` defaults to the interfaces' addresses.
   */
  endpointBody(opts?: { allowLoopback?: boolean; addresses?: LocalAddresses }): ReturnType<typeof localEndpointBody>;
  /** Whether an external IPv4 address (public, or a NAT's with a port forward) can reach the bound sockets. */
  acceptsExternal(ip: string): boolean;
  stats(): Record<string, number>;
  on(event: 'connection', listener: (conn: Connection) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
}

class TcpDirectListener extends EventEmitter implements DirectListener {
  readonly #opts: DirectListenerOptions;
  readonly #counters: Counters;
  readonly #servers: Server[] = [];
  readonly #bound: BoundSocket[] = [];
  readonly #conns = new Set<SecureConnection>();
  readonly #shutdown = new AbortController();
  #pending = 0;
  readonly #pendingBySource = new SourceCounts();
  #port = 0;

  constructor(opts: DirectListenerOptions) {
    super();
    this.#opts = opts;
    this.#counters = opts.counters ?? new Counters();
  }

  get port(): number {
    return this.#port;
  }

  async start(opts: { signal?: AbortSignal } = {}): Promise<void> {
    throwIfAborted(opts.signal);
    const host = this.#opts.host ?? 'dual';
    let port = this.#opts.port ?? DEFAULT_LISTEN_PORT;
    if (host !== 'dual') {
      await this.#bind(host, port, false);
      return;
    }
    // IPv4 first (to learn the port when 0), then IPv6-only on the same port.
    await this.#bind('0.0.0.0', port, false);
    port = this.#port;
    try {
      await this.#bind('::', port, true);
    } catch (err) {
      const code = (err as { cause?: { code?: string } }).cause?.code;
      if (code === 'EAFNOSUPPORT' || code === 'EADDRNOTAVAIL') {
        this.#counters.inc('listen_ipv6_unavailable');
        return; // IPv4-only host: tier 1 simply does not apply
      }
      await this.stop();
      throw err;
    }
  }

  async #bind(host: string, port: number, ipv6Only: boolean): Promise<void> {
    const server = createServer({ noDelay: true, pauseOnConnect: false }, (s) => this.#onSocket(s));
    server.on('error', (err) => {
      if (this.listenerCount('error') > 0) this.emit('error', err);
    });
    server.maxConnections =
      (this.#opts.maxConnections ?? DEFAULT_MAX_INBOUND_CONNECTIONS) + (this.#opts.maxPendingHandshakes ?? DEFAULT_MAX_PENDING_HANDSHAKES);
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(new ListenError(`cannot listen on ${hostPort(host, port)}: ${err.message}`, err));
      server.once('error', onError);
      server.listen({ host, port, ipv6Only }, () => {
        server.off('error', onError);
        resolve();
      });
    });
    this.#servers.push(server);
    const a = server.address() as { address: string; family: string; port: number };
    this.#bound.push({ address: a.address, family: a.family === 'IPv6' ? 'IPv6' : 'IPv4', ipv6Only });
    this.#port = a.port;
  }

  #onSocket(socket: Socket): void {
    this.#counters.inc('inbound_sockets');
    const maxPending = this.#opts.maxPendingHandshakes ?? DEFAULT_MAX_PENDING_HANDSHAKES;
    const maxConns = this.#opts.maxConnections ?? DEFAULT_MAX_INBOUND_CONNECTIONS;
    if (this.#pending >= maxPending || this.#conns.size >= maxConns) {
      this.#counters.inc('inbound_refused_overload');
      socket.destroy();
      return;
    }
    const addr = socket.remoteAddress ?? '';
    const source = sourceKey(addr, socket.remotePort, { loopbackPerPort: this.#opts.allowLoopback ?? false });
    const maxPerSource = this.#opts.maxPendingHandshakesPerSource ?? DEFAULT_MAX_PENDING_HANDSHAKES_PER_SOURCE;
    if (this.#pendingBySource.get(source) >= maxPerSource) {
      this.#counters.inc('inbound_refused_source_pending');
      socket.destroy();
      return;
    }
    socket.on('error', () => {}); // surfaced through the handshake / connection
    this.#pending++;
    this.#pendingBySource.inc(source);
    const settled = () => {
      this.#pending--;
      this.#pendingBySource.dec(source);
    };
    const tier = addr.includes(':') && !addr.startsWith('::ffff:') && !isIPv4(addr) ? 'ipv6_direct' : 'ipv4_direct';
    const o = this.#opts;
    secureAccept(socket, {
      identity: o.identity,
      tier,
      signal: this.#shutdown.signal,
      counters: this.#counters,
      ...(o.handshakeTimeoutMs !== undefined && { handshakeTimeoutMs: o.handshakeTimeoutMs }),
      ...(o.authorize && { authorize: o.authorize }),
      ...(o.messageSchema && { messageSchema: o.messageSchema }),
      ...(o.maxFrameBytes !== undefined && { maxFrameBytes: o.maxFrameBytes }),
    }).then(
      (conn) => {
        settled();
        this.#conns.add(conn);
        this.#counters.inc(`inbound_connections_${tier}`);
        conn.on('close', () => this.#conns.delete(conn));
        this.emit('connection', conn);
      },
      (err: unknown) => {
        settled();
        this.#counters.inc('inbound_handshake_failed');
        socket.destroy();
        void err;
      },
    );
  }

  addresses(): string[] {
    return this.#servers.map((s) => {
      const a = s.address() as { address: string; port: number; family: string };
      return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
    });
  }

  bound(): BoundSocket[] {
    return this.#bound.map((b) => ({ ...b }));
  }

  endpointBody(opts: { allowLoopback?: boolean; addresses?: LocalAddresses } = {}) {
    const addresses = listenedAddresses(opts.addresses ?? localAddresses(), this.#bound);
    return localEndpointBody(this.#port, { ...opts, addresses });
  }

  acceptsExternal(ip: string): boolean {
    return acceptsExternal(ip, this.#bound);
  }

  stats(): Record<string, number> {
    return {
      ...this.#counters.snapshot(),
      open_connections: this.#conns.size,
      pending_handshakes: this.#pending,
      pending_sources: this.#pendingBySource.size,
    };
  }

  async stop(): Promise<void> {
    this.#shutdown.abort();
    this.#bound.length = 0;
    const closing = this.#servers.splice(0).map((s) => {
      const p = once(s, 'close');
      s.close();
      return p;
    });
    await Promise.all([...this.#conns].map((c) => c.close('listener stopped').catch(() => {})));
    await Promise.all(closing);
  }
}

/**
 * A TCP listener for tiers 1–2. Every inbound socket is secured (TLS 1.3, mutual node-id
 * authentication) before anything reads it; then a 'connection' event carries the Connection.
 */
export function createDirectListener(opts: DirectListenerOptions): DirectListener {
  return new TcpDirectListener(opts);
}
