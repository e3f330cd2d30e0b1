import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Counters, isDpcError, sourceKey } from '@dpc/core';
import { type WebSocket, WebSocketServer } from 'ws';
import { MIN_CLUSTER_SECRET_LENGTH } from './bus-auth.js';
import {
  DEFAULT_HUB_BUS_MAX_SKEW_MS,
  DEFAULT_HUB_LOGIN_TIMEOUT_MS,
  DEFAULT_HUB_MAX_CONNECTIONS,
  DEFAULT_HUB_MAX_CONNECTIONS_PER_SOURCE,
  DEFAULT_HUB_MAX_FRAME_BYTES,
  DEFAULT_HUB_MAX_PAYLOAD_BYTES,
  DEFAULT_HUB_MAX_PENDING_ROUTES,
  DEFAULT_HUB_MAX_STRIKES,
  DEFAULT_HUB_PING_INTERVAL_MS,
  DEFAULT_HUB_PORT,
  DEFAULT_HUB_PRESENCE_TTL_MS,
  DEFAULT_HUB_RATE_BURST,
  DEFAULT_HUB_RATE_PER_S,
  DEFAULT_HUB_REDIS_CONNECT_TIMEOUT_MS,
  DEFAULT_HUB_REDIS_PREFIX,
  DEFAULT_HUB_ROUTE_TIMEOUT_MS,
  DEFAULT_TURN_CREDENTIAL_TTL_S,
  HUB_PROTOCOL,
} from './constants.js';
import { HubConfigError, type HubErrorCode } from './errors.js';
import { checkLogin, type LoginChallenge, normalizeHubUrl } from './login.js';
import { type ClientMessage, clientMessageSchema, parseJson, type ServerMessage } from './messages.js';
import { RedisBus } from './redis-bus.js';
import type { HubServer, HubServerOptions } from './server-options.js';
import { HubTokenBucket } from './token-bucket.js';
import { iceServersFor } from './turn-credentials.js';

/** A peer that does not read its socket gets no more messages past this many buffered bytes. */
const MAX_BUFFERED_BYTES = 1024 * 1024;

interface Conn {
  ws: WebSocket;
  source: string;
  challenge: LoginChallenge;
  nodeId: string | undefined;
  bucket: HubTokenBucket;
  strikes: number;
  alive: boolean;
  loginTimer: NodeJS.Timeout | undefined;
}

const num = (v: number | undefined, d: number) => (v === undefined ? d : v);

class HubServerImpl implements HubServer {
  readonly counters: Counters;
  readonly #o: HubServerOptions;
  readonly #now: () => number;
  readonly #conns = new Set<Conn>();
  readonly #nodes = new Map<string, Conn>();
  readonly #perSource = new Map<string, number>();
  #http: Server | undefined;
  #wss: WebSocketServer | undefined;
  #bus: RedisBus | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  #url = '';
  #port = 0;
  #stopping = false;

  constructor(o: HubServerOptions) {
    this.#o = o;
    this.counters = o.counters ?? new Counters();
    this.#now = o.now ?? Date.now;
  }

  get port(): number {
    return this.#port;
  }
  get url(): string {
    return this.#url;
  }

  stats(): { connections: number; loggedIn: number } {
    return { connections: this.#conns.size, loggedIn: this.#nodes.size };
  }

  hasNode(nodeId: string): boolean {
    return this.#nodes.has(nodeId);
  }

  async start(opts: { signal?: AbortSignal } = {}): Promise<void> {
    const o = this.#o;
    if (o.redisUrl) {
      if ((o.clusterSecret ?? '').length < MIN_CLUSTER_SECRET_LENGTH)
        throw new HubConfigError(
          `[hub] redis_url needs [hub] cluster_secret (at least ${MIN_CLUSTER_SECRET_LENGTH} characters, the same on every Hub): it authenticates what the Hubs tell each other through Redis`,
        );
      this.#bus = new RedisBus({
        url: o.redisUrl,
        clusterSecret: o.clusterSecret as string,
        maxClockSkewMs: num(o.busMaxSkewMs, DEFAULT_HUB_BUS_MAX_SKEW_MS),
        prefix: o.redisPrefix ?? DEFAULT_HUB_REDIS_PREFIX,
        presenceTtlMs: num(o.presenceTtlMs, DEFAULT_HUB_PRESENCE_TTL_MS),
        routeTimeoutMs: num(o.routeTimeoutMs, DEFAULT_HUB_ROUTE_TIMEOUT_MS),
        connectTimeoutMs: num(o.redisConnectTimeoutMs, DEFAULT_HUB_REDIS_CONNECT_TIMEOUT_MS),
        maxPendingRoutes: DEFAULT_HUB_MAX_PENDING_ROUTES,
        counters: this.counters,
        handlers: {
          deliver: (from, to, payload) => this.#deliverLocal(from, to, payload),
          kick: (nodeId) => {
            const c = this.#nodes.get(nodeId);
            if (c) this.#replace(c);
          },
          onError: () => this.counters.inc('hub_redis_error'),
        },
      });
      try {
        await this.#bus.start(opts.signal);
      } catch (err) {
        await this.#bus.close().catch(() => {});
        this.#bus = undefined;
        throw err;
      }
    }
    const onRequest = (_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(426, { 'content-type': 'text/plain' }).end('dpc Hub: connect with a WebSocket\n');
    };
    let http: Server;
    try {
      http = o.tls ? createTlsServer({ cert: o.tls.cert, key: o.tls.key, minVersion: 'TLSv1.2' }, onRequest) : createServer(onRequest);
    } catch (err) {
      await this.#bus?.close();
      throw new HubConfigError(`the Hub's TLS certificate or key is unusable: ${(err as Error).message}`, { cause: err });
    }
    if (o.tls) http.on('tlsClientError', () => this.counters.inc('hub_tls_handshake_failed'));
    this.#http = http;
    // Sockets not yet upgraded count too: a hard cap above the WebSocket limit (which answers DPC_HUB_BUSY).
    http.maxConnections = 2 * num(o.maxConnections, DEFAULT_HUB_MAX_CONNECTIONS) + 64;
    http.headersTimeout = num(o.loginTimeoutMs, DEFAULT_HUB_LOGIN_TIMEOUT_MS);
    this.#wss = new WebSocketServer({
      server: http,
      maxPayload: num(o.maxFrameBytes, DEFAULT_HUB_MAX_FRAME_BYTES),
      perMessageDeflate: false,
      clientTracking: false,
      // The subprotocol is offered by our client; a browser may offer none. Anything else is refused.
      handleProtocols: (protocols) => (protocols.has(HUB_PROTOCOL) ? HUB_PROTOCOL : false),
    });
    this.#wss.on('connection', (ws, req) => this.#onConnection(ws, req));
    this.#wss.on('error', () => this.counters.inc('hub_server_error'));
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(num(o.port, DEFAULT_HUB_PORT), o.host ?? '0.0.0.0', () => {
        http.off('error', reject);
        resolve();
      });
    }).catch(async (err) => {
      await this.#bus?.close();
      throw err;
    });
    const addr = http.address() as AddressInfo;
    this.#port = addr.port;
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    this.#url = normalizeHubUrl(o.url ?? `${o.tls ? 'wss' : 'ws'}://${host}:${addr.port}/`);
    const pingMs = num(o.pingIntervalMs, DEFAULT_HUB_PING_INTERVAL_MS);
    if (pingMs > 0) {
      this.#pingTimer = setInterval(() => this.#pingAll(), pingMs);
      this.#pingTimer.unref();
    }
  }

  #onConnection(ws: WebSocket, req: IncomingMessage): void {
    const o = this.#o;
    const source = sourceKey(req.socket.remoteAddress ?? 'unknown');
    ws.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.counters.inc('hub_closed_frame_too_large');
      else this.counters.inc('hub_socket_error');
    });
    if (this.#stopping) {
      ws.close(1001, 'hub stopping');
      return;
    }
    const perSource = this.#perSource.get(source) ?? 0;
    const busy =
      this.#conns.size >= num(o.maxConnections, DEFAULT_HUB_MAX_CONNECTIONS)
        ? 'the Hub holds as many connections as it may'
        : perSource >= num(o.maxConnectionsPerSource, DEFAULT_HUB_MAX_CONNECTIONS_PER_SOURCE)
          ? 'too many connections from your address'
          : undefined;
    if (busy) {
      this.counters.inc('hub_refused_busy');
      this.#send(ws, { t: 'error', code: 'DPC_HUB_BUSY', message: busy });
      ws.close(1013, 'busy');
      return;
    }
    this.#perSource.set(source, perSource + 1);
    const loginMs = num(o.loginTimeoutMs, DEFAULT_HUB_LOGIN_TIMEOUT_MS);
    const now = this.#now();
    const c: Conn = {
      ws,
      source,
      challenge: { hub: this.#url, nonce: randomBytes(32).toString('base64'), expires_at: now + loginMs },
      nodeId: undefined,
      bucket: new HubTokenBucket(num(o.ratePerS, DEFAULT_HUB_RATE_PER_S), num(o.rateBurst, DEFAULT_HUB_RATE_BURST), now),
      strikes: 0,
      alive: true,
      loginTimer: undefined,
    };
    this.#conns.add(c);
    this.counters.inc('hub_connections');
    c.loginTimer = setTimeout(() => {
      if (c.nodeId) return;
      this.counters.inc('hub_login_timeout');
      this.#fail(c, 'DPC_HUB_LOGIN_REFUSED', 'no login before the challenge expired', 1008);
    }, loginMs);
    c.loginTimer.unref();
    ws.on('pong', () => {
      c.alive = true;
    });
    ws.on('message', (data, isBinary) => this.#onMessage(c, data as Buffer, isBinary));
    ws.on('close', () => this.#onClose(c));
    this.#send(ws, { t: 'challenge', ...c.challenge });
  }

  #onMessage(c: Conn, data: Buffer, isBinary: boolean): void {
    c.alive = true;
    if (c.ws.readyState !== c.ws.OPEN) return; // closing: what it still sends is dropped
    if (isBinary) {
      this.#protocolError(c, 'binary frames are not part of the Hub protocol');
      return;
    }
    let m: ClientMessage;
    try {
      m = clientMessageSchema(parseJson(data.toString('utf8')), 'message') as ClientMessage;
    } catch (err) {
      this.#protocolError(c, (err as Error).message);
      return;
    }
    if (!c.nodeId) {
      if (m.t === 'login') this.#login(c, m).catch(() => this.#fail(c, 'DPC_HUB_UNAVAILABLE', 'login failed', 1011));
      else this.#protocolError(c, 'log in first');
      return;
    }
    if (m.t === 'signal')
      this.#onSignal(c, m).catch(() => {
        this.counters.inc('hub_signal_failed');
        this.#send(c.ws, { t: 'error', code: 'DPC_HUB_UNAVAILABLE', message: 'the Hub could not route the message', id: m.id });
      });
    else if (m.t === 'ping') this.#send(c.ws, { t: 'pong', id: m.id });
    else if (m.t === 'ice') {
      this.counters.inc('hub_ice_servers');
      this.#send(c.ws, { t: 'ice', id: m.id, ice_servers: this.#iceServers(c.nodeId) });
    } else this.#protocolError(c, 'already logged in');
  }

  async #login(c: Conn, m: Extract<ClientMessage, { t: 'login' }>): Promise<void> {
    const why = checkLogin(c.challenge, m, this.#now());
    if (why) {
      this.counters.inc('hub_login_refused');
      return this.#fail(c, 'DPC_HUB_LOGIN_REFUSED', why, 1008);
    }
    if (c.loginTimer) clearTimeout(c.loginTimer);
    c.loginTimer = undefined;
    // The challenge is used up: the same connection cannot log in twice.
    c.challenge = { ...c.challenge, expires_at: 0 };
    c.nodeId = m.node_id;
    const old = this.#nodes.get(m.node_id);
    if (old) this.#replace(old);
    this.#nodes.set(m.node_id, c);
    this.counters.inc('hub_login_ok');
    if (this.#bus) {
      try {
        await this.#bus.claim(m.node_id);
      } catch {
        this.counters.inc('hub_redis_error'); // reachable here; other Hubs learn it on the next refresh
      }
    }
    if (c.ws.readyState !== c.ws.OPEN) return;
    this.#send(c.ws, {
      t: 'welcome',
      node_id: m.node_id,
      hub: this.#url,
      ice_servers: this.#iceServers(m.node_id),
      ping_interval_ms: num(this.#o.pingIntervalMs, DEFAULT_HUB_PING_INTERVAL_MS),
    });
  }

  async #onSignal(c: Conn, m: Extract<ClientMessage, { t: 'signal' }>): Promise<void> {
    const from = c.nodeId as string;
    const max = num(this.#o.maxPayloadBytes, DEFAULT_HUB_MAX_PAYLOAD_BYTES);
    const size = Buffer.byteLength(JSON.stringify(m.payload ?? null));
    if (size > max) {
      this.counters.inc('hub_refused_too_large');
      return this.#strike(c, m.id, 'DPC_HUB_MESSAGE_TOO_LARGE', `payload is ${size} bytes, the limit is ${max}`);
    }
    if (!c.bucket.take(this.#now())) {
      this.counters.inc('hub_refused_rate');
      return this.#strike(c, m.id, 'DPC_HUB_RATE_LIMITED', 'too many messages: slow down');
    }
    c.strikes = 0;
    if (this.#deliverLocal(from, m.to, m.payload)) {
      this.counters.inc('hub_routed_local');
      return this.#send(c.ws, { t: 'ack', id: m.id });
    }
    if (this.#bus && !this.#nodes.has(m.to)) {
      try {
        if (await this.#bus.route(from, m.to, m.payload)) {
          this.counters.inc('hub_routed_remote');
          return this.#send(c.ws, { t: 'ack', id: m.id });
        }
      } catch (err) {
        this.counters.inc('hub_route_failed');
        const code = isDpcError(err) ? (err.code as HubErrorCode) : 'DPC_HUB_UNAVAILABLE';
        return this.#send(c.ws, { t: 'error', code, message: (err as Error).message, id: m.id, to: m.to });
      }
    }
    this.counters.inc('hub_peer_offline');
    this.#send(c.ws, { t: 'error', code: 'DPC_HUB_PEER_OFFLINE', message: `${m.to} is not connected to the Hub`, id: m.id, to: m.to });
  }

  /** Delivers to a node logged in here; false when it is not here (or does not read its socket). */
  #deliverLocal(from: string, to: string, payload: unknown): boolean {
    const t = this.#nodes.get(to);
    if (!t || t.ws.readyState !== t.ws.OPEN) return false;
    if (t.ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.counters.inc('hub_dropped_slow_reader');
      return false;
    }
    this.#send(t.ws, { t: 'signal', from, payload });
    return true;
  }

  #iceServers(nodeId: string) {
    const o = this.#o;
    return iceServersFor(
      {
        stunServers: o.stunServers ?? [],
        turnServers: o.turnServers ?? [],
        ...(o.turnSecret !== undefined && { turnSecret: o.turnSecret }),
        turnTtlS: num(o.turnTtlS, DEFAULT_TURN_CREDENTIAL_TTL_S),
      },
      nodeId,
      this.#now(),
    );
  }

  #strike(c: Conn, id: number, code: HubErrorCode, message: string): void {
    this.#send(c.ws, { t: 'error', code, message, id });
    if (++c.strikes > num(this.#o.maxStrikes, DEFAULT_HUB_MAX_STRIKES)) {
      this.counters.inc('hub_closed_abusive');
      c.ws.close(1008, 'too many refused messages');
    }
  }

  #protocolError(c: Conn, message: string): void {
    this.counters.inc('hub_protocol_error');
    this.#fail(c, 'DPC_HUB_PROTOCOL', message, 1008);
  }

  /** Sends a typed error and closes the connection. */
  #fail(c: Conn, code: HubErrorCode, message: string, closeCode: number): void {
    this.#send(c.ws, { t: 'error', code, message });
    c.ws.close(closeCode, code);
  }

  /** A newer login of the same node: the old connection is told and closed. */
  #replace(old: Conn): void {
    this.counters.inc('hub_replaced');
    if (old.nodeId && this.#nodes.get(old.nodeId) === old) this.#nodes.delete(old.nodeId);
    old.nodeId = undefined; // its close must not release the presence the new login holds
    this.#fail(old, 'DPC_HUB_REPLACED', 'this node logged in again elsewhere', 4000);
  }

  #onClose(c: Conn): void {
    if (!this.#conns.delete(c)) return;
    if (c.loginTimer) clearTimeout(c.loginTimer);
    const n = (this.#perSource.get(c.source) ?? 1) - 1;
    if (n <= 0) this.#perSource.delete(c.source);
    else this.#perSource.set(c.source, n);
    if (c.nodeId && this.#nodes.get(c.nodeId) === c) {
      this.#nodes.delete(c.nodeId);
      if (!this.#stopping) this.#bus?.release(c.nodeId).catch(() => this.counters.inc('hub_redis_error'));
    }
  }

  #pingAll(): void {
    for (const c of this.#conns) {
      if (!c.alive) {
        this.counters.inc('hub_closed_dead');
        c.ws.terminate();
        continue;
      }
      c.alive = false;
      try {
        c.ws.ping();
      } catch {
        c.ws.terminate();
      }
    }
  }

  #send(ws: WebSocket, m: ServerMessage): void {
    if (ws.readyState !== ws.OPEN) return;
    ws.send(JSON.stringify(m), (err) => {
      if (err) this.counters.inc('hub_send_error');
    });
  }

  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    if (this.#pingTimer) clearInterval(this.#pingTimer);
    const closed = [...this.#conns].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.ws.readyState === c.ws.CLOSED) return resolve();
          c.ws.once('close', () => resolve());
          c.ws.close(1001, 'hub stopping');
          setTimeout(() => {
            c.ws.terminate();
            resolve();
          }, 1000).unref();
        }),
    );
    await Promise.all(closed);
    await this.#bus?.close().catch(() => {});
    this.#wss?.close();
    await new Promise<void>((resolve) => {
      if (!this.#http?.listening) return resolve();
      this.#http.close(() => resolve());
      this.#http.closeAllConnections();
    });
  }
}

/**
 * A Hub: nodes log in by signing a challenge with their identity key, and it routes their
 * signalling messages by node id (through Redis to other Hub instances when `redisUrl` is set).
 */
export function createHubServer(opts: HubServerOptions = {}): HubServer {
  return new HubServerImpl(opts);
}
