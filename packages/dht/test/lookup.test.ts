import { randomBytes } from 'node:crypto';
import { compareDistance } from '@dpc/dht';
import { describe, expect, it } from 'vitest';
import { iterativeLookup } from '../src/lookup.js';
import type { WireContact } from '../src/messages.js';
import { bucketsToRefresh, type Contact, farBuckets, farBucketsToFill, RoutingTable } from '../src/routing-table.js';

const id = (first: number) => Buffer.concat([Buffer.from([first]), Buffer.alloc(15)]);
const contact = (i: Buffer, port = 1): WireContact => ({ id: i, host: '127.0.0.1', port });

describe('iterative lookup', () => {
  it('ends only when the k closest seen have all answered or failed, and returns the k closest that answered', async () => {
    // 64 nodes; each knows every other; the 4 closest to the target include one that never answers.
    const nodes = Array.from({ length: 64 }, () => contact(randomBytes(16)));
    const target = randomBytes(16);
    const sorted = [...nodes].sort((a, b) => compareDistance(a.id, b.id, target));
    const dead = sorted[1] as WireContact;
    const queried: WireContact[] = [];
    const res = await iterativeLookup({
      target,
      localId: Buffer.alloc(16),
      k: 4,
      alpha: 2,
      start: sorted.slice(40, 42),
      signal: new AbortController().signal,
      query: async (peer) => {
        queried.push(peer);
        if (peer === dead) throw new Error('timeout');
        const near = [...nodes].sort((a, b) => compareDistance(a.id, b.id, peer.id)).slice(0, 8);
        return { contacts: [...near, ...sorted.slice(0, 4)] };
      },
    });
    expect(res.closest.map((c) => c.peer)).toEqual([sorted[0], sorted[2], sorted[3], sorted[4]]);
    for (const c of sorted.slice(0, 5)) expect(queried).toContain(c);
    expect(res.rpcs).toBe(queried.length);
  });
});

describe('bucket refresh', () => {
  const local = id(0);
  it('refreshes the buckets farther than the closest neighbour; a join fills only the sparse far ones', () => {
    // cpl 0: 20 contacts (full), cpl 1: 3, cpl 2: none, cpl 4: 1 (closest neighbour).
    const contacts = [
      ...Array.from({ length: 20 }, () => ({ id: id(0x80) })),
      ...Array.from({ length: 3 }, () => ({ id: id(0x40) })),
      { id: id(0x08) },
    ];
    expect(bucketsToRefresh(local, contacts)).toEqual([0, 1, 2, 3]);
    expect(bucketsToRefresh(local, contacts, { maxBuckets: 2 })).toEqual([0, 1]);
    expect(bucketsToRefresh(local, [])).toEqual([]);
    // Contacts per bucket 20, 3, 0, 0, 1: with 4 far buckets and 3 wanted, buckets 2 and 3 get filled.
    expect(farBucketsToFill([20, 3, 0, 0, 1], 4, 3)).toEqual([2, 3]);
    expect(farBucketsToFill([20, 2], 4, 3)).toEqual([1, 2, 3]);
    expect(farBucketsToFill([0, 0], 0, 3)).toEqual([]);
  });

  it('counts as far the buckets below the common prefix of the k-th closest contact', () => {
    const contacts = [{ id: id(0x80) }, { id: id(0x40) }, { id: id(0x20) }, { id: id(0x10) }];
    expect(farBuckets(local, contacts, 2)).toBe(2);
    expect(farBuckets(local, contacts, 4)).toBe(0);
    expect(farBuckets(local, contacts, 20)).toBe(0);
    expect(farBuckets(local, [], 20)).toBe(0);
  });
});

describe('routing table freshness', () => {
  const local = id(0);
  const policy = { allowLoopback: true, allowPrivate: false };
  // 20 contacts in bucket 0 (first bit set: after the root split it never splits again, it does not
  // hold our id) and one in bucket 7.
  const far = (i: number) => Buffer.concat([Buffer.from([0x80, i]), Buffer.alloc(14)]);
  const setup = () => {
    let now = 1_000_000;
    const full: Array<{ oldest: Contact[]; candidate: Contact }> = [];
    const table = new RoutingTable({
      localId: local,
      k: 20,
      policy,
      freshMs: 60_000,
      now: () => now,
      onBucketFull: (oldest, candidate) => full.push({ oldest, candidate }),
    });
    for (let i = 0; i < 20; i++) {
      expect(table.add({ id: far(i), host: '127.0.0.1', port: 1000 + i })).toBe('added');
      now += 1_000;
    }
    expect(table.add({ id: id(0x01), host: '127.0.0.1', port: 3000 })).toBe('added');
    return { table, full, advance: (ms: number) => (now += ms) };
  };

  it('refuses a newcomer to a full bucket of fresh contacts without asking for a PING', () => {
    const { table, full } = setup();
    expect(table.hasRoomFor(far(99))).toBe(false);
    expect(table.hasRoomFor(id(0x02))).toBe(true); // our side of the tree has room
    expect(table.add({ id: far(99), host: '127.0.0.1', port: 2000 })).toBe('bucket-full');
    expect(full).toEqual([]);
    expect(table.get(far(99))).toBeNull();
  });

  it('asks to PING only the stale contacts of a full bucket, oldest first, at most 3', () => {
    const { table, full, advance } = setup();
    advance(45_000); // the first 5 contacts were added more than 60 s ago
    table.touch(far(1), { host: '127.0.0.1', port: 1001 }); // a request from it: seen now
    table.touch(far(2), { host: '127.0.0.1', port: 9999 }); // wrong address: not seen
    expect(table.hasRoomFor(far(99))).toBe(true);
    expect(table.add({ id: far(99), host: '127.0.0.1', port: 2000 })).toBe('bucket-full');
    expect(full).toHaveLength(1);
    expect(full[0]?.oldest.map((c) => c.port)).toEqual([1000, 1002, 1003]);
    expect(full[0]?.candidate.port).toBe(2000);
  });

  it('keeps its own copy of a contact id, not a view into the datagram it came in', () => {
    const { table } = setup();
    const datagram = Buffer.alloc(700, 1);
    const view = datagram.subarray(100, 116);
    table.add({ id: view, host: '127.0.0.1', port: 4000 });
    const stored = table.get(view)?.id as Uint8Array;
    expect(Buffer.from(stored).equals(view)).toBe(true);
    expect(stored.buffer).not.toBe(datagram.buffer);
    expect(stored.buffer.byteLength).toBe(16);
  });

  it('counts contacts per bucket', () => {
    const { table } = setup();
    expect(table.bucketCounts()).toEqual([20, 0, 0, 0, 0, 0, 0, 1]);
  });
});
