import { createSocket, type Socket } from 'node:dgram';
import { defaultConfig, generateIdentity } from '@dpc/core';
import { createDht, type Dht, type DhtOptions, type DhtPeer, dhtOptionsFromConfig } from '@dpc/dht';
import { createTestnet, TESTNET_DHT_DEFAULTS } from '@dpc/dht/testnet';
import { afterEach, describe, expect, it } from 'vitest';

const started: Dht[] = [];
const sockets: Socket[] = [];

async function node(extra: Partial<DhtOptions> = {}): Promise<Dht> {
  const d = createDht({ ...TESTNET_DHT_DEFAULTS, ...extra, identity: generateIdentity() });
  started.push(d);
  await d.start();
  return d;
}

const portOf = (d: Dht) => d.address?.port as number;

afterEach(async () => {
  await Promise.all(started.splice(0).map((d) => d.stop()));
  for (const s of sockets.splice(0)) s.close();
});

async function rawSocket(type: 'udp4' | 'udp6'): Promise<{ socket: Socket; got: Array<{ msg: Buffer; from: DhtPeer }> }> {
  const socket = createSocket(type);
  sockets.push(socket);
  const got: Array<{ msg: Buffer; from: DhtPeer }> = [];
  socket.on('message', (msg, r) => got.push({ msg, from: { host: r.address, port: r.port } }));
  await new Promise<void>((r) => socket.bind(0, type === 'udp4' ? '127.0.0.1' : '::1', r));
  return { socket, got };
}

async function eventually(ok: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('dual-stack and bind addresses', () => {
  it('by default listens on IPv6 and IPv4 with one socket and one port, for the DHT and the protocols sharing it', async () => {
    const dual = await node({ host: undefined });
    expect(dual.address?.host).toBe('::');
    expect(dual.stats().udp).toMatchObject({ ipv4: true, ipv6: true });
    const v4 = await node({ host: '127.0.0.1' });
    const v6 = await node({ host: '::1' });
    // Both families reach the node on the same port; IPv4 senders are seen as plain IPv4.
    expect((await v4.ping({ host: '127.0.0.1', port: portOf(dual) })).nodeId).toBe(dual.nodeId);
    expect((await v6.ping({ host: '::1', port: portOf(dual) })).nodeId).toBe(dual.nodeId);
    // And the dual node reaches both families from that socket.
    expect((await dual.ping({ host: '127.0.0.1', port: portOf(v4) })).nodeId).toBe(v4.nodeId);
    expect((await dual.ping({ host: '::1', port: portOf(v6) })).nodeId).toBe(v6.nodeId);
    expect(
      dual
        .contacts()
        .map((c) => c.host)
        .sort(),
    ).toEqual(['127.0.0.1', '::1']);
    const froms: DhtPeer[] = [];
    const echo = dual.registerProtocol({
      name: 'echo',
      prefix: 0x01,
      onMessage: (msg, from) => {
        froms.push(from);
        void echo.send(msg, from);
      },
    });
    const a = await rawSocket('udp4');
    const b = await rawSocket('udp6');
    a.socket.send(Buffer.from([1, 4]), portOf(dual), '127.0.0.1');
    b.socket.send(Buffer.from([1, 6]), portOf(dual), '::1');
    await eventually(() => a.got.length === 1 && b.got.length === 1);
    expect(froms).toContainEqual({ host: '127.0.0.1', port: a.socket.address().port });
    expect(froms).toContainEqual({ host: '::1', port: b.socket.address().port });
    expect(a.got[0]?.from).toEqual({ host: '127.0.0.1', port: portOf(dual) });
    expect(b.got[0]?.from).toEqual({ host: '::1', port: portOf(dual) });
  });

  it('host = 127.0.0.1 binds loopback IPv4 only: nothing arrives over IPv6, and an IPv6 send fails at once', async () => {
    const d = await node(
      dhtOptionsFromConfig({ ...defaultConfig(), dht: { ...defaultConfig().dht, host: '127.0.0.1', port: 0 } }, generateIdentity()),
    );
    expect(d.address).toEqual({ host: '127.0.0.1', port: portOf(d) });
    expect(d.stats().udp).toMatchObject({ ipv4: true, ipv6: false });
    const got: DhtPeer[] = [];
    d.registerProtocol({ name: 'p', prefix: 0x01, onMessage: (_m, from) => void got.push(from) });
    const b = await rawSocket('udp6');
    b.socket.send(Buffer.from([1]), portOf(d), '::1');
    const a = await rawSocket('udp4');
    a.socket.send(Buffer.from([1]), portOf(d), '127.0.0.1');
    await eventually(() => got.length === 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(got).toEqual([{ host: '127.0.0.1', port: a.socket.address().port }]);
    await expect(d.ping({ host: '::1', port: 9 })).rejects.toMatchObject({ code: 'DPC_DHT_ADDRESS_FAMILY' });
    await expect(d.sendRaw(Buffer.from([1]), '::1', 9)).rejects.toMatchObject({ code: 'DPC_DHT_ADDRESS_FAMILY' });
  });

  it('a port already in use fails start() instead of falling back to IPv4 only', async () => {
    const first = await node({ host: undefined });
    const second = createDht({ ...TESTNET_DHT_DEFAULTS, host: undefined, port: portOf(first), identity: generateIdentity() });
    await expect(second.start()).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await second.stop();
    expect((await (await node({ host: '127.0.0.1' })).ping({ host: '127.0.0.1', port: portOf(first) })).nodeId).toBe(first.nodeId);
  });

  it('dhtOptionsFromConfig defaults to dual-stack', () => {
    expect(dhtOptionsFromConfig(defaultConfig(), generateIdentity()).host).toBe('dual');
  });

  it('a network on ::1 announces, finds records and signals over IPv6', async () => {
    const net = await createTestnet(12, { dht: { host: '::1' } });
    try {
      const [alice, bob] = net.nodes as [Dht, Dht];
      const signals: unknown[] = [];
      bob.on('signal', (e) => signals.push(e.payload));
      const res = await bob.announceFull();
      expect(res.storedAt).toBeGreaterThanOrEqual(5);
      expect(res.signalVia.every((v) => v.ip === '::1')).toBe(true);
      const rec = await alice.findPeer(bob.nodeId);
      expect(rec.nodeId).toBe(bob.nodeId);
      await alice.signal(bob.nodeId, { hi: 6 });
      expect(signals).toEqual([{ hi: 6 }]);
      expect(alice.contacts().every((c) => c.host === '::1')).toBe(true);
    } finally {
      await net.destroy();
    }
  });
});
