import { Negentropy, NegentropyStorage } from '@dpc/gossip';
import { describe, expect, it } from 'vitest';
import { hex } from './negentropy-helpers.js';

// Golden bytes for the wire format, computed by hand from the protocol description (fingerprints
// with Python's hashlib), so an accidental change of encoding fails here.
const filled = (b: number) => new Uint8Array(32).fill(b);

describe('negentropy golden bytes', () => {
  it('fingerprint: SHA-256(sum of ids mod 2^256, little-endian || varint(count)), first 16 bytes', () => {
    expect(hex(NegentropyStorage.from([]).fingerprint(0, 0))).toBe('7f9c9e31ac8256ca2f258583df262dbc');
    const two = NegentropyStorage.from([
      { timestamp: 1, id: filled(1) },
      { timestamp: 2, id: filled(2) },
    ]);
    expect(hex(two.fingerprint(0, 2))).toBe('12a7b248579deb04f68dac6d3db20efd');
    // 0xff…ff + 0x01 (little-endian 1) wraps to 0 mod 2^256.
    const one = new Uint8Array(32);
    one[0] = 1;
    const wrap = NegentropyStorage.from([
      { timestamp: 1, id: filled(0xff) },
      { timestamp: 1, id: one },
    ]);
    expect(hex(wrap.fingerprint(0, 2))).toBe('58cc2f44d3a27866874701fbad573da9');
    // 128 × 2^249 = 2^256 ≡ 0, with the count as a two-byte varint (0x81 0x00).
    const top = new Uint8Array(32);
    top[31] = 2;
    const many = NegentropyStorage.from(Array.from({ length: 128 }, (_, i) => ({ timestamp: i, id: top })));
    expect(many.size).toBe(128);
    expect(hex(many.fingerprint(0, 128))).toBe('74c091a8f8c630eebb4563ad692d11f9');
  });

  it('a small set is sent whole as one id list up to infinity', () => {
    const s = NegentropyStorage.from([
      { timestamp: 2, id: filled(2) },
      { timestamp: 1, id: filled(1) },
    ]);
    // 0x61 | bound: timestamp 0 (= infinity), prefix length 0 | mode 2 (IdList) | count 2 | ids
    expect(hex(new Negentropy(s).initiate())).toBe(`6100000202${'01'.repeat(32)}${'02'.repeat(32)}`);
  });

  it('32 items are split into 16 fingerprint ranges with delta timestamps and minimal bounds', () => {
    const items = Array.from({ length: 32 }, (_, i) => ({ timestamp: 1000 + Math.floor(i / 4), id: filled(i) }));
    const s = NegentropyStorage.from(items);
    const msg = hex(new Negentropy(s).initiate());
    // Bucket k holds items 2k, 2k+1. Its upper bound separates item 2k+1 from item 2k+2: same
    // second when 2k+2 is not a multiple of 4 → 1-byte prefix of id 2k+2, else the new second.
    let expected = '61';
    let last = 0;
    for (let k = 0; k < 16; k++) {
      const next = 2 * k + 2;
      if (k === 15) {
        expected += '0000';
      } else {
        const ts = 1000 + Math.floor(next / 4);
        const delta = ts - last + 1;
        last = ts;
        const varint =
          delta < 128
            ? delta.toString(16).padStart(2, '0')
            : ((delta >> 7) | 0x80).toString(16) + (delta & 0x7f).toString(16).padStart(2, '0');
        expected += varint + (next % 4 === 0 ? '00' : `01${next.toString(16).padStart(2, '0')}`);
      }
      expected += `01${hex(s.fingerprint(2 * k, 2 * k + 2))}`;
    }
    expect(msg).toBe(expected);
    // The first range: 0x61 | timestamp 1000 (delta + 1 = 1001 = varint 0x87 0x69) | prefix
    // length 1, [0x02] | mode 1 (Fingerprint).
    expect(msg.slice(0, 12)).toBe('618769010201');
  });

  it('a responder whose set matches answers the single byte 0x61', () => {
    const s = NegentropyStorage.from(Array.from({ length: 100 }, (_, i) => ({ timestamp: i, id: filled(i) })));
    const first = new Negentropy(s).initiate();
    expect(hex(new Negentropy(s).respond(first))).toBe('61');
  });
});
