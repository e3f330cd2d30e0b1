import { createRecord, type DpcError, emptyEndpointBody, encode, encodeFrame, generateIdentity, verifyRecord } from '@dpc/core';
import { batchCost, decodeOneFrame, framed, hostileMessagePack } from '@dpc/core/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

// Fuzz targets of the two decoders of @dpc/core that read bytes from anyone: frames (every
// secure connection, so the relay's control messages too) and signed records (the DHT stores
// and returns them). Besides "only typed errors", each checks what hostile input costs per byte
// against plain input of the same size. Bounds are loose on purpose (2 shared cores in CI): the
// nested bomb used to cost ~10⁵ times more than plain input, and ~175 kB of heap per byte.

const decodeFrame = (frame: Buffer): unknown => decodeOneFrame(frame, { maxFrameBytes: 1024 * 1024 });

const FRAME_CODES = /^DPC_(DECODE_LIMIT|FRAME_MALFORMED|FRAME_TOO_LARGE|FRAME_TRUNCATED|SCHEMA)$/;
const RECORD_CODES = /^DPC_RECORD_(MALFORMED|TOO_LARGE|BAD_SIGNATURE|NODE_ID_MISMATCH|WRONG_KEY|EXPIRED)$/;

describe('decoder cost per byte (fuzz targets)', () => {
  it('frames: a 24 KB nested bomb after the handshake costs about what a plain 24 KB frame does', () => {
    const n = 24 * 1024;
    const hostile = hostileMessagePack.all(n).map(framed);
    // plain frames of the same size: a string, many small values, nested objects
    const plain = [
      encodeFrame({ t: 'data', d: 'x'.repeat(n - 20) }),
      encodeFrame({ t: 'data', d: Array.from({ length: n / 4 }, (_, i) => i) }),
      encodeFrame({ t: 'data', d: Array.from({ length: n / 40 }, (_, i) => ({ k: i, v: 'abcdefghijklmnop' })) }),
    ];
    decodeFrame(plain[0] as Buffer); // warm up
    const p = batchCost(decodeFrame, plain, 5);
    const h = batchCost(decodeFrame, hostile, 5);
    expect(
      [...h.codes].every((c) => FRAME_CODES.test(c)),
      [...h.codes].join(),
    ).toBe(true);
    expect(h.codes.has('DPC_DECODE_LIMIT')).toBe(true);
    // per byte, hostile input is no dearer than 20× plain input (+ noise allowance)
    expect(h.ms / h.bytes).toBeLessThan((20 * p.ms) / p.bytes + 0.001);
    expect(h.maxHeapBytes).toBeLessThan(Math.max(8 * 1024 * 1024, 64 * n));
  });

  it('frames: fuzz of random, mutated and hostile frames gives typed errors at a bounded cost per byte', () => {
    const valid = fc.anything({ maxDepth: 4 }).map((v) => encode(v));
    const mutated = fc
      .tuple(valid, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }))
      .map(([b, muts]) => {
        const out = Buffer.from(b);
        for (const [i, v] of muts) if (out.length > 0) out[i % out.length] = v;
        return out;
      });
    const hostile = fc
      .tuple(
        fc.constantFrom(...Object.keys(hostileMessagePack).filter((k) => k !== 'all' && k !== 'hugeLengths')),
        fc.integer({ min: 8, max: 16_384 }),
      )
      .map(([k, n]) => (hostileMessagePack as unknown as Record<string, (n: number) => Buffer>)[k]?.(n) as Buffer);
    const random = fc.uint8Array({ minLength: 1, maxLength: 4096 }).map((a) => Buffer.from(a));
    const inputs = fc
      .sample(fc.oneof(valid, mutated, hostile, random), { numRuns: 600, seed: 4242 })
      .filter((b) => b.length > 0)
      .map(framed);
    const plain = inputs.map((f) => encodeFrame({ t: 'data', d: 'x'.repeat(Math.max(0, f.length - 24)) }));
    const p = batchCost(decodeFrame, plain, 2);
    const h = batchCost(decodeFrame, inputs, 2);
    expect(
      [...h.codes].every((c) => FRAME_CODES.test(c)),
      [...h.codes].join(),
    ).toBe(true);
    expect(h.ms / h.bytes).toBeLessThan((20 * p.ms) / p.bytes + 0.001);
    expect(h.maxHeapBytes).toBeLessThan(16 * 1024 * 1024);
  });

  it('records: hostile record envelopes and payloads cost about what a plain record does', () => {
    const id = generateIdentity();
    const good = createRecord(id, { kind: 'endpoint', body: emptyEndpointBody() }).encoded;
    const n = 1000; // DEFAULT_MAX_RECORD_BYTES
    // hostile bytes as the envelope, and inside a well-formed envelope as the signed payload
    const hostile = hostileMessagePack
      .all(n - 80)
      .flatMap((b) => [b.subarray(0, n), encode([1, b, Buffer.alloc(64)]).subarray(0, n) as Buffer]);
    const plain = hostile.map(() => good);
    const verify = (b: Buffer) => verifyRecord(b, { kind: 'endpoint' });
    verify(good);
    const p = batchCost(verify, plain, 5);
    const h = batchCost(verify, hostile, 5);
    expect(
      [...h.codes].every((c) => RECORD_CODES.test(c)),
      [...h.codes].join(),
    ).toBe(true);
    // a plain record costs an Ed25519 verification, so hostile input must not be dearer
    expect(h.ms / h.bytes).toBeLessThan((20 * p.ms) / p.bytes + 0.001);
    expect(h.maxHeapBytes).toBeLessThan(4 * 1024 * 1024);

    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 1200 }), fc.constantFrom(...hostile)), (b) => {
        try {
          verify(Buffer.from(b));
        } catch (err) {
          expect((err as DpcError).code).toMatch(RECORD_CODES);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
