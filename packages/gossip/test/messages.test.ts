import { decode, encodeCanonical, generateIdentity } from '@dpc/core';
import { createMessage, forwardedCopy, open, payloadAad, verifyMessage, x25519PublicOf, x25519SecretOf } from '@dpc/gossip';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

const alice = generateIdentity();
const bob = generateIdentity();
const carol = generateIdentity();
const base = { maxHops: 5, ttlSeconds: 3600, priority: 'normal' as const, vectorClock: { [alice.nodeId]: 1 } };
const make = (text = 'secret marker', now = Date.now()) =>
  createMessage(alice, { ...base, destination: bob.nodeId, destinationKey: bob.publicKey, plaintext: Buffer.from(text), now });
const codeOf = (f: () => unknown): string => {
  try {
    f();
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? `untyped: ${(err as Error).message}`;
  }
};

describe('gossip message', () => {
  it('round-trips, opens only with the destination key, and hides the plaintext', () => {
    const m = make('hello bob, marker-XYZ');
    const v = verifyMessage(m.encoded);
    expect(v.id.equals(m.id)).toBe(true);
    expect(v.source).toBe(alice.nodeId);
    expect(m.encoded.includes(Buffer.from('marker-XYZ'))).toBe(false);
    const aad = payloadAad(v.source, v.destination, v.kind);
    expect(open(x25519SecretOf(bob), x25519PublicOf(bob.publicKey), v.payload, aad).toString()).toBe('hello bob, marker-XYZ');
    expect(codeOf(() => open(x25519SecretOf(carol), x25519PublicOf(carol.publicKey), v.payload, aad))).toBe('DPC_GOSSIP_UNDECRYPTABLE');
    // rewrapped under another source: the AAD no longer matches
    expect(
      codeOf(() => open(x25519SecretOf(bob), x25519PublicOf(bob.publicKey), v.payload, payloadAad(carol.nodeId, v.destination, 'msg'))),
    ).toBe('DPC_GOSSIP_UNDECRYPTABLE');
  });

  it('forwarders may change only the hop fields', () => {
    const m = make();
    const f = forwardedCopy(forwardedCopy(m, carol.nodeId), bob.nodeId);
    const v = verifyMessage(f.encoded);
    expect(v.hops).toBe(2);
    expect(v.already_forwarded).toEqual([carol.nodeId, bob.nodeId]);
    expect(v.id.equals(m.id)).toBe(true);
  });

  it('refuses a message with content changed after signing as tampered', () => {
    const m = make();
    const other = make('another text');
    // the signed part of one message with the id and signature of another
    const [v, signedA] = decodeEnv(other.encoded);
    const [, , id, sig, hops, af] = decodeEnv(m.encoded);
    expect(codeOf(() => verifyMessage(encodeCanonical([v, signedA, id, sig, hops, af])))).toBe('DPC_GOSSIP_TAMPERED');
  });

  it('refuses a message signed by another key as forged', () => {
    const forged = createMessage(carol, { ...base, destination: bob.nodeId, destinationKey: bob.publicKey, plaintext: Buffer.from('x') });
    const [v, , , sig, hops, af] = decodeEnv(forged.encoded);
    // re-sign carol's content claiming alice's key: build the signed part with alice as source
    const m = make();
    const [, signed, id] = decodeEnv(m.encoded);
    expect(codeOf(() => verifyMessage(encodeCanonical([v, signed, id, sig, hops, af])))).toBe('DPC_GOSSIP_FORGED');
  });

  it('refuses expired, future, over-hop, oversized and malformed messages with typed errors', () => {
    const now = Date.now();
    expect(codeOf(() => verifyMessage(make('x', now - 3_601_000).encoded, { now }))).toBe('DPC_GOSSIP_EXPIRED');
    expect(codeOf(() => verifyMessage(make('x', now + 3_600_000).encoded, { now }))).toBe('DPC_GOSSIP_EXPIRED');
    let m = make();
    for (let i = 0; i < 6; i++) m = forwardedCopy(m, carol.nodeId);
    expect(codeOf(() => verifyMessage(m.encoded))).toBe('DPC_GOSSIP_OVER_HOP');
    expect(codeOf(() => verifyMessage(make().encoded, { maxBytes: 100 }))).toBe('DPC_GOSSIP_OVERSIZED');
    expect(codeOf(() => verifyMessage(Buffer.from([0xc1])))).toBe('DPC_GOSSIP_MALFORMED');
    expect(codeOf(() => verifyMessage(encodeCanonical([1, 2, 3])))).toBe('DPC_GOSSIP_MALFORMED');
  });

  it('property: any changed byte is refused with a typed error unless it only changed the hop fields', () => {
    const m = make('property marker');
    fc.assert(
      fc.property(fc.nat({ max: m.encoded.length - 1 }), fc.integer({ min: 1, max: 255 }), (pos, x) => {
        const bad = Buffer.from(m.encoded);
        bad[pos] = (bad[pos] as number) ^ x;
        let v: ReturnType<typeof verifyMessage>;
        try {
          v = verifyMessage(bad);
        } catch (err) {
          const code = (err as { code?: string }).code ?? '';
          return /^DPC_GOSSIP_(TAMPERED|FORGED|MALFORMED|OVER_HOP|EXPIRED|OVERSIZED)$/.test(code);
        }
        // accepted: then only hops / already_forwarded changed, the signed content is intact
        return v.id.equals(m.id) && v.payload.equals(m.payload) && v.source === m.source && v.destination === m.destination;
      }),
      { numRuns: 2000 },
    );
  });

  it('property: random bytes never throw an untyped error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        const c = codeOf(() => verifyMessage(bytes));
        return c.startsWith('DPC_GOSSIP_');
      }),
      { numRuns: 2000 },
    );
  });
});

function decodeEnv(b: Uint8Array): unknown[] {
  return decode(b) as unknown[];
}
