// The tier-3 plugin through its TierContext: config keys honoured (enable_hub_webrtc, [hub] url,
// webrtc_timeout, STUN/TURN lists), hubConnected reported as the Hub link goes up and down, the
// endpoint record's `hub` part, inbound sessions handed to ctx.accept.
import { EventEmitter, once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  type Connection,
  Counters,
  configFromObject,
  createRecord,
  type EndpointBody,
  emptyEndpointBody,
  generateIdentity,
  type Identity,
  type NetworkState,
  type TierContext,
  type TierDht,
} from '@dpc/core';
import { createHubServer, type HubServer, iceServersFromConfig, tierPlugin, webRtcTier } from '@dpc/webrtc-hub';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

async function until(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function context(identity: Identity, ini: Record<string, unknown>) {
  const seen = {
    network: [] as Partial<NetworkState>[],
    parts: [] as Array<[string, unknown]>,
    accepted: [] as Connection[],
    events: [] as unknown[],
  };
  const accepted = new EventEmitter();
  const ctrl = new AbortController();
  const ctx: TierContext = {
    name: 'hub_webrtc',
    identity,
    config: configFromObject(ini).config,
    dht: {} as TierDht,
    counters: new Counters(),
    log: { debug() {}, info() {}, warn() {}, error() {} },
    allowLoopback: true,
    signal: ctrl.signal,
    accept(conn) {
      seen.accepted.push(conn);
      accepted.emit('conn', conn);
    },
    setEndpointPart(part, value) {
      seen.parts.push([part, value]);
    },
    reportNetwork(p) {
      seen.network.push(p);
    },
    emit(event, fields) {
      seen.events.push({ event, ...fields });
    },
  };
  return { ctx, seen, accepted, abort: () => ctrl.abort() };
}

const record = (who: Identity, body: Partial<EndpointBody>) =>
  createRecord(who, { kind: 'endpoint', body: { ...emptyEndpointBody(), ...body } });

describe('tier-3 plugin (tierPlugin) with a real Hub', () => {
  let hub: HubServer;
  let url: string;
  beforeAll(async () => {
    // No STUN handed out: nothing leaves this machine.
    hub = createHubServer({ host: '127.0.0.1', port: 0, stunServers: [] });
    await hub.start();
    url = hub.url;
  });
  afterAll(() => hub?.stop().catch(() => {}));

  it('enable_hub_webrtc = false: no strategy, no Hub link, hubConnected false', async () => {
    let linked = false;
    const plugin = webRtcTier({
      connectHub: () => {
        linked = true;
        throw new Error('must not link');
      },
    });
    const { ctx, seen } = context(generateIdentity(), { connection: { enable_hub_webrtc: 'false' }, hub: { url } });
    const started = await plugin.start(ctx);
    expect(started.strategy).toBeUndefined();
    expect(started.info).toMatchObject({ enabled: false, reason: 'enable_hub_webrtc = false' });
    expect(linked).toBe(false);
    expect(seen.network).toEqual([{ hubConnected: false }]);
    await started.stop();
  });

  it('a Hub that accepts TCP and never answers: start() returns after its short login wait, also when garbage collection runs meanwhile', async () => {
    // The WebSocket handshake hangs (no error before the client's 10 s login timeout): only the
    // plugin's own deadline ends the wait. Its deadline signal once got collected and never fired.
    const held: Socket[] = [];
    const silent = createServer((sock) => held.push(sock)).listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const port = (silent.address() as { port: number }).port;
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const collector = setInterval(() => gc(), 50);
    const { ctx, seen, abort } = context(generateIdentity(), { hub: { url: `ws://127.0.0.1:${port}` } });
    try {
      const started = await Promise.race([
        tierPlugin.start(ctx),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('start() never returned')), 20_000)),
      ]);
      expect(started.strategy).toBeDefined();
      expect(seen.network.at(-1)).toEqual({ hubConnected: false });
      abort();
      await started.stop();
    } finally {
      clearInterval(collector);
      for (const sock of held) sock.destroy();
      silent.close();
    }
  }, 30_000);

  it('a Hub that refuses the connection: start() does not wait for the login (the first failed attempt ends the wait)', async () => {
    const probe = createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const warnings: Array<Record<string, unknown>> = [];
    const c = context(generateIdentity(), { hub: { url: `ws://127.0.0.1:${port}` } });
    const { seen, abort } = c;
    const ctx = { ...c.ctx, log: { ...c.ctx.log, warn: (_m: string, f?: Record<string, unknown>) => void warnings.push(f ?? {}) } };
    // A login wait far beyond the test's deadline: only the refused attempt can end it in time.
    const started = await webRtcTier({ loginWaitMs: 600_000 }).start(ctx);
    expect(started.strategy).toBeDefined();
    expect(seen.network.at(-1)).toEqual({ hubConnected: false });
    expect(String(warnings[0]?.error)).toContain('ECONNREFUSED');
    abort();
    await started.stop();
  });

  it('no [hub] url: tier 3 stays off', async () => {
    const { ctx } = context(generateIdentity(), {});
    const started = await tierPlugin.start(ctx);
    expect(started.strategy).toBeUndefined();
    expect(started.info).toMatchObject({ enabled: false, reason: 'no [hub] url' });
  });

  it('logged in: reports the Hub, lists it in the endpoint record, connects and accepts through the strategy; Hub gone → hubConnected false', async () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const ini = { connection: { webrtc_timeout: '7' }, hub: { url }, webrtc: { stun_servers: '' } };
    const a = context(alice, ini);
    const b = context(bob, ini);
    expect(tierPlugin.name).toBe('hub_webrtc');
    const sa = await tierPlugin.start(a.ctx);
    const sb = await tierPlugin.start(b.ctx);
    try {
      await until('alice logged in', () => a.seen.network.at(-1)?.hubConnected === true);
      await until('bob logged in', () => b.seen.network.at(-1)?.hubConnected === true);
      expect(a.seen.parts.at(-1)).toEqual(['hub', url]);
      expect(a.seen.events).toContainEqual({ event: 'webrtc', kind: 'hub-up', hub: url });
      expect(sa.info).toMatchObject({ enabled: true, hub: url, ice_servers: 0 });
      const strategy = sa.strategy;
      if (!strategy) throw new Error('no strategy');
      const peerRecord = record(bob, { hub: url });
      expect(strategy.isApplicable(peerRecord, { hubConnected: false })).toMatchObject({ applicable: false });
      expect(strategy.isApplicable(record(bob, { hub: null }), { hubConnected: true })).toMatchObject({ applicable: false });
      const inbound = once(b.accepted, 'conn');
      const conn = await strategy.connect(peerRecord, { signal: AbortSignal.timeout(10_000), network: { hubConnected: true } });
      const [bConn] = (await inbound) as [Connection];
      expect(conn.tier).toBe('hub_webrtc');
      expect(conn.remoteNodeId).toBe(bob.nodeId);
      expect(bConn.remoteNodeId).toBe(alice.nodeId);
      // On one machine the remote candidate may be learned as peer-reflexive first; never a relay.
      expect(b.seen.events).toContainEqual(
        expect.objectContaining({ event: 'webrtc', kind: 'session', peer: alice.nodeId, proto: 'dpc-tls/1', local: 'host' }),
      );
      const got = once(bConn, 'message');
      await conn.send('over the Hub');
      expect((await got)[0]).toBe('over the Hub');
      await conn.close();
      // A node that is not logged in is reported offline by the Hub: that typed error, not a wait for webrtc_timeout.
      const offline = await strategy
        .connect(record(generateIdentity(), { hub: url }), { signal: AbortSignal.timeout(10_000), network: { hubConnected: true } })
        .then(
          () => undefined,
          (err: { code?: string }) => err,
        );
      expect(offline?.code).toBe('DPC_HUB_PEER_OFFLINE');
      await hub.stop();
      await until('alice noticed the Hub is gone', () => a.seen.network.at(-1)?.hubConnected === false);
      expect(a.seen.parts.at(-1)).toEqual(['hub', null]);
      expect(a.seen.events).toContainEqual({ event: 'webrtc', kind: 'hub-down', hub: url });
    } finally {
      await sa.stop();
      await sb.stop();
    }
  });

  it('[webrtc] stun_servers and [turn] servers / username / credential become the ICE servers, in order', () => {
    const { config } = configFromObject({
      webrtc: { stun_servers: 'stun:198.51.100.1:3478, stun:198.51.100.2:3478' },
      turn: { servers: 'turn:198.51.100.3:3478,turn:198.51.100.3:3478?transport=tcp', username: 'alice', credential: 's3cret' },
    });
    expect(iceServersFromConfig(config)).toEqual([
      { urls: ['stun:198.51.100.1:3478', 'stun:198.51.100.2:3478'] },
      { urls: 'turn:198.51.100.3:3478', username: 'alice', credential: 's3cret' },
      { urls: 'turn:198.51.100.3:3478?transport=tcp', username: 'alice', credential: 's3cret' },
    ]);
    expect(iceServersFromConfig(configFromObject({ webrtc: { stun_servers: '' } }).config)).toEqual([]);
  });
});
