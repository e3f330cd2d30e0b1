import { createRecord, defaultConfig, emptyEndpointBody, generateIdentity, kademliaIdOf } from '@dpc/core';
import {
  commonPrefixLength,
  compareDistance,
  dhtOptionsFromConfig,
  exceedsSubnetLimit,
  hostKey,
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

  it('keys a host by its IPv4 address or its IPv6 /64', () => {
    const rl = new RateLimiter({ perSecond: 1, burst: 3, now: () => 0 });
    const v6 = ['2001:db8:1:2::5', '2001:db8:1:2:ffff::9', '2001:db8:1:2:1:2:3:4', '2001:db8:1:2::77'];
    expect(v6.map((ip, i) => rl.take(hostKey(ip, 1000 + i, strict)))).toEqual([true, true, true, false]);
    expect(rl.take(hostKey('2001:db8:1:3::1', 1, strict))).toBe(true);
    expect(hostKey('203.0.113.7', 1, strict)).toBe('203.0.113.7');
    expect(hostKey('203.0.113.8', 1, strict)).toBe('203.0.113.8');
    expect(hostKey('::ffff:203.0.113.7', 1, strict)).toBe('203.0.113.7');
    expect(hostKey('::1', 5, relaxed)).toBe('::1:5');
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

  it('bounds records per source, in total, and offers per key', () => {
    const store = new RecordStore({ maxRecordsPerHost: 2, maxRecords: 3, maxOffersPerKey: 2 });
    const global = relayIndexKey();
    expect(store.put(global, offer().encoded, 'h1').ok).toBe(true);
    expect(store.put(global, offer().encoded, 'h1').ok).toBe(true);
    expect(store.put(relayIndexKey('us-west'), offer().encoded, 'h1')).toMatchObject({ reason: 'host_quota' });
    expect(store.put(relayIndexKey('us-west'), offer().encoded, 'h2').ok).toBe(true);
    // Store full: a newcomer evicts the oldest record of the source holding the most (h1 holds 2)…
    expect(store.put(relayIndexKey('eu'), offer(generateIdentity(), 'eu').encoded, 'h3')).toEqual({
      ok: true,
      replaced: false,
      evicted: 'storage',
    });
    expect([store.countFrom('h1'), store.countFrom('h2'), store.countFrom('h3')]).toEqual([1, 1, 1]);
    // …and once every source holds an even share, the store is full.
    expect(store.put(relayIndexKey('eu'), offer(generateIdentity(), 'eu').encoded, 'h4')).toMatchObject({ reason: 'storage_full' });
    expect(store.size).toBe(3);
  });

  it('squatting: 64 fake relay offers expiring in 9999 from several identities do not push out the real relay', () => {
    let now = Date.now();
    const store = new RecordStore({ now: () => now });
    const key = relayIndexKey();
    const real = offer();
    expect(store.put(key, real.encoded, '198.51.100.0/24')).toEqual({ ok: true, replaced: false });
    const year9999 = Date.UTC(9999, 0, 1) - now;
    const fakes = Array.from({ length: 64 }, (_, i) => {
      const id = generateIdentity();
      return createRecord(id, {
        kind: 'relay-offer',
        body: { ...offer().body, node_id: id.nodeId, ip: `203.0.113.${i}` },
        ttlMs: year9999,
      });
    });
    // From one place: 4 slots of the key, whatever the number of identities.
    const one = fakes.map((f) => {
      now++;
      return store.put(key, f.encoded, '203.0.113.0/24');
    });
    expect(one.filter((r) => r.ok)).toHaveLength(4);
    expect(one.filter((r) => !r.ok && r.reason === 'source_key_quota')).toHaveLength(60);
    expect(one.filter((r) => r.ok && r.capped)).toHaveLength(4);
    // From 16 places: the key fills up (64), yet the real relay stays and comes first.
    const many = fakes.map((f, i) => {
      now++;
      return store.put(key, f.encoded, `192.0.${i % 16}.0/24`);
    });
    expect(many.filter((r) => !r.ok && r.reason === 'key_full').length).toBeGreaterThan(0);
    expect(store.get(key)).toHaveLength(64);
    expect(store.get(key)[0]?.nodeId).toBe(real.nodeId);
    // A relay from a new place gets a slot from the most represented source, never from the real one.
    const newcomer = offer();
    expect(store.put(key, newcomer.encoded, '100.64.0.0/24')).toMatchObject({ ok: true, evicted: 'key' });
    expect(store.get(key).map((r) => r.nodeId)).toEqual(expect.arrayContaining([real.nodeId, newcomer.nodeId]));
    expect(
      store
        .get(key)
        .slice(0, 2)
        .map((r) => r.nodeId),
    ).toEqual([real.nodeId, expect.any(String)]);
    // The claimed expiry is not trusted: 70 minutes after they were stored the fakes are gone.
    expect(store.get(key).filter((r) => r.expiresAt > Date.UTC(9000, 0, 1)).length).toBeGreaterThan(50);
    now += 71 * 60_000;
    expect(store.get(key)).toEqual([]);
    store.sweep();
    expect(store.size).toBe(0);
  });

  it('squatting: 10 000 records from one source do not fill the storage', () => {
    const store = new RecordStore();
    let stored = 0;
    for (let i = 0; i < 10_000; i++) {
      const id = generateIdentity();
      const r = store.put(kademliaIdOf(id.nodeId), createRecord(id, { kind: 'endpoint', body }).encoded, '203.0.113.0/24');
      if (r.ok) stored++;
      else expect(r.reason).toBe('host_quota');
    }
    expect(stored).toBe(256);
    expect(store.put(aliceKey, createRecord(alice, { kind: 'endpoint', body }).encoded, '198.51.100.0/24')).toMatchObject({ ok: true });
  });

  it('a full store takes a newcomer from the most represented source', () => {
    const store = new RecordStore({ maxRecords: 1000 });
    const put = (source: string) => {
      const id = generateIdentity();
      return store.put(kademliaIdOf(id.nodeId), createRecord(id, { kind: 'endpoint', body }).encoded, source);
    };
    for (const s of ['a', 'b', 'c']) for (let i = 0; i < 256; i++) expect(put(s).ok).toBe(true);
    // The fourth source finds 232 free slots, then takes from the others until the shares are even.
    const d = Array.from({ length: 256 }, () => put('d'));
    expect(d.filter((r) => r.ok && r.evicted === 'storage')).toHaveLength(18);
    expect(d.filter((r) => !r.ok && r.reason === 'storage_full')).toHaveLength(6);
    expect(['a', 'b', 'c', 'd'].map((s) => store.countFrom(s))).toEqual([250, 250, 250, 250]);
    expect(put('e')).toMatchObject({ ok: true, evicted: 'storage' });
    expect(store.countFrom('e')).toBe(1);
    expect(store.size).toBe(1000);
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
