import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { encodeFrame, FrameDecoder } from '@dpc/core';
import { Negentropy, NegentropyStorage, negentropySync } from '@dpc/gossip';
import { afterEach, describe, expect, it } from 'vitest';
import { hex, hexSet, idOf } from './negentropy-helpers.js';

const items = (from: number, to: number, ts = (i: number) => 1_700_000_000 + i * 11) =>
  Array.from({ length: to - from }, (_, k) => ({ timestamp: ts(from + k), id: idOf(from + k) }));

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

describe('negentropySync drives a whole reconciliation', () => {
  it('over a real loopback TCP connection with dpc frames', async () => {
    const serverSet = NegentropyStorage.from([...items(0, 20_000), ...items(50_000, 50_700)]);
    const clientSet = NegentropyStorage.from([...items(0, 20_000), ...items(60_000, 60_300)]);
    const sockets = new Set<Socket>();
    const server = createServer((sock) => {
      sockets.add(sock);
      const responder = new Negentropy(serverSet);
      const frames = sock.pipe(new FrameDecoder<Uint8Array>());
      frames.on('data', (msg: Uint8Array) => sock.write(encodeFrame(responder.respond(msg))));
      frames.on('error', () => sock.destroy());
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => {
      for (const s of sockets) s.destroy();
      server.close();
    });
    const { port } = server.address() as { port: number };
    const sock = connect(port, '127.0.0.1');
    cleanups.push(() => sock.destroy());
    await once(sock, 'connect');
    const replies = sock.pipe(new FrameDecoder<Uint8Array>())[Symbol.asyncIterator]();
    const r = await negentropySync(
      clientSet,
      async (msg) => {
        sock.write(encodeFrame(msg));
        const next = await replies.next();
        if (next.done) throw new Error('connection closed');
        return next.value as Uint8Array;
      },
      { timeoutMs: 20_000 },
    );
    expect(hexSet(r.have)).toEqual(hexSet(items(60_000, 60_300).map((x) => x.id)));
    expect(hexSet(r.need)).toEqual(hexSet(items(50_000, 50_700).map((x) => x.id)));
    expect(r.rounds).toBeLessThanOrEqual(4);
    expect(r.bytesSent).toBeGreaterThan(0);
    expect(r.bytesReceived).toBeGreaterThan(32 * 700);
  });

  it('stops a responder that never lets the exchange end (DPC_NEGENTROPY_ROUNDS)', async () => {
    const mine = NegentropyStorage.from(items(0, 1000));
    let calls = 0;
    const endless = async () => {
      calls++;
      // "Everything differs": one fingerprint over the whole set that never matches.
      return Uint8Array.from([0x61, 0x00, 0x00, 0x01, ...new Uint8Array(16).fill(calls & 0xff)]);
    };
    await expect(negentropySync(mine, endless, { maxRounds: 10 })).rejects.toMatchObject({ code: 'DPC_NEGENTROPY_ROUNDS' });
    expect(calls).toBe(10);
  });

  it('times out when the peer never answers, and honours an AbortSignal', async () => {
    const mine = NegentropyStorage.from(items(0, 100));
    const silent = (_msg: Uint8Array, signal: AbortSignal) =>
      new Promise<Uint8Array>((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
    await expect(negentropySync(mine, silent, { timeoutMs: 100 })).rejects.toMatchObject({ code: 'DPC_TIMEOUT' });
    const ctrl = new AbortController();
    const p = negentropySync(mine, silent, { signal: ctrl.signal });
    ctrl.abort();
    await expect(p).rejects.toMatchObject({ code: 'DPC_ABORTED' });
    await expect(negentropySync(mine, silent, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'DPC_ABORTED' });
  });

  it('reports an id only once even when a peer repeats it', async () => {
    const mine = NegentropyStorage.from(items(0, 1000, (i) => 100 + i));
    const x = idOf(-7);
    const idList = [0x06, 0x00, 0x02, 0x01, ...x]; // bound (5, ""), IdList of [x]
    let calls = 0;
    const repeating = async () => {
      calls++;
      // First reply: x below 5, and "the rest differs"; second reply: x again, rest implicitly equal.
      if (calls === 1) return Uint8Array.from([0x61, ...idList, 0x00, 0x00, 0x01, ...new Uint8Array(16)]);
      return Uint8Array.from([0x61, ...idList]);
    };
    const r = await negentropySync(mine, repeating);
    expect(r.need.map(hex)).toEqual([hex(x)]);
    expect(r.have).toEqual([]);
    expect(r.rounds).toBe(2);
  });
});
