// A node whose clock was set back (an hour behind the network) restarts: its records must still
// replace the old ones and be found. The seq comes from @dpc/core's SequenceStore (persisted in
// the data directory), and storing nodes judge expiry on their own clock (recordLiveUntil).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRecord, emptyEndpointBody, generateIdentity, kademliaIdOf, openSequenceStore } from '@dpc/core';
import { RecordStore } from '@dpc/dht';
import { createTestnet } from '@dpc/dht/testnet';
import { afterEach, describe, expect, it } from 'vitest';

const HOUR = 3_600_000;
const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});
const dataDir = async () => {
  const d = await mkdtemp(join(tmpdir(), 'dpc-dht-seq-'));
  dirs.push(d);
  return d;
};
const body = (port: number) => ({ ...emptyEndpointBody(), ipv4_external: [{ ip: '198.51.100.7', port }] });

describe('a node whose clock is an hour behind', () => {
  it('restarted with a persisted seq, its record replaces the old one at a storing node and lives its full ttl', async () => {
    const alice = generateIdentity();
    const key = kademliaIdOf(alice.nodeId);
    const dir = await dataDir();
    const T = Date.now();
    let receiver = T; // the storing node's clock, which is right
    const store = new RecordStore({ now: () => receiver });

    const before = openSequenceStore(dir, { now: () => T });
    const old = createRecord(alice, { kind: 'endpoint', body: body(1), seq: before.next(), now: T, ttlMs: HOUR });
    expect(store.put(key, old.encoded, 'h')).toEqual({ ok: true, replaced: false });

    // Restart a minute later with the clock set back an hour. Without the persisted seq the
    // clock-based seq is lower than the stored one and refused as stale:
    receiver = T + 60_000;
    const skewed = receiver - HOUR;
    const clockOnly = createRecord(alice, { kind: 'endpoint', body: body(2), now: skewed, ttlMs: HOUR });
    expect(store.put(key, clockOnly.encoded, 'h')).toMatchObject({ ok: false, reason: 'stale' });
    // With it, the seq is higher, and the record (expiresAt = our "now") is not refused as expired:
    const after = openSequenceStore(dir, { now: () => skewed });
    const fresh = createRecord(alice, { kind: 'endpoint', body: body(3), seq: after.next(), now: skewed, ttlMs: HOUR });
    expect(fresh.seq).toBeGreaterThan(old.seq);
    expect(store.put(key, fresh.encoded, 'h')).toEqual({ ok: true, replaced: true });
    expect(store.get(key).map((r) => r.body)).toEqual([body(3)]);
    // It is served for its full hour on the receiver's clock, then swept.
    receiver += HOUR - 1000;
    expect(store.get(key).map((r) => r.seq)).toEqual([fresh.seq]);
    receiver += 2000;
    expect(store.get(key)).toEqual([]);
    expect(store.sweep()).toBe(1);
  });

  it('announces through DhtOptions.sequence after a restart, and the network returns the new record', async () => {
    const net = await createTestnet(8);
    try {
      const alice = generateIdentity();
      const dir = await dataDir();
      // The first run's clock reads an hour later than the second run's (set back in between).
      const T = Date.now() + HOUR;
      const first = await net.add({ identity: alice, sequence: openSequenceStore(dir, { now: () => T }).next });
      const a = await first.announceFull();
      expect(a.record.seq).toBe(T);
      expect(a.storedAt).toBeGreaterThan(0);
      expect((await net.nodes[0]?.findPeer(alice.nodeId))?.seq).toBe(a.record.seq);
      await first.stop();

      // Same identity and data directory, the clock set back an hour: the clock alone would give
      // a lower seq than the stored record's, which every storing node refuses as stale.
      const second = await net.add({ identity: alice, sequence: openSequenceStore(dir, { now: () => T - HOUR }).next });
      const b = await second.announceFull();
      expect(b.record.seq).toBe(T + 1);
      expect(b.storedAt).toBeGreaterThan(0);
      const found = await net.nodes[1]?.findPeer(alice.nodeId);
      expect(found?.seq).toBe(b.record.seq);
      expect(found?.body.ipv4_local[0]?.port).toBe(second.address?.port);
    } finally {
      await net.destroy();
    }
  });
});
