import { createRecord, defaultConfig, emptyEndpointBody, generateIdentity, kademliaIdOf } from '@dpc/core';
import {
  commonPrefixLength,
  compareDistance,
  dhtOptionsFromConfig,
  exceedsSubnetLimit,
  isLoopback,
  isPrivate,
  majorityVote,
  parseSeed,
  RateLimiter,
  RecordStore,
  relayIndexKey,
  relayIndexKeys,
  subnetKey,
  xorDistance,
} from '@dpc/dht';
import { describe, expect, it } from 'vitest';

const strict = { allowLoopback: false, allowPrivate: false };
const relaxed = { allowLoopback: true, allowPrivate: false };

describe('XOR metric', () => {
  it('orders ids by XOR distance to the target', () => {
    const t = Buffer.alloc(16);
    const a = Buffer.alloc(16);
    a[15] = 1;
    const b = Buffer.alloc(16);
    b[0] = 0x80;
    expect(xorDistance(a, b).toString('hex')).toBe(`80${'00'.repeat(14)}01`);
    expect(compareDistance(a, b, t)).toBeLessThan(0);
    expect(compareDistance(b, a, t)).toBeGreaterThan(0);
    expect(compareDistance(a, a, t)).toBe(0);
  });

  it.each([
    ['00', '80', 0],
    ['00', '40', 1],
    ['ff', 'fe', 7],
    ['00', '00', 128],
  ])('common prefix of %s.. and %s.. is %i bits', (x, y, n) => {
    const a = Buffer.alloc(16);
    const b = Buffer.alloc(16);
    a[0] = Number.parseInt(x, 16);
    b[0] = Number.parseInt(y, 16);
    expect(commonPrefixLength(a, b)).toBe(n);
  });
});

describe('subnets and the bucket diversity rule', () => {
  it.each([
    ['203.0.113.7', 1, '203.0.113.0/24'],
    ['203.0.113.200', 2, '203.0.113.0/24'],
    ['::ffff:203.0.113.9', 3, '203.0.113.0/24'],
    ['2001:db8:1:2:aaaa::1', 4, '2001:db8:1:2::/64'],
    ['2001:db8:1:2::ffff', 5, '2001:db8:1:2::/64'],
    ['2001:db8:1:3::1', 6, '2001:db8:1:3::/64'],
    ['127.0.0.1', 7, '127.0.0.0/24'],
  ])('%s is in %s with the rule on', (ip, port, subnet) => {
    expect(subnetKey(ip, port, strict)).toBe(subnet);
  });

  it('treats each loopback ip:port as its own subnet only when allowLoopback is set', () => {
    expect(subnetKey('127.0.0.1', 4000, relaxed)).toBe('127.0.0.1:4000');
    expect(subnetKey('::1', 4000, relaxed)).toBe('::1:4000');
    expect(subnetKey('203.0.113.7', 4000, relaxed)).toBe('203.0.113.0/24');
    expect(subnetKey('192.168.1.4', 1, { allowLoopback: false, allowPrivate: true })).toBe('192.168.1.4:1');
  });

  it.each([
    ['127.0.0.1', true, false],
    ['::1', true, false],
    ['10.1.2.3', false, true],
    ['172.20.0.1', false, true],
    ['172.32.0.1', false, false],
    ['192.168.0.9', false, true],
    ['fd00::1', false, true],
    ['fe80::1', false, true],
    ['8.8.8.8', false, false],
    ['2001:db8::1', false, false],
  ])('%s: loopback %s, private %s', (ip, lo, priv) => {
    expect(isLoopback(ip)).toBe(lo);
    expect(isPrivate(ip)).toBe(priv);
  });

  const c = (n: number, subnet: string) => ({ id: Buffer.alloc(16, n), subnet });
  it('refuses a third contact from one /24 in a bucket', () => {
    const bucket = [c(1, '203.0.113.0/24'), c(2, '203.0.113.0/24'), c(3, '198.51.100.0/24')];
    expect(exceedsSubnetLimit(bucket, c(4, '203.0.113.0/24'))).toBe(true);
    expect(exceedsSubnetLimit(bucket, c(4, '198.51.100.0/24'))).toBe(false);
    expect(exceedsSubnetLimit(bucket, c(4, '192.0.2.0/24'))).toBe(false);
    // A known contact refreshing itself is never refused.
    expect(exceedsSubnetLimit(bucket, c(1, '203.0.113.0/24'))).toBe(false);
    expect(exceedsSubnetLimit(bucket, c(4, '203.0.113.0/24'), 3)).toBe(false);
  });
});

describe('rate limiter', () => {
  it('allows a burst, then the sustained rate, per key', () => {
    let now = 0;
    const rl = new RateLimiter({ perSecond: 10, burst: 5, now: () => now });
    const takes = (key: string, n: number) => Array.from({ length: n }, () => rl.take(key)).filter(Boolean).length;
    expect(takes('a', 20)).toBe(5);
    expect(takes('b', 3)).toBe(3); // another host is not hurt
    now += 500;
    expect(takes('a', 20)).toBe(5);
    now += 100;
    expect(takes('a', 20)).toBe(1);
  });

  it('tracks a bounded number of hosts', () => {
    const rl = new RateLimiter({ perSecond: 1, burst: 1, maxKeys: 100 });
    for (let i = 0; i < 1000; i++) rl.take(`10.0.${i >> 8}.${i & 255}`);
    expect(rl.trackedKeys).toBe(100);
  });
});

describe('record storage', () => {
  const alice = generateIdentity();
  const mallory = generateIdentity();
  const body = { ...emptyEndpointBody(), ipv4_external: [{ ip: '198.51.100.7', port: 8888 }] };
  const aliceKey = kademliaIdOf(alice.nodeId);
  const offer = (id = generateIdentity(), region = 'us-west', seq?: number) =>
    createRecord(id, {
      kind: 'relay-offer',
      body: {
        node_id: id.nodeId,
        ip: '203.0.113.1',
        port: 443,
        available: true,
        max_peers: 10,
        current_peers: 1,
        region,
        uptime: 0.99,
        latency_ms: 20,
        bandwidth_mbps: 100,
      },
      ...(seq === undefined ? {} : { seq }),
    });

  it('keeps the newest seq and refuses an older one', () => {
    const store = new RecordStore();
    expect(store.put(aliceKey, createRecord(alice, { kind: 'endpoint', body, seq: 2 }).encoded, 'h')).toEqual({
      ok: true,
      replaced: false,
    });
    expect(store.put(aliceKey, createRecord(alice, { kind: 'endpoint', body, seq: 1 }).encoded, 'h')).toMatchObject({
      ok: false,
      reason: 'stale',
    });
    expect(store.put(aliceKey, createRecord(alice, { kind: 'endpoint', body, seq: 3 }).encoded, 'h')).toEqual({ ok: true, replaced: true });
    expect(store.get(aliceKey).map((r) => r.seq)).toEqual([3]);
    expect(store.size).toBe(1);
  });

  it('refuses a record under another node id, tampered bytes, and drops expired ones', () => {
    let now = Date.now();
    const store = new RecordStore({ now: () => now });
    expect(store.put(aliceKey, createRecord(mallory, { kind: 'endpoint', body }).encoded, 'h')).toMatchObject({ reason: 'wrong_key' });
    const good = createRecord(alice, { kind: 'endpoint', body, ttlMs: 1000 });
    const tampered = Buffer.from(good.encoded);
    tampered.writeUInt8((tampered.at(-80) as number) ^ 1, tampered.length - 80);
    expect(store.put(aliceKey, tampered, 'h')).toMatchObject({ ok: false, reason: 'bad_record' });
    expect(store.put(aliceKey, good.encoded, 'h').ok).toBe(true);
    now += 2000;
    expect(store.get(aliceKey)).toEqual([]);
    expect(store.sweep()).toBe(1);
    expect(store.size).toBe(0);
  });

  it('bounds records per source host, in total, and offers per key', () => {
    const store = new RecordStore({ maxRecordsPerHost: 2, maxRecords: 3, maxOffersPerKey: 2 });
    const global = relayIndexKey();
    expect(store.put(global, offer().encoded, 'h1').ok).toBe(true);
    expect(store.put(global, offer().encoded, 'h1').ok).toBe(true);
    expect(store.put(relayIndexKey('us-west'), offer().encoded, 'h1')).toMatchObject({ reason: 'host_quota' });
    // Key full: a new offer replaces the one expiring first only if it lives longer.
    expect(store.put(relayIndexKey('us-west'), offer().encoded, 'h2').ok).toBe(true);
    expect(store.put(relayIndexKey('eu'), offer(generateIdentity(), 'eu').encoded, 'h3')).toMatchObject({ reason: 'storage_full' });
    expect(store.size).toBe(3);
  });

  it('stores relay offers only under their index keys', () => {
    const store = new RecordStore();
    const o = offer(generateIdentity(), 'us-west');
    expect(store.put(relayIndexKey('*'), o.encoded, 'h').ok).toBe(true);
    expect(store.put(relayIndexKey('us-west'), o.encoded, 'h').ok).toBe(true);
    expect(store.put(relayIndexKey('eu-central'), o.encoded, 'h')).toMatchObject({ reason: 'wrong_key' });
    expect(store.put(kademliaIdOf(o.nodeId), o.encoded, 'h')).toMatchObject({ reason: 'wrong_key' });
  });
});

describe('relay index keys', () => {
  it('are SHA-256("dpc-relay:" + region)[0..16], global first', () => {
    expect(relayIndexKey('*').toString('hex')).toBe(relayIndexKey().toString('hex'));
    expect(relayIndexKey('US-West ').equals(relayIndexKey('us-west'))).toBe(true);
    const keys = relayIndexKeys('us-west');
    expect(keys).toHaveLength(2);
    expect(keys[0]?.equals(relayIndexKey('*'))).toBe(true);
    expect(relayIndexKeys('*')).toHaveLength(1);
    // Golden value: changing the scheme breaks every published relay offer.
    expect(relayIndexKey('*').toString('hex')).toMatchInlineSnapshot(`"01cc54af349597db21802f9e4fc9a62c"`);
  });
});

describe('majority vote of reflexive endpoints', () => {
  const s = (ip: string, port: number) => ({ ip, port });
  it.each([
    [[s('203.0.113.5', 4000), s('203.0.113.5', 4000), s('203.0.113.5', 4000)], '203.0.113.5:4000', 3, true],
    [[s('203.0.113.5', 4000), s('203.0.113.5', 4001), s('203.0.113.5', 4000)], '203.0.113.5:4000', 2, true],
    [[s('203.0.113.5', 4000), s('203.0.113.5', 4001), s('203.0.113.5', 4002)], '203.0.113.5:4000', 1, false],
    [[s('203.0.113.5', 4000)], '203.0.113.5:4000', 1, true],
  ])('%j → %s', (samples, winner, votes, majority) => {
    const v = majorityVote(samples);
    expect(`${v?.ip}:${v?.port}`).toBe(winner);
    expect(v?.votes).toBe(votes);
    expect(v?.majority).toBe(majority);
  });
  it('has no winner without samples', () => {
    expect(majorityVote([])).toBeNull();
  });
});

describe('config', () => {
  it('builds DHT options from [dht], seconds to ms', () => {
    const cfg = defaultConfig();
    cfg.dht.seed_nodes = ['198.51.100.1:8889', '[2001:db8::1]:8889'];
    const id = generateIdentity();
    const o = dhtOptionsFromConfig(cfg, id);
    expect(o).toMatchObject({
      port: 8889,
      k: 20,
      alpha: 3,
      bootstrapTimeoutMs: 10_000,
      lookupTimeoutMs: 10_000,
      announceIntervalMs: 1_800_000,
    });
    expect(o.seeds).toEqual([
      { host: '198.51.100.1', port: 8889 },
      { host: '2001:db8::1', port: 8889 },
    ]);
    expect(() => parseSeed('nope')).toThrow(expect.objectContaining({ code: 'DPC_CONFIG' }));
  });
});
