// The tier-3 plugin through its TierContext: config keys honoured (enable_hub_webrtc, [hub] url,
// webrtc_timeout, STUN/TURN lists), hubConnected reported as the Hub link goes up and down, the
// endpoint record's `hub` part, inbound sessions handed to ctx.accept.
import { EventEmitter, once } from 'node:events';
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
import { type HubLink, iceServersFromConfig, webRtcTier } from '@dpc/webrtc-hub';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Relay, relaySignaller, startRelay } from './rtc-relay.js';

/** A HubLink over the test relay: up once the socket is open, down when the test says so. */
async function relayLink(url: string, nodeId: string): Promise<HubLink & { goDown(): void; iceAsked: number }> {
  const s = await relaySignaller(url, nodeId);
  const ev = new EventEmitter();
  let connected = true;
  const link: HubLink & { goDown(): void; iceAsked: number } = {
    iceAsked: 0,
    get connected() {
      return connected;
    },
    send: (to, payload, opts) => s.send(to, payload, opts),
    on(event: string, fn: (e: { from: string; payload: unknown }) => void) {
      if (event === 'signal') s.on('signal', fn);
      else ev.on(event, fn as () => void);
      return this;
    },
    off: (_e, fn) => s.off('signal', fn),
    // What a Hub hands out (TURN with short-lived credentials) is read at each attempt; none here.
    iceServers() {
      link.iceAsked++;
      return [];
    },
    close: () => s.close(),
    goDown() {
      connected = false;
      ev.emit('down');
    },
  };
  return link;
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

describe('webRtcTier plugin', () => {
  let relay: Relay;
  beforeAll(async () => {
    relay = await startRelay();
  });
  afterAll(() => relay.close());

  it('enable_hub_webrtc = false: no strategy, no Hub link, hubConnected false', async () => {
    let linked = false;
    const plugin = webRtcTier({
      connectHub: async () => {
        linked = true;
        throw new Error('must not link');
      },
    });
    const { ctx, seen } = context(generateIdentity(), { connection: { enable_hub_webrtc: 'false' }, hub: { url: relay.url } });
    const started = await plugin.start(ctx);
    expect(started.strategy).toBeUndefined();
    expect(started.info).toMatchObject({ enabled: false, reason: 'enable_hub_webrtc = false' });
    expect(linked).toBe(false);
    expect(seen.network).toEqual([{ hubConnected: false }]);
    await started.stop();
  });

  it('no [hub] url: tier 3 stays off', async () => {
    const { ctx } = context(generateIdentity(), {});
    const started = await webRtcTier({ connectHub: async () => Promise.reject(new Error('no')) }).start(ctx);
    expect(started.strategy).toBeUndefined();
    expect(started.info).toMatchObject({ enabled: false, reason: 'no [hub] url' });
  });

  it('linked: reports the Hub, lists it in the endpoint record, connects and accepts through the strategy, and reports the Hub going down', async () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const ini = { connection: { webrtc_timeout: '7' }, hub: { url: relay.url }, webrtc: { stun_servers: '' } };
    const a = context(alice, ini);
    const b = context(bob, ini);
    const linkA = await relayLink(relay.url, alice.nodeId);
    const linkB = await relayLink(relay.url, bob.nodeId);
    const sa = await webRtcTier({ connectHub: async () => linkA }).start(a.ctx);
    const sb = await webRtcTier({ connectHub: async () => linkB }).start(b.ctx);
    try {
      expect(a.seen.network.at(-1)).toEqual({ hubConnected: true });
      expect(a.seen.parts.at(-1)).toEqual(['hub', relay.url]);
      expect(sa.info).toMatchObject({ enabled: true, hub: relay.url, ice_servers: 0 });
      const strategy = sa.strategy;
      if (!strategy) throw new Error('no strategy');
      expect(strategy.name).toBe('hub_webrtc');
      const peerRecord = record(bob, { hub: relay.url });
      expect(strategy.isApplicable(peerRecord, { hubConnected: false })).toMatchObject({ applicable: false });
      const inbound = once(b.accepted, 'conn');
      const conn = await strategy.connect(peerRecord, { signal: AbortSignal.timeout(10_000), network: { hubConnected: true } });
      const [bConn] = (await inbound) as [Connection];
      expect(bConn.remoteNodeId).toBe(alice.nodeId);
      expect(conn.tier).toBe('hub_webrtc');
      expect(linkA.iceAsked).toBe(1);
      expect(linkB.iceAsked).toBe(1);
      const got = once(bConn, 'message');
      await conn.send('over the plugin');
      expect((await got)[0]).toBe('over the plugin');
      await conn.close();
      linkA.goDown();
      expect(a.seen.network.at(-1)).toEqual({ hubConnected: false });
      expect(a.seen.parts.at(-1)).toEqual(['hub', null]);
      expect(a.seen.events).toContainEqual({ event: 'webrtc', kind: 'hub-down', hub: relay.url });
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
