import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { rssOf } from './harness.js';

// The local WebSocket API of a real `dpc-node start` process, fed what a local process holding
// the token (or not) could send. Nothing may end the process; each bad input is counted.

const BIN = new URL('../dist/bin.js', import.meta.url).pathname;
let proc: ChildProcessWithoutNullStreams;
let url: string;
let port: number;
let token: string;
let stderr = '';

beforeAll(async () => {
  const root = await mkdtemp(join(tmpdir(), 'dpc-api-'));
  const ini = join(root, 'node.ini');
  await writeFile(
    ini,
    '[p2p]\nlisten_port = 0\nlisten_host = 127.0.0.1\n[dht]\nport = 0\nbootstrap_timeout = 2\n[api]\nenabled = true\nport = 0\n',
  );
  proc = spawn(process.execPath, [BIN, 'start', '--json', '--allow-loopback', '--config', ini, '--data-dir', join(root, 'd')], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  proc.stderr.on('data', (d) => (stderr += d));
  const lines = createInterface({ input: proc.stdout });
  url = await new Promise<string>((resolve, reject) => {
    lines.on('line', (line) => {
      try {
        const e = JSON.parse(line) as { event?: string; url?: string };
        if (e.event === 'api') resolve(String(e.url));
      } catch {
        // not an event line
      }
    });
    proc.once('exit', () => reject(new Error(`dpc-node exited: ${stderr}`)));
  });
  port = Number(new URL(url).port);
  token = (await readFile(join(root, 'd', 'api-token'), 'utf8')).trim();
}, 60_000);

afterAll(async () => {
  if (proc.exitCode === null) {
    proc.kill('SIGKILL');
    await once(proc, 'exit');
  }
});

/** An authorized client with request/reply. */
async function client() {
  const ws = new WebSocket(`${url}?token=${token}`, { maxPayload: 16 * 1024 * 1024 });
  await once(ws, 'open');
  const waiting = new Map<unknown, (m: Record<string, unknown>) => void>();
  const unsolicited: Array<Record<string, unknown>> = [];
  ws.on('message', (d) => {
    const m = JSON.parse(String(d)) as Record<string, unknown>;
    const w = waiting.get(m.id);
    if (w) {
      waiting.delete(m.id);
      w(m);
    } else if (!('event' in m)) unsolicited.push(m);
  });
  let n = 0;
  const call = (method: string, params?: unknown) => {
    const id = ++n;
    const p = new Promise<Record<string, unknown>>((r) => waiting.set(id, r));
    ws.send(JSON.stringify({ id, method, params }));
    return p;
  };
  /** Sends raw text; resolves with the next reply that is not to a numbered call. */
  const sendRaw = (text: string | Buffer) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const before = unsolicited.length;
      const check = () => {
        const next = unsolicited[before];
        if (next) return resolve(next);
        if (ws.readyState !== WebSocket.OPEN) return reject(new Error('closed'));
        setTimeout(check, 2);
      };
      ws.send(text);
      check();
    });
  return { ws, call, sendRaw, unsolicited };
}

async function counters(): Promise<Record<string, number>> {
  const c = await client();
  const r = (await c.call('stats')) as { result: { counters: Record<string, number> } };
  c.ws.close();
  return r.result.counters;
}

/** A raw TCP connection that has done the WebSocket upgrade (frames are written by hand). */
async function rawUpgraded(): Promise<Socket> {
  const s = connect(port, '127.0.0.1');
  await once(s, 'connect');
  s.write(
    `GET /?token=${token} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  const [head] = (await once(s, 'data')) as [Buffer];
  expect(head.toString('latin1')).toMatch(/^HTTP\/1.1 101/);
  return s;
}

/** Resolves when the server has ended the socket; returns what it sent before. */
function ended(s: Socket): Promise<Buffer> {
  const got: Buffer[] = [];
  s.on('data', (d) => got.push(d));
  s.on('error', () => {});
  return new Promise((r) => s.once('close', () => r(Buffer.concat(got))));
}

describe('dpc-node API under hostile input', () => {
  it('any input on any API socket ends that socket, never the process, and is counted', async () => {
    const before = await counters();

    // a message over the 64 KiB limit: closed with 1009
    const big = await client();
    big.ws.send('x'.repeat(64 * 1024 + 1));
    const [bigCode] = (await once(big.ws, 'close')) as [number];
    expect(bigCode).toBe(1009);

    // invalid UTF-8 in a text frame: closed with 1007
    const bad = await client();
    bad.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    const [badCode] = (await once(bad.ws, 'close')) as [number];
    expect(badCode).toBe(1007);

    // protocol violations written by hand: a reserved opcode, an unmasked frame, a 4 GiB and a
    // 2^63-byte frame header
    for (const frame of [
      [0x83, 0x80, 0, 0, 0, 0],
      [0x81, 0x01, 0x61],
      [0x82, 0xff, 0, 0, 0, 0x01, 0, 0, 0, 0, 0, 0, 0, 0],
      [0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0],
    ]) {
      const s = await rawUpgraded();
      const done = ended(s);
      s.write(Buffer.from(frame));
      const sent = await done;
      expect(sent[0], Buffer.from(frame).toString('hex')).toBe(0x88); // a close frame, then the end
    }

    // not HTTP at all, and an upgrade cut in the middle of a frame
    const junk = connect(port, '127.0.0.1');
    const junkDone = ended(junk);
    junk.write(randomBytes(4096));
    await junkDone;
    const cut = await rawUpgraded();
    cut.write(Buffer.from([0x81, 0xfe, 0x10]));
    cut.destroy();

    expect(proc.exitCode).toBe(null);
    const c = await counters();
    const delta = (k: string) => (c[k] ?? 0) - (before[k] ?? 0);
    expect(delta('api_socket_errors')).toBeGreaterThanOrEqual(6);
    expect(delta('api_socket_errors_WS_ERR_UNSUPPORTED_MESSAGE_LENGTH')).toBeGreaterThanOrEqual(2);
    expect(delta('api_socket_errors_WS_ERR_INVALID_UTF8')).toBe(1);
    expect(delta('api_socket_errors_WS_ERR_INVALID_OPCODE')).toBe(1);
    expect(delta('api_socket_errors_WS_ERR_EXPECTED_MASK')).toBe(1);
    expect(delta('api_socket_errors_WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH')).toBe(1);
    const ok = await client();
    expect(await ok.call('id')).toMatchObject({ result: { nodeId: expect.stringMatching(/^dpc-node-/) } });
    ok.ws.close();
  });

  it('subscribe takes only the node event names, however many are sent', async () => {
    const c = await client();
    const names = Array.from({ length: 5000 }, (_, i) => `e${i}`);
    expect(await c.call('subscribe', { events: [...names, 'message', 7, null, { a: 1 }] })).toEqual({
      id: 1,
      result: { subscribed: ['message'] },
    });
    c.ws.close();
  });

  it("subscribe takes the tiers' events (relay, tier-event, tier-not-installed, network) and resumed", async () => {
    const c = await client();
    const events = ['relay', 'tier-event', 'tier-not-installed', 'network', 'resumed'];
    expect(await c.call('subscribe', { events })).toEqual({ id: 1, result: { subscribed: events } });
    c.ws.close();
  });

  it('fuzz: API JSON input gets one reply each, at a cost per byte like plain input', async () => {
    const c = await client();
    // Every request gets a reply (a result or a typed error), and the process stays up.
    const request = fc.oneof(
      fc.json({ maxDepth: 6 }),
      fc.string({ maxLength: 300 }),
      fc
        .record({
          id: fc.oneof(fc.nat(), fc.string(), fc.constant(null)),
          method: fc.oneof(
            fc.constantFrom('id', 'stats', 'sessions', 'send', 'subscribe', 'nope', '__proto__', 'constructor'),
            fc.string(),
          ),
          params: fc.oneof(fc.jsonValue({ maxDepth: 4 }), fc.record({ to: fc.string(), text: fc.string({ maxLength: 200 }) })),
        })
        .map((r) => JSON.stringify(r)),
    );
    await fc.assert(
      fc.asyncProperty(request, async (text) => {
        const reply = await c.sendRaw(text).catch(() => undefined);
        // numbered replies go to `waiting` of call(): these raw ones always come back unsolicited
        expect(reply === undefined || 'result' in reply || 'error' in reply).toBe(true);
        if (reply && 'error' in reply) expect((reply.error as { code: string }).code).toMatch(/^DPC_/);
      }),
      { numRuns: 300 },
    );
    expect(c.ws.readyState).toBe(WebSocket.OPEN);

    // Hostile ~60 KB requests against plain ones of the same size.
    const n = 60 * 1024;
    const hostile = [
      '['.repeat(n / 2) + ']'.repeat(n / 2), // deep nesting
      `{"id":1,"method":"subscribe","params":{"events":[${Array.from({ length: n / 8 }, (_, i) => `"v${i}"`).join(',')}]}}`,
      `[${'0,'.repeat(n / 2 - 1)}0]`, // many small elements
      `{${Array.from({ length: n / 12 }, (_, i) => `"${i}":0`).join(',')},"method":"id"}`, // index keys
      `{"method":"send","params":{"to":"${'a'.repeat(n - 60)}","text":"x"}}`,
      '"\\ud800'.padEnd(n, 'x'), // unterminated string with a lone surrogate
    ];
    const plain = hostile.map((h) => JSON.stringify({ id: 'p', method: 'id', params: { pad: 'x'.repeat(h.length - 40) } }));
    const timeBatch = async (inputs: string[]) => {
      const t0 = performance.now();
      for (let round = 0; round < 5; round++) for (const text of inputs) await c.sendRaw(text);
      return performance.now() - t0;
    };
    await timeBatch(plain); // warm up
    const rss0 = await rssOf(proc.pid as number);
    const plainMs = await timeBatch(plain);
    const hostileMs = await timeBatch(hostile);
    const rssGrowth = (await rssOf(proc.pid as number)) - rss0;
    // Loose on purpose (2 shared cores): the old bugs cost orders of magnitude more.
    expect(hostileMs).toBeLessThan(20 * plainMs + 2000);
    expect(rssGrowth).toBeLessThan(200 * 1024 * 1024);
    expect(proc.exitCode).toBe(null);
    expect(await c.call('id')).toMatchObject({ result: { nodeId: expect.any(String) } });
    c.ws.close();
  });
});
