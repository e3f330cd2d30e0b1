import { once } from 'node:events';
import type { Socket } from 'node:net';
import { generateIdentity } from '@dpc/core';
import type { RelayServerOptions } from '@dpc/relay';
import { afterEach, describe, expect, it } from 'vitest';
import {
  cleanups,
  client,
  closeError,
  nextMessage,
  nextOf,
  pair,
  rawClient,
  rawData,
  rawPair as rawPairAt,
  relay,
  runCleanups,
  tapProxy,
} from './helpers.js';

afterEach(runCleanups);

const marker = 'PLAINTEXT-MARKER-7f3a9c';

/** A relay behind a recording proxy that it announces as its data port, so control and data connections both cross it. */
async function tappedRelay() {
  let relayPort = 0;
  const tap = await tapProxy(() => relayPort);
  cleanups.push(() => tap.server.close());
  const r = await relay({ publicPort: tap.port });
  relayPort = r.server.port;
  return { tap, ...r };
}

describe('spliced relay sessions (plain TCP data connections)', () => {
  it('are the default: the bytes go over the data connections, none in RELAY_MESSAGEs; a close is clean on both ends', async () => {
    const { server, ref } = await relay();
    const a = client();
    const { alice, bob } = await pair(ref, a);
    const got = nextMessage(bob);
    await alice.send({ text: 'hi bob', blob: Buffer.alloc(200_000, 3) });
    expect(await got).toMatchObject({ text: 'hi bob' });
    const back = nextMessage(alice);
    await bob.send('hi alice');
    expect(await back).toBe('hi alice');
    expect(server.stats()).toMatchObject({ sessions_spliced: 1, data_connections: 2 });
    expect(server.stats().messages_forwarded).toBeUndefined();
    expect(server.stats().bytes_forwarded).toBeGreaterThan(200_000);
    expect(a.stats().spliced_connections).toBe(1);
    // TLS runs on the data connection itself, a hop whose address (the relay's) is not the peer's.
    expect(alice.remoteAddress).toBeUndefined();
    expect(bob.remoteAddress).toBeUndefined();
    const bobClosed = closeError(bob);
    await alice.close();
    expect(await bobClosed).toBeUndefined();
    await expect.poll(() => server.stats().open_sessions).toBe(0);
    expect(server.stats().sessions_closed_end).toBe(1);
  });

  it('falls back to RELAY_MESSAGEs when a client or the relay does not splice', async () => {
    for (const [serverSplice, aliceSplice] of [
      [true, false],
      [false, true],
    ] as const) {
      const { server, ref } = await relay({ splice: serverSplice });
      const a = client({ splice: aliceSplice });
      const { alice, bob } = await pair(ref, a);
      const got = nextMessage(bob);
      await alice.send('over messages');
      expect(await got).toBe('over messages');
      expect(server.stats().sessions_spliced).toBeUndefined();
      expect(server.stats().messages_forwarded).toBeGreaterThan(0);
      expect(a.stats().message_connections).toBe(1);
    }
  });

  it('the relay handles only ciphertext: no plaintext in any byte of the control or data connections', async () => {
    const { tap, server, ref } = await tappedRelay();
    const { alice, bob } = await pair({ ...ref, port: tap.port });
    const got: unknown[] = [];
    bob.on('message', (m) => got.push(m));
    for (let i = 0; i < 20; i++) await alice.send({ text: `${marker} #${i}`, blob: Buffer.from(marker.repeat(50)) });
    await expect.poll(() => got.length).toBe(20);
    expect(server.stats()).toMatchObject({ sessions_spliced: 1, data_connections: 2 });
    const all = Buffer.concat(tap.seen);
    expect(all.length).toBeGreaterThan(20 * 50 * marker.length);
    expect(all.includes(Buffer.from(marker))).toBe(false);
    expect(all.includes(Buffer.from('MARKER'))).toBe(false);
  });

  it('killing the relay (control and data connections) closes both relayed connections with a typed error', async () => {
    const { tap, server, ref } = await tappedRelay();
    const { alice, bob } = await pair({ ...ref, port: tap.port });
    expect(server.stats().sessions_spliced).toBe(1);
    const closing = [closeError(alice), closeError(bob)];
    for (const s of tap.sockets) s.destroy(); // the relay vanishes: no goodbye
    const [ea, eb] = await Promise.all(closing);
    expect(ea).toMatchObject({ code: 'DPC_RELAY_PATH_CLOSED', reason: 'relay_lost' });
    expect(eb).toMatchObject({ code: 'DPC_RELAY_PATH_CLOSED', reason: 'relay_lost' });
  });

  it('a session limit (max duration) ends a spliced session with RELAY_DISCONNECT: both ends see the reason', async () => {
    const { server, ref } = await relay({ maxSessionDurationMs: 400 });
    const { alice, bob } = await pair(ref);
    const [ea, eb] = await Promise.all([closeError(alice), closeError(bob)]);
    expect(ea).toMatchObject({ code: 'DPC_RELAY_PATH_CLOSED', reason: 'duration' });
    expect(eb).toMatchObject({ code: 'DPC_RELAY_PATH_CLOSED', reason: 'duration' });
    expect(server.stats()).toMatchObject({ sessions_spliced: 1, sessions_closed_duration: 1 });
  });
});

describe('spliced sessions, speaking the wire protocol directly', () => {
  async function rawPair(opts: Partial<RelayServerOptions> = {}) {
    const { ga, gb, ...r } = await rawPairAt(opts, { splice: true, ids: [1, 2] });
    expect(ga.data_port).toBe(r.server.port);
    expect(ga.data_token).toHaveLength(32);
    expect(Buffer.from(ga.data_token as Uint8Array).equals(Buffer.from(gb.data_token as Uint8Array))).toBe(false);
    return { ...r, sid: ga.session_id, ta: ga.data_token as Uint8Array, tb: gb.data_token as Uint8Array };
  }
  const track = (s: Socket) => {
    cleanups.push(() => s.destroy());
    return s;
  };
  const closed = (s: Socket) => (s.destroyed ? Promise.resolve() : once(s.resume(), 'close').then(() => undefined));
  const collect = (s: Socket) => {
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    return () => Buffer.concat(chunks);
  };

  it('splices the two data connections; unknown, duplicate and malformed preambles are closed and counted', async () => {
    const { server, sid, ta, tb } = await rawPair();
    const port = server.port;
    const wrong = track(await rawData(port, sid, Buffer.alloc(32, 1)));
    const otherSession = track(await rawData(port, 'AAAAAAAAAAAAAAAA', ta));
    const garbage = track(await rawData(port, sid, ta, 'DPCX'));
    await Promise.all([closed(wrong), closed(otherSession), closed(garbage)]);
    const da = track(await rawData(port, sid, ta));
    const again = track(await rawData(port, sid, ta)); // a token is good once
    await closed(again);
    const db = track(await rawData(port, sid, tb));
    const atB = collect(db);
    const atA = collect(da);
    da.write('from a');
    db.write('from b');
    await expect.poll(() => atB().toString()).toBe('from a');
    await expect.poll(() => atA().toString()).toBe('from b');
    expect(server.stats()).toMatchObject({
      data_refused_unknown: 2,
      data_refused_preamble: 1,
      data_refused_duplicate: 1,
      data_connections: 2,
      sessions_spliced: 1,
    });
  });

  it('a data connection that does not arrive in time ends the session with a typed refusal', async () => {
    const { server, a, b, sid, ta } = await rawPair({ dataConnectionTimeoutMs: 300 });
    const da = track(await rawData(server.port, sid, ta));
    const refused = nextOf(a, 'RELAY_REFUSED');
    const disc = nextOf(b, 'RELAY_DISCONNECT');
    expect(await refused).toMatchObject({ code: 'data_timeout', session_id: sid });
    expect(await disc).toMatchObject({ session_id: sid, reason: 'data_timeout' });
    await closed(da);
    expect(server.stats()).toMatchObject({ sessions_closed_data_timeout: 1, open_sessions: 0 });
  });

  it('enforces the session byte cap on the data connections', async () => {
    const { server, b, sid, ta, tb } = await rawPair({ maxSessionBytes: 1000 });
    const da = track(await rawData(server.port, sid, ta));
    const db = track(await rawData(server.port, sid, tb));
    const disc = nextOf(b, 'RELAY_DISCONNECT');
    da.write(Buffer.alloc(700));
    await new Promise((r) => setTimeout(r, 50));
    da.write(Buffer.alloc(700));
    expect(await disc).toMatchObject({ session_id: sid, reason: 'bytes' });
    await Promise.all([closed(da), closed(db)]);
    expect(server.stats().sessions_closed_bytes).toBe(1);
  });

  it('refuses RELAY_MESSAGEs on a spliced session', async () => {
    const second = await rawPair();
    await second.a.send({ type: 'RELAY_MESSAGE', session_id: second.sid, data: new Uint8Array(10) });
    expect(await nextOf(second.a, 'RELAY_REFUSED')).toMatchObject({ code: 'bad_request', session_id: second.sid });
  });

  it('caps bandwidth by pausing reads: nothing is lost, the sender is held back, new sessions are refused meanwhile', async () => {
    // 0.08 Mbit/s = 10 000 B/s with a one-second burst
    const { server, id, sid, ta, tb } = await rawPair({ bandwidthLimitMbps: 0.08 });
    const da = track(await rawData(server.port, sid, ta));
    const db = track(await rawData(server.port, sid, tb));
    const atB = collect(db);
    const started = performance.now();
    for (let i = 0; i < 3; i++) {
      da.write(Buffer.alloc(9000, 5));
      await new Promise((r) => setTimeout(r, 30));
    }
    await expect.poll(() => atB().length).toBeGreaterThanOrEqual(18_000);
    const carol = await rawClient(generateIdentity(), id, server.port);
    cleanups.push(() => carol.close());
    await carol.send({ type: 'RELAY_REGISTER', id: 1, target: generateIdentity().nodeId, splice: true });
    expect(await nextOf(carol, 'RELAY_REFUSED')).toMatchObject({ code: 'bandwidth' });
    await expect.poll(() => atB().length, { timeout: 5000 }).toBe(27_000);
    // 27 kB at 10 kB/s after a 10 kB burst: the last chunk waits for the debt of the second.
    expect(performance.now() - started).toBeGreaterThan(600);
    expect(server.stats().bandwidth_throttled).toBeGreaterThanOrEqual(1);
  });
});
