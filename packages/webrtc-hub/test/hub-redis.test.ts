import { generateIdentity } from '@dpc/core';
import { createHubServer, type SignalEvent } from '@dpc/webrtc-hub';
import { describe, expect, it } from 'vitest';
import { freePort, loggedInClient, RawClient, startHub, startRedis } from './hub-helpers.js';

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
    const hub1 = await startHub({ redisUrl: redis.url });
    const hub2 = await startHub({ redisUrl: redis.url });
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
    const hub1 = await startHub({ redisUrl: redis.url });
    const hub2 = await startHub({ redisUrl: redis.url });
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
    const hub1 = await startHub({ redisUrl: redis.url });
    const hub2 = await startHub({ redisUrl: redis.url, presenceTtlMs: 60_000 });
    const alice = await loggedInClient(hub1);
    const bob = await RawClient.login(hub2.url);
    await until(() => hub2.hasNode(bob.identity.nodeId));
    // Bob's presence key names an instance that is gone (crashed: nobody listens on its channel).
    const { createClient } = await import('redis');
    const admin = createClient({ url: redis.url });
    await admin.connect();
    const key = `dpc-hub:node:${bob.identity.nodeId}`;
    expect(await admin.get(key)).toMatch(/^[0-9a-f]{16}$/);
    await admin.set(key, 'deadbeefdeadbeef', { PX: 60_000 });
    await expect(alice.send(bob.identity.nodeId, 'x')).rejects.toMatchObject({ code: 'DPC_HUB_PEER_OFFLINE' });
    expect(hub1.counters.get('hub_bus_stale_presence')).toBe(1);
    expect(await admin.get(key)).toBeNull();
    await admin.close();
  });

  it('Redis going away: messages between Hubs fail with a typed error, local ones still flow', async () => {
    const redis = await startRedis();
    const hub1 = await startHub({ redisUrl: redis.url });
    const hub2 = await startHub({ redisUrl: redis.url });
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
    const hub1 = await startHub({ redisUrl: redis.url, presenceTtlMs: 600 });
    const hub2 = await startHub({ redisUrl: redis.url, presenceTtlMs: 600 });
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
      redisConnectTimeoutMs: 500,
    });
    const err = await hub.start().catch((e: Error) => e);
    await hub.stop();
    expect(err).toMatchObject({ code: 'DPC_HUB_UNAVAILABLE' });
    expect((err as Error).message).not.toContain('hunter2');
  });
});
