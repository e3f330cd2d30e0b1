// Tier plugins see the node only through their TierContext. Real nodes in one process: DHT over
// UDP, direct TCP and the real @dpc/relay plugin on loopback; the test plugins below are
// scripted tiers (no tier 3 or 4 package exists yet) that use the context as a real one would.
import {
  type Applicability,
  type DpcConfig,
  isDpcError,
  type NetworkState,
  type SignedRecord,
  type Strategy,
  type TierContext,
  TierNotApplicableError,
  type TierPlugin,
} from '@dpc/core';
import { tierPlugin as relayPlugin } from '@dpc/relay';
import { describe, expect, it } from 'vitest';
import { type InProcessNodeOptions, startInProcessNode, until } from './harness.js';

/** A started in-process node (harness.ts) with these plugins (default none) and config changes. */
const node = (seed: string | undefined, extra: InProcessNodeOptions = {}, mutate?: (c: DpcConfig) => void) =>
  startInProcessNode(seed, { ...extra, ...(mutate && { mutate }) });

/** A scripted tier: hands its context to the test and offers a strategy that records the network state it is shown. */
function scripted(name: 'hub_webrtc' | 'udp_hole_punch') {
  const seen: NetworkState[] = [];
  let ctx: TierContext | undefined;
  let stopped = false;
  const strategy: Strategy = {
    name,
    priority: name === 'hub_webrtc' ? 3 : 4,
    isApplicable(_peer: SignedRecord<'endpoint'>, network: NetworkState): Applicability {
      seen.push({ ...network });
      return { applicable: false, reason: 'scripted tier never connects' };
    },
    connect: async () => {
      throw new TierNotApplicableError(name, 'scripted tier never connects');
    },
  };
  const plugin: TierPlugin = {
    name,
    async start(c) {
      ctx = c;
      return { strategy, stop: async () => void (stopped = true) };
    },
  };
  return { plugin, seen, ctx: () => ctx as TierContext, stopped: () => stopped };
}

describe('TierContext: what a tier plugin sees of dpc-node', () => {
  it('a part set by a plugin is re-signed and re-announced; parts owned by another are refused with a typed error', async () => {
    const boot = await node(undefined);
    const seed = `127.0.0.1:${boot.dht.address?.port}`;
    const hub = scripted('hub_webrtc');
    const punch = scripted('udp_hole_punch');
    const bob = await node(seed, { plugins: [hub.plugin, punch.plugin] });
    const alice = await node(seed);
    const first = await alice.dht.findPeer(bob.nodeId, { signal: AbortSignal.timeout(5000) });
    expect(first.body.hub).toBeNull();

    hub.ctx().setEndpointPart('hub', 'wss://hub.example/dpc');
    punch.ctx().setEndpointPart('nat_type', 'cone');
    const owned = (f: () => void) => {
      try {
        f();
      } catch (err) {
        return err;
      }
      return undefined;
    };
    expect(
      isDpcError(
        owned(() => punch.ctx().setEndpointPart('hub', null)),
        'DPC_ENDPOINT_PART_OWNED',
      ),
    ).toBe(true);
    expect(owned(() => hub.ctx().setEndpointPart('ipv4_local', []))).toMatchObject({ code: 'DPC_ENDPOINT_PART_OWNED', owner: 'node' });
    expect(owned(() => hub.ctx().setEndpointPart('signal_via', []))).toMatchObject({ owner: 'dht' });

    const updated = await until('the re-announced record', async () => {
      const r = await alice.dht.findPeer(bob.nodeId, { signal: AbortSignal.timeout(5000) });
      return r.body.hub === 'wss://hub.example/dpc' && r.body.nat_type === 'cone' ? r : undefined;
    });
    expect(updated.seq).toBeGreaterThan(first.seq);
    expect(updated.body.ipv4_local).toEqual(first.body.ipv4_local); // the node's parts are untouched
  });

  it('reportNetwork reaches the orchestrator: tier 3 reports the Hub up, and the hybrid rule then skips tier 5', async () => {
    const boot = await node(undefined);
    const seed = `127.0.0.1:${boot.dht.address?.port}`;
    const hub = scripted('hub_webrtc');
    const alice = await node(seed, { plugins: [hub.plugin, relayPlugin] });
    const bob = await node(seed);
    const reported: NetworkState[] = [];
    alice.on('network', (n) => reported.push(n));

    // Before: no Hub, so tier 3 is skipped without asking the strategy.
    expect(await alice.send(bob.nodeId, 'before', { tiers: ['hub_webrtc', 'ipv4_direct'] })).toMatchObject({ tier: 'ipv4_direct' });
    expect(hub.seen).toEqual([]);

    hub.ctx().reportNetwork({ hubConnected: true, natType: 'cone' });
    expect(reported.at(-1)).toMatchObject({ hubConnected: true, natType: 'cone' });
    const err = await alice.send(bob.nodeId, 'over a relay?', { tiers: ['hub_webrtc', 'volunteer_relay'] }).catch((e: unknown) => e);
    expect(hub.seen.at(-1)).toMatchObject({ hubConnected: true, natType: 'cone' });
    expect(err).toMatchObject({ code: 'DPC_CONNECT_FAILED' });
    const outcomes = (err as { tiers: Array<{ tier: string; result: string; reason?: string }> }).tiers;
    expect(outcomes.find((t) => t.tier === 'volunteer_relay')).toMatchObject({ result: 'skipped', reason: expect.stringMatching(/hub/) });
  });

  it('the relay plugin lists its reservation in the endpoint record through its context, and tier 5 reaches the node', async () => {
    const boot = await node(undefined);
    const seed = `127.0.0.1:${boot.dht.address?.port}`;
    const relay = await node(seed, { plugins: [relayPlugin] }, (c) => {
      c.relay.volunteer = true;
      c.relay.port = 0;
      c.relay.region = 'test';
    });
    const events: Array<{ event: string; fields: Record<string, unknown> }> = [];
    relay.on('tier-event', (e) => events.push(e));
    const bob = await node(seed, { plugins: [relayPlugin] }, (c) => {
      c.relay.reserve = 'always';
    });
    const alice = await node(seed, { plugins: [relayPlugin] });
    const rec = await until('bob listing the relay', async () => {
      const r = await alice.dht.findPeer(bob.nodeId, { signal: AbortSignal.timeout(5000) });
      return r.body.relays.some((x) => x.node_id === relay.nodeId) ? r : undefined;
    });
    expect(rec.body.relays[0]).toMatchObject({ node_id: relay.nodeId, ip: '127.0.0.1' });
    expect(await alice.send(bob.nodeId, 'through the relay', { tiers: ['volunteer_relay'] })).toMatchObject({ tier: 'volunteer_relay' });
    expect(events.some((e) => e.event === 'relay' && e.fields.kind === 'session')).toBe(true);
    expect(bob.installedTiers()).toContain('volunteer_relay');
  });

  it('an absent tier package is reported as not installed, and the node runs and sends over direct', async () => {
    const absent = '@dpc/not-installed-tier';
    const boot = await node(undefined);
    const seed = `127.0.0.1:${boot.dht.address?.port}`;
    const missing: Array<{ tier: string; package: string }> = [];
    const alice = await startInProcessNode(seed, {
      // A real dynamic import of a package that is not installed: ERR_MODULE_NOT_FOUND.
      tierPackages: [{ tier: 'hub_webrtc', package: absent, import: () => import(absent) }],
      beforeStart: (n) => n.on('tier-not-installed', (e) => missing.push(e)),
    });
    const bob = await node(seed);
    expect(missing).toEqual([{ tier: 'hub_webrtc', package: absent }]);
    expect(alice.missingTiers).toEqual(missing);
    expect(alice.installedTiers()).not.toContain('hub_webrtc');
    expect(await alice.send(bob.nodeId, 'no hub tier here')).toMatchObject({ tier: 'ipv4_direct' });
  });

  it('a plugin is stopped when the node stops, and its context signal aborts', async () => {
    const hub = scripted('hub_webrtc');
    const n = await node(undefined, { plugins: [hub.plugin] });
    const signal = hub.ctx().signal;
    expect(signal.aborted).toBe(false);
    await n.stop();
    expect(signal.aborted).toBe(true);
    expect(hub.stopped()).toBe(true);
  });

  it('a tier shares the DHT socket through its context: it receives its datagrams and answers from the same port', async () => {
    const punch = scripted('udp_hole_punch');
    const n = await node(undefined, { plugins: [punch.plugin] });
    const got: Array<{ text: string; port: number }> = [];
    const proto = punch.ctx().dht.registerProtocol({
      name: 'test-punch',
      prefix: 0x01,
      onMessage: (msg, from) => {
        got.push({ text: msg.subarray(1).toString(), port: from.port });
        void proto.send(Buffer.from([0x01, ...Buffer.from('pong')]), from);
      },
    });
    const { createSocket } = await import('node:dgram');
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const reply = new Promise<{ text: string; port: number }>((resolve) =>
      sock.once('message', (m, rinfo) => resolve({ text: m.subarray(1).toString(), port: rinfo.port })),
    );
    const dhtPort = (n.dht.address as { port: number }).port;
    sock.send(Buffer.from([0x01, ...Buffer.from('ping')]), dhtPort, '127.0.0.1');
    expect(await reply).toEqual({ text: 'pong', port: dhtPort });
    expect(got).toEqual([{ text: 'ping', port: (sock.address() as { port: number }).port }]);
    proto.close();
    sock.close();
  });

  it('a deferred path offered by a plugin becomes the orchestrator’s tier 6', async () => {
    const { EventEmitter } = await import('node:events');
    const submitted: unknown[] = [];
    const deferred = Object.assign(new EventEmitter(), {
      tier: 'gossip' as const,
      async submit(_to: unknown, item: unknown) {
        submitted.push(item);
      },
      async receipt() {},
    });
    const plugin: TierPlugin = { name: 'gossip', start: async () => ({ deferred, stop: async () => {} }) };
    const boot = await node(undefined);
    const seed = `127.0.0.1:${(boot.dht.address as { port: number }).port}`;
    const alice = await node(seed, { plugins: [plugin] }, (c) => {
      c.connection.gossip_timeout = 0.3;
    });
    const bob = await node(seed);
    const bobId = bob.nodeId;
    expect(await alice.send(bobId, 'live first')).toMatchObject({ tier: 'ipv4_direct' });
    await bob.stop();
    const r = await alice.send(bobId, 'while bob is away', { wait: 'accepted', signal: AbortSignal.timeout(15_000) });
    expect(r.seq).toBe(2);
    for (let i = 0; i < 200 && submitted.length === 0; i++) await new Promise((res) => setTimeout(res, 50));
    expect(submitted).toHaveLength(1);
    expect(alice.orchestrator.session(bobId)?.tier).toBe('gossip');
  });
});
