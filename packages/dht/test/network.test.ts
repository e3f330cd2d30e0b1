import dgram from 'node:dgram';
import {
  createRecord,
  decode,
  emptyEndpointBody,
  encode,
  encodeCanonical,
  generateIdentity,
  kademliaIdOf,
  type SignedRecord,
} from '@dpc/core';
import { createDht, type Dht, type SignalEvent, xorDistance } from '@dpc/dht';
import { createTestnet, type Testnet } from '@dpc/dht/testnet';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSignalEnvelope } from '../src/signalling.js';
import { RawClient } from './raw-client.js';

const N = 100;
const pick = <T>(list: T[]): T => list[Math.floor(Math.random() * list.length)] as T;
const portOf = (d: Dht) => d.address?.port as number;

describe(`a ${N}-node DHT on loopback`, () => {
  let net: Testnet;
  let all: Dht[];
  const records = new Map<string, SignedRecord<'endpoint'>>();

  beforeAll(async () => {
    net = await createTestnet(N);
    all = [net.bootstrap, ...net.nodes];
  }, 60_000);
  afterAll(async () => {
    await net?.destroy();
  });

  it('bootstraps every node into a populated routing table', () => {
    expect(all).toHaveLength(N);
    for (const d of all) expect(d.stats().routingTableSize).toBeGreaterThanOrEqual(10);
  });

  it('announces every endpoint record to k nodes, and lookups from random nodes find every one', async () => {
    for (let i = 0; i < net.nodes.length; i += 25) {
      const res = await Promise.all(net.nodes.slice(i, i + 25).map((d) => d.announceFull()));
      for (const r of res) {
        expect(r.storedAt).toBeGreaterThanOrEqual(15);
        expect(r.signalVia.length).toBe(2);
        records.set(r.record.nodeId, r.record);
      }
    }
    let found = 0;
    for (const d of net.nodes) {
      const asker = pick(all.filter((x) => x !== d));
      const rec = await asker.findPeer(d.nodeId);
      expect(rec.nodeId).toBe(d.nodeId);
      expect(rec.body.ipv4_local[0]?.port).toBe(portOf(d));
      found++;
    }
    expect(found).toBe(N - 1);
  });

  it('reports a typed error for a node that never announced', async () => {
    await expect(net.nodes[0]?.findPeer(generateIdentity().nodeId)).rejects.toMatchObject({ code: 'DPC_PEER_NOT_FOUND' });
  });

  it('refuses a forged or tampered record on every node, and never serves it', async () => {
    const alice = net.nodes[1] as Dht;
    const mallory = generateIdentity();
    const genuine = records.get(alice.nodeId) as SignedRecord<'endpoint'>;
    // Tampered: flip one byte of Alice's signed record.
    const tampered = Buffer.from(genuine.encoded);
    tampered.writeUInt8((tampered.at(-70) as number) ^ 0xff, tampered.length - 70);
    // Forged: Mallory signs a record that claims Alice's node id.
    const [v, payload] = decode(createRecord(mallory, { kind: 'endpoint', body: emptyEndpointBody(), seq: genuine.seq + 1 }).encoded) as [
      number,
      Uint8Array,
    ];
    const fields = decode(payload) as unknown[];
    fields[2] = alice.nodeId;
    const forgedPayload = encodeCanonical(fields);
    const forged = encodeCanonical([v, forgedPayload, mallory.sign(Buffer.concat([Buffer.from('dpc-record-v1\0'), forgedPayload]))]);
    // Mallory's own valid record, pushed under Alice's key.
    const misplaced = createRecord(mallory, { kind: 'endpoint', body: emptyEndpointBody() }).encoded;

    const raw = await RawClient.open();
    try {
      const key = kademliaIdOf(alice.nodeId);
      for (const d of all) {
        const nodes = await raw.request(portOf(d), { t: 'find_node', k: key });
        for (const bad of [tampered, forged, misplaced]) {
          const answer = await raw.request(portOf(d), { t: 'store', k: key, r: bad, tk: nodes.tk });
          expect(answer.t).toBe('err');
        }
        const value = await raw.request(portOf(d), { t: 'find_value', k: key });
        for (const r of (value.r as Uint8Array[] | undefined) ?? []) expect(Buffer.from(r).equals(genuine.encoded)).toBe(true);
        expect(d.stats().rejects.bad_record).toBeGreaterThanOrEqual(2);
        expect(d.stats().rejects.wrong_key).toBeGreaterThanOrEqual(1);
      }
    } finally {
      await raw.close();
    }
    const found = await (net.nodes[50] as Dht).findPeer(alice.nodeId);
    expect(found.encoded.equals(genuine.encoded)).toBe(true);
  });

  it('delivers a SIGNAL to a node through the nodes that keep its mapping', async () => {
    const target = net.nodes[60] as Dht;
    // The sender must not be one of the nodes the target registered with (its closest ones): such a
    // sender holds the mapping itself and rightly signals directly, with nothing to forward.
    const key = kademliaIdOf(target.nodeId);
    const sender = net.nodes
      .filter((d) => d !== target)
      .reduce((far, d) => (Buffer.compare(xorDistance(d.kademliaId, key), xorDistance(far.kademliaId, key)) > 0 ? d : far));
    const received = new Promise<SignalEvent>((resolve) => target.once('signal', resolve));
    await sender.signal(target.nodeId, { punch: { ip: '127.0.0.1', port: 9 }, at: 1234 });
    const ev = await received;
    expect(ev.from).toBe(sender.nodeId);
    expect(ev.payload).toEqual({ punch: { ip: '127.0.0.1', port: 9 }, at: 1234 });
    // The nodes that keep its mapping now (a keepalive that lost a forwarder re-announces a new list).
    const via = target.endpointBody().signal_via.map((s) => s.port);
    expect(via).toHaveLength(2);
    expect(via).toContain(ev.via.port);
    expect(via).not.toContain(portOf(sender));
    expect(all.reduce((n, d) => n + (d.stats().counters['signals.forwarded'] ?? 0), 0)).toBeGreaterThanOrEqual(1);
  });

  it('a SIGNAL along a route the caller holds needs no lookup; a dead route falls back to one', async () => {
    const target = net.nodes[62] as Dht;
    const key = kademliaIdOf(target.nodeId);
    const sender = net.nodes
      .filter((d) => d !== target)
      .reduce((far, d) => (Buffer.compare(xorDistance(d.kademliaId, key), xorDistance(far.kademliaId, key)) > 0 ? d : far));
    const count = (name: string) => sender.stats().counters[name] ?? 0;
    const via = target.endpointBody().signal_via.map((v) => ({ host: v.ip, port: v.port }));
    expect(via.length).toBeGreaterThan(0);
    const lookups = count('lookups.value');
    let received = new Promise<SignalEvent>((resolve) => target.once('signal', resolve));
    await sender.signal(target.nodeId, { n: 1 }, { via });
    expect((await received).payload).toEqual({ n: 1 });
    expect(count('lookups.value')).toBe(lookups);
    expect(count('signals.sent_by_route')).toBe(1);
    // A route nobody answers on (a closed port): the target is looked up and still reached.
    const dead = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => dead.bind(0, '127.0.0.1', resolve));
    const deadPort = dead.address().port;
    await new Promise<void>((resolve) => dead.close(() => resolve()));
    received = new Promise<SignalEvent>((resolve) => target.once('signal', resolve));
    await sender.signal(target.nodeId, { n: 2 }, { via: [{ host: '127.0.0.1', port: deadPort }] });
    expect((await received).payload).toEqual({ n: 2 });
    expect(count('signals.route_failed')).toBe(1);
    expect(count('lookups.value')).toBeGreaterThan(lookups);
  });

  it('acknowledges a retransmitted SIGNAL again without delivering it twice', async () => {
    const target = net.nodes[61] as Dht;
    const e = createSignalEnvelope(generateIdentity(), kademliaIdOf(target.nodeId), { n: 1 });
    const events: SignalEvent[] = [];
    const on = (ev: SignalEvent) => events.push(ev);
    target.on('signal', on);
    const raw = await RawClient.open();
    try {
      const msg = { t: 'signal', to: kademliaIdOf(target.nodeId), h: 0, e };
      expect(await raw.request(portOf(target), msg)).toMatchObject({ t: 'ok' });
      expect(await raw.request(portOf(target), msg)).toMatchObject({ t: 'ok' });
      expect(events).toHaveLength(1);
      expect(target.stats().counters['signals.duplicate']).toBe(1);
    } finally {
      target.off('signal', on);
      await raw.close();
    }
  });

  it('finds relay offers by region and globally, verified and deduplicated', async () => {
    const relays = net.nodes.slice(70, 74);
    const regions = ['us-west', 'us-west', 'eu-central', 'us-west'];
    await Promise.all(
      relays.map((d, i) =>
        d.announceRelay({
          ip: '127.0.0.1',
          port: 40_000 + i,
          available: true,
          max_peers: 50,
          current_peers: i,
          region: regions[i] as string,
          uptime: 0.9,
          latency_ms: 15,
          bandwidth_mbps: 100,
        }),
      ),
    );
    // Re-announce one with a newer seq: the old offer must be replaced, not duplicated.
    await (relays[0] as Dht).announceRelay({
      ip: '127.0.0.1',
      port: 40_100,
      available: false,
      max_peers: 50,
      current_peers: 9,
      region: 'us-west',
      uptime: 0.9,
      latency_ms: 15,
      bandwidth_mbps: 100,
    });
    const asker = net.nodes[5] as Dht;
    const west = await asker.findRelays({ region: 'us-west' });
    expect(west.map((r) => r.nodeId).sort()).toEqual([relays[0], relays[1], relays[3]].map((d) => (d as Dht).nodeId).sort());
    expect(west.find((r) => r.nodeId === relays[0]?.nodeId)?.body.port).toBe(40_100);
    const global = await asker.findRelays();
    expect(global).toHaveLength(4);
    expect((await asker.findRelays({ region: 'eu-central' })).map((r) => r.nodeId)).toEqual([relays[2]?.nodeId]);
  });

  it('discovers the reflexive endpoint by majority of 3 peers', async () => {
    const d = net.nodes[20] as Dht;
    const r = await d.discoverEndpoint();
    expect(r).toMatchObject({ ip: '127.0.0.1', port: portOf(d), votes: 3, majority: true });
    expect(new Set(r.samples.map((s) => s.responder.nodeId)).size).toBe(3);
  });

  it('survives random datagrams: every one is dropped and counted, the node keeps answering', async () => {
    // No rate limit here, so every datagram reaches the decoder.
    const victim = await net.add({ rateLimit: { perSecond: 1e9, burst: 1e9 } });
    const raw = await RawClient.open();
    const accounted = () => {
      const s = victim.stats();
      return [...Object.values(s.rejects), ...Object.values(s.rpcIn)].reduce((a, b) => a + b, 0);
    };
    const before = accounted();
    const valid = encode({ t: 'find_node', x: Buffer.alloc(4), id: Buffer.alloc(16), k: Buffer.alloc(16) });
    let sent = 0;
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.uint8Array({ maxLength: 1400 }),
            fc.anything().map((v) => {
              try {
                return encode(v);
              } catch {
                return Buffer.from([0xc1]);
              }
            }),
            fc
              .record({
                t: fc.constantFrom('ping', 'store', 'signal', 'register', 'find_value', 'nodes', 'ok'),
                x: fc.uint8Array(),
                id: fc.uint8Array(),
                k: fc.anything(),
              })
              .map((m) => encode(m)),
            fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 1, max: 255 })).map(([i, b]) => {
              const m = Buffer.from(valid);
              m[i] = (m[i] as number) ^ b;
              return m;
            }),
          ),
          async (bytes) => {
            await raw.send(portOf(victim), bytes.subarray(0, 1400));
            if (++sent % 50 === 0) await new Promise((r) => setTimeout(r, 1));
          },
        ),
        { numRuns: 400 },
      );
      const pong = await (net.nodes[31] as Dht).ping(victim.address as { host: string; port: number });
      expect(pong.nodeId).toBe(victim.nodeId);
      // Every datagram is either a counted reject or a counted (well-formed) request.
      expect(accounted() - before).toBeGreaterThanOrEqual(sent);
      // A datagram whose first byte is no MessagePack map header is not the DHT's: the UDP
      // demultiplexer drops it as unmatched (no other protocol is registered here).
      const r = victim.stats().rejects;
      expect((r.malformed ?? 0) + (r.decode_limit ?? 0) + (r.unmatched ?? 0)).toBeGreaterThan(sent / 2);
      expect(r.malformed).toBeGreaterThan(0);
      expect(r.unmatched).toBeGreaterThan(0);
      await victim.announceFull();
      expect(await (net.nodes[32] as Dht).findPeer(victim.nodeId)).toMatchObject({ nodeId: victim.nodeId });
    } finally {
      await raw.close();
    }
  });

  it('still finds records after 30% of the nodes stopped', async () => {
    const stopped = new Set(net.nodes.slice(0, 99).filter((_, i) => i % 10 < 3));
    expect(stopped.size).toBeGreaterThanOrEqual(29);
    await Promise.all([...stopped].map((d) => d.stop()));
    const alive = all.filter((d) => !stopped.has(d));
    const targets = [...records.keys()];
    const results = await Promise.allSettled(targets.map((id) => pick(alive).findPeer(id)));
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    expect(ok).toBe(targets.length);
  });
});

describe('bootstrap and abuse limits', () => {
  it('fails with DPC_DHT_BOOTSTRAP when no seed answers', async () => {
    const raw = await RawClient.open(); // a port that never answers
    const d = createDht({
      identity: generateIdentity(),
      host: '127.0.0.1',
      port: 0,
      seeds: [{ host: '127.0.0.1', port: raw.port }],
      bootstrapTimeoutMs: 600,
      rpcTimeoutMs: 150,
    });
    try {
      await expect(d.start()).rejects.toMatchObject({ code: 'DPC_DHT_BOOTSTRAP', name: 'BootstrapError' });
      expect(raw.received).toBeGreaterThanOrEqual(2); // it retried
    } finally {
      await raw.close();
      await d.stop();
    }
  });

  it('a node with no seeds starts alone as a bootstrap node', async () => {
    const d = createDht({ identity: generateIdentity(), host: '127.0.0.1', port: 0 });
    await d.start();
    expect(d.stats().routingTableSize).toBe(0);
    await d.stop();
    await expect(d.findPeer(generateIdentity().nodeId)).rejects.toMatchObject({ code: 'DPC_DHT_NOT_RUNNING' });
  });

  it('rate-limits a flood from one address without hurting another peer', async () => {
    const victim = createDht({
      identity: generateIdentity(),
      host: '127.0.0.1',
      port: 0,
      allowLoopback: true,
      rateLimit: { perSecond: 20, burst: 20 },
    });
    const peer = createDht({ identity: generateIdentity(), host: '127.0.0.1', port: 0, allowLoopback: true });
    await victim.start();
    await peer.start();
    const flooder = await RawClient.open();
    try {
      const ping = encode({ t: 'ping', x: Buffer.alloc(4), id: flooder.id });
      for (let i = 0; i < 1000; i++) {
        await flooder.send(portOf(victim), ping);
        if (i % 50 === 0) await new Promise((r) => setTimeout(r, 1)); // let the victim drain its socket
      }
      await new Promise((r) => setTimeout(r, 200));
      expect(flooder.received).toBeLessThan(60);
      expect(victim.stats().rejects.rate_limited).toBeGreaterThan(800);
      const pong = await peer.ping(victim.address as { host: string; port: number });
      expect(pong.nodeId).toBe(victim.nodeId);
    } finally {
      await flooder.close();
      await Promise.all([victim.stop(), peer.stop()]);
    }
  });

  it('only admits nodes that answered, and refuses STORE without a valid token', async () => {
    const d = createDht({ identity: generateIdentity(), host: '127.0.0.1', port: 0, allowLoopback: true });
    await d.start();
    const raw = await RawClient.open(); // answers nothing: its PING back goes unanswered
    try {
      await raw.request(portOf(d), { t: 'ping' });
      await new Promise((r) => setTimeout(r, 300));
      expect(d.stats().routingTableSize).toBe(0);
      const me = generateIdentity();
      const rec = createRecord(me, { kind: 'endpoint', body: emptyEndpointBody() });
      const answer = await raw.request(portOf(d), { t: 'store', k: me.kademliaId, r: rec.encoded, tk: Buffer.alloc(8) });
      expect(answer).toMatchObject({ t: 'err', c: 'bad_token' });
      const nodes = await raw.request(portOf(d), { t: 'find_node', k: me.kademliaId });
      expect(await raw.request(portOf(d), { t: 'store', k: me.kademliaId, r: rec.encoded, tk: nodes.tk })).toMatchObject({ t: 'ok' });
      expect(d.stats().storedRecords).toBe(1);
    } finally {
      await raw.close();
      await d.stop();
    }
  });
});
