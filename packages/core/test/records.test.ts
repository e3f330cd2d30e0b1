import { createRecord, decode, emptyEndpointBody, encodeCanonical, generateIdentity, type RelayOfferBody, verifyRecord } from '@dpc/core';
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

  it('rejects an expired record', () => {
    const rec = createRecord(alice, { kind: 'endpoint', body, now: Date.now() - 10_000, ttlMs: 5_000 });
    expect(() => verifyRecord(rec.encoded)).toThrow(expect.objectContaining({ code: 'DPC_RECORD_EXPIRED' }));
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
