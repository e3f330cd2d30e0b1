import { Counters, isDpcError } from '@dpc/core';
import { Negentropy, NegentropyStorage } from '@dpc/gossip';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { idOf } from './negentropy-helpers.js';

const storage = NegentropyStorage.from(Array.from({ length: 500 }, (_, i) => ({ timestamp: 1000 + (i >> 1), id: idOf(i) })));
const bytes = (...parts: (number | number[] | Uint8Array)[]): Uint8Array =>
  Uint8Array.from(parts.flatMap((p) => (typeof p === 'number' ? [p] : [...p])));

/** A responder's reply or the error code it refused the message with. */
function respondCode(msg: Uint8Array, opts = {}): string {
  try {
    new Negentropy(storage, opts).respond(msg);
    return 'ok';
  } catch (err) {
    if (!isDpcError(err)) throw err;
    return err.code;
  }
}

function initiatorCode(reply: Uint8Array): string {
  const ini = new Negentropy(storage);
  ini.initiate();
  try {
    ini.reconcile(reply);
    return 'ok';
  } catch (err) {
    if (!isDpcError(err)) throw err;
    return err.code;
  }
}

describe('negentropy refuses malformed and hostile messages with typed errors', () => {
  it.each([
    ['an empty message', bytes(), 'DPC_NEGENTROPY_TRUNCATED'],
    ['a protocol byte outside 0x60..0x6f', bytes(0x00), 'DPC_NEGENTROPY_VERSION'],
    ['protocol byte 0xff', bytes(0xff, 0x00, 0x00), 'DPC_NEGENTROPY_VERSION'],
    ['a varint cut in the middle', bytes(0x61, 0x81), 'DPC_NEGENTROPY_TRUNCATED'],
    ['a varint longer than 8 bytes', bytes(0x61, Array(9).fill(0x80), 0x01), 'DPC_NEGENTROPY_VARINT'],
    ['a timestamp above 2^53', bytes(0x61, 0x90, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01), 'DPC_NEGENTROPY_VARINT'],
    [
      'timestamp deltas summing above 2^53',
      bytes(0x61, [0x8f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], 0, 0, [0x8f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], 0, 0),
      'DPC_NEGENTROPY_VARINT',
    ],
    ['a bound id prefix of 33 bytes', bytes(0x61, 0x05, 33, Array(33).fill(1), 0x00), 'DPC_NEGENTROPY_BOUND'],
    ['a bound prefix longer than the message', bytes(0x61, 0x05, 20, 1, 2, 3), 'DPC_NEGENTROPY_TRUNCATED'],
    ['bounds going backwards (same second, smaller prefix)', bytes(0x61, 0x05, 1, 0x10, 0x00, 0x01, 1, 0x05, 0x00), 'DPC_NEGENTROPY_BOUND'],
    ['two infinite bounds in a row', bytes(0x61, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00), 'DPC_NEGENTROPY_BOUND'],
    ['a first bound equal to the lowest bound', bytes(0x61, 0x01, 0x00, 0x00), 'DPC_NEGENTROPY_BOUND'],
    ['an unknown mode', bytes(0x61, 0x00, 0x00, 0x03), 'DPC_NEGENTROPY_MODE'],
    ['a fingerprint cut short', bytes(0x61, 0x00, 0x00, 0x01, Array(15).fill(7)), 'DPC_NEGENTROPY_TRUNCATED'],
    ['an id list announcing 2^40 ids', bytes(0x61, 0x00, 0x00, 0x02, [0x80 | 32, 0x80, 0x80, 0x80, 0x80, 0x00]), 'DPC_NEGENTROPY_COUNT'],
    ['an id list one id short', bytes(0x61, 0x00, 0x00, 0x02, 0x02, Array(63).fill(9)), 'DPC_NEGENTROPY_COUNT'],
  ])('responder and initiator: %s', (_name, msg, code) => {
    expect(respondCode(msg)).toBe(code);
    expect(initiatorCode(msg)).toBe(code);
  });

  it('a message above maxMessageBytes is refused before it is parsed', () => {
    const big = bytes(0x61, 0x00, 0x00, 0x02, 0x00, Array(2000).fill(0));
    expect(respondCode(big, { maxMessageBytes: 1024 })).toBe('DPC_NEGENTROPY_TOO_LARGE');
  });

  it('the responder answers another protocol version with its own (0x61); the initiator refuses it', () => {
    expect(new Negentropy(storage).respond(bytes(0x62, 0x00, 0x00))).toEqual(bytes(0x61));
    expect(initiatorCode(bytes(0x62))).toBe('DPC_NEGENTROPY_VERSION');
  });

  it('counts every refusal by code', () => {
    const counters = new Counters();
    const neg = new Negentropy(storage, { counters });
    expect(() => neg.respond(bytes(0x61, 0x00, 0x00, 0x07))).toThrow(expect.objectContaining({ code: 'DPC_NEGENTROPY_MODE' }));
    expect(() => neg.respond(bytes(0x61, 0x81))).toThrow(expect.objectContaining({ code: 'DPC_NEGENTROPY_TRUNCATED' }));
    expect(counters.get('negentropy_rejected')).toBe(2);
    expect(counters.get('negentropy_rejected_DPC_NEGENTROPY_MODE')).toBe(1);
    expect(counters.get('negentropy_rejected_DPC_NEGENTROPY_TRUNCATED')).toBe(1);
  });

  it('a responder flooding the initiator with unknown ids yields needs bounded by the message', () => {
    const ids = Array.from({ length: 1000 }, (_, i) => [...idOf(1e9 + i)]).flat();
    const reply = bytes(0x61, 0x00, 0x00, 0x02, [0x87, 0x68], ids); // count 1000
    const ini = new Negentropy(storage);
    ini.initiate();
    const r = ini.reconcile(reply);
    expect(r.need.length).toBe(1000);
    expect(r.have.length).toBe(storage.size);
    expect(r.output).toBeNull();
  });

  it('random bytes never crash either side: a reply or a DPC_NEGENTROPY_* error', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.uint8Array({ maxLength: 300 }), (v1, body) => {
        const msg = v1 ? bytes(0x61, body) : body;
        for (const code of [respondCode(msg), initiatorCode(msg)]) expect(code === 'ok' || code.startsWith('DPC_NEGENTROPY_')).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it('mutated valid messages never crash either side', () => {
    const other = NegentropyStorage.from(Array.from({ length: 700 }, (_, i) => ({ timestamp: 1000 + (i >> 1), id: idOf(i + 50) })));
    const first = new Negentropy(other).initiate();
    const reply = new Negentropy(storage).respond(first);
    fc.assert(
      fc.property(
        fc.constantFrom(first, reply),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
        fc.nat(),
        (base, flips, cut) => {
          const msg = base.slice(0, Math.max(1, base.length - (cut % 40)));
          for (const [at, v] of flips) msg[at % msg.length] = v;
          for (const code of [respondCode(msg), initiatorCode(msg)]) expect(code === 'ok' || code.startsWith('DPC_NEGENTROPY_')).toBe(true);
        },
      ),
      { numRuns: 800 },
    );
  });

  it('refuses misuse: unsealed storage, bad options, bad items', () => {
    const s = new NegentropyStorage();
    expect(() => new Negentropy(s)).toThrow(expect.objectContaining({ code: 'DPC_NEGENTROPY_USAGE' }));
    s.seal();
    expect(() => s.add(1, idOf(1))).toThrow(expect.objectContaining({ code: 'DPC_NEGENTROPY_USAGE' }));
    expect(() => new Negentropy(s, { frameSizeLimit: 1000 })).toThrow(expect.objectContaining({ code: 'DPC_NEGENTROPY_USAGE' }));
    expect(() => new Negentropy(s, { maxMessageBytes: 0 })).toThrow(expect.objectContaining({ code: 'DPC_NEGENTROPY_USAGE' }));
    const t = new NegentropyStorage();
    expect(() => t.add(-1, idOf(1))).toThrow(expect.objectContaining({ code: 'DPC_NEGENTROPY_USAGE' }));
    expect(() => t.add(1.5, idOf(1))).toThrow(expect.objectContaining({ code: 'DPC_NEGENTROPY_USAGE' }));
    expect(() => t.add(1, new Uint8Array(31))).toThrow(expect.objectContaining({ code: 'DPC_NEGENTROPY_USAGE' }));
    expect(() => t.fingerprint(0, 0)).toThrow(expect.objectContaining({ code: 'DPC_NEGENTROPY_USAGE' }));
  });
});
