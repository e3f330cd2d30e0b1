import { randomBytes, randomInt } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { Duplex } from 'node:stream';
import { createSecureContext, TLSSocket, connect as tlsConnect } from 'node:tls';
import { type Connection, Counters, createSelfSignedCertificate, generateIdentity, secureAccept, secureConnect } from '@dpc/core';
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
    // Both ends name the dialer the same way.
    expect(ca.initiator).toBe(alice.nodeId);
    expect(cb.initiator).toBe(alice.nodeId);
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

  it('C pretending to be A is rejected by B (the acceptor), and C learns it was refused (waitForAccept)', async () => {
    const [cs, ss] = await tcpPair();
    const [client, server] = await Promise.allSettled([
      secureConnect(cs, { identity: carol, tier: 'ipv4_direct', expectedNodeId: bob.nodeId, waitForAccept: true }),
      secureAccept(ss, { identity: bob, tier: 'ipv4_direct', expectedNodeId: alice.nodeId }),
    ]);
    expect(server).toMatchObject({ status: 'rejected', reason: { code: 'DPC_PEER_IDENTITY_MISMATCH', actual: carol.nodeId } });
    expect(client).toMatchObject({ status: 'rejected', reason: { code: 'DPC_PEER_REJECTED', reason: 'identity: not the expected peer' } });
  });

  it('C pretending to be A is rejected by B, and C (connected after the TLS handshake) learns it from its Connection', async () => {
    const [cs, ss] = await tcpPair();
    const counters = new Counters();
    const [client, server] = await Promise.allSettled([
      secureConnect(cs, { identity: carol, tier: 'ipv4_direct', expectedNodeId: bob.nodeId, counters }),
      secureAccept(ss, { identity: bob, tier: 'ipv4_direct', expectedNodeId: alice.nodeId }),
    ]);
    expect(server).toMatchObject({ status: 'rejected', reason: { code: 'DPC_PEER_IDENTITY_MISMATCH', actual: carol.nodeId } });
    if (client.status !== 'fulfilled') throw client.reason;
    const closed = new Promise<Error | undefined>((resolve) =>
      client.value.closed ? resolve(undefined) : client.value.once('close', resolve),
    );
    await expect(client.value.accepted).rejects.toMatchObject({ code: 'DPC_PEER_REJECTED', reason: 'identity: not the expected peer' });
    expect(await closed).toMatchObject({ code: 'DPC_PEER_REJECTED' });
    await expect(client.value.send('after the refusal')).rejects.toMatchObject({
      code: 'DPC_CONNECTION_CLOSED',
      cause: { code: 'DPC_PEER_REJECTED' },
    });
    expect(counters.get('handshake_errors_DPC_PEER_REJECTED')).toBe(1);
    expect(counters.get('handshakes_ok')).toBe(0);
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

describe('what counts as a TLS downgrade', () => {
  /** Runs secureAccept against a raw TCP client that sends `bytes`, and the reverse. */
  async function against(bytes: Buffer) {
    const counters = new Counters();
    const [c1, s1] = await tcpPair();
    c1.on('error', () => {});
    c1.write(bytes);
    const accepted = await secureAccept(s1, { identity: bob, tier: 'ipv4_direct', counters, handshakeTimeoutMs: 3000 }).catch((e) => e);
    c1.destroy();
    const [c2, s2] = await tcpPair();
    s2.on('error', () => {});
    s2.once('data', () => s2.write(bytes));
    const connected = await secureConnect(c2, {
      identity: alice,
      tier: 'ipv4_direct',
      expectedNodeId: bob.nodeId,
      counters,
      handshakeTimeoutMs: 3000,
    }).catch((e) => e);
    s2.destroy();
    return { codes: [accepted.code, connected.code] as string[], counters };
  }

  it('random bytes, HTTP and junk records are counted as not TLS, never as a downgrade', async () => {
    const inputs = [
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      Buffer.alloc(600),
      Buffer.alloc(600, 0xff),
      // a handshake record holding one complete (64-byte) handshake message of random content: a
      // random inner length could make OpenSSL wait for more records until the handshake times out
      Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c]), randomBytes(60)]),
      // random, but not starting like a TLS record (0x14–0x18) or an SSLv2 hello (high bit set),
      // which OpenSSL would wait to read in full
      ...Array.from({ length: 8 }, () => {
        // at least a record header's 5 bytes: OpenSSL waits for the rest of a shorter one
        const b = randomBytes(5 + randomInt(1496));
        b[0] = 0x19 + randomInt(0x80 - 0x19);
        return b;
      }),
    ];
    for (const bytes of inputs) {
      const { codes, counters } = await against(bytes);
      for (const code of codes) expect(code, bytes.subarray(0, 8).toString('hex')).toBe('DPC_HANDSHAKE_NOT_TLS');
      expect(counters.get('handshake_errors_DPC_HANDSHAKE_NOT_TLS')).toBe(2);
      expect(counters.get('handshake_errors_DPC_TLS_DOWNGRADE')).toBe(0);
    }
  });

  it('a real TLS 1.2 server (its alert, or its ServerHello replayed) is a downgrade', async () => {
    const ctx12 = createSecureContext({
      key: bob.privateKeyPem,
      cert: createSelfSignedCertificate(bob),
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.2',
    });
    // a TLS 1.2-only server answers our 1.3-only hello with a protocol_version alert
    const counters = new Counters();
    const [c, s] = await tcpPair();
    new TLSSocket(s, { isServer: true, secureContext: ctx12 }).on('error', () => {});
    await expect(
      secureConnect(c, { identity: alice, tier: 'ipv4_direct', expectedNodeId: bob.nodeId, counters, handshakeTimeoutMs: 3000 }),
    ).rejects.toMatchObject({ code: 'DPC_TLS_DOWNGRADE' });
    expect(counters.get('handshake_errors_DPC_TLS_DOWNGRADE')).toBe(1);

    // the ServerHello flight a TLS 1.2 server sends a 1.2 client, recorded by a TCP proxy
    const [c0, s0] = await tcpPair();
    const [c1, s1] = await tcpPair();
    new TLSSocket(s1, { isServer: true, secureContext: ctx12 }).on('error', () => {});
    s0.on('data', (d) => c1.write(d));
    const flight = once(c1, 'data');
    tlsConnect({ socket: c0, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', rejectUnauthorized: false }).on('error', () => {});
    const [serverHello] = (await flight) as [Buffer];
    expect(serverHello.subarray(0, 3).toString('hex')).toBe('160303'); // a TLS 1.2 handshake record
    expect(serverHello[5]).toBe(0x02); // ServerHello
    const { codes } = await against(serverHello);
    expect(codes[1]).toBe('DPC_TLS_DOWNGRADE');
    for (const sock of [c0, s0, c1, s1]) sock.destroy();
  });
});

describe('a pipe that is one hop of a longer path (hop)', () => {
  /** A hop whose reason for a close is told later, by hand (as a relay's control connection does). */
  function hop() {
    const asked: Array<Error | undefined> = [];
    let tell!: (err: Error | undefined) => void;
    const told = new Promise<Error | undefined>((r) => (tell = r));
    return {
      asked,
      tell,
      explainClose(cause: Error | undefined) {
        asked.push(cause);
        return told;
      },
    };
  }
  const reason = () => Object.assign(new Error('the relay ended the session: duration'), { code: 'DPC_RELAY_PATH_CLOSED' });

  it('a socket closed under the connection: close waits for the hop, whose typed error it reports; no remote address', async () => {
    const [cs, ss] = await tcpPair();
    const [ha, hb] = [hop(), hop()];
    const [ca] = await Promise.all([
      secureConnect(cs, { identity: alice, tier: 'volunteer_relay', expectedNodeId: bob.nodeId, hop: ha }),
      secureAccept(ss, { identity: bob, tier: 'volunteer_relay', hop: hb }),
    ]);
    await ca.accepted;
    expect(ca.remoteAddress).toBeUndefined();
    let closedWith: unknown = 'not yet';
    ca.on('close', (err) => (closedWith = err));
    ss.destroy(); // the far hop goes without a word (cs sees an end or a reset)
    await expect.poll(() => ha.asked.length).toBe(1);
    await new Promise((r) => setTimeout(r, 50));
    expect(closedWith).toBe('not yet');
    expect(ca.closed).toBe(false);
    await expect(ca.send('during the wait')).rejects.toMatchObject({ code: 'DPC_CONNECTION_CLOSED' });
    const typed = reason();
    ha.tell(typed);
    await expect.poll(() => closedWith).toBe(typed);
    expect(ca.closed).toBe(true);
  });

  it('is not asked when the close is ours or the peer said goodbye; undefined keeps the pipe’s own close', async () => {
    const [cs, ss] = await tcpPair();
    const [ha, hb] = [hop(), hop()];
    const [ca, cb] = await Promise.all([
      secureConnect(cs, { identity: alice, tier: 'volunteer_relay', expectedNodeId: bob.nodeId, hop: ha }),
      secureAccept(ss, { identity: bob, tier: 'volunteer_relay', hop: hb }),
    ]);
    await ca.accepted;
    const bClosed = once(cb, 'close');
    await ca.close('done');
    expect((await bClosed)[0]).toBeUndefined();
    expect(cb.closedByPeer).toEqual({ reason: 'done' });
    expect(ha.asked).toEqual([]);
    expect(hb.asked).toEqual([]);

    const [cs2, ss2] = await tcpPair();
    const [hc, hd] = [hop(), hop()];
    const [cc] = await Promise.all([
      secureConnect(cs2, { identity: alice, tier: 'volunteer_relay', expectedNodeId: bob.nodeId, hop: hc }),
      secureAccept(ss2, { identity: bob, tier: 'volunteer_relay', hop: hd }),
    ]);
    await cc.accepted;
    const cClosed = once(cc, 'close');
    ss2.end(); // a bare end, no goodbye
    await expect.poll(() => hc.asked.length).toBe(1);
    hc.tell(undefined);
    await cClosed;
    expect(cc.closed).toBe(true);
  });
});
