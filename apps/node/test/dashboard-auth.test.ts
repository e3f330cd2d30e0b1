import { once } from 'node:events';
import { mkdtemp } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig } from '@dpc/core';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startApi } from '../src/api.js';
import { hostAllowed, originAllowed } from '../src/dashboard.js';
import { DpcNode } from '../src/node.js';
import { apiNode, launchChromium } from './dashboard-helpers.js';
import { apiClient } from './harness.js';

/** A raw HTTP request (fetch cannot set Host): status, headers and body. */
function get(url: string, headers: Record<string, string> = {}, method = 'GET') {
  const u = new URL(url);
  return new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
    req.end();
  });
}

/** Opens a WebSocket; resolves 'open' or the HTTP status it was refused with. */
function wsOutcome(url: string, headers: Record<string, string> = {}): Promise<'open' | number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on('open', () => {
      ws.terminate();
      resolve('open');
    });
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('error', (err) => reject(err));
  });
}

describe('dpc-node dashboard and /metrics: only with the token, only from this origin', () => {
  it('refuses the page, the WebSocket and /metrics without the right token, a foreign Origin and a rebound Host, and counts it', async () => {
    const root = await mkdtemp(join(tmpdir(), 'dpc-dash-auth-'));
    const a = await apiNode(root, 'a');
    const base = a.dashboard.replace(/\/dashboard$/, '');
    const host = new URL(base).host;

    for (const url of [a.dashboard, `${a.dashboard}?token=`, `${a.dashboard}?token=${'0'.repeat(64)}`, `${base}/`, `${base}/?token=x`]) {
      const r = await get(url);
      expect(r.status, url).toBe(401);
      expect(r.body).not.toContain(a.nodeId);
    }
    expect((await get(a.dashboard, { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await get(a.metrics)).status).toBe(401);
    expect((await get(a.metrics, { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await get(`${a.metrics}?token=${'f'.repeat(64)}`)).status).toBe(401);
    expect(await wsOutcome(a.api)).toBe(401);
    expect(await wsOutcome(`${a.api}?token=${'0'.repeat(64)}`)).toBe(401);
    // the token is right, but the page asking is another site's, or another local port's, or its name was rebound here
    expect(await wsOutcome(`${a.api}?token=${a.token}`, { origin: 'http://evil.example' })).toBe(403);
    expect(await wsOutcome(`${a.api}?token=${a.token}`, { origin: 'http://127.0.0.1:1' })).toBe(403);
    expect(await wsOutcome(`${a.api}?token=${a.token}`, { origin: 'null' })).toBe(403);
    expect(await wsOutcome(`${a.api}?token=${a.token}`, { host: 'rebound.example' })).toBe(403);
    expect((await get(`${a.dashboard}?token=${a.token}`, { host: `rebound.example:${new URL(base).port}` })).status).toBe(421);
    expect((await get(`${a.metrics}?token=${a.token}`, { host: 'rebound.example' })).status).toBe(421);
    expect((await get(`${a.dashboard}?token=${a.token}`, {}, 'POST')).status).toBe(405);

    // with the token (and this server's own Origin): allowed
    expect(await wsOutcome(`${a.api}?token=${a.token}`, { origin: base })).toBe('open');
    expect(await wsOutcome(a.api, { authorization: `Bearer ${a.token}` })).toBe('open');
    const page = await get(`${a.dashboard}?token=${a.token}`);
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toBe(
      `default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws://${host}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    );
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    expect(page.headers['cache-control']).toBe('no-store');
    // no inline script or style, nothing from elsewhere, and the page holds no token
    expect(page.body.match(/<script[^>]*>/g)).toEqual(['<script src="/dashboard.js" defer>']);
    expect(page.body).not.toMatch(/<style|\sstyle=|\son[a-z]+=|https?:\/\//);
    expect(page.body).not.toContain(a.token);
    const js = await get(`${base}/dashboard.js`);
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.body).not.toContain(a.token);
    expect(js.body).not.toMatch(/innerHTML|eval\(|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
    expect((await get(`${base}/nothing-here?token=${a.token}`)).status).toBe(404);

    const client = await apiClient(a.api, a.dataDir);
    const counters = await client.counters();
    expect(counters.api_unauthorized).toBe(11);
    expect(counters.api_foreign_origin).toBe(4);
    expect(counters.api_foreign_host).toBe(2);
    client.close();
  });

  it('a page of another local origin cannot use the API from a browser, even knowing the token', async () => {
    const root = await mkdtemp(join(tmpdir(), 'dpc-dash-auth-'));
    const a = await apiNode(root, 'a');
    // A hostile page on another loopback port (no CSP of ours applies to it): it tries the WebSocket with the token.
    const evil = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><script>
        const ws = new WebSocket(${JSON.stringify(`${a.api}?token=${a.token}`)});
        ws.onopen = () => { document.title = 'opened'; };
        ws.onclose = () => { if (document.title !== 'opened') document.title = 'refused'; };
      </script>`);
    });
    evil.listen(0, '127.0.0.1');
    await once(evil, 'listening');
    try {
      const browser = await launchChromium();
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${(evil.address() as { port: number }).port}/`);
      await page.waitForFunction(() => document.title === 'refused' || document.title === 'opened', { timeout: 20_000 });
      expect(await page.title()).toBe('refused');
      // the same browser, on the dashboard's own origin, connects
      await page.goto(`${a.dashboard}?token=${a.token}`);
      await page.waitForFunction(() => document.getElementById('conn')?.textContent === 'live', { timeout: 20_000 });
    } finally {
      evil.closeAllConnections();
      await new Promise((r) => evil.close(r));
    }
    const client = await apiClient(a.api, a.dataDir);
    expect((await client.counters()).api_foreign_origin).toBe(1);
    client.close();
  });

  it('a taken port rejects the start of the API server (EADDRINUSE), with no error left unheard', async () => {
    const blocker = createServer().listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const port = (blocker.address() as { port: number }).port;
    const quiet = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };
    const node = new DpcNode({ dataDir: await mkdtemp(join(tmpdir(), 'dpc-dash-port-')), config: defaultConfig(), logger: quiet });
    try {
      await expect(startApi(node, { host: '127.0.0.1', port, token: 'c'.repeat(64), logger: quiet })).rejects.toMatchObject({
        code: 'EADDRINUSE',
      });
      // the monitor it made is gone again: no listener left on the node
      expect(node.listenerCount('connected') + node.listenerCount('acked') + node.listenerCount('tier-event')).toBe(0);
    } finally {
      blocker.close();
    }
  });

  it('accepts only IP literals and localhost as Host, and only its own origin', () => {
    const hosts: Array<[string | undefined, boolean]> = [
      ['127.0.0.1:8887', true],
      ['[::1]:8887', true],
      ['localhost:8887', true],
      ['10.0.0.5', true],
      ['rebound.example:8887', false],
      ['localhost.evil.example', false],
      ['', false],
      [undefined, false],
      ['bad host', false],
    ];
    for (const [h, ok] of hosts) expect(hostAllowed(h), String(h)).toBe(ok);
    const origins: Array<[string | undefined, string, boolean]> = [
      [undefined, '127.0.0.1:8887', true],
      ['http://127.0.0.1:8887', '127.0.0.1:8887', true],
      ['http://localhost:8887', '127.0.0.1:8887', false],
      ['http://127.0.0.1:8888', '127.0.0.1:8887', false],
      ['https://127.0.0.1:8887', '127.0.0.1:8887', false],
      ['null', '127.0.0.1:8887', false],
      ['http://[::1]:8887', '[::1]:8887', true],
    ];
    for (const [o, h, ok] of origins) expect(originAllowed(o, h), `${o} on ${h}`).toBe(ok);
  });
});
