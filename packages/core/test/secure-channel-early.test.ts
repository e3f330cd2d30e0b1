// The dialer's Connection is returned after the TLS handshake (TCP + TLS = 2 round trips); its
// hello and first frames ride behind the TLS Finished and the acceptor's verdict follows. These
// tests pin what that must never change: a refusal still reaches the dialer with its reason,
// nothing sent early is delivered before (or without) the acceptor admitting the peer, and a
// hostile peer in place of the hello or of the ack gets a typed, counted error.
import { once } from 'node:events';
import { Duplex } from 'node:stream';
import { createSecureContext, TLSSocket, connect as tlsConnect } from 'node:tls';
import {
  Counters,
  createSelfSignedCertificate,
  encodeFrame,
  generateIdentity,
  type Identity,
  secureAccept,
  secureConnect,
} from '@dpc/core';
import { describe, expect, it } from 'vitest';

const alice = generateIdentity();
const bob = generateIdentity();

/**
 * An in-memory pipe pair whose dialer → acceptor direction passes the first chunk (the
 * ClientHello) and then holds everything until `release()`: the TLS Finished, the hello and the
 * dialer's first frames then reach the acceptor in one piece, as on a link where they share a
 * flight. `bytesHeld` counts what was held.
 */
function gatedPipePair() {
  let a!: Duplex;
  let b!: Duplex;
  let passed = 0;
  let held: Buffer[] | undefined = [];
  let bytesHeld = 0;
  a = new Duplex({
    write(chunk: Buffer, _enc, cb) {
      if (passed++ === 0 || !held) b.push(chunk);
      else {
        held.push(chunk);
        bytesHeld += chunk.length;
      }
      cb();
    },
    final(cb) {
      b.push(null);
      cb();
    },
    read() {},
  });
  b = new Duplex({
    write(chunk, _enc, cb) {
      a.push(chunk);
      cb();
    },
    final(cb) {
      a.push(null);
      cb();
    },
    read() {},
  });
  return {
    dialer: a,
    acceptor: b,
    bytesHeld: () => bytesHeld,
    release() {
      const chunks = held ?? [];
      held = undefined;
      b.push(Buffer.concat(chunks));
    },
  };
}

/** Until the Connection's next tick of writes has reached the pipe. */
const tick = () => new Promise((r) => setTimeout(r, 20));

/** A TLS 1.3 end with `identity`'s certificate that speaks no dpc: the test writes raw bytes. */
function rawTls(pipe: Duplex, identity: Identity, isServer: boolean): TLSSocket {
  const secureContext = createSecureContext({
    key: identity.privateKeyPem,
    cert: createSelfSignedCertificate(identity),
    minVersion: 'TLSv1.3',
  });
  const sock = isServer
    ? new TLSSocket(pipe, { isServer: true, secureContext, requestCert: true, rejectUnauthorized: false, ALPNProtocols: ['dpc/1'] })
    : tlsConnect({ socket: pipe, secureContext, rejectUnauthorized: false, ALPNProtocols: ['dpc/1'] });
  sock.on('error', () => {});
  return sock;
}

function pipePair(): [Duplex, Duplex] {
  const g = gatedPipePair();
  g.release();
  return [g.dialer, g.acceptor];
}

describe('connect + secure in two round trips', () => {
  it('the first message written right after connect arrives, in order behind the hello, and rttMs comes from the handshake', async () => {
    const g = gatedPipePair();
    const counters = new Counters();
    const accepting = secureAccept(g.acceptor, { identity: bob, tier: 'ipv4_direct', counters });
    // the dialer has its Connection while its Finished is still held: the acceptor has not even
    // seen the client certificate yet
    const ca = await secureConnect(g.dialer, { identity: alice, tier: 'ipv4_direct', expectedNodeId: bob.nodeId, counters });
    expect(ca.rttMs).toBeGreaterThan(0);
    await tick();
    const finishedAndHello = g.bytesHeld();
    const sends = [ca.send({ first: true }), ca.send(2), ca.send(3)];
    await Promise.all(sends);
    await tick();
    expect(g.bytesHeld()).toBeGreaterThan(finishedAndHello); // the frames wait behind the Finished
    g.release();
    const cb = await accepting;
    const got: unknown[] = [];
    const three = new Promise<void>((resolve) =>
      cb.on('message', (m) => {
        if (got.push(m) === 3) resolve();
      }),
    );
    await three;
    expect(got).toEqual([{ first: true }, 2, 3]);
    await ca.accepted;
    expect(counters.get('handshakes_ok')).toBe(2);
    // the acceptor pings behind its ack: it knows the RTT one round trip later
    await new Promise<void>((resolve) => {
      const poll = () => (cb.rttMs > 0 ? resolve() : setTimeout(poll, 5));
      poll();
    });
    await ca.close();
  });

  it('a refusal reaches the dialer with its reason, and the frames it sent before are never delivered', async () => {
    const g = gatedPipePair();
    const serverCounters = new Counters();
    const clientCounters = new Counters();
    let asked = 0;
    const accepting = secureAccept(g.acceptor, {
      identity: bob,
      tier: 'ipv4_direct',
      counters: serverCounters,
      authorize: () => {
        asked++;
        return 'busy: try another relay';
      },
    });
    const ca = await secureConnect(g.dialer, {
      identity: alice,
      tier: 'ipv4_direct',
      expectedNodeId: bob.nodeId,
      counters: clientCounters,
    });
    await tick();
    const finishedAndHello = g.bytesHeld();
    await Promise.all(Array.from({ length: 5 }, (_, i) => ca.send({ early: i, pad: 'x'.repeat(40) })));
    await tick();
    const early = g.bytesHeld() - finishedAndHello;
    g.release(); // Finished + hello + the five frames reach the acceptor together
    await expect(accepting).rejects.toMatchObject({ code: 'DPC_PEER_REJECTED', reason: 'busy: try another relay' });
    expect(asked).toBe(1);
    await expect(ca.accepted).rejects.toMatchObject({ code: 'DPC_PEER_REJECTED', reason: 'busy: try another relay' });
    expect(ca.closed || (await once(ca, 'close'))[0]).toBeTruthy();
    // the five frames did reach the acceptor, and none was delivered
    expect(early).toBeGreaterThan(5 * 40);
    expect(serverCounters.get('messages_in')).toBe(0);
    expect(serverCounters.get('handshakes_ok')).toBe(0);
    expect(serverCounters.get('handshake_errors_DPC_PEER_REJECTED')).toBe(1);
    expect(clientCounters.get('handshake_errors_DPC_PEER_REJECTED')).toBe(1);
    expect(clientCounters.get('messages_out')).toBe(5);
  });

  it('waitForAccept: secureConnect itself rejects with the refusal and its reason', async () => {
    const [a, b] = pipePair();
    const [client, server] = await Promise.allSettled([
      secureConnect(a, { identity: alice, tier: 'ipv4_direct', expectedNodeId: bob.nodeId, waitForAccept: true }),
      secureAccept(b, { identity: bob, tier: 'ipv4_direct', authorize: () => 'not today' }),
    ]);
    expect(server).toMatchObject({ status: 'rejected', reason: { code: 'DPC_PEER_REJECTED' } });
    expect(client).toMatchObject({ status: 'rejected', reason: { code: 'DPC_PEER_REJECTED', reason: 'not today' } });
  });

  it('a hostile dialer sending garbage in place of the hello gets a typed error, counted, and delivers nothing', async () => {
    const cases: Array<{ bytes: Buffer; code: string }> = [
      // a frame whose MessagePack is invalid (0xc1 is never used)
      { bytes: Buffer.from([0, 0, 0, 4, 0xc1, 0xc1, 0xc1, 0xc1]), code: 'DPC_FRAME_MALFORMED' },
      // a valid data frame where the hello belongs, followed by more
      {
        bytes: Buffer.concat([encodeFrame({ t: 'data', d: 'sneaked in' }), encodeFrame({ t: 'data', d: 'and again' })]),
        code: 'DPC_HANDSHAKE_FAILED',
      },
      // a length prefix larger than any frame
      { bytes: Buffer.from([0x7f, 0xff, 0xff, 0xff, 1, 2, 3]), code: 'DPC_FRAME_TOO_LARGE' },
    ];
    for (const { bytes, code } of cases) {
      const [a, b] = pipePair();
      const counters = new Counters();
      const accepting = secureAccept(b, { identity: bob, tier: 'ipv4_direct', counters, handshakeTimeoutMs: 3000 });
      const raw = rawTls(a, alice, false);
      await once(raw, 'secureConnect');
      raw.write(bytes);
      await expect(accepting).rejects.toMatchObject({ code });
      expect(counters.get(`handshake_errors_${code}`)).toBe(1);
      expect(counters.get('messages_in')).toBe(0);
      expect(counters.get('handshakes_ok')).toBe(0);
      raw.destroy();
    }
  });

  it('a hostile acceptor sending garbage in place of the hello_ack fails the dialer’s Connection with a typed error, counted', async () => {
    const cases: Array<{ bytes: Buffer; code: string }> = [
      { bytes: Buffer.from([0, 0, 0, 4, 0xc1, 0xc1, 0xc1, 0xc1]), code: 'DPC_FRAME_MALFORMED' },
      { bytes: encodeFrame({ t: 'data', d: 'before the ack' }), code: 'DPC_HANDSHAKE_FAILED' },
    ];
    for (const { bytes, code } of cases) {
      const [a, b] = pipePair();
      const counters = new Counters();
      const raw = rawTls(b, bob, true);
      const ca = await secureConnect(a, { identity: alice, tier: 'ipv4_direct', expectedNodeId: bob.nodeId, counters });
      const messages: unknown[] = [];
      ca.on('message', (m) => messages.push(m));
      raw.write(bytes);
      await expect(ca.accepted).rejects.toMatchObject({ code });
      expect(counters.get(`handshake_errors_${code}`)).toBe(1);
      expect(messages).toEqual([]);
      raw.destroy();
    }
  });

  it('an acceptor that never answers the hello fails the dialer’s Connection after the handshake timeout', async () => {
    const [a, b] = pipePair();
    const counters = new Counters();
    const raw = rawTls(b, bob, true);
    const ca = await secureConnect(a, {
      identity: alice,
      tier: 'ipv4_direct',
      expectedNodeId: bob.nodeId,
      counters,
      handshakeTimeoutMs: 200,
    });
    await expect(ca.accepted).rejects.toMatchObject({ code: 'DPC_HANDSHAKE_TIMEOUT' });
    expect(ca.closed || (await once(ca, 'close'))[0]).toBeTruthy();
    expect(counters.get('handshake_errors_DPC_HANDSHAKE_TIMEOUT')).toBe(1);
    raw.destroy();
  });
});
