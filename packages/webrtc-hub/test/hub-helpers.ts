// Helpers of the Hub tests: a real redis-server on a free port, raw protocol clients (to send
// what our HubClient never would), and teardown of everything a test started.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { generateIdentity, type Identity } from '@dpc/core';
import {
  createHubClient,
  createHubServer,
  type HubClient,
  type HubClientOptions,
  type HubServer,
  type HubServerOptions,
  signLogin,
} from '@dpc/webrtc-hub';
import { afterEach } from 'vitest';
import WebSocket from 'ws';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
/** Runs `fn` after the current test, pass or fail (last registered first). */
export function onCleanup(fn: () => Promise<unknown> | unknown): void {
  cleanups.push(fn);
}

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A real redis-server on loopback (no persistence), killed after the test. */
export async function startRedis(atPort?: number): Promise<{ url: string; port: number; proc: ChildProcess; stop: () => Promise<void> }> {
  const port = atPort ?? (await freePort());
  const proc = spawn('/usr/bin/redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.on('data', (d) => (out += d));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await once(proc, 'exit');
    }
  };
  onCleanup(stop);
  const deadline = Date.now() + 10_000;
  while (!out.includes('Ready to accept connections')) {
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`redis-server did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url: `redis://127.0.0.1:${port}`, port, proc, stop };
}

/** A started Hub on loopback, stopped after the test. */
export async function startHub(o: HubServerOptions = {}): Promise<HubServer> {
  const hub = createHubServer({ host: '127.0.0.1', port: 0, ...o });
  await hub.start();
  onCleanup(() => hub.stop());
  return hub;
}

/** A started Hub client, logged in, stopped after the test. */
export async function loggedInClient(hub: { url: string }, o: Partial<HubClientOptions> = {}): Promise<HubClient> {
  const client = createHubClient({ url: hub.url, identity: o.identity ?? generateIdentity(), backoff: { minMs: 50, maxMs: 500 }, ...o });
  onCleanup(() => client.stop());
  client.start();
  await client.waitConnected({ signal: AbortSignal.timeout(10_000) });
  return client;
}

/** A raw protocol connection: every message from the Hub in order, and the close code. */
export class RawClient {
  readonly ws: WebSocket;
  readonly messages: Array<Record<string, unknown>> = [];
  closeCode: number | undefined;
  readonly #waiters: Array<() => void> = [];

  constructor(url: string, opts: { localAddress?: string } = {}) {
    this.ws = new WebSocket(url, 'dpc-hub.v1', opts);
    this.ws.on('message', (d) => {
      this.messages.push(JSON.parse(String(d)));
      for (const w of this.#waiters.splice(0)) w();
    });
    this.ws.on('error', () => {});
    this.ws.on('close', (code) => {
      this.closeCode = code;
      for (const w of this.#waiters.splice(0)) w();
    });
    onCleanup(() => this.ws.terminate());
  }

  static async open(url: string): Promise<RawClient> {
    const c = new RawClient(url);
    await c.next((m) => m.t === 'challenge' || m.t === 'error');
    return c;
  }

  /** The first message (not yet taken) matching `pred`; throws after `ms`. */
  async next(pred: (m: Record<string, unknown>) => boolean, ms = 5_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.messages.findIndex(pred);
      if (i >= 0) return this.messages.splice(i, 1)[0] as Record<string, unknown>;
      if (Date.now() > deadline) throw new Error(`no such message; got ${JSON.stringify(this.messages)} close=${this.closeCode}`);
      if (this.closeCode !== undefined && this.ws.readyState === WebSocket.CLOSED) {
        const j = this.messages.findIndex(pred);
        if (j >= 0) continue;
        throw new Error(`connection closed (${this.closeCode}); got ${JSON.stringify(this.messages)}`);
      }
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, 100);
      });
    }
  }

  async closed(ms = 5_000): Promise<number> {
    const deadline = Date.now() + ms;
    while (this.closeCode === undefined) {
      if (Date.now() > deadline) throw new Error('connection not closed');
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, 100);
      });
    }
    return this.closeCode;
  }

  send(m: unknown): void {
    this.ws.send(typeof m === 'string' ? m : JSON.stringify(m));
  }

  challenge(): { hub: string; nonce: string; expires_at: number } {
    return this.#challenge as { hub: string; nonce: string; expires_at: number };
  }
  #challenge: unknown;

  /** Opens a connection and logs in as `identity`. */
  static async login(url: string, identity: Identity = generateIdentity()): Promise<RawClient & { identity: Identity }> {
    const c = new RawClient(url);
    const ch = await c.next((m) => m.t === 'challenge');
    c.#challenge = ch;
    c.send({ t: 'login', ...signLogin(identity, ch as never) });
    await c.next((m) => m.t === 'welcome');
    return Object.assign(c, { identity });
  }

  /** Opens a connection and keeps the challenge (for hand-made logins). */
  static async withChallenge(url: string): Promise<RawClient> {
    const c = new RawClient(url);
    c.#challenge = await c.next((m) => m.t === 'challenge');
    return c;
  }
}

/** A TCP proxy on loopback that can be frozen: bytes stop flowing both ways, no socket closes (a silent network). */
export async function startFreezableProxy(targetPort: number): Promise<{ port: number; freeze: () => void }> {
  const { connect } = await import('node:net');
  const sockets: import('node:net').Socket[] = [];
  let frozen = false;
  const server = createServer((inbound) => {
    const outbound = connect(targetPort, '127.0.0.1');
    sockets.push(inbound, outbound);
    for (const [a, b] of [
      [inbound, outbound],
      [outbound, inbound],
    ] as const) {
      a.on('data', (d) => {
        if (!frozen) b.write(d);
      });
      a.on('error', () => b.destroy());
      a.on('close', () => b.destroy());
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  onCleanup(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { port: (server.address() as { port: number }).port, freeze: () => void (frozen = true) };
}
