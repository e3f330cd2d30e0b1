import { generateIdentity } from '@dpc/core';
import { createHubServer, presenceValue, type SignalEvent, sealBusMessage } from '@dpc/webrtc-hub';
import { describe, expect, it } from 'vitest';
import { freePort, loggedInClient, onCleanup, RawClient, startHub, startRedis } from './hub-helpers.js';

const CLUSTER = 'test-cluster-secret-0123456789';

async function until(pred: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('several Hubs sharing a real redis-server', () => {
  it('a node on Hub 1 reaches a node on Hub 2, both ways, and an offline node is reported at once', async () => {
    const redis = await startRedis();
    const hub1 = await startHub({ redisUrl: redis.url, clusterSecret: CLUSTER });
    const hub2 = await startHub({ redisUrl: redis.url, clusterSecret: CLUSTER });
    const alice = await loggedInClient(hub1);
    const bob = await loggedInClient(hub2);
    const atBob: SignalEvent[] = [];
    const atAlice: SignalEvent[] = [];
    bob.on('signal', (e) => atBob.push(e));
    alice.on('signal', (e) => atAlice.push(e));
    await alice.send(bob.nodeId, { type: 'offer', sdp: 'o' });
    await bob.send(alice.nodeId, { type: 'answer', sdp: 'a' });
    await until(() => atBob.length === 1 && atAlice.length === 1);
    expect(atBob[0]).toEqual({ from: alice.nodeId, payload: { type: 'offer', sdp: 'o' } });
    expect(atAlice[0]).toEqual({ from: bob.nodeId, payload: { type: 'answer', sdp: 'a' } });
    expect(hub1.counters.get('hub_routed_remote')).toBe(1);
    expect(hub2.counters.get('hub_routed_remote')).toBe(1);
    expect(hub2.counters.get('hub_bus_delivered')).toBe(1);
    await expect(alice.send(generateIdentity().nodeId, 'x')).rejects.toMatchObject({ code: 'DPC_HUB_PEER_OFFLINE' });
    // Bob leaves Hub 2: Hub 1 reports him offline at once (his presence key is gone).
    await bob.stop();
    await until(() => !hub2.hasNode(bob.nodeId));
    await until(() => hub2.stats().connections === 0);
    await expect(alice.send(bob.nodeId, 'x')).rejects.toMatchObject({ code: 'DPC_HUB_PEER_OFFLINE' });
  });

  it('a node that logs in on Hub 2 is taken off Hub 1 (DPC_HUB_REPLACED there)', async () => {
    const redis = await startRedis();
    const hub1 = await startHub({ redisUrl: redis.url, clusterSecret: CLUSTER });
    const hub2 = await startHub({ redisUrl: redis.url, clusterSecret: CLUSTER });
    const me = generateIdentity();
    const first = await RawClient.login(hub1.url, me);
    const second = await RawClient.login(hub2.url, me);
    expect((await first.next((m) => m.t === 'error')).code).toBe('DPC_HUB_REPLACED');
    expect(await first.closed()).toBe(4000);
    const carol = await loggedInClient(hub1);
    await carol.send(me.nodeId, 'via hub 2');
    expect((await second.next((m) => m.t === 'signal')).payload).toBe('via hub 2');
  });

  it('a Hub whose instance died without cleaning up: its stale presence reads as offline', async () => {
    const redis = await startRedis();
    const hub1 = await startHub({ redisUrl: redis.url, clusterSecret: CLUSTER });
    const hub2 = await startHub({ redisUrl: redis.url, clusterSecret: CLUSTER, presenceTtlMs: 60_000 });
    const alice = await loggedInClient(hub1);
    const bob = await RawClient.login(hub2.url);
    await until(() => hub2.hasNode(bob.identity.nodeId));
    // Bob's presence key names an instance that is gone (crashed: nobody listens on its channel).
    const { createClient } = await import('redis');
    const admin = createClient({ url: redis.url });
    await admin.connect();
    const key = `dpc-hub:node:${bob.identity.nodeId}`;
    expect(await admin.get(key)).toMatch(/^[0-9a-f]{16}\.[\w-]{43}$/);
    await admin.set(key, presenceValue(CLUSTER, key, 'deadbeefdeadbeef'), { PX: 60_000 });
    await expect(alice.send(bob.identity.nodeId, 'x')).rejects.toMatchObject({ code: 'DPC_HUB_PEER_OFFLINE' });
    expect(hub1.counters.get('hub_bus_stale_presence')).toBe(1);
    expect(await admin.get(key)).toBeNull();
    await admin.close();
  });

  it('Redis going away: messages between Hubs fail with a typed error, local ones still flow', async () => {
    const redis = await startRedis();
    const hub1 = await startHub({ redisUrl: redis.url, clusterSecret: CLUSTER });
    const hub2 = await startHub({ redisUrl: redis.url, clusterSecret: CLUSTER });
    const alice = await loggedInClient(hub1);
    const bob = await loggedInClient(hub2);
    const carol = await loggedInClient(hub1);
    await redis.stop();
    await expect(alice.send(bob.nodeId, 'x')).rejects.toMatchObject({ code: 'DPC_HUB_UNAVAILABLE', retryable: true });
    await alice.send(carol.nodeId, 'local still works');
    expect(hub1.counters.get('hub_route_failed')).toBeGreaterThanOrEqual(1);
    expect(alice.connected).toBe(true);
  });

  it('Redis restarted (its data lost): presence is written again and routing between Hubs resumes', async () => {
    const redis = await startRedis();
    const hub1 = await startHub({ redisUrl: redis.url, clusterSecret: CLUSTER, presenceTtlMs: 600 });
    const hub2 = await startHub({ redisUrl: redis.url, clusterSecret: CLUSTER, presenceTtlMs: 600 });
    const alice = await loggedInClient(hub1);
    const bob = await loggedInClient(hub2);
    await redis.stop();
    await startRedis(redis.port);
    // Each Hub reconnects, re-subscribes, and re-writes its nodes' presence on its next refresh.
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await alice.send(bob.nodeId, 'after the restart');
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await bob.send(alice.nodeId, 'and back');
    expect(hub1.counters.get('hub_redis_error')).toBeGreaterThan(0);
  });

  it('a Hub whose Redis cannot be reached fails to start with a typed error (no password in it)', async () => {
    const hub = createHubServer({
      host: '127.0.0.1',
      port: 0,
      redisUrl: `redis://:hunter2@127.0.0.1:${await freePort()}`,
      clusterSecret: CLUSTER,
      redisConnectTimeoutMs: 500,
    });
    const err = await hub.start().catch((e: Error) => e);
    await hub.stop();
    expect(err).toMatchObject({ code: 'DPC_HUB_UNAVAILABLE' });
    expect((err as Error).message).not.toContain('hunter2');
  });

  it('redis_url without a cluster secret (or a short one): the Hub refuses to start (DPC_HUB_CONFIG)', async () => {
    const redis = await startRedis();
    for (const clusterSecret of [undefined, 'short']) {
      const hub = createHubServer({ host: '127.0.0.1', port: 0, redisUrl: redis.url, ...(clusterSecret && { clusterSecret }) });
      const err = await hub.start().catch((e: Error) => e);
      await hub.stop();
      expect(err).toMatchObject({ code: 'DPC_HUB_CONFIG' });
      expect((err as Error).message).toContain('cluster_secret');
    }
  });

  it('whoever can publish on Redis without the cluster secret: forged kicks, signals and presence are refused and counted; a replay too', async () => {
    const redis = await startRedis();
    const hub1 = await startHub({ redisUrl: redis.url, clusterSecret: CLUSTER });
    // Presence refreshed every second: a forged value is replaced soon.
    const hub2 = await startHub({ redisUrl: redis.url, clusterSecret: CLUSTER, presenceTtlMs: 3_000 });
    const alice = await loggedInClient(hub1);
    const bob = await loggedInClient(hub2);
    const atBob: SignalEvent[] = [];
    bob.on('signal', (e) => atBob.push(e));
    const { createClient } = await import('redis');
    const admin = createClient({ url: redis.url });
    await admin.connect();
    const spy = admin.duplicate();
    await spy.connect();
    onCleanup(async () => {
      await spy.close().catch(() => {});
      await admin.close().catch(() => {});
    });
    // The attacker reads which instance holds Bob, and every message between the Hubs.
    const bobKey = `dpc-hub:node:${bob.nodeId}`;
    const hub2Instance = String(await admin.get(bobKey)).split('.')[0] as string;
    const hub2Channel = `dpc-hub:inst:${hub2Instance}`;
    const captured: string[] = [];
    await spy.subscribe(hub2Channel, (m) => captured.push(m));

    // 1. Untagged (the format before authentication) and wrongly tagged kicks: Bob stays logged in.
    const kick = JSON.stringify({ k: 'kick', node_id: bob.nodeId, ts: Date.now() });
    expect(await admin.publish(hub2Channel, kick)).toBeGreaterThanOrEqual(1);
    expect(await admin.publish(hub2Channel, sealBusMessage('not-the-cluster-secret', hub2Channel, kick))).toBeGreaterThanOrEqual(1);
    // 2. A forged signal "from Alice" to Bob, tagged with a guessed secret.
    const forgedSig = JSON.stringify({
      k: 'sig',
      rid: 'x',
      from: alice.nodeId,
      to: bob.nodeId,
      payload: 'forged',
      reply: hub2Instance,
      ts: Date.now(),
    });
    await admin.publish(hub2Channel, sealBusMessage('not-the-cluster-secret', hub2Channel, forgedSig));
    await until(() => hub2.counters.get('hub_bus_forged') === 3);
    expect(hub2.counters.get('hub_bus_kick_received')).toBe(0);
    expect(hub2.hasNode(bob.nodeId)).toBe(true);
    expect(bob.connected).toBe(true);
    expect(hub2.counters.get('hub_bus_delivered')).toBe(0);

    // 3. A real message, recorded and published again: delivered once, the replay refused.
    await alice.send(bob.nodeId, 'genuine');
    await until(() => atBob.length === 1 && captured.some((m) => m.includes('genuine')));
    const recorded = captured.find((m) => m.includes('genuine')) as string;
    await admin.publish(hub2Channel, recorded);
    // …and the same message re-addressed to another instance's channel is refused there.
    const hub1Instance = String(await admin.get(`dpc-hub:node:${alice.nodeId}`)).split('.')[0] as string;
    await admin.publish(`dpc-hub:inst:${hub1Instance}`, recorded);
    await until(() => hub2.counters.get('hub_bus_replayed') === 1 && hub1.counters.get('hub_bus_forged') === 1);
    expect(hub2.counters.get('hub_bus_delivered')).toBe(1);
    expect(atBob.map((e) => e.payload)).toEqual(['genuine']);

    // 4. Presence pointing Bob to the attacker's own instance: not followed (nothing is published
    // there), Bob reads as offline until his Hub rewrites his presence.
    const attacker: string[] = [];
    await spy.subscribe('dpc-hub:inst:0123456789abcdef', (m) => attacker.push(m));
    await admin.set(bobKey, '0123456789abcdef'); // no expiry: it would stay
    await expect(alice.send(bob.nodeId, 'to the fake instance?')).rejects.toMatchObject({ code: 'DPC_HUB_PEER_OFFLINE' });
    expect(hub1.counters.get('hub_bus_forged_presence')).toBeGreaterThanOrEqual(1);
    expect(attacker).toEqual([]);
    expect(atBob.map((e) => e.payload)).toEqual(['genuine']);
    // Bob's Hub puts his presence back on its next refresh: he is reachable again.
    await until(() => hub2.counters.get('hub_bus_forged_presence_replaced') >= 1);
    await alice.send(bob.nodeId, 'reachable again');
    await until(() => atBob.length === 2);
    expect(atBob.map((e) => e.payload)).toEqual(['genuine', 'reachable again']);
    expect(attacker).toEqual([]);
  });

  it('a message recorded long ago (sender clock outside the window) is refused as stale', async () => {
    const redis = await startRedis();
    const hub2 = await startHub({ redisUrl: redis.url, clusterSecret: CLUSTER, busMaxSkewMs: 2_000 });
    const bob = await loggedInClient(hub2);
    const { createClient } = await import('redis');
    const admin = createClient({ url: redis.url });
    await admin.connect();
    onCleanup(() => admin.close().catch(() => {}));
    const channel = `dpc-hub:inst:${String(await admin.get(`dpc-hub:node:${bob.nodeId}`)).split('.')[0]}`;
    const old = JSON.stringify({ k: 'kick', node_id: bob.nodeId, ts: Date.now() - 60_000 });
    await admin.publish(channel, sealBusMessage(CLUSTER, channel, old));
    await until(() => hub2.counters.get('hub_bus_stale') === 1);
    expect(hub2.counters.get('hub_bus_kick_received')).toBe(0);
    expect(bob.connected).toBe(true);
  });
});
