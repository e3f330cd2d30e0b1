import { createHmac } from 'node:crypto';
import { generateIdentity } from '@dpc/core';
import { checkLogin, createHubClient, HubTokenBucket, loginBytes, signLogin, turnCredentials } from '@dpc/webrtc-hub';
import { describe, expect, it } from 'vitest';
import { onCleanup, RawClient, startHub } from './hub-helpers.js';

const ch = { hub: 'wss://hub.example.org/', nonce: Buffer.alloc(32, 7).toString('base64'), expires_at: 2_000_000 };

describe('Hub login (pure)', () => {
  it('accepts a signature over this challenge and refuses every altered case', () => {
    const me = generateIdentity();
    const other = generateIdentity();
    const good = signLogin(me, ch);
    expect(checkLogin(ch, good, 1_000_000)).toBeUndefined();
    const cases: Array<[string, Parameters<typeof checkLogin>[0], Parameters<typeof checkLogin>[1], number, RegExp]> = [
      ['expired challenge', ch, good, 2_000_001, /expired/],
      [
        'another nonce (replay on another connection)',
        { ...ch, nonce: Buffer.alloc(32, 8).toString('base64') },
        good,
        1,
        /does not verify/,
      ],
      ['another Hub', { ...ch, hub: 'wss://evil.example.org/' }, good, 1, /does not verify/],
      ['signed by another key', ch, { ...good, signature: signLogin(other, ch).signature }, 1, /does not verify/],
      ['claims another node id', ch, { ...good, node_id: other.nodeId }, 1, /hash of the public key/],
      ['another key for the claimed id', ch, { ...good, public_key: other.publicKey.toString('base64') }, 1, /hash of the public key/],
      ['short signature', ch, { ...good, signature: 'AAAA' }, 1, /64 bytes/],
      ['short key', ch, { ...good, public_key: 'AAAA' }, 1, /32 bytes/],
    ];
    for (const [name, c, l, now, re] of cases) expect(checkLogin(c, l, now), name).toMatch(re);
  });

  it('signs the context, the Hub URL, the nonce, the expiry and the node id as text lines', () => {
    expect(loginBytes(ch, 'dpc-node-00000000000000000000000000000000').toString()).toBe(
      `dpc-hub-login-v1\nwss://hub.example.org/\n${ch.nonce}\n2000000\ndpc-node-00000000000000000000000000000000`,
    );
  });

  it("TURN credentials follow coturn's REST format", () => {
    const c = turnCredentials('s3cret', 'dpc-node-0123456789abcdef0123456789abcdef', 600, 1_700_000_000_500);
    expect(c.username).toBe('1700000600:dpc-node-0123456789abcdef0123456789abcdef');
    expect(c.credential).toBe(createHmac('sha1', 's3cret').update(c.username).digest('base64'));
    expect(c.expiresAt).toBe(1_700_000_600_000);
  });

  it('token bucket: a burst, then the refill rate', () => {
    const b = new HubTokenBucket(10, 3, 0);
    expect([b.take(0), b.take(0), b.take(0), b.take(0)]).toEqual([true, true, true, false]);
    expect(b.take(50)).toBe(false); // half a token
    expect(b.take(100)).toBe(true);
    expect(b.take(100)).toBe(false);
    expect([b.take(10_000), b.take(10_000), b.take(10_000), b.take(10_000)]).toEqual([true, true, true, false]);
  });
});

describe('Hub login (real sockets)', () => {
  it('a node logs in by signing the challenge and gets ICE servers with TURN credentials', async () => {
    const hub = await startHub({ turnSecret: 'k', turnServers: ['turn:192.0.2.1:3478'], stunServers: ['stun:192.0.2.1:3478'] });
    const me = generateIdentity();
    const c = await RawClient.withChallenge(hub.url);
    const challenge = c.challenge();
    expect(challenge.hub).toBe(hub.url);
    expect(Buffer.from(challenge.nonce, 'base64')).toHaveLength(32);
    c.send({ t: 'login', ...signLogin(me, challenge) });
    const welcome = await c.next((m) => m.t === 'welcome');
    expect(welcome.node_id).toBe(me.nodeId);
    const ice = welcome.ice_servers as Array<{ urls: string[]; username?: string; credential?: string }>;
    expect(ice[0]).toEqual({ urls: ['stun:192.0.2.1:3478'] });
    expect(ice[1]?.username).toMatch(new RegExp(`^\\d+:${me.nodeId}$`));
    expect(ice[1]?.credential).toBe(
      createHmac('sha1', 'k')
        .update(ice[1]?.username ?? '')
        .digest('base64'),
    );
    expect(hub.hasNode(me.nodeId)).toBe(true);
    expect(hub.counters.get('hub_login_ok')).toBe(1);
  });

  it('refuses a login signed with another key: typed error, counted, connection closed', async () => {
    const hub = await startHub();
    const me = generateIdentity();
    const thief = generateIdentity();
    const c = await RawClient.withChallenge(hub.url);
    // The thief claims my node id and key but can only sign with its own key.
    c.send({ t: 'login', ...signLogin(me, c.challenge()), signature: signLogin(thief, c.challenge()).signature });
    const err = await c.next((m) => m.t === 'error');
    expect(err.code).toBe('DPC_HUB_LOGIN_REFUSED');
    expect(await c.closed()).toBe(1008);
    expect(hub.hasNode(me.nodeId)).toBe(false);
    expect(hub.counters.get('hub_login_refused')).toBe(1);
  });

  it('refuses a replayed login (a captured login sent on another connection)', async () => {
    const hub = await startHub();
    const me = generateIdentity();
    const first = await RawClient.withChallenge(hub.url);
    const captured = { t: 'login', ...signLogin(me, first.challenge()) };
    first.send(captured);
    await first.next((m) => m.t === 'welcome');
    const replay = await RawClient.withChallenge(hub.url);
    expect(replay.challenge().nonce).not.toBe(first.challenge().nonce);
    replay.send(captured);
    expect((await replay.next((m) => m.t === 'error')).code).toBe('DPC_HUB_LOGIN_REFUSED');
    expect(await replay.closed()).toBe(1008);
    expect(hub.counters.get('hub_login_refused')).toBe(1);
    // The real node is still logged in on its own connection.
    expect(hub.hasNode(me.nodeId)).toBe(true);
    expect(first.closeCode).toBeUndefined();
  });

  it('refuses a login after the challenge expired, and closes a connection that never logs in', async () => {
    let now = 1_000_000;
    const hub = await startHub({ loginTimeoutMs: 400, now: () => now });
    const c = await RawClient.withChallenge(hub.url);
    now += 401;
    c.send({ t: 'login', ...signLogin(generateIdentity(), c.challenge()) });
    expect(await c.next((m) => m.t === 'error')).toMatchObject({
      code: 'DPC_HUB_LOGIN_REFUSED',
      message: expect.stringMatching(/expired/),
    });
    const idle = await RawClient.withChallenge(hub.url);
    expect(await idle.closed()).toBe(1008);
    expect(hub.counters.get('hub_login_timeout')).toBe(1);
  });

  it('refuses anything but a login before login (protocol error, counted)', async () => {
    const hub = await startHub();
    const c = await RawClient.withChallenge(hub.url);
    c.send({ t: 'signal', id: 1, to: generateIdentity().nodeId, payload: 'x' });
    expect((await c.next((m) => m.t === 'error')).code).toBe('DPC_HUB_PROTOCOL');
    expect(await c.closed()).toBe(1008);
    const junk = await RawClient.withChallenge(hub.url);
    junk.send('{not json');
    expect((await junk.next((m) => m.t === 'error')).code).toBe('DPC_HUB_PROTOCOL');
    expect(hub.counters.get('hub_protocol_error')).toBe(2);
  });

  it('the client signs only a challenge naming the Hub it dialled', async () => {
    // This Hub names another URL in its challenges (as a Hub relaying another Hub's challenge would).
    const hub = await startHub({ url: 'ws://hub-a.example.org/' });
    const client = createHubClient({
      url: `ws://127.0.0.1:${hub.port}/`,
      identity: generateIdentity(),
      backoff: { minMs: 50, maxMs: 100 },
    });
    onCleanup(() => client.stop());
    const errors: Error[] = [];
    client.on('error', (e) => errors.push(e));
    client.start();
    const deadline = Date.now() + 5_000;
    while (errors.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(errors[0]).toMatchObject({ code: 'DPC_HUB_LOGIN_REFUSED' });
    expect(client.connected).toBe(false);
    expect(client.counters.get('hub_client_wrong_hub')).toBeGreaterThan(0);
    expect(hub.counters.get('hub_login_ok')).toBe(0);
    expect(hub.counters.get('hub_login_refused')).toBe(0); // nothing was signed at all
  });
});
