import {
  createRecord,
  DEFAULT_MAX_CLOCK_SKEW_MS,
  decode,
  emptyEndpointBody,
  encodeCanonical,
  generateIdentity,
  isRecordExpired,
  type RelayOfferBody,
  recordLiveUntil,
  verifyRecord,
} from '@dpc/core';
import { describe, expect, it } from 'vitest';

const alice = generateIdentity();
const mallory = generateIdentity();
const body = { ...emptyEndpointBody(), ipv4_external: [{ ip: '198.51.100.7', port: 8888 }], nat_type: 'cone' as const };

describe('signed records', () => {
  it('round-trips and verifies', () => {
    const rec = createRecord(alice, { kind: 'endpoint', body, seq: 5 });
    const back = verifyRecord(rec.encoded);
    expect(back).toMatchObject({ kind: 'endpoint', nodeId: alice.nodeId, seq: 5, body });
    expect(back.publicKey.equals(alice.publicKey)).toBe(true);
  });

  it('encodes canonically: key order does not change the bytes', () => {
    expect(encodeCanonical({ b: 1, a: { d: 2, c: 3 } }).equals(encodeCanonical({ a: { c: 3, d: 2 }, b: 1 }))).toBe(true);
  });

  it('rejects a record verified against another key', () => {
    const rec = createRecord(alice, { kind: 'endpoint', body });
    expect(() => verifyRecord(rec.encoded, { expectedNodeId: mallory.nodeId })).toThrow(
      expect.objectContaining({ code: 'DPC_RECORD_WRONG_KEY' }),
    );
    expect(() => verifyRecord(rec.encoded, { expectedPublicKey: mallory.publicKey })).toThrow(
      expect.objectContaining({ code: 'DPC_RECORD_WRONG_KEY' }),
    );
  });

  it('rejects a record whose node id does not match its key (forgery)', () => {
    // Mallory signs a record that claims to be Alice, with her own key.
    const rec = createRecord(mallory, { kind: 'endpoint', body });
    const [v, payload, sig] = decode(rec.encoded) as [number, Uint8Array, Uint8Array];
    const fields = decode(payload) as unknown[];
    fields[2] = alice.nodeId;
    const forgedPayload = encodeCanonical(fields);
    const forged = encodeCanonical([v, forgedPayload, mallory.sign(Buffer.concat([Buffer.from('dpc-record-v1\0'), forgedPayload]))]);
    expect(() => verifyRecord(forged)).toThrow(expect.objectContaining({ code: 'DPC_RECORD_NODE_ID_MISMATCH' }));
    void sig;
  });

  it('rejects a tampered record (bad signature)', () => {
    const rec = createRecord(alice, { kind: 'endpoint', body });
    const [v, payload, sig] = decode(rec.encoded) as [number, Uint8Array, Uint8Array];
    const fields = decode(payload) as unknown[];
    fields[4] = 999_999_999_999; // bump seq without re-signing
    const tampered = encodeCanonical([v, encodeCanonical(fields), sig]);
    expect(() => verifyRecord(tampered)).toThrow(expect.objectContaining({ code: 'DPC_RECORD_BAD_SIGNATURE' }));
    // and a flipped bit anywhere in the signature
    const flipped = Buffer.from(rec.encoded);
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] as number) ^ 1;
    expect(() => verifyRecord(flipped)).toThrow(expect.objectContaining({ code: 'DPC_RECORD_BAD_SIGNATURE' }));
  });

  it('rejects an expired record (judged by our clock alone with maxClockSkewMs 0)', () => {
    const rec = createRecord(alice, { kind: 'endpoint', body, now: Date.now() - 10_000, ttlMs: 5_000 });
    expect(() => verifyRecord(rec.encoded, { maxClockSkewMs: 0 })).toThrow(expect.objectContaining({ code: 'DPC_RECORD_EXPIRED' }));
  });

  it('rejects a record expired for longer than the tolerated clock skew (default two hours)', () => {
    const now = Date.now();
    const rec = createRecord(alice, { kind: 'endpoint', body, now: now - DEFAULT_MAX_CLOCK_SKEW_MS - 10_000, ttlMs: 5_000 });
    expect(() => verifyRecord(rec.encoded, { now })).toThrow(expect.objectContaining({ code: 'DPC_RECORD_EXPIRED' }));
    expect(isRecordExpired(rec, now)).toBe(true);
  });

  it('accepts a record from a clock an hour behind, or an hour ahead; refuses one three hours ahead', () => {
    const now = Date.now();
    const hour = 3_600_000;
    const behind = createRecord(alice, { kind: 'endpoint', body, now: now - hour, ttlMs: hour });
    expect(verifyRecord(behind.encoded, { now }).seq).toBe(behind.seq);
    expect(isRecordExpired(behind, now)).toBe(false);
    const ahead = createRecord(alice, { kind: 'endpoint', body, now: now + hour, ttlMs: hour });
    expect(verifyRecord(ahead.encoded, { now }).seq).toBe(ahead.seq);
    const far = createRecord(alice, { kind: 'endpoint', body, now: now + 3 * hour, ttlMs: hour });
    expect(() => verifyRecord(far.encoded, { now })).toThrow(expect.objectContaining({ code: 'DPC_RECORD_MALFORMED' }));
  });

  const H = 3_600_000;
  const T = 1_750_000_000_000;
  it.each([
    // [case, issuedAt, expiresAt, receivedAt, live until]
    ['correct clock, stored as published: until expiresAt', T, T + H, T, T + H],
    ['correct clock, stored 10 min later: still until expiresAt + skew at most', T, T + H, T + H / 6, T + H + H / 6],
    ['issuer an hour behind: its full hour from arrival', T - H, T, T, T + H],
    ['issuer three hours behind: capped at expiresAt + 2 h', T - 3 * H, T - 2 * H, T, T],
    ['issuer an hour ahead: its hour from arrival, not two', T + H, T + 2 * H, T, T + H],
    ['a lifetime of ten years is capped at 24 h', T, T + 87_600 * H, T, T + 24 * H],
    ['expiresAt before issuedAt: no lifetime', T, T - 1, T, T],
  ])('recordLiveUntil: %s', (_case, issuedAt, expiresAt, receivedAt, want) => {
    expect(recordLiveUntil({ issuedAt, expiresAt }, receivedAt)).toBe(want);
  });

  it('rejects an oversized record before decoding it', () => {
    const rec = createRecord(alice, { kind: 'endpoint', body });
    expect(() => verifyRecord(rec.encoded, { maxBytes: 50 })).toThrow(expect.objectContaining({ code: 'DPC_RECORD_TOO_LARGE' }));
    expect(() => verifyRecord(Buffer.alloc(5000))).toThrow(expect.objectContaining({ code: 'DPC_RECORD_TOO_LARGE' }));
    expect(() => createRecord(alice, { kind: 'endpoint', body, maxBytes: 50 })).toThrow(
      expect.objectContaining({ code: 'DPC_RECORD_TOO_LARGE' }),
    );
  });

  it('rejects malformed bytes and bad bodies with a typed error', () => {
    for (const junk of [Buffer.alloc(0), Buffer.from([0xc1]), encodeCanonical([1, 2, 3]), encodeCanonical({ a: 1 })]) {
      expect(() => verifyRecord(junk)).toThrow(expect.objectContaining({ code: 'DPC_RECORD_MALFORMED' }));
    }
    expect(() => createRecord(alice, { kind: 'endpoint', body: { ...body, ipv6: [{ ip: '198.51.100.1', port: 1 }] } })).toThrow();
  });

  it('a relay offer must name its signer', () => {
    const offer: RelayOfferBody = {
      node_id: mallory.nodeId,
      ip: '198.51.100.50',
      port: 8888,
      available: true,
      max_peers: 10,
      current_peers: 3,
      region: 'us-west',
      uptime: 0.98,
      latency_ms: 50,
      bandwidth_mbps: 50,
    };
    expect(() => createRecord(alice, { kind: 'relay-offer', body: offer })).toThrow(
      expect.objectContaining({ code: 'DPC_RECORD_MALFORMED' }),
    );
    const ok = createRecord(mallory, { kind: 'relay-offer', body: offer });
    expect(verifyRecord(ok.encoded, { kind: 'relay-offer' }).body).toEqual(offer);
    expect(() => verifyRecord(ok.encoded, { kind: 'endpoint' })).toThrow(expect.objectContaining({ code: 'DPC_RECORD_MALFORMED' }));
  });
});
