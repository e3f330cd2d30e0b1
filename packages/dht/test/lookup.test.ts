import { randomBytes } from 'node:crypto';
import { compareDistance } from '@dpc/dht';
import { describe, expect, it } from 'vitest';
import { iterativeLookup } from '../src/lookup.js';
import type { WireContact } from '../src/messages.js';
import { bucketsToRefresh, farBuckets } from '../src/routing-table.js';

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
  it('refreshes the buckets farther than the closest neighbour, only the sparse ones after join', () => {
    // cpl 0: 20 contacts (full), cpl 1: 3, cpl 2: none, cpl 4: 1 (closest neighbour).
    const contacts = [
      ...Array.from({ length: 20 }, () => ({ id: id(0x80) })),
      ...Array.from({ length: 3 }, () => ({ id: id(0x40) })),
      { id: id(0x08) },
    ];
    expect(bucketsToRefresh(local, contacts, 20)).toEqual([0, 1, 2, 3]);
    expect(bucketsToRefresh(local, contacts, 20, { onlySparse: true })).toEqual([1, 2, 3]);
    expect(bucketsToRefresh(local, contacts, 20, { onlySparse: true, maxBuckets: 2 })).toEqual([1]);
    expect(bucketsToRefresh(local, [], 20)).toEqual([]);
  });

  it('counts as far the buckets below the common prefix of the k-th closest contact', () => {
    const contacts = [{ id: id(0x80) }, { id: id(0x40) }, { id: id(0x20) }, { id: id(0x10) }];
    expect(farBuckets(local, contacts, 2)).toBe(2);
    expect(farBuckets(local, contacts, 4)).toBe(0);
    expect(farBuckets(local, contacts, 20)).toBe(0);
    expect(farBuckets(local, [], 20)).toBe(0);
  });
});
