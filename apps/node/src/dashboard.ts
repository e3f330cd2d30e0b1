import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { DASHBOARD_CSS, DASHBOARD_HTML, DASHBOARD_JS } from './dashboard-page.js';
import type { NodeMetrics } from './metrics.js';

/**
 * Host names the API server answers to: IP literals and `localhost`. Anything else is a name that
 * resolves here by DNS rebinding (a web page's host pointed at 127.0.0.1), refused.
 */
export function hostAllowed(host: string | undefined): boolean {
  if (!host) return false;
  let name: string;
  try {
    name = new URL(`http://${host}`).hostname;
  } catch {
    return false;
  }
  if (name.startsWith('[') && name.endsWith(']')) name = name.slice(1, -1);
  return name === 'localhost' || isIP(name) !== 0;
}

/**
 * Whether a browser's `Origin` may open the WebSocket: none (not a browser) or this server's own
 * origin (the dashboard). Another site's page, even one on another local port, is refused.
 */
export function originAllowed(origin: string | undefined, host: string | undefined): boolean {
  if (origin === undefined) return true;
  try {
    const u = new URL(origin);
    return u.protocol === 'http:' && u.host === host;
  } catch {
    return false;
  }
}

/** Headers of every dashboard response: nothing but this server's own files, no referrer, no framing, no caching. */
function securityHeaders(host: string): Record<string, string> {
  return {
    'content-security-policy': `default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws://${host}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'cache-control': 'no-store',
    'cross-origin-resource-policy': 'same-origin',
  };
}

export interface HttpRoutesOptions {
  authorized(req: IncomingMessage): boolean;
  metrics: NodeMetrics;
  /** A refused request (wrong or missing token, foreign host). */
  onRefused(kind: 'unauthorized' | 'host'): void;
}

/**
 * Plain HTTP requests to the API server (WebSocket upgrades go to the API):
 * - `GET /dashboard?token=…` (or `/`): the live dashboard page; refused (401) without the token.
 * - `GET /dashboard.js`, `/dashboard.css`: its script and style, static and free of secrets
 *   (the page reads the token from its own URL and opens the WebSocket with it).
 * - `GET /metrics` with `Authorization: Bearer <token>` or `?token=`: Prometheus text format.
 * Any other request: 404; another method than GET/HEAD: 405; a Host that is not an IP address
 * or localhost: 421.
 */
export function httpRoutes(opts: HttpRoutesOptions): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const host = req.headers.host;
    if (!hostAllowed(host)) {
      opts.onRefused('host');
      return end(res, 421, 'text/plain; charset=utf-8', 'misdirected request: use the IP address of the API (or localhost)\n');
    }
    const h = securityHeaders(host as string);
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return end(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { ...h, allow: 'GET, HEAD' });
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    switch (path) {
      case '/':
      case '/dashboard':
        if (!opts.authorized(req)) {
          opts.onRefused('unauthorized');
          return end(
            res,
            401,
            'text/plain; charset=utf-8',
            'unauthorized: open the dashboard URL dpc-node start printed (?token= from <data-dir>/api-token)\n',
            h,
          );
        }
        return end(res, 200, 'text/html; charset=utf-8', DASHBOARD_HTML, h, req.method === 'HEAD');
      case '/dashboard.js':
        return end(res, 200, 'text/javascript; charset=utf-8', DASHBOARD_JS, h, req.method === 'HEAD');
      case '/dashboard.css':
        return end(res, 200, 'text/css; charset=utf-8', DASHBOARD_CSS, h, req.method === 'HEAD');
      case '/favicon.ico':
        res.writeHead(204, h).end();
        return;
      case '/metrics':
        if (!opts.authorized(req)) {
          opts.onRefused('unauthorized');
          return end(res, 401, 'text/plain; charset=utf-8', 'unauthorized: send Authorization: Bearer <token of <data-dir>/api-token>\n', {
            'www-authenticate': 'Bearer realm="dpc-node"',
          });
        }
        opts.metrics.text().then(
          (text) => end(res, 200, opts.metrics.contentType, text, { 'cache-control': 'no-store' }, req.method === 'HEAD'),
          (err: Error & { code?: string }) =>
            end(res, err.code === 'DPC_API_NOT_READY' ? 503 : 500, 'text/plain; charset=utf-8', `${err.code ?? 'error'}: ${err.message}\n`),
        );
        return;
      default:
        return end(res, 404, 'text/plain; charset=utf-8', 'not found\n', h);
    }
  };
}

function end(res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}, head = false): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'content-type': type, 'content-length': String(Buffer.byteLength(body)), ...headers });
  res.end(head ? undefined : body);
}
