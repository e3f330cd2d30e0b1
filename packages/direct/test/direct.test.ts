import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { type Connection, Counters, createRecord, type EndpointBody, emptyEndpointBody, generateIdentity } from '@dpc/core';
import { createDirectListener, type DirectListener, ipv4DirectStrategy, ipv6DirectStrategy } from '@dpc/direct';
import { afterEach, describe, expect, it } from 'vitest';

const alice = generateIdentity();
const bob = generateIdentity();
const carol = generateIdentity();
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function listen(identity = bob, host = 'dual', counters?: Counters): Promise<DirectListener> {
  const l = createDirectListener({ identity, host, port: 0, handshakeTimeoutMs: 2000, ...(counters && { counters }) });
  await l.start();
  cleanups.push(() => l.stop());
  return l;
}

/** A TCP server that accepts and then never speaks: a candidate that stalls. */
async function blackhole(): Promise<number> {
  const sockets: Socket[] = [];
  const s: Server = createServer((sock) => sockets.push(sock)).listen(0, '127.0.0.1');
  await once(s, 'listening');
  cleanups.push(() => {
    for (const x of sockets) x.destroy();
    s.close();
  });
  return (s.address() as { port: number }).port;
}

/** A port with nothing listening: connection refused at once. */
async function closedPort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as { port: number };
  s.close();
  await once(s, 'close');
  return port;
}

/** This host's non-loopback IPv4 addresses, as the interfaces report them. */
const hostIPv4 = () =>
  Object.values(networkInterfaces())
    .flat()
    .filter((a) => a?.family === 'IPv4' && !a.internal)
    .map((a) => ({ ip: a?.address as string, prefix: Number(a?.cidr?.split('/')[1] ?? 32) }));

/** A plain TCP connect; rejects with the socket error (ECONNREFUSED when nothing listens there). */
async function tcpConnect(host: string, port: number): Promise<Socket> {
  const s = connect({ host, port });
  await Promise.race([once(s, 'connect'), once(s, 'error').then(([e]) => Promise.reject(e))]);
  return s;
}

const record = (body: Partial<EndpointBody>, who = bob) =>
  createRecord(who, { kind: 'endpoint', body: { ...emptyEndpointBody(), ...body } });
const next = (c: Connection) => once(c, 'message').then(([m]) => m);

describe('@dpc/direct over real TCP on loopback', () => {
  it('tier 1 connects over IPv6 (::1) and both ends are tagged ipv6_direct', async () => {
    const l = await listen();
    const inbound = once(l, 'connection') as Promise<[Connection]>;
    const tier1 = ipv6DirectStrategy({ identity: alice, allowLoopback: true });
    const rec = record({ ipv6: [{ ip: '::1', port: l.port }] });
    expect(tier1.isApplicable(rec, { hubConnected: false })).toEqual({ applicable: true });
    const conn = await tier1.connect(rec, { signal: AbortSignal.timeout(5000) });
    const [server] = await inbound;
    expect(conn.tier).toBe('ipv6_direct');
    expect(server.tier).toBe('ipv6_direct');
    expect(conn.remoteNodeId).toBe(bob.nodeId);
    expect(server.remoteNodeId).toBe(alice.nodeId);
    const got = next(server);
    await conn.send({ text: 'over v6' });
    expect(await got).toEqual({ text: 'over v6' });
    await conn.close();
  });

  it('tier 2 connects over IPv4 (127.0.0.1) to the local address', async () => {
    const l = await listen();
    const inbound = once(l, 'connection') as Promise<[Connection]>;
    const tier2 = ipv4DirectStrategy({ identity: alice, allowLoopback: true });
    const rec = record(l.endpointBody({ allowLoopback: true }));
    const conn = await tier2.connect(rec, { signal: AbortSignal.timeout(5000) });
    const [server] = await inbound;
    expect(conn.tier).toBe('ipv4_direct');
    expect(server.tier).toBe('ipv4_direct');
    const got = next(conn);
    await server.send('pong');
    expect(await got).toBe('pong');
    await conn.close();
  });

  it('tier 2 connects over the external address when no subnet is shared (port forward)', async () => {
    const l = await listen(bob, '127.0.0.1');
    const tier2 = ipv4DirectStrategy({
      identity: alice,
      allowLoopback: true,
      localAddresses: () => ({ ipv4: [{ ip: '192.168.9.9', prefix: 24 }], ipv6: [] }),
    });
    const rec = record({ ipv4_local: [{ ip: '10.0.0.2', port: 8888, prefix: 24 }], ipv4_external: [{ ip: '127.0.0.1', port: l.port }] });
    expect(tier2.candidates(rec).map((c) => c.kind)).toEqual(['external']);
    const conn = await tier2.connect(rec, { signal: AbortSignal.timeout(5000) });
    expect(conn.remoteNodeId).toBe(bob.nodeId);
    await conn.close();
  });

  it('tier 2 dials a LAN address on a shared subnet only behind the same NAT (network state or option)', () => {
    const lan = () => ({ ipv4: [{ ip: '192.168.1.5', prefix: 24 }], ipv6: [] });
    const stranger = record({
      ipv4_local: [{ ip: '192.168.1.20', port: 8888, prefix: 24 }],
      ipv4_external: [{ ip: '203.0.113.50', port: 8888 }],
    });
    const flatmate = record({
      ipv4_local: [{ ip: '192.168.1.20', port: 8888, prefix: 24 }],
      ipv4_external: [{ ip: '198.51.100.7', port: 8888 }],
    });
    const unknown = ipv4DirectStrategy({ identity: alice, localAddresses: lan });
    expect(unknown.candidates(flatmate).map((c) => c.kind)).toEqual(['external']);
    const known = ipv4DirectStrategy({ identity: alice, localAddresses: lan, externalIPv4: () => ['198.51.100.7'] });
    expect(known.candidates(stranger).map((c) => c.kind)).toEqual(['external']);
    expect(known.candidates(flatmate).map((c) => `${c.kind} ${c.ip}`)).toEqual(['local 192.168.1.20', 'external 198.51.100.7']);
    // the network state handed to connect() wins over the option
    const net = { hubConnected: false, localIPv4: lan().ipv4, externalIPv4: ['203.0.113.50'] };
    const viaState = ipv4DirectStrategy({ identity: alice, externalIPv4: () => ['198.51.100.7'] });
    expect(viaState.candidates(stranger, net).map((c) => c.kind)).toEqual(['local', 'external']);
    expect(viaState.candidates(flatmate, net).map((c) => c.kind)).toEqual(['external']);
  });

  it('listen_host 127.0.0.1 binds loopback only and announces no address it does not listen on', async () => {
    const l = await listen(bob, '127.0.0.1');
    expect(l.addresses()).toEqual([`127.0.0.1:${l.port}`]);
    expect(l.bound()).toEqual([{ address: '127.0.0.1', family: 'IPv4', ipv6Only: false }]);
    const addresses = { ipv4: [{ ip: '127.0.0.1', prefix: 8 }, ...hostIPv4()], ipv6: ['::1', '2001:db8::9'] };
    expect(l.endpointBody({ addresses })).toEqual({ ipv6: [], ipv4_local: [] });
    expect(l.endpointBody({ addresses, allowLoopback: true })).toEqual({
      ipv6: [],
      ipv4_local: [{ ip: '127.0.0.1', port: l.port, prefix: 8 }],
    });
    expect(l.acceptsExternal('198.51.100.7')).toBe(false);
    // Nothing answers on this host's other addresses, on either family.
    for (const a of hostIPv4()) await expect(tcpConnect(a.ip, l.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await expect(tcpConnect('::1', l.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    (await tcpConnect('127.0.0.1', l.port)).destroy();
  });

  it('an IPv4-only bind announces no IPv6 address; dual announces both; ::1 only ::1', async () => {
    const addresses = { ipv4: [{ ip: '127.0.0.1', prefix: 8 }, ...hostIPv4()], ipv6: ['::1', '2001:db8::9'] };
    const v4 = await listen(bob, '0.0.0.0');
    expect(v4.endpointBody({ addresses }).ipv6).toEqual([]);
    expect(v4.endpointBody({ addresses }).ipv4_local).toEqual(hostIPv4().map((a) => ({ ...a, port: v4.port })));
    expect(v4.acceptsExternal('198.51.100.7')).toBe(true);
    await expect(tcpConnect('::1', v4.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    const dual = await listen(bob, 'dual');
    expect(dual.endpointBody({ addresses }).ipv6).toEqual([{ ip: '2001:db8::9', port: dual.port }]);
    const v6 = await listen(bob, '::1');
    expect(v6.endpointBody({ addresses, allowLoopback: true })).toEqual({ ipv6: [{ ip: '::1', port: v6.port }], ipv4_local: [] });
    await expect(tcpConnect('127.0.0.1', v6.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('a tier that does not apply says so without waiting', async () => {
    const tier1 = ipv6DirectStrategy({ identity: alice, timeoutMs: 60_000 });
    const tier2 = ipv4DirectStrategy({ identity: alice, timeoutMs: 60_000 });
    // loopback is refused without the explicit option, and a private address on another subnet is not dialed
    const rec = record({
      ipv6: [{ ip: '::1', port: 1 }],
      ipv4_local: [
        { ip: '127.0.0.1', port: 1, prefix: 8 },
        { ip: '10.99.0.2', port: 1, prefix: 24 },
      ],
    });
    expect(tier1.isApplicable(rec, { hubConnected: false })).toMatchObject({
      applicable: false,
      reason: expect.stringContaining('global IPv6'),
    });
    expect(tier2.isApplicable(rec, { hubConnected: false, localIPv4: [{ ip: '192.168.1.2', prefix: 24 }] })).toMatchObject({
      applicable: false,
    });
    const t0 = Date.now();
    await expect(tier1.connect(rec, { signal: AbortSignal.timeout(60_000) })).rejects.toMatchObject({ code: 'DPC_TIER_NOT_APPLICABLE' });
    expect(Date.now() - t0).toBeLessThan(100);
    // and the own side: a peer with global IPv6 but this node has none
    const v6 = record({ ipv6: [{ ip: '2001:db8::1', port: 1 }] });
    expect(tier1.isApplicable(v6, { hubConnected: false, localIPv6: ['fe80::1'] })).toMatchObject({
      applicable: false,
      reason: expect.stringContaining('this node'),
    });
  });

  it('candidates are staggered: a stalled first candidate does not delay the second by its timeout', async () => {
    const l = await listen(bob, '127.0.0.1');
    const stall = await blackhole();
    const tier2 = ipv4DirectStrategy({ identity: alice, allowLoopback: true, staggerMs: 100, timeoutMs: 20_000 });
    const rec = record({ ipv4_local: [{ ip: '127.0.0.1', port: stall, prefix: 8 }], ipv4_external: [{ ip: '127.0.0.1', port: l.port }] });
    const t0 = Date.now();
    const conn = await tier2.connect(rec, { signal: AbortSignal.timeout(20_000) });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(conn.remoteNodeId).toBe(bob.nodeId);
    await conn.close();
  });

  it('a refused candidate moves to the next at once; all refused is a DialError naming each', async () => {
    const dead1 = await closedPort();
    const dead2 = await closedPort();
    const tier2 = ipv4DirectStrategy({ identity: alice, allowLoopback: true, staggerMs: 10_000 });
    const rec = record({ ipv4_local: [{ ip: '127.0.0.1', port: dead1, prefix: 8 }], ipv4_external: [{ ip: '127.0.0.1', port: dead2 }] });
    const t0 = Date.now();
    const err = await tier2.connect(rec, { signal: AbortSignal.timeout(20_000) }).catch((e: unknown) => e);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(err).toMatchObject({ code: 'DPC_DIAL_FAILED' });
    expect((err as Error).message).toContain(`127.0.0.1:${dead1}`);
    expect((err as Error).message).toContain('ECONNREFUSED');
  });

  it('times out within the tier deadline with a typed error', async () => {
    const stall = await blackhole();
    const tier2 = ipv4DirectStrategy({ identity: alice, allowLoopback: true, timeoutMs: 300 });
    const t0 = Date.now();
    await expect(
      tier2.connect(record({ ipv4_external: [{ ip: '127.0.0.1', port: stall }] }), { signal: AbortSignal.timeout(20_000) }),
    ).rejects.toMatchObject({
      code: 'DPC_TIMEOUT',
    });
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('cancellation by AbortSignal stops the attempt', async () => {
    const stall = await blackhole();
    const tier2 = ipv4DirectStrategy({ identity: alice, allowLoopback: true, timeoutMs: 20_000 });
    const ctrl = new AbortController();
    const p = tier2.connect(record({ ipv4_external: [{ ip: '127.0.0.1', port: stall }] }), { signal: ctrl.signal });
    setTimeout(() => ctrl.abort(), 50);
    await expect(p).rejects.toMatchObject({ code: 'DPC_ABORTED' });
  });

  it('an impostor at the peer’s address is rejected (identity bound to the record)', async () => {
    const l = await listen(carol, '127.0.0.1');
    const tier2 = ipv4DirectStrategy({ identity: alice, allowLoopback: true });
    const err = await tier2
      .connect(record({ ipv4_external: [{ ip: '127.0.0.1', port: l.port }] }), { signal: AbortSignal.timeout(5000) })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'DPC_DIAL_FAILED', message: expect.stringContaining('DPC_PEER_IDENTITY_MISMATCH') });
  });

  it('garbage and silent inbound sockets are counted and never hurt the listener', async () => {
    const counters = new Counters();
    const l = createDirectListener({ identity: bob, host: '127.0.0.1', port: 0, handshakeTimeoutMs: 300, counters });
    await l.start();
    cleanups.push(() => l.stop());
    const { connect } = await import('node:net');
    for (let i = 0; i < 5; i++) {
      const s = connect(l.port, '127.0.0.1');
      s.on('error', () => {});
      s.on('connect', () => s.end(Buffer.from('GET / HTTP/1.1\r\n\r\n')));
    }
    const silent = connect(l.port, '127.0.0.1');
    silent.on('error', () => {});
    await new Promise((r) => setTimeout(r, 800));
    expect(counters.get('inbound_handshake_failed')).toBe(6);
    silent.destroy();
    const tier2 = ipv4DirectStrategy({ identity: alice, allowLoopback: true });
    const conn = await tier2.connect(record({ ipv4_external: [{ ip: '127.0.0.1', port: l.port }] }), { signal: AbortSignal.timeout(5000) });
    expect(conn.remoteNodeId).toBe(bob.nodeId);
    await conn.close();
  });

  it('one source cannot fill the pending handshakes: 127.0.0.2 stalls 20, 127.0.0.3 still gets in, and so does a real peer', async () => {
    const counters = new Counters();
    const l = createDirectListener({
      identity: bob,
      host: '0.0.0.0',
      port: 0,
      handshakeTimeoutMs: 5000,
      maxPendingHandshakes: 20,
      counters,
    });
    await l.start();
    cleanups.push(() => l.stop());
    // Stalled handshakes (silent TCP connections) from one loopback address: Linux routes all of
    // 127/8 to lo, so a client can take 127.0.0.2 as its local address.
    const stall = async (from: string, n: number) => {
      const socks: Socket[] = [];
      for (let i = 0; i < n; i++) {
        const s = connect({ host: '127.0.0.1', port: l.port, localAddress: from });
        s.on('error', () => {});
        cleanups.push(() => void s.destroy());
        await once(s, 'connect');
        socks.push(s);
      }
      return socks;
    };
    await stall('127.0.0.2', 20);
    await expect.poll(() => counters.get('inbound_refused_source_pending')).toBe(12);
    expect(l.stats()).toMatchObject({ pending_handshakes: 8, pending_sources: 1 });
    await stall('127.0.0.3', 3);
    await expect.poll(() => l.stats().pending_handshakes).toBe(11);
    expect(counters.get('inbound_refused_overload')).toBe(0);
    const tier2 = ipv4DirectStrategy({ identity: alice, allowLoopback: true });
    const conn = await tier2.connect(record({ ipv4_external: [{ ip: '127.0.0.1', port: l.port }] }), { signal: AbortSignal.timeout(5000) });
    expect(conn.remoteNodeId).toBe(bob.nodeId);
    await conn.close();
  });

  it('with allowLoopback each loopback ip:port is its own source (a test network on one host); the total cap still holds', async () => {
    const counters = new Counters();
    const l = createDirectListener({
      identity: bob,
      host: '127.0.0.1',
      port: 0,
      handshakeTimeoutMs: 5000,
      maxPendingHandshakes: 12,
      allowLoopback: true,
      counters,
    });
    await l.start();
    cleanups.push(() => l.stop());
    for (let i = 0; i < 14; i++) {
      const s = connect({ host: '127.0.0.1', port: l.port });
      s.on('error', () => {});
      cleanups.push(() => void s.destroy());
      await once(s, 'connect');
    }
    await expect.poll(() => counters.get('inbound_refused_overload')).toBe(2);
    expect(counters.get('inbound_refused_source_pending')).toBe(0);
    expect(l.stats().pending_handshakes).toBe(12);
  });

  it('dual listens on IPv4 and IPv6 with one port; stop closes open connections', async () => {
    const l = await listen();
    expect(l.addresses()).toEqual([`0.0.0.0:${l.port}`, `[::]:${l.port}`]);
    const tier2 = ipv4DirectStrategy({ identity: alice, allowLoopback: true });
    const conn = await tier2.connect(record({ ipv4_external: [{ ip: '127.0.0.1', port: l.port }] }), { signal: AbortSignal.timeout(5000) });
    const closed = new Promise((r) => conn.on('close', r));
    await l.stop();
    await closed;
    expect(conn.closed).toBe(true);
  });
});
