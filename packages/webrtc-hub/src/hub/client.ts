import { EventEmitter } from 'node:events';
import { AbortedError, abortable, Counters, type DpcError, type Identity, isDpcError, isNodeId, sleep, timeoutSignal } from '@dpc/core';
import WebSocket from 'ws';
import {
  DEFAULT_HUB_CLIENT_BACKOFF_JITTER,
  DEFAULT_HUB_CLIENT_BACKOFF_MAX_MS,
  DEFAULT_HUB_CLIENT_BACKOFF_MIN_MS,
  DEFAULT_HUB_CLIENT_DEAD_AFTER_MS,
  DEFAULT_HUB_CLIENT_HEARTBEAT_MS,
  DEFAULT_HUB_CLIENT_LOGIN_TIMEOUT_MS,
  DEFAULT_HUB_CLIENT_MAX_PENDING,
  DEFAULT_HUB_CLIENT_SEND_TIMEOUT_MS,
  DEFAULT_HUB_MAX_FRAME_BYTES,
  DEFAULT_HUB_MAX_PAYLOAD_BYTES,
  HUB_PROTOCOL,
} from './constants.js';
import {
  HUB_ERROR_CODES,
  HubConfigError,
  HubLoginRefusedError,
  HubMessageTooLargeError,
  HubNotConnectedError,
  HubProtocolError,
  HubRateLimitedError,
  HubTlsError,
  hubErrorFromWire,
} from './errors.js';
import { normalizeHubUrl, signLogin } from './login.js';
import { type IceServer, parseJson, type ServerMessage, serverMessageSchema } from './messages.js';
import type { SignalEvent, Signaller } from './signaller.js';

/** Options of `createHubClient`. */
export interface HubClientOptions {
  /** The Hub's WebSocket URL (`[hub] url`). */
  url: string;
  identity: Identity;
  /** Application ping period, ms. Default 2 000. */
  heartbeatMs?: number;
  /** Nothing heard from the Hub for this long: the connection is dead, ms. Default 5 000. */
  deadAfterMs?: number;
  /** Deadline of connect + login, ms. Default 10 000. */
  loginTimeoutMs?: number;
  /** Default deadline of `send()` and `iceServers()` without a signal, ms. Default 10 000. */
  requestTimeoutMs?: number;
  /** Reconnect backoff: first delay, largest delay (ms), jitter (fraction). Defaults 250, 15 000, 0.2. */
  backoff?: { minMs?: number; maxMs?: number; jitter?: number };
  /** Largest payload `send()` accepts (JSON bytes), checked before sending. Default 16 KiB (the Hub's default). */
  maxPayloadBytes?: number;
  /**
   * For a `wss://` Hub with a certificate from a private CA: the CA certificate(s), PEM
   * (`[hub] ca` names the file). Default: the system's trusted CAs.
   */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Counters (`hub_client_*`). Default: a fresh set. */
  counters?: Counters;
}

export interface HubClientEvents {
  /** Logged in (again). */
  up: [{ url: string; iceServers: IceServer[] }];
  /** The logged-in connection is gone; the client reconnects by itself. */
  down: [{ error?: Error }];
  signal: [SignalEvent];
  /** A connect or login attempt failed (the client retries after a backoff). */
  error: [Error];
}

/** A node's link to a Hub: logs in, keeps the connection, reconnects with backoff. */
export interface HubClient extends Signaller {
  /** True while logged in. */
  readonly connected: boolean;
  readonly url: string;
  /** The node id this client logs in as. */
  readonly nodeId: string;
  readonly counters: Counters;
  /** Starts connecting (and reconnecting) in the background. */
  start(): void;
  /** Resolves once logged in (at once when already). */
  waitConnected(opts?: { signal?: AbortSignal }): Promise<void>;
  /** ICE servers with fresh TURN credentials from the Hub. */
  iceServers(opts?: { signal?: AbortSignal }): Promise<IceServer[]>;
  /** Closes the connection; no reconnect after. */
  stop(): Promise<void>;
  on<E extends keyof HubClientEvents>(event: E, fn: (...a: HubClientEvents[E]) => void): this;
  off<E extends keyof HubClientEvents>(event: E, fn: (...a: HubClientEvents[E]) => void): this;
  once<E extends keyof HubClientEvents>(event: E, fn: (...a: HubClientEvents[E]) => void): this;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

const num = (v: number | undefined, d: number) => (v === undefined ? d : v);

class HubClientImpl extends EventEmitter<HubClientEvents> implements HubClient {
  readonly url: string;
  readonly nodeId: string;
  readonly counters: Counters;
  readonly #o: HubClientOptions;
  readonly #stop = new AbortController();
  readonly #pending = new Map<number, Pending>();
  #ws: WebSocket | undefined;
  #connected = false;
  #nextId = 1;
  #started = false;
  #loop: Promise<void> | undefined;
  #replaced = false;

  constructor(o: HubClientOptions) {
    super();
    let u: URL;
    try {
      u = new URL(o.url);
    } catch (err) {
      throw new HubConfigError(`not a Hub URL: ${JSON.stringify(o.url)}`, { cause: err });
    }
    if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new HubConfigError(`a Hub URL is ws:// or wss://, got ${o.url}`);
    this.url = normalizeHubUrl(o.url);
    this.nodeId = o.identity.nodeId;
    this.#o = o;
    this.counters = o.counters ?? new Counters();
  }

  get connected(): boolean {
    return this.#connected;
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#loop = this.#run();
  }

  async waitConnected(opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#connected) return;
    if (this.#stop.signal.aborted) throw new HubNotConnectedError('the Hub client is stopped');
    const ctrl = new AbortController();
    const up = new Promise<void>((resolve) => {
      const fn = () => resolve();
      this.once('up', fn);
      ctrl.signal.addEventListener('abort', () => this.off('up', fn), { once: true });
    });
    try {
      await abortable(up, opts.signal ? AbortSignal.any([opts.signal, this.#stop.signal]) : this.#stop.signal);
    } finally {
      ctrl.abort();
    }
  }

  async send(to: string, payload: unknown, opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (!isNodeId(to)) throw new HubProtocolError(`not a node id: ${JSON.stringify(to)}`);
    const max = num(this.#o.maxPayloadBytes, DEFAULT_HUB_MAX_PAYLOAD_BYTES);
    const size = Buffer.byteLength(JSON.stringify(payload ?? null));
    if (size > max) throw new HubMessageTooLargeError(`payload is ${size} bytes, the limit is ${max}`);
    await this.#request({ t: 'signal', to, payload }, 'sending through the Hub', opts.signal);
    this.counters.inc('hub_client_sent');
  }

  async iceServers(opts: { signal?: AbortSignal } = {}): Promise<IceServer[]> {
    return (await this.#request({ t: 'ice' }, 'asking the Hub for ICE servers', opts.signal)) as IceServer[];
  }

  async #request(m: { t: 'signal'; to: string; payload: unknown } | { t: 'ice' }, what: string, signal?: AbortSignal): Promise<unknown> {
    const ws = this.#ws;
    if (!this.#connected || !ws) throw new HubNotConnectedError();
    if (this.#pending.size >= DEFAULT_HUB_CLIENT_MAX_PENDING) throw new HubRateLimitedError('too many requests waiting for the Hub');
    const id = this.#nextId++;
    const t = timeoutSignal(num(this.#o.requestTimeoutMs, DEFAULT_HUB_CLIENT_SEND_TIMEOUT_MS), what, signal);
    const answer = new Promise<unknown>((resolve, reject) => this.#pending.set(id, { resolve, reject }));
    try {
      ws.send(JSON.stringify({ ...m, id }));
      return await abortable(answer, t.signal);
    } finally {
      t.clear();
      this.#pending.delete(id);
    }
  }

  /** Emits to the user's listeners; one that throws is counted, never breaks the connection. */
  #tell<E extends 'up' | 'down' | 'signal'>(event: E, ...args: HubClientEvents[E]): void {
    try {
      (this.emit as (e: string, ...a: unknown[]) => boolean)(event, ...args);
    } catch {
      this.counters.inc('hub_client_listener_error');
    }
  }

  async #run(): Promise<void> {
    const stop = this.#stop.signal;
    const b = this.#o.backoff ?? {};
    const minMs = num(b.minMs, DEFAULT_HUB_CLIENT_BACKOFF_MIN_MS);
    const maxMs = num(b.maxMs, DEFAULT_HUB_CLIENT_BACKOFF_MAX_MS);
    const jitter = num(b.jitter, DEFAULT_HUB_CLIENT_BACKOFF_JITTER);
    let attempt = 0;
    while (!stop.aborted) {
      let wasUp = false;
      try {
        wasUp = await this.#session();
        // Replaced by a newer login of the same identity: coming straight back would replace it in turn.
        if (this.#replaced) {
          this.#replaced = false;
          wasUp = false;
          attempt = Math.max(attempt, 30);
        }
      } catch (err) {
        if (stop.aborted) break;
        this.counters.inc('hub_client_connect_failed');
        if (this.listenerCount('error') > 0) this.emit('error', err as Error);
      }
      if (stop.aborted) break;
      attempt = wasUp ? 0 : attempt + 1;
      const base = Math.min(maxMs, minMs * 2 ** Math.max(0, attempt - 1));
      const delay = wasUp && attempt === 0 ? Math.min(minMs, base) : base;
      const ms = delay * (1 + jitter * (Math.random() * 2 - 1));
      await sleep(ms, stop).catch(() => {});
    }
  }

  /**
   * One connection: connect, log in, serve until it closes. Resolves true when it had logged in
   * (then closed), rejects when it failed before.
   */
  async #session(): Promise<boolean> {
    const stop = this.#stop.signal;
    this.counters.inc('hub_client_connect');
    const ws = new WebSocket(this.url, HUB_PROTOCOL, {
      maxPayload: DEFAULT_HUB_MAX_FRAME_BYTES * 4,
      perMessageDeflate: false,
      handshakeTimeout: num(this.#o.loginTimeoutMs, DEFAULT_HUB_CLIENT_LOGIN_TIMEOUT_MS),
      ...(this.#o.ca !== undefined && { ca: this.#o.ca }),
    });
    this.#ws = ws;
    let lastHeard = Date.now();
    let loggedIn = false;
    let closeError: Error | undefined;
    const onStop = () => ws.terminate();
    stop.addEventListener('abort', onStop, { once: true });
    let heartbeat: NodeJS.Timeout | undefined;
    const login = timeoutSignal(num(this.#o.loginTimeoutMs, DEFAULT_HUB_CLIENT_LOGIN_TIMEOUT_MS), 'logging in to the Hub', stop);
    const onLoginTimeout = () => ws.terminate();
    login.signal.addEventListener('abort', onLoginTimeout, { once: true });

    let settle!: (v: boolean) => void;
    let fail!: (e: Error) => void;
    const done = new Promise<boolean>((resolve, reject) => {
      settle = resolve;
      fail = reject;
    });

    const sendJson = (m: unknown) => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(m));
    };

    ws.on('error', (err) => {
      if (isTlsFailure(err)) {
        this.counters.inc('hub_client_tls_refused');
        closeError ??= new HubTlsError(`the Hub at ${this.url} did not prove its identity over TLS: ${err.message}`, { cause: err });
      }
      closeError ??= err;
    });
    ws.on('message', (data, isBinary) => {
      lastHeard = Date.now();
      let m: ServerMessage;
      try {
        if (isBinary) throw new Error('binary frame');
        m = serverMessageSchema(parseJson((data as Buffer).toString('utf8')), 'message') as ServerMessage;
      } catch (err) {
        this.counters.inc('hub_client_bad_message');
        closeError = new HubProtocolError(`the Hub sent a malformed message: ${(err as Error).message}`);
        ws.terminate();
        return;
      }
      switch (m.t) {
        case 'challenge': {
          if (loggedIn) return;
          if (normalizeHubUrl(m.hub) !== this.url) {
            // Signing it would log us in to the Hub it names, through whoever relayed it.
            this.counters.inc('hub_client_wrong_hub');
            closeError = new HubLoginRefusedError(`the Hub at ${this.url} sent a challenge for ${m.hub}: not signed`);
            ws.close(1008, 'wrong hub');
            return;
          }
          sendJson({ t: 'login', ...signLogin(this.#o.identity, m) });
          return;
        }
        case 'welcome': {
          if (loggedIn) return;
          loggedIn = true;
          login.clear();
          login.signal.removeEventListener('abort', onLoginTimeout);
          this.#connected = true;
          this.counters.inc('hub_client_login_ok');
          const hb = num(this.#o.heartbeatMs, DEFAULT_HUB_CLIENT_HEARTBEAT_MS);
          const dead = num(this.#o.deadAfterMs, DEFAULT_HUB_CLIENT_DEAD_AFTER_MS);
          heartbeat = setInterval(() => {
            if (Date.now() - lastHeard > dead) {
              this.counters.inc('hub_client_heartbeat_lost');
              closeError = new HubNotConnectedError(`nothing heard from the Hub for ${dead} ms`);
              ws.terminate();
              return;
            }
            sendJson({ t: 'ping', id: 0 });
          }, hb);
          heartbeat.unref();
          this.#tell('up', { url: this.url, iceServers: m.ice_servers });
          return;
        }
        case 'signal':
          this.counters.inc('hub_client_received');
          this.#tell('signal', { from: m.from, payload: m.payload });
          return;
        case 'ack':
          this.#pending.get(m.id)?.resolve(undefined);
          return;
        case 'ice':
          this.#pending.get(m.id)?.resolve(m.ice_servers);
          return;
        case 'pong':
          return;
        case 'error': {
          const err = hubErrorFromWire(m.code, m.message, m.to);
          const known = (HUB_ERROR_CODES as readonly string[]).includes(m.code);
          this.counters.inc(known ? `hub_client_error_${m.code.slice(8).toLowerCase()}` : 'hub_client_error_other');
          const p = m.id === undefined ? undefined : this.#pending.get(m.id);
          if (p) p.reject(err);
          else {
            closeError = err; // a connection-level error: the Hub closes next
            if (m.code === 'DPC_HUB_REPLACED') this.#replaced = true;
          }
          return;
        }
      }
    });
    ws.on('close', () => {
      stop.removeEventListener('abort', onStop);
      login.signal.removeEventListener('abort', onLoginTimeout);
      login.clear();
      if (heartbeat) clearInterval(heartbeat);
      if (this.#ws === ws) this.#ws = undefined;
      const err = closeError ?? (login.signal.aborted && !stop.aborted ? toError(login.signal.reason) : undefined);
      for (const p of this.#pending.values()) p.reject(new HubNotConnectedError('the Hub connection closed', { cause: err }));
      this.#pending.clear();
      if (loggedIn) {
        this.#connected = false;
        this.counters.inc('hub_client_down');
        this.#tell('down', err ? { error: err } : {});
        settle(true);
      } else {
        fail(err ?? new HubNotConnectedError(`the Hub at ${this.url} closed the connection before login`));
      }
    });
    return done;
  }

  async stop(): Promise<void> {
    this.#stop.abort(new AbortedError('Hub client stopped'));
    this.#ws?.terminate();
    await this.#loop;
  }
}

/** OpenSSL / Node codes of a certificate the client refused. */
const TLS_FAILURE_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

function isTlsFailure(err: Error & { code?: string }): boolean {
  return err.code !== undefined && TLS_FAILURE_CODES.has(err.code);
}

function toError(reason: unknown): DpcError | Error {
  if (isDpcError(reason)) return reason;
  return reason instanceof Error ? reason : new Error(String(reason));
}

/** A Hub client for `identity`; call `start()` to connect. */
export function createHubClient(opts: HubClientOptions): HubClient {
  return new HubClientImpl(opts);
}
