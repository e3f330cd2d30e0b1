import { randomBytes, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { isNodeId } from '@dpc/core';
import { WebSocket, WebSocketServer } from 'ws';
import { hostAllowed, httpRoutes, originAllowed } from './dashboard.js';
import { NodeMonitor } from './dashboard-state.js';
import type { Logger } from './log.js';
import { createMetrics } from './metrics.js';
import type { DpcNode, NodeEvents } from './node.js';

const TOKEN_FILE = 'api-token';
const MAX_CLIENTS = 16;
/** Open TCP connections to the API server: the WebSocket clients and plain HTTP requests. */
const MAX_CONNECTIONS = 64;
const MAX_MESSAGE_BYTES = 64 * 1024;
/** Bytes queued to a slow client before events to it are dropped (counted). */
const MAX_CLIENT_BUFFER = 1024 * 1024;
/** Events a client may subscribe to; `subscribe` without a list takes DEFAULT_EVENTS. */
const API_EVENTS = [
  'listening',
  'connected',
  'accepted',
  'message',
  'resumed',
  'upgraded',
  'path-lost',
  'disconnected',
  'tier-event',
  'tier-not-installed',
  'network',
  'error',
  'relay',
] as const;
const DEFAULT_EVENTS: readonly string[] = [
  'listening',
  'connected',
  'accepted',
  'message',
  'upgraded',
  'path-lost',
  'disconnected',
  'error',
];

/** The API token in the data directory (created on first use, mode 0600). */
export async function loadApiToken(dataDir: string): Promise<string> {
  const file = join(dataDir, TOKEN_FILE);
  try {
    const t = (await readFile(file, 'utf8')).trim();
    if (/^[0-9a-f]{64}$/.test(t)) return t;
  } catch {
    // created below
  }
  const token = randomBytes(32).toString('hex');
  await writeFile(file, `${token}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  return token;
}

export interface ApiServer {
  readonly url: string;
  readonly port: number;
  /** The dashboard page, without the token (add `?token=`). */
  readonly dashboardUrl: string;
  close(): Promise<void>;
}

/**
 * The local WebSocket API. Connect to `ws://127.0.0.1:<port>/?token=<token>` (or send the token
 * as `Authorization: Bearer <token>`). Requests are JSON `{ id, method, params }`; replies
 * `{ id, result }` or `{ id, error: { code, message } }`; events `{ event, data }` after `subscribe`.
 * Methods: `id`, `stats`, `sessions`, `send { to, text, wait? }` (`wait: 'accepted'` answers once the
 * message is durably in the outbox; default 'delivered': once the peer acknowledged it),
 * `subscribe { events? }`, `overview` (what the dashboard shows: addresses, NAT, DHT size, sessions
 * with tier, ack RTT and upgrades, stats, relay load), `stop` (the node shuts down after answering).
 * The same server answers plain HTTP: the dashboard page and `/metrics` (see dashboard.ts).
 * `send` takes `timeout_ms` (default and cap 120000): when it passes after the message was accepted
 * the answer is `{ accepted: true, delivered: false, reason }` (it stays in the outbox).
 */
export async function startApi(
  node: DpcNode,
  opts: {
    host: string;
    port: number;
    token: string;
    logger: Logger;
    onStop?: () => void;
    /** Watches the node for the dashboard and /metrics; attach it before `node.start` to see every connect. Default: one made here. */
    monitor?: NodeMonitor;
  },
): Promise<ApiServer> {
  const expected = Buffer.from(opts.token);
  const authorized = (req: IncomingMessage): boolean => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const given = url.searchParams.get('token') ?? req.headers.authorization?.replace(/^Bearer /i, '') ?? '';
    const g = Buffer.from(given);
    return g.length === expected.length && timingSafeEqual(g, expected);
  };
  const monitor = opts.monitor ?? new NodeMonitor(node);
  const metrics = createMetrics(monitor);
  // One loopback server: the WebSocket API (upgrades), the dashboard page and /metrics (GET).
  const server = createServer(
    httpRoutes({
      authorized,
      metrics,
      onRefused: (kind) => node.counters.inc(kind === 'host' ? 'api_foreign_host' : 'api_unauthorized'),
    }),
  );
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  // WebSocket clients (at most MAX_CLIENTS) and page, script and /metrics requests, together.
  server.maxConnections = MAX_CONNECTIONS;
  const wss = new WebSocketServer({
    server,
    maxPayload: MAX_MESSAGE_BYTES,
    verifyClient: (info, cb) => {
      // A page of another site (or another local port) and a DNS-rebound name are refused even with the token.
      if (!hostAllowed(info.req.headers.host) || !originAllowed(info.req.headers.origin, info.req.headers.host)) {
        node.counters.inc('api_foreign_origin');
        return cb(false, 403, 'Forbidden');
      }
      if (!authorized(info.req)) {
        node.counters.inc('api_unauthorized');
        return cb(false, 401, 'Unauthorized');
      }
      if (wss.clients.size >= MAX_CLIENTS) return cb(false, 503, 'Too many clients');
      cb(true);
    },
  });
  // Errors of the listening socket itself (after it is bound) are logged, never thrown; before,
  // they fail the start. The WebSocketServer re-emits the HTTP server's errors: heard here once.
  let bound = false;
  wss.on('error', (err: Error) => {
    if (!bound) return;
    node.counters.inc('api_server_errors');
    opts.logger.warn('WebSocket API server error', { error: err.message });
  });
  server.listen(opts.port, opts.host);
  try {
    await once(server, 'listening');
  } catch (err) {
    metrics.close();
    if (!opts.monitor) monitor.close();
    throw err;
  }
  bound = true;
  server.on('clientError', (_err, socket) => socket.destroy());
  const port = (server.address() as { port: number }).port;

  // One node listener per event, shared by every subscribed client: a listener per client and
  // event made 16 clients exceed EventEmitter's limit (MaxListenersExceededWarning) and grew
  // with each subscription; the limit stays as it is.
  const fanout = new Map<keyof NodeEvents, { listener: (data: unknown) => void; fns: Set<(data: unknown) => void> }>();
  const listen = (ev: keyof NodeEvents, fn: (data: unknown) => void) => {
    let f = fanout.get(ev);
    if (!f) {
      const fns = new Set<(data: unknown) => void>();
      const listener = (data: unknown) => {
        for (const g of fns) g(data);
      };
      f = { listener, fns };
      fanout.set(ev, f);
      node.on(ev, listener as never);
    }
    f.fns.add(fn);
  };
  const unlisten = (ev: keyof NodeEvents, fn: (data: unknown) => void) => {
    const f = fanout.get(ev);
    if (!f) return;
    f.fns.delete(fn);
    if (f.fns.size > 0) return;
    fanout.delete(ev);
    node.off(ev, f.listener as never);
  };

  wss.on('connection', (ws) => {
    // A frame over MAX_MESSAGE_BYTES, invalid UTF-8 in a text frame, a protocol violation or a
    // reset: ws emits 'error' (which, unheard, would end the process) and starts a close with
    // the matching status (1009, 1007, 1002); a client that does not answer it is cut after 1 s.
    ws.on('error', (err: Error & { code?: string }) => {
      node.counters.inc('api_socket_errors');
      node.counters.inc(`api_socket_errors_${err.code ?? 'other'}`);
      setTimeout(() => ws.terminate(), 1000).unref();
    });
    const subscriptions = new Set<string>();
    const listeners: Array<[keyof NodeEvents, (data: unknown) => void]> = [];
    const push = (event: string, data: unknown) => {
      if (ws.readyState !== WebSocket.OPEN) return;
      if (ws.bufferedAmount > MAX_CLIENT_BUFFER) {
        node.counters.inc('api_events_dropped_slow_client');
        return;
      }
      ws.send(JSON.stringify({ event, data }, jsonReplacer));
    };
    ws.on('message', async (raw, isBinary) => {
      let req: { id?: unknown; method?: unknown; params?: Record<string, unknown> };
      try {
        if (isBinary) throw new Error('binary frames are not accepted');
        req = JSON.parse(raw.toString());
        if (typeof req !== 'object' || req === null || typeof req.method !== 'string') throw new Error('expected { id, method, params }');
      } catch (err) {
        node.counters.inc('api_bad_requests');
        ws.send(JSON.stringify({ id: null, error: { code: 'DPC_API_BAD_REQUEST', message: (err as Error).message } }));
        return;
      }
      const reply = (body: Record<string, unknown>) =>
        ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify({ id: req.id ?? null, ...body }, jsonReplacer));
      try {
        reply({ result: await handle(req.method as string, req.params ?? {}) });
      } catch (err) {
        const e = err as { code?: string; message?: string };
        reply({ error: { code: e.code ?? 'DPC_API_ERROR', message: e.message ?? String(err) } });
      }
    });
    ws.on('close', () => {
      for (const [ev, fn] of listeners) unlisten(ev, fn);
    });

    async function handle(method: string, params: Record<string, unknown>): Promise<unknown> {
      if (method === 'stop') {
        if (!opts.onStop) throw Object.assign(new Error('this node cannot be stopped through the API'), { code: 'DPC_API_UNKNOWN_METHOD' });
        setImmediate(opts.onStop);
        return { stopping: true };
      }
      if (!node.orchestrator && method !== 'subscribe')
        throw Object.assign(new Error('the node is still starting'), { code: 'DPC_API_NOT_READY' });
      switch (method) {
        case 'id':
          return { nodeId: node.nodeId };
        case 'overview':
          return monitor.overview();
        case 'stats':
          return {
            orchestrator: node.orchestrator.stats(),
            dht: node.dht.stats(),
            listener: node.listener.stats(),
            counters: node.counters.snapshot(),
          };
        case 'sessions':
          return node.orchestrator
            .sessions()
            .map((s) => ({ peerId: s.peerId, tier: s.tier ?? null, connected: s.connected, deferred: s.deferred, unacked: s.unacked }));
        case 'send': {
          const to = params.to;
          const text = params.text;
          if (!isNodeId(to)) throw Object.assign(new Error('params.to must be a node id'), { code: 'DPC_API_BAD_REQUEST' });
          if (typeof text !== 'string' || text.length > 16_000)
            throw Object.assign(new Error('params.text must be a string of at most 16000 characters'), { code: 'DPC_API_BAD_REQUEST' });
          const wait = params.wait ?? 'delivered';
          if (wait !== 'accepted' && wait !== 'delivered')
            throw Object.assign(new Error("params.wait must be 'accepted' or 'delivered'"), { code: 'DPC_API_BAD_REQUEST' });
          const t = params.timeout_ms ?? 120_000;
          if (typeof t !== 'number' || !(t > 0))
            throw Object.assign(new Error('params.timeout_ms must be a positive number'), { code: 'DPC_API_BAD_REQUEST' });
          // 'accepted': answered once the message is in the outbox (durable), before delivery.
          let seq: number | undefined;
          try {
            const r = await node.send(to, text, {
              signal: AbortSignal.timeout(Math.min(t, 120_000)),
              wait,
              onAccepted: (s) => {
                seq = s;
              },
            });
            return wait === 'accepted' ? { accepted: true, ...r } : { accepted: true, delivered: true, ...r };
          } catch (err) {
            if (seq === undefined) throw err;
            const session = node.orchestrator.session(to);
            return { accepted: true, delivered: false, seq, tier: session?.tier ?? null, reason: (err as Error).message };
          }
        }
        case 'subscribe': {
          // Only the node's own events: a list of arbitrary names would add a listener for each.
          const wanted = (Array.isArray(params.events) ? params.events : DEFAULT_EVENTS).filter((e): e is (typeof API_EVENTS)[number] =>
            (API_EVENTS as readonly unknown[]).includes(e),
          );
          for (const name of wanted) {
            if (subscriptions.has(name)) continue;
            subscriptions.add(name);
            // 'relay': tier 5's own events (a `tier-event` named relay), shaped as `start --json` prints them.
            const ev: keyof NodeEvents = name === 'relay' ? 'tier-event' : name;
            const fn =
              name === 'relay'
                ? (data: unknown) => {
                    const e = data as NodeEvents['tier-event'][0];
                    if (e.event === 'relay') push('relay', { tier: e.tier, ...e.fields });
                  }
                : (data: unknown) => push(name, data);
            listeners.push([ev, fn]);
            listen(ev, fn);
          }
          return { subscribed: [...subscriptions] };
        }
        default:
          throw Object.assign(new Error(`unknown method ${method}`), { code: 'DPC_API_UNKNOWN_METHOD' });
      }
    }
  });
  const hostPart = `${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}`;
  opts.logger.info('WebSocket API listening', { url: `ws://${hostPart}/`, dashboard: `http://${hostPart}/dashboard` });
  return {
    url: `ws://${hostPart}/`,
    port,
    dashboardUrl: `http://${hostPart}/dashboard`,
    async close() {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      metrics.close();
      if (!opts.monitor) monitor.close();
    },
  };
}

export function jsonReplacer(_k: string, v: unknown): unknown {
  if (v instanceof Error) return { name: v.name, code: (v as { code?: string }).code, message: v.message };
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  return v;
}
