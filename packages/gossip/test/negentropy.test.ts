import { Negentropy, type NegentropyItem, NegentropyStorage } from '@dpc/gossip';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hex, hexSet, idOf, sides, syncLocal } from './negentropy-helpers.js';

/** An id: either a hash (random-looking) or one sharing 30 zero bytes with its neighbours. */
const idArb = fc.oneof(
  fc.nat().map((n) => idOf(n)),
  fc.integer({ min: 0, max: 0xffff }).map((n) => {
    const id = new Uint8Array(32);
    id[30] = n >> 8;
    id[31] = n & 0xff;
    return id;
  }),
);

/** Items tagged 0 = both sides, 1 = only A, 2 = only B; unique ids. */
const setsArb = (maxItems: number, maxTs: number) =>
  fc
    .array(fc.record({ timestamp: fc.integer({ min: 0, max: maxTs }), id: idArb, side: fc.integer({ min: 0, max: 2 }) }), {
      maxLength: maxItems,
    })
    .map((items) => {
      const seen = new Set<string>();
      const shared: NegentropyItem[] = [];
      const onlyA: NegentropyItem[] = [];
      const onlyB: NegentropyItem[] = [];
      for (const it of items) {
        const k = hex(it.id);
        if (seen.has(k)) continue;
        seen.add(k);
        const item = { timestamp: it.timestamp, id: it.id };
        (it.side === 0 ? shared : it.side === 1 ? onlyA : onlyB).push(item);
      }
      return { shared, onlyA, onlyB };
    });

/** Rounds a reconciliation without frame limit may take for n items on the larger side. */
const roundBound = (n: number) => Math.ceil(Math.log(Math.max(n, 2)) / Math.log(16)) + 2;

describe('negentropy reconciliation (our initiator against our responder)', () => {
  it('the initiator learns exactly have = A\\B and need = B\\A in a bounded number of round trips', () => {
    fc.assert(
      fc.property(setsArb(1500, 1_000_000), ({ shared, onlyA, onlyB }) => {
        const { a, b } = sides(shared, onlyA, onlyB);
        const r = syncLocal(a, b);
        expect(hexSet(r.have)).toEqual(hexSet(onlyA.map((x) => x.id)));
        expect(hexSet(r.need)).toEqual(hexSet(onlyB.map((x) => x.id)));
        expect(r.rounds).toBeLessThanOrEqual(roundBound(Math.max(a.size, b.size)));
      }),
      { numRuns: 60 },
    );
  });

  it('finds every difference when many items share a timestamp and long id prefixes', () => {
    fc.assert(
      fc.property(setsArb(800, 3), ({ shared, onlyA, onlyB }) => {
        const { a, b } = sides(shared, onlyA, onlyB);
        const r = syncLocal(a, b);
        expect(hexSet(r.have)).toEqual(hexSet(onlyA.map((x) => x.id)));
        expect(hexSet(r.need)).toEqual(hexSet(onlyB.map((x) => x.id)));
      }),
      { numRuns: 60 },
    );
  });

  it('respects frameSizeLimit on both sides and still finds every difference', () => {
    const limit = 4096;
    fc.assert(
      fc.property(setsArb(3000, 1_000_000), ({ shared, onlyA, onlyB }) => {
        const { a, b } = sides(shared, onlyA, onlyB);
        const r = syncLocal(a, b, { initiator: { frameSizeLimit: limit }, responder: { frameSizeLimit: limit }, maxRounds: 500 });
        for (const s of r.sizes) expect(s).toBeLessThanOrEqual(limit);
        expect(hexSet(r.have)).toEqual(hexSet(onlyA.map((x) => x.id)));
        expect(hexSet(r.need)).toEqual(hexSet(onlyB.map((x) => x.id)));
      }),
      { numRuns: 30 },
    );
  });

  it('splits a large disjoint sync into frames of at most frameSizeLimit bytes', () => {
    const limit = 4096;
    const onlyA = Array.from({ length: 5000 }, (_, i) => ({ timestamp: 1_000 + i, id: idOf(i) }));
    const onlyB = Array.from({ length: 5000 }, (_, i) => ({ timestamp: 1_000 + i, id: idOf(100_000 + i) }));
    const { a, b } = sides([], onlyA, onlyB);
    const r = syncLocal(a, b, { initiator: { frameSizeLimit: limit }, responder: { frameSizeLimit: limit } });
    expect(Math.max(...r.sizes)).toBeLessThanOrEqual(limit);
    // 10 000 ids of 32 bytes cannot fit in one 4 KiB frame: the limit really cut the exchange.
    expect(r.rounds).toBeGreaterThan(10);
    expect(r.have.length).toBe(5000);
    expect(r.need.length).toBe(5000);
    expect(new Set(r.have.map(hex)).size).toBe(5000);
    expect(new Set(r.need.map(hex)).size).toBe(5000);
    // Without the limit the same exchange needs far fewer, much larger messages.
    const unlimited = syncLocal(a, b);
    expect(unlimited.rounds).toBeLessThan(r.rounds);
    expect(Math.max(...unlimited.sizes)).toBeGreaterThan(limit);
  });

  it('a frame-limited responder cut at every possible id-list boundary loses no item', () => {
    // The responder's id list stops at the frame limit and a fingerprint covers the rest; sizes
    // around each cut (about 120 ids per 4 KiB frame) put the last item exactly on the boundary.
    const shared = Array.from({ length: 40 }, (_, i) => ({ timestamp: 10 + i, id: idOf(-1000 - i) }));
    for (let n = 100; n <= 380; n++) {
      const onlyB = Array.from({ length: n }, (_, i) => ({ timestamp: 100 + i, id: idOf(i) }));
      for (const common of [[], shared]) {
        const { a, b } = sides(common, [], onlyB);
        const r = syncLocal(a, b, { responder: { frameSizeLimit: 4096 } });
        expect(r.have).toEqual([]);
        expect(r.need.map(hex)).toEqual(onlyB.map((x) => hex(x.id)));
        for (const size of r.sizes) expect(size).toBeLessThanOrEqual(4096);
      }
    }
  });

  it('frame-limited on both sides: every difference reported exactly once', () => {
    // Differences spread everywhere make both sides cut messages after ranges already resolved;
    // the cut must resume exactly there, or resolved ids come back again.
    for (const [nShared, nA, nB, step] of [
      [20_000, 1_500, 1_500, 3],
      [8_000, 40, 3_000, 1],
      [5_000, 2_000, 100, 7],
    ] as const) {
      const shared = Array.from({ length: nShared }, (_, i) => ({ timestamp: 1_000 + i * step, id: idOf(i) }));
      const onlyA = Array.from({ length: nA }, (_, i) => ({ timestamp: 1_000 + Math.floor((i * nShared * step) / nA), id: idOf(1e6 + i) }));
      const onlyB = Array.from({ length: nB }, (_, i) => ({ timestamp: 1_001 + Math.floor((i * nShared * step) / nB), id: idOf(2e6 + i) }));
      const { a, b } = sides(shared, onlyA, onlyB);
      const r = syncLocal(a, b, { initiator: { frameSizeLimit: 4096 }, responder: { frameSizeLimit: 4096 } });
      expect(r.have.length).toBe(nA);
      expect(r.need.length).toBe(nB);
      expect(hexSet(r.have)).toEqual(hexSet(onlyA.map((x) => x.id)));
      expect(hexSet(r.need)).toEqual(hexSet(onlyB.map((x) => x.id)));
    }
  });

  it('identical sets reconcile in one round trip: 16 fingerprints out, one byte back', () => {
    const items = Array.from({ length: 10_000 }, (_, i) => ({ timestamp: 1_700_000_000 + i * 7, id: idOf(i) }));
    const { a, b } = sides(items, [], []);
    const r = syncLocal(a, b);
    expect(r.rounds).toBe(1);
    expect(r.have).toEqual([]);
    expect(r.need).toEqual([]);
    expect(r.sizes[1]).toBe(1);
    expect(r.sizes[0]).toBeLessThan(400);
  });

  it('handles empty sets on either or both sides', () => {
    const items = Array.from({ length: 100 }, (_, i) => ({ timestamp: i, id: idOf(i) }));
    const empty = NegentropyStorage.from([]);
    const full = NegentropyStorage.from(items);
    const both = syncLocal(empty, NegentropyStorage.from([]));
    expect(both).toMatchObject({ rounds: 1, have: [], need: [] });
    const pull = syncLocal(empty, full);
    expect(pull.rounds).toBe(1);
    expect(hexSet(pull.need)).toEqual(hexSet(items.map((x) => x.id)));
    expect(pull.have).toEqual([]);
    const push = syncLocal(full, empty);
    expect(hexSet(push.have)).toEqual(hexSet(items.map((x) => x.id)));
    expect(push.need).toEqual([]);
  });

  it('a set of items all with the same timestamp and ids differing only in the last byte', () => {
    const mk = (n: number) => {
      const id = new Uint8Array(32).fill(0xab);
      id[31] = n;
      return { timestamp: 42, id };
    };
    const shared = Array.from({ length: 200 }, (_, i) => mk(i));
    const { a, b } = sides(shared, [mk(201), mk(250)], [mk(220)]);
    const r = syncLocal(a, b);
    expect(hexSet(r.have)).toEqual(hexSet([mk(201).id, mk(250).id]));
    expect(hexSet(r.need)).toEqual(hexSet([mk(220).id]));
  });

  it('small differences in 100k items take two round trips', () => {
    const shared = Array.from({ length: 100_000 }, (_, i) => ({ timestamp: 1_700_000_000 + (i >> 2), id: idOf(i) }));
    const { a, b } = sides(shared, [{ timestamp: 1_700_001_000, id: idOf(-1) }], [{ timestamp: 1_700_020_000, id: idOf(-2) }]);
    const r = syncLocal(a, b);
    expect(r.rounds).toBe(2);
    expect(hexSet(r.have)).toEqual([hex(idOf(-1))]);
    expect(hexSet(r.need)).toEqual([hex(idOf(-2))]);
  });

  it('storage sorts, drops exact duplicates and keeps the same id at two timestamps', () => {
    const s = NegentropyStorage.from([
      { timestamp: 5, id: idOf(1) },
      { timestamp: 1, id: idOf(2) },
      { timestamp: 5, id: idOf(1) },
      { timestamp: 3, id: idOf(1) },
    ]);
    expect(s.size).toBe(3);
    expect([0, 1, 2].map((i) => s.timestampAt(i))).toEqual([1, 3, 5]);
    expect(hex(s.idAt(1))).toBe(hex(idOf(1)));
    expect(s.fingerprint(0, 3)).toEqual(NegentropyStorage.from([...s.items()]).fingerprint(0, 3));
  });

  it('storage order is (timestamp, id) with duplicates dropped, for small and beyond-2106 timestamps', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ timestamp: fc.integer({ min: 0, max: 5 }), id: idArb }), { maxLength: 300 }),
        fc.constantFrom(0, 2 ** 32 - 10, 2 ** 40),
        (rows, offset) => {
          const items = rows.flatMap((r, i) => (i % 7 === 0 ? [r, r] : [r])).map((r) => ({ timestamp: r.timestamp + offset, id: r.id }));
          const s = NegentropyStorage.from(items);
          const expected = [...new Set(items.map((x) => `${String(x.timestamp).padStart(16, '0')}:${hex(x.id)}`))].sort();
          const got = [...s.items()].map((x) => `${String(x.timestamp).padStart(16, '0')}:${hex(x.id)}`);
          expect(got).toEqual(expected);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('an instance plays a single role', () => {
    const s = NegentropyStorage.from([]);
    const ini = new Negentropy(s);
    const msg = ini.initiate();
    expect(() => ini.respond(msg)).toThrow(expect.objectContaining({ code: 'DPC_NEGENTROPY_USAGE' }));
    expect(() => ini.initiate()).toThrow(expect.objectContaining({ code: 'DPC_NEGENTROPY_USAGE' }));
    const resp = new Negentropy(s);
    resp.respond(msg);
    expect(() => resp.initiate()).toThrow(expect.objectContaining({ code: 'DPC_NEGENTROPY_USAGE' }));
    expect(() => resp.reconcile(msg)).toThrow(expect.objectContaining({ code: 'DPC_NEGENTROPY_USAGE' }));
  });
});
