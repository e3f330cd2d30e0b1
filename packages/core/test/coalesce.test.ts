import { once } from 'node:events';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { type Connection, generateIdentity, secureAccept, secureConnect } from '@dpc/core';
import { afterEach, describe, expect, it } from 'vitest';

const alice = generateIdentity();
const bob = generateIdentity();

const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) s.close();
});

async function listen(onSocket: (s: Socket) => void): Promise<number> {
  const server = createServer({ noDelay: true }, (s) => {
    sockets.push(s);
    onSocket(s);
  });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as { port: number }).port;
}

/**
 * Alice → TCP proxy → Bob, as the direct tier connects (noDelay). The proxy forwards bytes
 * untouched and counts the TLS records Alice sends (5-byte record headers in the byte stream).
 */
async function tappedPair(): Promise<{ a: Connection; b: Connection; recordsFromA: () => number }> {
  let bobSide!: Promise<Connection>;
  const bobPort = await listen((s) => {
    bobSide = secureAccept(s, { identity: bob, tier: 'ipv4_direct' });
  });
  let records = 0;
  const proxyPort = await listen((fromA) => {
    const toB = tcpConnect({ port: bobPort, host: '127.0.0.1', noDelay: true });
    sockets.push(toB);
    let buf = Buffer.alloc(0);
    fromA.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 5 && buf.length >= 5 + buf.readUInt16BE(3)) {
        records++;
        buf = buf.subarray(5 + buf.readUInt16BE(3));
      }
    });
    // The proxy's own sockets: a write after the far side ended (teardown) must not be uncaught.
    fromA.on('error', () => {});
    toB.on('error', () => {});
    fromA.pipe(toB); // with backpressure: a receiver that stops reading stops the sender's socket
    toB.pipe(fromA);
  });
  const sock = tcpConnect({ port: proxyPort, host: '127.0.0.1', noDelay: true });
  sockets.push(sock);
  await once(sock, 'connect');
  const a = await secureConnect(sock, { identity: alice, tier: 'ipv4_direct', expectedNodeId: bob.nodeId });
  const b = await bobSide;
  return { a, b, recordsFromA: () => records };
}

function collect(c: Connection, n: number): Promise<unknown[]> {
  const got: unknown[] = [];
  return new Promise((resolve) =>
    c.on('message', (m) => {
      got.push(m);
      if (got.length === n) resolve(got);
    }),
  );
}

describe('coalesced writes on a direct connection', () => {
  it('1,000 small sends in a row go out in a few TLS records, in order', async () => {
    const { a, b, recordsFromA } = await tappedPair();
    await a.ping(); // handshake records are behind us
    const before = recordsFromA();
    const N = 1000;
    const all = collect(b, N);
    const payload = 'x'.repeat(100);
    for (let i = 0; i < N; i++) await a.send({ i, payload });
    expect((await all).map((m) => (m as { i: number }).i)).toEqual(Array.from({ length: N }, (_, i) => i));
    // ~118 KB of frames: one record per frame would be 1,000; full 16 KiB records are 8
    expect(recordsFromA() - before).toBeLessThanOrEqual(12);
    await a.close();
  });

  it('sends of one tick, not awaited, share one record', async () => {
    const { a, b, recordsFromA } = await tappedPair();
    await a.ping();
    const before = recordsFromA();
    const all = collect(b, 10);
    await Promise.all(Array.from({ length: 10 }, (_, i) => a.send(i)));
    expect(await all).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(recordsFromA() - before).toBe(1);
    await a.close();
  });

  it('a ping is answered within the tick: round trips stay short', async () => {
    const { a } = await tappedPair();
    const rtts: number[] = [];
    for (let i = 0; i < 20; i++) rtts.push(await a.ping());
    rtts.sort((x, y) => x - y);
    expect(rtts[10]).toBeLessThan(20);
    await a.close();
  });

  it('close() sends what was queued before the goodbye', async () => {
    const { a, b } = await tappedPair();
    const all = collect(b, 50);
    const sends = Array.from({ length: 50 }, (_, i) => a.send(i));
    const closed = a.close();
    await Promise.all(sends);
    expect(await all).toEqual(Array.from({ length: 50 }, (_, i) => i));
    await closed;
  });
});

describe('coalesced writes under backpressure', () => {
  it('concurrent small sends to a receiver that stopped reading wait, then all arrive in order, later sends behind them', async () => {
    const { a, b } = await tappedPair();
    b.pause();
    const N = 40_000;
    const payload = Buffer.alloc(1000, 3); // 40 MB: more than the socket buffers and the 4 MiB queue limit
    let resolved = 0;
    const sends = Array.from({ length: N }, (_, i) => a.send({ i, payload }).then(() => resolved++));
    await new Promise((r) => setTimeout(r, 300));
    // Backpressure: the sender is held back while the receiver does not read.
    expect(resolved).toBeGreaterThan(0);
    expect(resolved).toBeLessThan(N);
    let next = 0;
    let outOfOrder = 0;
    const EXTRA = 5000;
    const all = new Promise<void>((resolve) =>
      b.on('message', (m) => {
        if ((m as { i: number }).i !== next) outOfOrder++;
        if (++next === N + EXTRA) resolve();
      }),
    );
    b.resume();
    // More sends while the waiting ones are handed over: none may overtake them.
    for (let i = N; i < N + EXTRA; i++) {
      sends.push(a.send({ i, payload }).then(() => resolved++));
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(sends);
    await all;
    expect(outOfOrder).toBe(0);
    await a.close();
  });

  it('an aborted send that waits for room is not sent; the sends after it are', async () => {
    const { a, b } = await tappedPair();
    b.pause();
    const payload = Buffer.alloc(1000, 4);
    let resolved = 0;
    const first = Array.from({ length: 20_000 }, (_, i) => a.send({ i, payload }).then(() => resolved++));
    await new Promise((r) => setTimeout(r, 200));
    expect(resolved).toBeLessThan(20_000); // the sends below wait for room
    const ctrl = new AbortController();
    const aborted = a.send({ i: -1, payload }, { signal: ctrl.signal });
    const last = a.send({ i: 20_000, payload });
    ctrl.abort();
    await expect(aborted).rejects.toMatchObject({ code: 'DPC_ABORTED' });
    const seen: number[] = [];
    const done = new Promise<void>((resolve) =>
      b.on('message', (m) => {
        seen.push((m as { i: number }).i);
        if (seen.length === 20_001) resolve();
      }),
    );
    b.resume();
    await Promise.all([...first, last]);
    await done;
    expect(seen).not.toContain(-1);
    expect(seen.at(-1)).toBe(20_000);
    await a.close();
  });
});
