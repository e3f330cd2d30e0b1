import { once } from 'node:events';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { Duplex } from 'node:stream';
import { type Connection, Counters, generateIdentity, type Identity, secureAccept, secureConnect } from '@dpc/core';
import { afterEach, describe, expect, it } from 'vitest';

const alice = generateIdentity();
const bob = generateIdentity();
const carol = generateIdentity();

/** An in-memory pair of connected Duplex pipes (what a relay or punched stream gives a tier). */
function pipePair(): [Duplex, Duplex] {
  let a!: Duplex;
  let b!: Duplex;
  const mk = (peer: () => Duplex) =>
    new Duplex({
      write(chunk, _enc, cb) {
        peer().push(chunk);
        cb();
      },
      final(cb) {
        peer().push(null);
        cb();
      },
      read() {},
    });
  a = mk(() => b);
  b = mk(() => a);
  return [a, b];
}

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

async function tcpPair(): Promise<[Socket, Socket]> {
  const server = createServer();
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = tcpConnect(port, '127.0.0.1');
  await once(client, 'connect');
  return [client, (await accepted)[0]];
}

function nextMessage(c: Connection): Promise<unknown> {
  return once(c, 'message').then(([m]) => m);
}

describe('secure channel (TLS 1.3 over any Duplex)', () => {
  it('A connects to B over TCP; both see each other’s node id; messages flow both ways', async () => {
    const [cs, ss] = await tcpPair();
    const [ca, cb] = await Promise.all([
      secureConnect(cs, { identity: alice, tier: 'ipv4_direct', expectedNodeId: bob.nodeId }),
      secureAccept(ss, { identity: bob, tier: 'ipv4_direct' }),
    ]);
    expect(ca.remoteNodeId).toBe(bob.nodeId);
    expect(cb.remoteNodeId).toBe(alice.nodeId);
    expect(ca.remotePublicKey.equals(bob.publicKey)).toBe(true);
    expect(ca.tier).toBe('ipv4_direct');
    expect(ca.rttMs).toBeGreaterThan(0);
    const got = nextMessage(cb);
    await ca.send({ text: 'hi bob', n: 1 });
    expect(await got).toEqual({ text: 'hi bob', n: 1 });
    const back = nextMessage(ca);
    await cb.send('hi alice');
    expect(await back).toBe('hi alice');
    expect(await cb.ping()).toBeGreaterThan(0);
    const closed = once(cb, 'close');
    await ca.close();
    await closed;
    expect(ca.closed && cb.closed).toBe(true);
    await expect(ca.send('late')).rejects.toMatchObject({ code: 'DPC_CONNECTION_CLOSED' });
  });

  it('runs over an in-memory Duplex (relay pipe, UDP stream) and the pipe carries only ciphertext', async () => {
    const [a, b] = pipePair();
    const seen: Buffer[] = [];
    a.on('data', (d: Buffer) => seen.push(Buffer.from(d)));
    b.on('data', (d: Buffer) => seen.push(Buffer.from(d)));
    const [ca, cb] = await Promise.all([
      secureConnect(a, { identity: alice, tier: 'volunteer_relay', expectedNodeId: bob.nodeId }),
      secureAccept(b, { identity: bob, tier: 'volunteer_relay', expectedNodeId: alice.nodeId }),
    ]);
    const got = nextMessage(cb);
    await ca.send({ secret: 'attack at dawn' });
    expect(await got).toEqual({ secret: 'attack at dawn' });
    expect(Buffer.concat(seen).includes('attack at dawn')).toBe(false);
    await ca.close();
  });

  it('C pretending to be B is rejected by A (the dialer)', async () => {
    const [cs, ss] = await tcpPair();
    const [client, server] = await Promise.allSettled([
      secureConnect(cs, { identity: alice, tier: 'ipv4_direct', expectedNodeId: bob.nodeId }),
      secureAccept(ss, { identity: carol, tier: 'ipv4_direct' }),
    ]);
    expect(client).toMatchObject({
      status: 'rejected',
      reason: { code: 'DPC_PEER_IDENTITY_MISMATCH', expected: bob.nodeId, actual: carol.nodeId },
    });
    // The impostor's side fails too: it never gets a usable connection.
    expect(server.status).toBe('rejected');
  });

  it('C pretending to be A is rejected by B (the acceptor), and C learns it was refused', async () => {
    const [cs, ss] = await tcpPair();
    const [client, server] = await Promise.allSettled([
      secureConnect(cs, { identity: carol, tier: 'ipv4_direct', expectedNodeId: bob.nodeId }),
      secureAccept(ss, { identity: bob, tier: 'ipv4_direct', expectedNodeId: alice.nodeId }),
    ]);
    expect(server).toMatchObject({ status: 'rejected', reason: { code: 'DPC_PEER_IDENTITY_MISMATCH', actual: carol.nodeId } });
    expect(client).toMatchObject({ status: 'rejected', reason: { code: 'DPC_PEER_REJECTED' } });
  });

  it('a peer that offers only TLS 1.2 is refused with a downgrade error', async () => {
    const [cs, ss] = await tcpPair();
    const counters = new Counters();
    const [client, server] = await Promise.allSettled([
      secureConnect(cs, {
        identity: alice,
        tier: 'ipv4_direct',
        expectedNodeId: bob.nodeId,
        tlsVersions: { min: 'TLSv1.2', max: 'TLSv1.2' },
      }),
      secureAccept(ss, { identity: bob, tier: 'ipv4_direct', counters }),
    ]);
    expect(server).toMatchObject({ status: 'rejected', reason: { code: 'DPC_TLS_DOWNGRADE' } });
    expect(client.status).toBe('rejected');
    expect(counters.get('handshake_errors_DPC_TLS_DOWNGRADE')).toBe(1);
  });

  it('a handshake past its timeout fails with HandshakeTimeoutError', async () => {
    const [, b] = pipePair(); // nobody on the other end
    const t0 = Date.now();
    await expect(secureAccept(b, { identity: bob, tier: 'ipv4_direct', handshakeTimeoutMs: 200 })).rejects.toMatchObject({
      code: 'DPC_HANDSHAKE_TIMEOUT',
    });
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('an aborted signal cancels the handshake', async () => {
    const [a] = pipePair();
    const ctrl = new AbortController();
    const p = secureConnect(a, { identity: alice, tier: 'ipv4_direct', expectedNodeId: bob.nodeId, signal: ctrl.signal });
    ctrl.abort();
    await expect(p).rejects.toMatchObject({ code: 'DPC_ABORTED' });
  });

  it('a garbage frame after the handshake ends only that connection, with a typed error, counted', async () => {
    const [cs, ss] = await tcpPair();
    const counters = new Counters();
    const [ca, cb] = await Promise.all([
      secureConnect(cs, { identity: alice, tier: 'ipv4_direct', expectedNodeId: bob.nodeId }),
      secureAccept(ss, { identity: bob, tier: 'ipv4_direct', counters, maxFrameBytes: 1024 }),
    ]);
    const closed = new Promise<Error | undefined>((resolve) => cb.on('close', resolve));
    await ca.send({ big: 'x'.repeat(5000) });
    const err = await closed;
    expect(err).toMatchObject({ code: 'DPC_FRAME_TOO_LARGE' });
    expect(counters.get('frame_errors_DPC_FRAME_TOO_LARGE')).toBe(1);
    await new Promise((resolve) => (ca.closed ? resolve(undefined) : ca.on('close', resolve)));
  });

  it('messages sent before the receiver listens are held, not lost', async () => {
    const [a, b] = pipePair();
    const [ca, cb] = await Promise.all([
      secureConnect(a, { identity: alice, tier: 'ipv4_direct', expectedNodeId: bob.nodeId }),
      secureAccept(b, { identity: bob, tier: 'ipv4_direct' }),
    ]);
    for (let i = 0; i < 10; i++) await ca.send(i);
    await new Promise((r) => setTimeout(r, 50));
    const got: unknown[] = [];
    cb.on('message', (m) => got.push(m));
    await new Promise((r) => setTimeout(r, 50));
    expect(got).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await ca.close();
  });

  it('bulk data over TCP arrives complete and in order (backpressure on send)', async () => {
    const [cs, ss] = await tcpPair();
    const [ca, cb] = await Promise.all([
      secureConnect(cs, { identity: alice, tier: 'ipv4_direct', expectedNodeId: bob.nodeId }),
      secureAccept(ss, { identity: bob, tier: 'ipv4_direct' }),
    ]);
    const N = 2000;
    const chunk = Buffer.alloc(16 * 1024, 7);
    let count = 0;
    const done = new Promise<void>((resolve) =>
      cb.on('message', (m) => {
        expect((m as { i: number }).i).toBe(count);
        if (++count === N) resolve();
      }),
    );
    for (let i = 0; i < N; i++) await ca.send({ i, chunk });
    await done;
    await ca.close();
  });
});

export type { Identity };

describe('self-signed certificate', () => {
  it('is valid DER every time (a serial with illegal padding once failed 1 in ~500 contexts)', async () => {
    const { createSelfSignedCertificate } = await import('@dpc/core');
    const { X509Certificate } = await import('node:crypto');
    const { createSecureContext } = await import('node:tls');
    const id = generateIdentity();
    for (let i = 0; i < 2000; i++) {
      const pem = createSelfSignedCertificate(id);
      const cert = new X509Certificate(pem);
      expect(cert.subject).toContain(id.nodeId);
      if (i % 100 === 0) createSecureContext({ key: id.privateKeyPem, cert: pem });
    }
  });
});

describe('send under backpressure', () => {
  it('many concurrent senders share one drain waiter (no listener leak warning) and every message arrives', async () => {
    const [cs, ss] = await tcpPair();
    const [ca, cb] = await Promise.all([
      secureConnect(cs, { identity: alice, tier: 'ipv4_direct', expectedNodeId: bob.nodeId }),
      secureAccept(ss, { identity: bob, tier: 'ipv4_direct' }),
    ]);
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    cb.pause(); // the receiver stops reading: the sender's socket fills up
    const N = 200;
    const chunk = Buffer.alloc(64 * 1024, 1);
    const sends = Array.from({ length: N }, (_, i) => ca.send({ i, chunk }));
    await new Promise((r) => setTimeout(r, 100));
    expect(ca.listenerCount('close')).toBeLessThan(10);
    let got = 0;
    const all = new Promise<void>((resolve) =>
      cb.on('message', () => {
        if (++got === N) resolve();
      }),
    );
    cb.resume();
    await Promise.all(sends);
    await all;
    process.off('warning', onWarning);
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
    await ca.close();
  });
});
