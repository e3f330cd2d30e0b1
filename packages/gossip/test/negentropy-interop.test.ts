import { Negentropy, type NegentropyItem, type NegentropyOptions, NegentropyStorage } from '@dpc/gossip';
import fc from 'fast-check';
import { nip77 } from 'nostr-tools';
import { describe, expect, it } from 'vitest';
import { hex, hexSet, idOf } from './negentropy-helpers.js';

// nostr-tools' NIP-77 code is an independent implementation of the same protocol. Its initiator
// is correct (its responder is not: it never answers an id list), so it plays the initiator
// against our responder; its storage gives independent fingerprints.

function theirStorage(items: NegentropyItem[]): nip77.NegentropyStorageVector {
  const s = new nip77.NegentropyStorageVector();
  for (const it of items) s.insert(it.timestamp, hex(it.id));
  s.seal();
  return s;
}

/** nostr-tools initiator (hex strings) against our responder (bytes). */
function syncWithTheirInitiator(
  mine: NegentropyItem[],
  ours: NegentropyStorage,
  opts: { theirFrameLimit?: number; responder?: NegentropyOptions } = {},
) {
  const neg = new nip77.Negentropy(theirStorage(mine), opts.theirFrameLimit);
  const responder = new Negentropy(ours, opts.responder);
  const have: string[] = [];
  const need: string[] = [];
  let rounds = 0;
  let msg: string | null = neg.initiate();
  while (msg !== null) {
    if (++rounds > 500) throw new Error('no convergence');
    const reply = responder.respond(Buffer.from(msg, 'hex'));
    msg = neg.reconcile(
      Buffer.from(reply).toString('hex'),
      (id) => have.push(id),
      (id) => need.push(id),
    );
  }
  return { have: have.sort(), need: need.sort(), rounds };
}

const itemsArb = (maxItems: number, maxTs: number) =>
  fc
    .array(fc.record({ timestamp: fc.integer({ min: 0, max: maxTs }), n: fc.nat(), side: fc.integer({ min: 0, max: 2 }) }), {
      maxLength: maxItems,
    })
    .map((rows) => {
      const seen = new Set<number>();
      const shared: NegentropyItem[] = [];
      const onlyA: NegentropyItem[] = [];
      const onlyB: NegentropyItem[] = [];
      for (const r of rows) {
        if (seen.has(r.n)) continue;
        seen.add(r.n);
        const item = { timestamp: r.timestamp, id: idOf(r.n) };
        (r.side === 0 ? shared : r.side === 1 ? onlyA : onlyB).push(item);
      }
      return { shared, onlyA, onlyB };
    });

describe('negentropy interop with nostr-tools (NIP-77)', () => {
  it('our fingerprints equal nostr-tools fingerprints over any range', () => {
    fc.assert(
      fc.property(itemsArb(300, 50), fc.nat(), fc.nat(), ({ shared }, x, y) => {
        const ours = NegentropyStorage.from(shared);
        const theirs = theirStorage(shared);
        const n = ours.size;
        const lo = n === 0 ? 0 : x % (n + 1);
        const hi = n === 0 ? 0 : lo + (y % (n - lo + 1));
        expect(hex(ours.fingerprint(lo, hi))).toBe(hex(theirs.fingerprint(lo, hi)));
      }),
      { numRuns: 100 },
    );
  });

  it('our initial message is byte-identical to the nostr-tools initiator', () => {
    fc.assert(
      fc.property(itemsArb(2000, 1_000_000), ({ shared, onlyA }) => {
        const items = [...shared, ...onlyA];
        const ours = new Negentropy(NegentropyStorage.from(items)).initiate();
        const theirs = new nip77.Negentropy(theirStorage(items)).initiate();
        expect(hex(ours)).toBe(theirs);
      }),
      { numRuns: 40 },
    );
  });

  it('the nostr-tools initiator against our responder finds every difference', () => {
    fc.assert(
      fc.property(itemsArb(1500, 1_000_000), ({ shared, onlyA, onlyB }) => {
        const r = syncWithTheirInitiator([...shared, ...onlyA], NegentropyStorage.from([...shared, ...onlyB]));
        expect(r.have).toEqual(hexSet(onlyA.map((x) => x.id)));
        expect(r.need).toEqual(hexSet(onlyB.map((x) => x.id)));
      }),
      { numRuns: 60 },
    );
  });

  it('the nostr-tools initiator against our responder with many equal timestamps', () => {
    fc.assert(
      fc.property(itemsArb(1000, 2), ({ shared, onlyA, onlyB }) => {
        const r = syncWithTheirInitiator([...shared, ...onlyA], NegentropyStorage.from([...shared, ...onlyB]));
        expect(r.have).toEqual(hexSet(onlyA.map((x) => x.id)));
        expect(r.need).toEqual(hexSet(onlyB.map((x) => x.id)));
      }),
      { numRuns: 40 },
    );
  });

  it('the nostr-tools initiator against our frame-limited responder (4096 bytes) on 5k items', () => {
    const shared = Array.from({ length: 5_000 }, (_, i) => ({ timestamp: 1_700_000_000 + i * 3, id: idOf(i) }));
    const onlyA = Array.from({ length: 100 }, (_, i) => ({ timestamp: 1_700_000_000 + i * 150, id: idOf(1e6 + i) }));
    const onlyB = Array.from({ length: 800 }, (_, i) => ({ timestamp: 1_700_000_000 + i * 19, id: idOf(2e6 + i) }));
    const r = syncWithTheirInitiator([...shared, ...onlyA], NegentropyStorage.from([...shared, ...onlyB]), {
      responder: { frameSizeLimit: 4096 },
    });
    expect(r.have).toEqual(hexSet(onlyA.map((x) => x.id)));
    expect(r.need).toEqual(hexSet(onlyB.map((x) => x.id)));
    expect(r.rounds).toBeGreaterThan(2);
  });

  it('identical 10k sets: nostr-tools initiator is done after one round trip with our responder', () => {
    const items = Array.from({ length: 10_000 }, (_, i) => ({ timestamp: 1_600_000_000 + i, id: idOf(i) }));
    const r = syncWithTheirInitiator(items, NegentropyStorage.from(items));
    expect(r).toEqual({ have: [], need: [], rounds: 1 });
  });
});
