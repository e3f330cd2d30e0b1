import { once } from 'node:events';
import {
  checkMessagePack,
  DEFAULT_DECODE_MAX_DEPTH,
  DEFAULT_DECODE_MAX_ELEMENTS,
  decodeUntrusted,
  encode,
  encodeFrame,
  FrameDecoder,
} from '@dpc/core';
import { hostileMessagePack, measureCost } from '@dpc/core/testing';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';

// msgpackr with the stack's options and no bounds: what `decode` did before the pre-check.
const raw = new Packr({
  useRecords: false,
  structuredClone: false,
  moreTypes: false,
  bundleStrings: false,
  mapsAsObjects: true,
  int64AsType: 'number',
});

const TYPED = /^DPC_(DECODE_LIMIT|FRAME_MALFORMED)$/;
const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code ?? `untyped: ${String(err)}`;
  }
};
const nested = (depth: number): unknown => {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
};

describe('bounded untrusted decode', () => {
  it('the 1,200-byte nested bomb is refused in a few ms without allocating', () => {
    const bomb = hostileMessagePack.nestedBomb(1200);
    expect(bomb.subarray(0, 6).toString('hex')).toBe('dcffffdcffff');
    let error: unknown;
    const cost = measureCost(() => {
      try {
        decodeUntrusted(bomb);
      } catch (err) {
        error = err;
      }
    });
    expect(error).toMatchObject({ code: 'DPC_DECODE_LIMIT', name: 'DecodeLimitError', limit: 'length' });
    // Before: ~0.2–0.7 s and ~200 MB of heap for this one datagram.
    expect(cost.ms).toBeLessThan(100);
    expect(cost.heapBytes).toBeLessThan(4 * 1024 * 1024);
  });

  it('accepts every value the encoder writes and decodes it exactly as msgpackr does', () => {
    fc.assert(
      fc.property(fc.anything({ maxDepth: 6, withDate: true, withSparseArray: true, withNullPrototype: true }), (v) => {
        const bytes = encode(v);
        expect(decodeUntrusted(bytes)).toEqual(raw.unpack(bytes));
      }),
      { numRuns: 2000 },
    );
    expect(decodeUntrusted(encode([1, undefined, new Date(1_700_000_000_123)]))).toEqual([1, undefined, new Date(1_700_000_000_123)]);
    expect(decodeUntrusted(encode({ 1023: 'a', 17: 'b', big: 2 ** 40, neg: -(2 ** 40), f: 1.5 }))).toEqual({
      1023: 'a',
      17: 'b',
      big: 2 ** 40,
      neg: -(2 ** 40),
      f: 1.5,
    });
  });

  it('nesting: the default depth passes, one more level is refused', () => {
    expect(decodeUntrusted(encode(nested(DEFAULT_DECODE_MAX_DEPTH)))).toEqual(nested(DEFAULT_DECODE_MAX_DEPTH));
    expect(() => decodeUntrusted(encode(nested(DEFAULT_DECODE_MAX_DEPTH + 1)))).toThrow(
      expect.objectContaining({ code: 'DPC_DECODE_LIMIT', limit: 'depth' }),
    );
    expect(() => decodeUntrusted(encode([[[]]]), { maxDepth: 2 })).toThrow(expect.objectContaining({ limit: 'depth' }));
    expect(decodeUntrusted(encode([[]]), { maxDepth: 2 })).toEqual([[]]);
    // 100,000 levels: refused by the walk, no stack overflow
    expect(codeOf(() => decodeUntrusted(hostileMessagePack.deepNesting(100_000)))).toBe('DPC_DECODE_LIMIT');
  });

  it('element count: the default passes, one more value is refused', () => {
    // an array and its elements: DEFAULT_DECODE_MAX_ELEMENTS values in all
    const ok = new Array(DEFAULT_DECODE_MAX_ELEMENTS - 1).fill(0);
    expect(decodeUntrusted(encode(ok))).toHaveLength(ok.length);
    expect(() => decodeUntrusted(encode([...ok, 0]))).toThrow(expect.objectContaining({ code: 'DPC_DECODE_LIMIT', limit: 'elements' }));
    expect(() => decodeUntrusted(encode({ a: 1, b: 2 }), { maxElements: 4 })).toThrow(expect.objectContaining({ limit: 'elements' }));
    expect(decodeUntrusted(encode({ a: 1, b: 2 }), { maxElements: 5 })).toEqual({ a: 1, b: 2 });
  });

  it('keys that V8 stores as array indexes count as the slots they cost', () => {
    // {"1023": nil} is 7 bytes and a 1,024-slot backing store: 97 of them fit in 100,000
    const unit = [0x81, 0xa4, 0x31, 0x30, 0x32, 0x33, 0xc0];
    const maps = (n: number) => Buffer.from([0x90 + n, ...Array.from({ length: n }, () => unit).flat()]);
    expect(decodeUntrusted(maps(15))).toHaveLength(15);
    expect(() => decodeUntrusted(maps(15), { maxElements: 15_000 })).toThrow(expect.objectContaining({ limit: 'elements' }));
    // keys far beyond V8's reach of a flat store cost nothing extra
    const sparse = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [String(1_700_000_000 + i), i]));
    expect(decodeUntrusted(encode(Array.from({ length: 100 }, () => sparse)))).toHaveLength(100);
    // dense small keys cost their largest index once per map
    const dense = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [i, i]));
    expect(decodeUntrusted(encode(Array.from({ length: 50 }, () => dense)))).toHaveLength(50);
  });

  it('declared lengths beyond the bytes left are refused for every container, string, bin and ext', () => {
    const cases = [
      [0x9f], // fixarray 15, nothing follows
      [0x8f, 0xc0],
      [0xdc, 0x00, 0x03, 0xc0],
      [0xdd, 0x00, 0x00, 0x00, 0x02, 0xc0],
      [0xde, 0x00, 0x01, 0xc0],
      [0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0],
      [0xbf, 0x61],
      [0xd9, 0x05, 0x61],
      [0xda, 0xff, 0xff, 0x61],
      [0xdb, 0xff, 0xff, 0xff, 0xff, 0x61],
      [0xc4, 0x02, 0x00],
      [0xc5, 0xff, 0xff],
      [0xc6, 0xff, 0xff, 0xff, 0xff],
      [0xc9, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00],
      [0xd8, 0xff, 0x00],
    ];
    for (const c of cases)
      expect(
        codeOf(() => decodeUntrusted(Buffer.from(c))),
        Buffer.from(c).toString('hex'),
      ).toBe('DPC_DECODE_LIMIT');
    // at 256 KiB every hostile shape is over one bound or another
    for (const b of hostileMessagePack.all(256 * 1024)) expect(codeOf(() => decodeUntrusted(b))).toBe('DPC_DECODE_LIMIT');
  });

  it('refuses what plain MessagePack peers never send: msgpackr extensions, reserved bytes, trailing bytes', () => {
    const cases: Array<[string, number[]]> = [
      ['record definition', [0xd4, 0x72, 0x00]],
      ['Set', [0xd4, 0x73, 0x90]],
      ['Error', [0xd4, 0x65, 0x00, 0x93, 0xa1, 0x61, 0xa1, 0x62, 0xc0]],
      ['RegExp', [0xd4, 0x78, 0x00, 0x92, 0xa1, 0x61, 0xa0]],
      ['BigInt', [0xd6, 0x42, 0x01, 0x02, 0x03, 0x04]],
      ['bundled strings', [0xd6, 0x62, 0x00, 0x00, 0x00, 0x10]],
      ['typed array', [0xd5, 0x74, 0x01, 0x00]],
      ['timestamp of 2 bytes', [0xd5, 0xff, 0x00, 0x00]],
      ['0xc1', [0xc1]],
      ['trailing byte', [0xc0, 0xc0]],
      ['empty', []],
      ['cut number', [0xcb, 0x00]],
    ];
    for (const [what, bytes] of cases)
      expect(
        codeOf(() => decodeUntrusted(Buffer.from(bytes))),
        what,
      ).toBe('DPC_FRAME_MALFORMED');
  });

  it('a FrameDecoder applies its decodeLimits to every frame', async () => {
    const d = new FrameDecoder({ decodeLimits: { maxDepth: 2 } });
    const got: unknown[] = [];
    d.on('data', (v) => got.push(v));
    const failed = once(d, 'error');
    d.write(encodeFrame([[1]]));
    d.write(encodeFrame([[[1]]]));
    const [err] = await failed;
    expect(got).toEqual([[[1]]]);
    expect(err).toMatchObject({ code: 'DPC_DECODE_LIMIT', limit: 'depth' });
  });

  it('checkMessagePack is the same walk without the decode', () => {
    expect(() => checkMessagePack(encode({ a: [1, 2, 3] }))).not.toThrow();
    expect(() => checkMessagePack(hostileMessagePack.nestedBomb(30))).toThrow(expect.objectContaining({ code: 'DPC_DECODE_LIMIT' }));
  });

  it('fuzz: random, mutated and hostile bytes only ever give a value or a typed error', () => {
    const valid = fc.anything({ maxDepth: 4 }).map((v) => encode(v));
    const mutated = fc
      .tuple(valid, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }))
      .map(([buf, muts]) => {
        const b = Buffer.from(buf);
        for (const [i, v] of muts) if (b.length > 0) b[i % b.length] = v;
        return b;
      });
    const random = fc.uint8Array({ maxLength: 2048 }).map((a) => Buffer.from(a));
    // hostile headers spliced into valid values
    const spliced = fc
      .tuple(valid, fc.constantFrom(...hostileMessagePack.all(64)), fc.nat())
      .map(([v, h, at]) => Buffer.concat([v.subarray(0, at % (v.length + 1)), h, v.subarray(at % (v.length + 1))]));
    fc.assert(
      fc.property(fc.oneof(valid, mutated, random, spliced), (bytes) => {
        const code = codeOf(() => decodeUntrusted(bytes));
        if (code !== undefined) expect(code).toMatch(TYPED);
      }),
      { numRuns: 5000 },
    );
  });
});
