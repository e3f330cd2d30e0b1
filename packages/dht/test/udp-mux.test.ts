import { createSocket, type Socket } from 'node:dgram';
import { generateIdentity } from '@dpc/core';
import { createDht, type Dht, type DhtPeer, isDhtFirstByte } from '@dpc/dht';
import { TESTNET_DHT_DEFAULTS } from '@dpc/dht/testnet';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeDatagram, REQUEST_TYPES } from '../src/messages.js';

const started: Dht[] = [];
const sockets: Socket[] = [];

async function node(extra: Parameters<typeof createDht>[0] extends infer O ? Partial<O> : never = {}): Promise<Dht> {
  const d = createDht({ ...TESTNET_DHT_DEFAULTS, ...extra, identity: generateIdentity() });
  started.push(d);
  await d.start();
  return d;
}

/** A plain UDP socket on loopback that records what it receives. */
async function peer(type: 'udp4' | 'udp6' = 'udp4') {
  const socket = createSocket(type);
  sockets.push(socket);
  const got: Array<{ msg: Buffer; from: DhtPeer }> = [];
  const waiters: Array<() => void> = [];
  socket.on('message', (msg, r) => {
    got.push({ msg, from: { host: r.address, port: r.port } });
    for (const w of waiters.splice(0)) w();
  });
  await new Promise<void>((r) => socket.bind(0, type === 'udp4' ? '127.0.0.1' : '::1', r));
  return {
    got,
    port: socket.address().port,
    send: (msg: Uint8Array, port: number, host = type === 'udp4' ? '127.0.0.1' : '::1') =>
      new Promise<void>((res, rej) => socket.send(msg, port, host, (e) => (e ? rej(e) : res()))),
    next: (n = 1) => until(() => got.length >= n, waiters),
  };
}

function until(ok: () => boolean, waiters: Array<() => void>, ms = 2000): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timed out')), ms);
    const check = () => {
      if (ok()) {
        clearTimeout(t);
        resolve();
      } else waiters.push(check);
    };
    check();
  });
}

async function eventually(ok: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const portOf = (d: Dht) => d.address?.port as number;
const loop = (d: Dht): DhtPeer => ({ host: '127.0.0.1', port: portOf(d) });

afterEach(async () => {
  await Promise.all(started.splice(0).map((d) => d.stop()));
  for (const s of sockets.splice(0)) s.close();
});

describe('the DHT UDP socket shared with other protocols', () => {
  it('every DHT datagram starts with a MessagePack map header, the bytes the demultiplexer reserves for the DHT', () => {
    const x = Buffer.alloc(4);
    const id = Buffer.alloc(16);
    const k = Buffer.alloc(16);
    const tk = Buffer.alloc(8);
    const samples = [
      { t: 'ping', x, id },
      { t: 'find_node', x, id, k },
      { t: 'find_value', x, id, k, o: 3 },
      { t: 'store', x, id, k, r: Buffer.alloc(900), tk },
      { t: 'discover', x, id },
      { t: 'register', x, id, pk: Buffer.alloc(32), ts: Date.now(), sig: Buffer.alloc(64), tk },
      { t: 'signal', x, id, to: k, h: 1, e: Buffer.alloc(700) },
      { t: 'pong', x, id },
      { t: 'nodes', x, id, n: [{ id: k, host: '2001:db8::1', port: 1 }], tk, r: [Buffer.alloc(10)], nx: 4 },
      { t: 'ok', x, id, tk },
      { t: 'addr', x, id, ip: '192.0.2.1', port: 9 },
      { t: 'err', x, id, c: 'replay' },
    ];
    expect(new Set(samples.map((m) => m.t))).toEqual(new Set([...REQUEST_TYPES, 'pong', 'nodes', 'ok', 'addr', 'err']));
    for (const m of samples) {
      const first = encodeDatagram(m as Parameters<typeof encodeDatagram>[0])[0] as number;
      expect(isDhtFirstByte(first), `${m.t} starts with 0x${first.toString(16)}`).toBe(true);
    }
    for (let b = 0; b < 256; b++) expect(isDhtFirstByte(b)).toBe((b >= 0x80 && b <= 0x8f) || b === 0xde || b === 0xdf);
  });

  it('delivers a registered protocol its datagrams, which replies from the DHT port, while the DHT keeps working', async () => {
    const a = await node();
    const b = await node({ seeds: [loop(a)] });
    const seen: Array<{ msg: string; from: DhtPeer }> = [];
    const punch = a.registerProtocol({
      name: 'punch',
      prefix: 0x01,
      onMessage: (msg, from) => {
        seen.push({ msg: msg.toString('hex'), from });
        void punch.send(Buffer.from([0x01, 0xaa, ...msg.subarray(1)]), from);
      },
    });
    const p = await peer();
    await p.send(Buffer.from([0x01, 0x42]), portOf(a));
    await p.next();
    expect(seen).toEqual([{ msg: '0142', from: { host: '127.0.0.1', port: p.port } }]);
    // The answer comes from the DHT's own port: the same socket, the same NAT mapping.
    expect(p.got[0]).toEqual({ msg: Buffer.from([0x01, 0xaa, 0x42]), from: { host: '127.0.0.1', port: portOf(a) } });
    // Two nodes speak the protocol to each other from their DHT sockets, and the DHT still answers.
    const atB: DhtPeer[] = [];
    b.registerProtocol({ name: 'punch', prefix: 0x01, onMessage: (_m, from) => void atB.push(from) });
    await a.sendRaw(Buffer.from([0x01, 0x07]), '127.0.0.1', portOf(b));
    await eventually(() => atB.length === 1);
    expect(atB[0]).toEqual(loop(a));
    expect((await b.ping(loop(a))).nodeId).toBe(a.nodeId);
    expect(b.contacts().map((c) => c.nodeId)).toContain(a.nodeId);
    expect(a.stats().counters).toMatchObject({ 'udp.in.punch': 1, 'udp.out.punch': 1, 'udp.out.raw': 1 });
    expect(a.stats().udp.protocols).toEqual([{ name: 'punch', prefix: '01' }]);
  });

  it('routes magic prefixes that share a first byte to the right protocol, and refuses DHT bytes and overlaps', async () => {
    const a = await node();
    const got: string[] = [];
    a.registerProtocol({ name: 'udx', prefix: Buffer.from('\x02UDX'), onMessage: () => void got.push('udx') });
    a.registerProtocol({ name: 'probe', prefix: Buffer.from('\x02PRB'), onMessage: () => void got.push('probe') });
    for (const bad of [0x80, 0x85, 0x8f, 0xde, 0xdf]) {
      expect(() => a.registerProtocol({ name: 'x', prefix: bad, onMessage: () => undefined })).toThrow(
        expect.objectContaining({ code: 'DPC_DHT_PROTOCOL_PREFIX' }),
      );
    }
    for (const prefix of [0x02, Buffer.from('\x02UDXX'), Buffer.from([]), Buffer.alloc(9, 1), 256]) {
      expect(() => a.registerProtocol({ name: 'x', prefix, onMessage: () => undefined })).toThrow(
        expect.objectContaining({ code: 'DPC_DHT_PROTOCOL_PREFIX' }),
      );
    }
    await expect(a.sendRaw(Buffer.from([0x81, 0]), '127.0.0.1', 9)).rejects.toMatchObject({ code: 'DPC_DHT_PROTOCOL_PREFIX' });
    const h = a.registerProtocol({ name: 'other', prefix: 0x09, onMessage: () => undefined });
    await expect(h.send(Buffer.from([0xde, 0, 0]), { host: '127.0.0.1', port: 9 })).rejects.toMatchObject({
      code: 'DPC_DHT_PROTOCOL_PREFIX',
    });
    await expect(h.send(Buffer.alloc(0), { host: '127.0.0.1', port: 9 })).rejects.toMatchObject({ code: 'DPC_DHT_PROTOCOL_PREFIX' });
    h.close();
    const p = await peer();
    await p.send(Buffer.from('\x02PRB1'), portOf(a));
    await p.send(Buffer.from('\x02UDX1'), portOf(a));
    await p.send(Buffer.from('\x02ZZZ1'), portOf(a));
    await eventually(() => got.length === 2 && a.stats().rejects.unmatched === 1);
    expect(got).toEqual(['probe', 'udx']);
  });

  it('counts and drops a datagram of no registered protocol; the DHT goes on answering', async () => {
    const a = await node();
    const b = await node();
    const p = await peer();
    for (let i = 0; i < 20; i++) await p.send(Buffer.from([0x05, i]), portOf(a));
    await p.send(Buffer.alloc(0), portOf(a));
    await eventually(() => a.stats().rejects.unmatched === 21);
    expect(p.got).toHaveLength(0);
    expect((await b.ping(loop(a))).nodeId).toBe(a.nodeId);
  });

  it('counts a throwing or rejecting handler under its name, and neither the DHT nor the protocol stops', async () => {
    const a = await node();
    const b = await node();
    let calls = 0;
    a.registerProtocol({
      name: 'boom',
      prefix: 0x03,
      onMessage: (msg) => {
        calls++;
        if (msg[1] === 1) throw new Error('sync');
        if (msg[1] === 2) return Promise.reject(new Error('async'));
      },
    });
    const p = await peer();
    for (const k of [1, 2, 1, 2, 0]) await p.send(Buffer.from([0x03, k]), portOf(a));
    await eventually(() => calls === 5 && a.stats().counters['udp.handler_errors.boom'] === 4);
    expect((await b.ping(loop(a))).nodeId).toBe(a.nodeId);
    await p.send(Buffer.from([0x03, 0]), portOf(a));
    await eventually(() => calls === 6);
  });

  it('unregisters with close(): the prefix is unmatched again and free to register anew', async () => {
    const a = await node();
    let first = 0;
    let second = 0;
    const h = a.registerProtocol({ name: 'once', prefix: 0x04, onMessage: () => void first++ });
    const p = await peer();
    await p.send(Buffer.from([0x04]), portOf(a));
    await eventually(() => first === 1);
    h.close();
    h.close();
    await expect(h.send(Buffer.from([0x04]), { host: '127.0.0.1', port: p.port })).rejects.toMatchObject({ code: 'DPC_DHT_NOT_RUNNING' });
    await p.send(Buffer.from([0x04]), portOf(a));
    await eventually(() => a.stats().rejects.unmatched === 1);
    expect(a.stats().udp.protocols).toEqual([]);
    a.registerProtocol({ name: 'again', prefix: 0x04, onMessage: () => void second++ });
    await p.send(Buffer.from([0x04]), portOf(a));
    await eventually(() => second === 1);
    expect(first).toBe(1);
  });

  it('stop() closes the socket for every protocol: sends reject, nothing registers, the port is free', async () => {
    const a = await node();
    const h = a.registerProtocol({ name: 'p', prefix: 0x06, onMessage: () => undefined });
    const port = portOf(a);
    await a.stop();
    await expect(h.send(Buffer.from([0x06]), { host: '127.0.0.1', port: 9 })).rejects.toMatchObject({ code: 'DPC_DHT_NOT_RUNNING' });
    await expect(a.sendRaw(Buffer.from([0x06]), '127.0.0.1', 9)).rejects.toMatchObject({ code: 'DPC_DHT_NOT_RUNNING' });
    expect(() => a.registerProtocol({ name: 'q', prefix: 0x07, onMessage: () => undefined })).toThrow(
      expect.objectContaining({ code: 'DPC_DHT_NOT_RUNNING' }),
    );
    const s = createSocket('udp4');
    sockets.push(s);
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(port, '127.0.0.1', () => resolve());
    });
  });
});
