import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { DpcConfig } from '@dpc/core';
import { afterAll, afterEach } from 'vitest';
import { WebSocket } from 'ws';
import { localNodeConfig } from '../src/demo.js';
import { DpcNode, type DpcNodeOptions } from '../src/node.js';

/**
 * Real dpc-node processes for the app's tests: one-shot runs, long-running `start --json`
 * nodes with their events, a bootstrap node, INI files, an API client. Every process is killed
 * after each test, or after the file's last test when started with `{ scope: 'file' }`. And real
 * nodes in the test's own process (startInProcessNode, at the end), stopped after each test.
 */
export const BIN = new URL('../dist/bin.js', import.meta.url).pathname;
export const procs: ChildProcessWithoutNullStreams[] = [];
const fileProcs: ChildProcessWithoutNullStreams[] = [];
async function killAll(list: ChildProcessWithoutNullStreams[]): Promise<void> {
  for (const p of list.splice(0)) {
    if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGKILL');
      await once(p, 'exit');
    }
  }
}
afterEach(() => killAll(procs));
afterAll(() => killAll(fileProcs));

/** How long a started process lives: until the end of the test (default) or of the test file. */
export interface Scope {
  scope?: 'test' | 'file';
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}
/** `bin`: another build of the app (e.g. a copy installed without an optional tier package). */
export async function run(args: string[], timeoutMs = 60_000, bin = BIN): Promise<Run> {
  const p = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d) => (stdout += d));
  p.stderr.on('data', (d) => (stderr += d));
  const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
  const [code] = await once(p, 'exit');
  clearTimeout(t);
  return { code: code as number | null, stdout, stderr };
}

/** A long-running `dpc-node start --json`, with its JSON events as they come. */
export function startNode(args: string[], opts: Scope & { bin?: string } = {}) {
  const p = spawn(process.execPath, [opts.bin ?? BIN, 'start', '--json', '--allow-loopback', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  (opts.scope === 'file' ? fileProcs : procs).push(p);
  const events: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  let stderr = '';
  p.stderr.on('data', (d) => (stderr += d));
  createInterface({ input: p.stdout }).on('line', (line) => {
    try {
      events.push(JSON.parse(line));
    } catch {
      events.push({ event: 'unparsed', line });
    }
    for (const w of waiters.splice(0)) w();
  });
  const next = async (event: string, pred: (e: Record<string, unknown>) => boolean = () => true, ms = 30_000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = events.find((e) => e.event === event && pred(e));
      if (hit) return hit;
      if (Date.now() > deadline || p.exitCode !== null)
        throw new Error(`no ${event} event; stderr: ${stderr}; events: ${JSON.stringify(events)}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 200);
      });
    }
  };
  return { p, events, next, stderr: () => stderr };
}

/** A bootstrap node in a fresh folder; its DHT address is the seed for the others. */
export async function bootstrapNode(opts: Scope = {}): Promise<{ root: string; seed: string; boot: ReturnType<typeof startNode> }> {
  const root = await mkdtemp(join(tmpdir(), 'dpc-cli-'));
  const boot = startNode(['--config', await config(root, baseIni()), '--data-dir', join(root, 'boot')], opts);
  const seed = seedFrom((await boot.next('listening')).dht);
  return { root, seed, boot };
}

/**
 * A seed for the other nodes from a `listening` event's `dht` (`0.0.0.0:p`, `[::]:p`, `:::p`,
 * `127.0.0.1:p`): the port, on 127.0.0.1 (a dual-stack or wildcard socket answers there too).
 */
export function seedFrom(dht: unknown): string {
  const m = /:(\d+)$/.exec(String(dht));
  if (!m) throw new Error(`no DHT address in the listening event: ${String(dht)}`);
  return `127.0.0.1:${m[1]}`;
}

export async function config(dir: string, body: string): Promise<string> {
  const file = join(dir, 'node.ini');
  await writeFile(file, body);
  return file;
}
export const baseIni = (seed?: string, extra = '') => `[p2p]
listen_port = 0
listen_host = 127.0.0.1
[dht]
port = 0
${seed ? `seed_nodes = ${seed}` : ''}
bootstrap_timeout = 5
lookup_timeout = 5
[api]
enabled = false
[connection]
total_timeout = 20
${extra}`;

/**
 * A port that is free now for TCP and for UDP on 127.0.0.1 (a restarted node keeps its address;
 * a test may use it for the DHT, and other tests on this machine hold many UDP ports).
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const srv = createServer().listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const { port } = srv.address() as { port: number };
    await new Promise((r) => srv.close(r));
    const udp = createSocket('udp4');
    const free = await new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind(port, '127.0.0.1', () => resolve(true));
    });
    await new Promise<void>((r) => udp.close(() => r()));
    if (free) return port;
  }
}

/** Resident memory of a process in bytes (VmRSS of /proc/<pid>/status; Linux). */
export async function rssOf(pid: number): Promise<number> {
  return Number(/VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024;
}

export interface ApiReply {
  result?: unknown;
  error?: { code: string; message: string };
}

/** The WebSocket API of a running node (token read from its data directory), as a request/response client. */
export async function apiClient(url: string, dataDir: string) {
  const token = (await readFile(join(dataDir, 'api-token'), 'utf8')).trim();
  const ws = new WebSocket(`${url}?token=${token}`);
  await once(ws, 'open');
  let id = 0;
  const waiting = new Map<number, { resolve: (m: ApiReply) => void; reject: (e: Error) => void }>();
  ws.on('message', (raw) => {
    const m = JSON.parse(raw.toString());
    waiting.get(m.id)?.resolve(m);
    waiting.delete(m.id);
  });
  ws.on('error', () => {});
  ws.on('close', () => {
    for (const w of waiting.values()) w.reject(new Error('API connection closed'));
    waiting.clear();
  });
  return {
    call(method: string, params: Record<string, unknown> = {}) {
      const n = ++id;
      return new Promise<ApiReply>((resolve, reject) => {
        if (ws.readyState !== WebSocket.OPEN) return reject(new Error('API connection closed'));
        waiting.set(n, { resolve, reject });
        ws.send(JSON.stringify({ id: n, method, params }));
      });
    },
    /** The node's counters (its own, the DHT's and the listener's, in one flat map). */
    async counters(): Promise<Record<string, number>> {
      const r = await this.call('stats');
      if (r.error) throw new Error(`stats: ${r.error.message}`);
      return (r.result as { counters: Record<string, number> }).counters;
    },
    close: () => ws.terminate(),
  };
}
export type ApiClient = Awaited<ReturnType<typeof apiClient>>;

/** `dpc-node send --json --allow-loopback --timeout 20` from a short-lived node with its own data directory. */
export function sendCli(ini: string, dataDir: string, to: unknown, text: string): Promise<Run> {
  return run(['send', '--config', ini, '--data-dir', dataDir, '--allow-loopback', '--json', '--timeout', '20', '--to', String(to), text]);
}

// ---------------------------------------------------------------- in-process nodes

/** A logger that drops everything (in-process nodes). */
export const quietLogger: DpcNodeOptions['logger'] = { debug() {}, info() {}, warn() {}, error() {}, child: () => quietLogger };

const inProcess: DpcNode[] = [];
afterEach(async () => {
  for (const n of inProcess.splice(0).reverse()) await n.stop();
});

/** The config of an in-process test node (localNodeConfig, the demo's) with TCP and DHT on loopback. */
export function loopbackConfig(seed: string | undefined, mutate?: (c: DpcConfig) => void): DpcConfig {
  return localNodeConfig(seed, '127.0.0.1', mutate);
}

export interface InProcessNodeOptions extends Partial<DpcNodeOptions> {
  /** Changes the loopback config (loopbackConfig). */
  mutate?: (c: DpcConfig) => void;
  /** Called with the node before it starts (listeners for start-up events). */
  beforeStart?: (n: DpcNode) => void;
}

/**
 * A real dpc node in this process (DHT over UDP and direct TCP on loopback, its own data folder,
 * no API) with only the tier plugins given (default none; with `tierPackages`, those are looked
 * for), started, and stopped after the test (the last started first).
 */
export async function startInProcessNode(seed: string | undefined, opts: InProcessNodeOptions = {}): Promise<DpcNode> {
  const { mutate, beforeStart, ...extra } = opts;
  const n = new DpcNode({
    dataDir: await mkdtemp(join(tmpdir(), 'dpc-in-process-')),
    config: loopbackConfig(seed, mutate),
    logger: quietLogger,
    allowLoopback: true,
    dhtHost: '127.0.0.1',
    ...(!extra.tierPackages && { plugins: [] }),
    endpointDebounceMs: 50,
    ...extra,
  });
  inProcess.push(n);
  beforeStart?.(n);
  await n.start({ signal: AbortSignal.timeout(20_000) });
  return n;
}

/** The seed address of an in-process node (its DHT on loopback). */
export function seedOf(n: DpcNode): string {
  return `127.0.0.1:${n.dht.address?.port}`;
}

/**
 * Polls `fn` every 100 ms until it returns a value; a throw counts as "not yet". After `ms`
 * fails with `what` and the last error.
 */
export async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    const v = await fn().catch((err: unknown) => {
      last = err;
      return undefined;
    });
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`, { cause: last });
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A loopback node config for the gossip tests: DHT on `dhtPort` (gossip links listen on TCP there), short timeouts. */
export const gossipIni = (dhtPort: number, seed: string | undefined, syncIntervalS: number) => `[p2p]
listen_port = 0
listen_host = 127.0.0.1
[dht]
port = ${dhtPort}
host = 127.0.0.1
${seed ? `seed_nodes = ${seed}` : ''}
bootstrap_timeout = 5
lookup_timeout = 5
[api]
port = 0
[connection]
total_timeout = 15
gossip_timeout = 1
[gossip]
sync_interval = ${syncIntervalS}
cleanup_interval = 30
`;

/** A port free for TCP and for UDP now (the gossip link listens on TCP at the DHT's UDP port number). */
export async function freeTcpUdpPort(): Promise<number> {
  for (;;) {
    const port = await freePort();
    const sock = createSocket('udp4');
    const ok = await new Promise<boolean>((resolve) => {
      sock.once('error', () => resolve(false));
      sock.bind(port, '127.0.0.1', () => resolve(true));
    });
    await new Promise<void>((r) => sock.close(() => r()));
    if (ok) return port;
  }
}
