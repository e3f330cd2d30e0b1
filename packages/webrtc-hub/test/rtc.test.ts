// Tier 3 between two werift peers on loopback, signalled through a real WebSocket relay that
// the peers do not trust: connect, both protocols, the identity binding against a lying relay,
// per-step deadlines, and the data-channel stream's backpressure.
import { createHash, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Counters, generateIdentity, type Identity, isDpcError } from '@dpc/core';
import { createRtcPeer, type RtcAnswer, type RtcOffer, type RtcPeer, signBinding } from '@dpc/webrtc-hub';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Relay, type RelaySignaller, relaySignaller, startRelay, type Tamper } from './rtc-relay.js';

const LOOPBACK = { additionalHostAddresses: ['127.0.0.1'], iceServers: [] };
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function node(relay: Relay, opts: Partial<Parameters<typeof createRtcPeer>[0]> = {}, identity: Identity = generateIdentity()) {
  const signaller: RelaySignaller = await relaySignaller(relay.url, identity.nodeId);
  const counters = new Counters();
  const peer = createRtcPeer({ identity, signaller, counters, ...LOOPBACK, timeoutMs: 15_000, ...opts });
  cleanups.push(
    () => signaller.close(),
    () => peer.stop(),
  );
  return { identity, peer, counters, signaller };
}

async function failure(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}

describe('tier 3 over an honest relay', () => {
  let relay: Relay;
  beforeAll(async () => {
    relay = await startRelay();
  });
  afterAll(() => relay.close());

  it('two nodes connect over a data channel with the dpc TLS channel inside and exchange messages both ways', async () => {
    const a = await node(relay);
    const b = await node(relay);
    const accepted = once(b.peer, 'connection');
    const conn = await a.peer.connect(b.identity.nodeId, { signal: AbortSignal.timeout(20_000) });
    const [bConn, info] = (await accepted) as [Awaited<ReturnType<RtcPeer['connect']>>, { proto: string; pair?: { local: string } }];
    expect(conn.tier).toBe('hub_webrtc');
    expect(conn.remoteNodeId).toBe(b.identity.nodeId);
    expect(conn.remotePublicKey.equals(b.identity.publicKey)).toBe(true);
    expect(bConn.remoteNodeId).toBe(a.identity.nodeId);
    expect(info.proto).toBe('dpc-tls/1');
    expect(conn.rtc?.pair?.local).toBe('host');
    const gotB = once(bConn, 'message');
    await conn.send({ hello: 'from a' });
    expect((await gotB)[0]).toEqual({ hello: 'from a' });
    const gotA = once(conn, 'message');
    await bConn.send({ hello: 'from b', n: 2 });
    expect((await gotA)[0]).toEqual({ hello: 'from b', n: 2 });
    expect(await conn.ping()).toBeGreaterThanOrEqual(0);
    expect(a.counters.get('rtc_connected_host')).toBe(1);
    const closed = once(bConn, 'close');
    await conn.close();
    await closed;
  });

  it('dpc-msg/1 (what a browser speaks): messages authenticated by the signed fingerprints alone', async () => {
    const a = await node(relay);
    const b = await node(relay);
    const accepted = once(b.peer, 'connection');
    const conn = await a.peer.connect(b.identity.nodeId, { proto: 'dpc-msg/1', signal: AbortSignal.timeout(20_000) });
    const [bConn] = (await accepted) as [Awaited<ReturnType<RtcPeer['connect']>>];
    expect(conn.remotePublicKey.equals(b.identity.publicKey)).toBe(true);
    expect(bConn.remotePublicKey.equals(a.identity.publicKey)).toBe(true);
    const got = once(bConn, 'message');
    await conn.send({ x: [1, 2, 3] });
    expect((await got)[0]).toEqual({ x: [1, 2, 3] });
    const back = once(conn, 'message');
    await bConn.send('pong');
    expect((await back)[0]).toBe('pong');
    expect(await bConn.ping()).toBeGreaterThanOrEqual(0);
    await conn.close();
  });

  it('a bulk transfer through the TLS channel over the data channel arrives intact', async () => {
    const a = await node(relay);
    const b = await node(relay);
    const accepted = once(b.peer, 'connection');
    const conn = await a.peer.connect(b.identity.nodeId, { signal: AbortSignal.timeout(20_000) });
    const [bConn] = (await accepted) as [Awaited<ReturnType<RtcPeer['connect']>>];
    const chunks = Array.from({ length: 48 }, () => randomBytes(32 * 1024));
    const want = createHash('sha256');
    for (const c of chunks) want.update(c);
    const got = createHash('sha256');
    let n = 0;
    const done = new Promise<void>((resolve) =>
      bConn.on('message', (m: unknown) => {
        got.update(m as Uint8Array);
        if (++n === chunks.length) resolve();
      }),
    );
    for (const c of chunks) await conn.send(c);
    await done;
    expect(got.digest('hex')).toBe(want.digest('hex'));
    await conn.close();
  });

  it('a TURN server that never answers stalls gathering: the step deadline ends the attempt, the retry without TURN connects (counted)', async () => {
    // A real UDP socket on loopback that swallows every TURN request.
    const sink = createSocket('udp4');
    await new Promise<void>((r) => sink.bind(0, '127.0.0.1', r));
    cleanups.push(() => sink.close());
    const turn = [{ urls: `turn:127.0.0.1:${(sink.address() as AddressInfo).port}`, username: 'u', credential: 'p' }];
    const a = await node(relay, { stepTimeoutMs: 1500, iceServers: turn });
    const b = await node(relay, { stepTimeoutMs: 1500, iceServers: turn });
    const accepted = once(b.peer, 'connection');
    const conn = await a.peer.connect(b.identity.nodeId, { signal: AbortSignal.timeout(15_000) });
    await accepted;
    expect(conn.rtc?.pair?.local).toBe('host');
    expect(a.counters.get('rtc_retries_without_turn')).toBe(1);
    expect(a.counters.get('rtc_turn_gather_timeouts') + b.counters.get('rtc_turn_gather_timeouts')).toBeGreaterThanOrEqual(1);
    await conn.close();
  });

  it('a peer that never answers: the answer step gives up at its own deadline with DPC_TIMEOUT', async () => {
    const a = await node(relay, { stepTimeoutMs: 1500 });
    const silent = generateIdentity();
    const s = await relaySignaller(relay.url, silent.nodeId); // connected, never answers
    cleanups.push(() => s.close());
    // The attempt's own deadline is 15 s: a timeout naming the step is the step's deadline.
    const err = await failure(a.peer.connect(silent.nodeId));
    expect(err.code).toBe('DPC_TIMEOUT');
    expect(err.message).toContain("webrtc step 'wait for the answer' timed out after 1500 ms");
    expect(a.counters.get('rtc_connect_errors_DPC_TIMEOUT')).toBe(1);
  });

  it('an aborted signal stops the attempt with DPC_ABORTED and tells the peer', async () => {
    const a = await node(relay);
    const silent = generateIdentity();
    const s = await relaySignaller(relay.url, silent.nodeId);
    cleanups.push(() => s.close());
    const ends: unknown[] = [];
    s.on('signal', (e) => {
      if ((e.payload as { t: string }).t === 'rtc-end') ends.push(e.payload);
    });
    const ctrl = new AbortController();
    setTimeout(() => ctrl.abort(new Error('user gave up')), 200);
    const err = await failure(a.peer.connect(silent.nodeId, { signal: ctrl.signal }));
    expect(err.code).toBe('DPC_ABORTED');
    await new Promise((r) => setTimeout(r, 200));
    expect(ends.length).toBe(1);
  });
});

describe('tier 3 over a lying relay: the Hub cannot put itself or another node in between', () => {
  const swapFingerprint = (sdp: string) =>
    sdp.replace(
      /a=fingerprint:sha-256 \S+/g,
      `a=fingerprint:sha-256 ${[...randomBytes(32)].map((x) => x.toString(16).padStart(2, '0').toUpperCase()).join(':')}`,
    );

  async function lying(tamper: Tamper) {
    const relay = await startRelay({ tamper });
    cleanups.push(() => relay.close());
    return relay;
  }

  it('an offer whose SDP fingerprint was swapped is refused by the answerer (DPC_RTC_FINGERPRINT_MISMATCH, counted)', async () => {
    const relay = await lying((m) => {
      const p = m.payload as RtcOffer;
      return p.t === 'rtc-offer' ? { ...m, payload: { ...p, sdp: swapFingerprint(p.sdp) } } : m;
    });
    const a = await node(relay);
    const b = await node(relay);
    const refused = once(b.peer, 'refused');
    const err = await failure(a.peer.connect(b.identity.nodeId, { signal: AbortSignal.timeout(10_000) }));
    expect(err.code).toBe('DPC_RTC_PEER_ENDED');
    expect((await refused)[0]).toMatchObject({ from: a.identity.nodeId, code: 'DPC_RTC_FINGERPRINT_MISMATCH' });
    expect(b.counters.get('rtc_refused_DPC_RTC_FINGERPRINT_MISMATCH')).toBe(1);
  });

  it('an answer whose SDP fingerprint was swapped is refused by the offerer (DPC_RTC_FINGERPRINT_MISMATCH)', async () => {
    const relay = await lying((m) => {
      const p = m.payload as RtcOffer;
      return (p.t as string) === 'rtc-answer' ? { ...m, payload: { ...p, sdp: swapFingerprint(p.sdp) } } : m;
    });
    const a = await node(relay);
    const b = await node(relay);
    const err = await failure(a.peer.connect(b.identity.nodeId, { signal: AbortSignal.timeout(10_000) }));
    expect(isDpcError(err, 'DPC_RTC_FINGERPRINT_MISMATCH'), String(err)).toBe(true);
    expect(a.counters.get('rtc_connect_errors_DPC_RTC_FINGERPRINT_MISMATCH')).toBe(1);
  });

  it('a relay that swaps both SDP and signed fingerprint: the signature no longer fits (DPC_RTC_BINDING)', async () => {
    const relay = await lying((m) => {
      const p = m.payload as RtcOffer;
      if (p.t !== 'rtc-offer') return m;
      const sdp = swapFingerprint(p.sdp);
      const fp = /a=fingerprint:(sha-256 \S+)/.exec(sdp)?.[1] as string;
      return { ...m, payload: { ...p, sdp, fp } };
    });
    const a = await node(relay);
    const b = await node(relay);
    const refused = once(b.peer, 'refused');
    await failure(a.peer.connect(b.identity.nodeId, { signal: AbortSignal.timeout(10_000) }));
    expect((await refused)[0]).toMatchObject({ code: 'DPC_RTC_BINDING' });
  });

  it('a relay that sends the call to another node: that node refuses the offer, which was signed for someone else', async () => {
    let bob = '';
    let mallory = '';
    const relay = await lying((m) => {
      if (m.to === bob) return { ...m, to: mallory }; // offers meant for bob go to mallory
      if (m.from === mallory) return { ...m, from: bob }; // mallory's replies are presented as bob's
      return m;
    });
    const a = await node(relay);
    const b = await node(relay);
    const mal = await node(relay);
    bob = b.identity.nodeId;
    mallory = mal.identity.nodeId;
    const refused = once(mal.peer, 'refused');
    const err = await failure(a.peer.connect(bob, { signal: AbortSignal.timeout(10_000) }));
    expect(err.code).toBe('DPC_RTC_PEER_ENDED');
    expect((await refused)[0]).toMatchObject({ code: 'DPC_RTC_BINDING' });
  });

  it('an answer re-signed by another node (a valid signature, the wrong node) is refused by the caller (DPC_RTC_BINDING)', async () => {
    const mallory = generateIdentity();
    const relay = await lying((m) => {
      const p = m.payload as RtcAnswer;
      if (p.t !== 'rtc-answer') return m;
      const forged = signBinding(mallory, { kind: 'answer', sid: p.sid, to: m.to, fingerprint: p.fp, proto: 'dpc-tls/1' });
      return { ...m, payload: { ...p, ...forged } };
    });
    const a = await node(relay);
    const b = await node(relay);
    const err = await failure(a.peer.connect(b.identity.nodeId, { signal: AbortSignal.timeout(10_000) }));
    expect(err.code).toBe('DPC_RTC_BINDING');
    expect(err.message).toContain(`not by ${b.identity.nodeId}`);
    expect(a.counters.get('rtc_connect_errors_DPC_RTC_BINDING')).toBe(1);
  });

  it('a relay that forges the sender of an offer (signed by mallory, reported as from alice) is refused', async () => {
    let alice = '';
    const relay = await lying((m) => (m.from !== alice && (m.payload as { t: string }).t === 'rtc-offer' ? { ...m, from: alice } : m));
    const a = await node(relay);
    alice = a.identity.nodeId;
    const b = await node(relay);
    const mal = await node(relay);
    const refused = once(b.peer, 'refused');
    await failure(mal.peer.connect(b.identity.nodeId, { signal: AbortSignal.timeout(3_000) }));
    expect((await refused)[0]).toMatchObject({ from: a.identity.nodeId, code: 'DPC_RTC_BINDING' });
    expect(b.counters.get('rtc_refused_DPC_RTC_BINDING')).toBe(1);
  });

  it('a relay that replays an offer: the first copy is answered, the second refused (DPC_RTC_BINDING, counted), the session lives', async () => {
    const relay = await lying((m) => ((m.payload as { t: string }).t === 'rtc-offer' ? [m, m] : m));
    const a = await node(relay);
    const b = await node(relay);
    const refused = once(b.peer, 'refused');
    const accepted = once(b.peer, 'connection');
    const conn = await a.peer.connect(b.identity.nodeId, { signal: AbortSignal.timeout(10_000) });
    const [bConn] = (await accepted) as [Awaited<ReturnType<RtcPeer['connect']>>];
    expect((await refused)[0]).toMatchObject({
      from: a.identity.nodeId,
      code: 'DPC_RTC_BINDING',
      message: expect.stringContaining('replayed'),
    });
    expect(b.counters.get('rtc_refused_DPC_RTC_BINDING')).toBe(1);
    const got = once(bConn, 'message');
    await conn.send('still here');
    expect((await got)[0]).toBe('still here');
    await conn.close();
  });
});
