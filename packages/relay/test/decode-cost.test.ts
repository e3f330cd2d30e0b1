import { once } from 'node:events';
import { Counters, encodeFrame, generateIdentity, type Identity } from '@dpc/core';
import { batchCost, decodeOneFrame, framed, hostileMessagePack, rawHelloedTls } from '@dpc/core/testing';
import { relayMessageSchema } from '@dpc/relay';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { rawClient, relay, runCleanups } from './helpers.js';

afterEach(runCleanups);

// Fuzz target of the relay's control messages: the frame decoder with the connection frame and
// relay message schemas, as a relay runs it on every authenticated control connection. Then the
// issue's attack for real: a self-signed TLS client sends a 24 KB nested bomb to a relay.

const CODES = /^DPC_(DECODE_LIMIT|FRAME_MALFORMED|FRAME_TOO_LARGE|SCHEMA)$/;

/** What a relay does with one control frame: decode, check it is `data`, check the relay message. */
function decodeRelayFrame(frame: Buffer): unknown {
  return decodeOneFrame(frame, {
    schema: (v: unknown) => {
      const f = v as { t?: unknown; d?: unknown };
      if (f.t !== 'data') return f;
      return relayMessageSchema(f.d);
    },
  });
}

/** `{ t: 'data', d: <hostile> }` with the hostile bytes spliced in as the value of `d`. */
const asData = (hostile: Buffer): Buffer =>
  Buffer.concat([Buffer.from([0x82, 0xa1, 0x74, 0xa4, 0x64, 0x61, 0x74, 0x61, 0xa1, 0x64]), hostile]);

describe('relay control messages under hostile input', () => {
  it('hostile 24 KB control frames cost about what a RELAY_MESSAGE of 24 KB does, with typed errors only', () => {
    const n = 24 * 1024;
    const hostile = hostileMessagePack.all(n).flatMap((h) => [framed(h), framed(asData(h))]);
    const plain = hostile.map((h) =>
      encodeFrame({ t: 'data', d: { type: 'RELAY_MESSAGE', session_id: 's1', data: Buffer.alloc(h.length - 60) } }),
    );
    decodeRelayFrame(plain[0] as Buffer);
    const p = batchCost(decodeRelayFrame, plain, 5);
    const h = batchCost(decodeRelayFrame, hostile, 5);
    expect(
      [...h.codes].every((c) => CODES.test(c)),
      [...h.codes].join(),
    ).toBe(true);
    expect(h.ms / h.bytes).toBeLessThan((20 * p.ms) / p.bytes + 0.001);
    expect(h.maxHeapBytes).toBeLessThan(8 * 1024 * 1024);
  });

  it('fuzz: mutated and spliced relay messages give typed errors at a bounded cost', () => {
    const valid = fc
      .constantFrom<unknown>(
        { type: 'RELAY_RESERVE', id: 1 },
        { type: 'RELAY_REGISTER', id: 2, target: generateIdentity().nodeId, splice: true },
        { type: 'RELAY_MESSAGE', session_id: 's1', data: Buffer.alloc(100, 1) },
        { type: 'RELAY_DISCONNECT', session_id: 's1', reason: 'end' },
      )
      .map((d) => encodeFrame({ t: 'data', d }).subarray(4));
    const mutated = fc
      .tuple(valid, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }))
      .map(([b, muts]) => {
        const out = Buffer.from(b);
        for (const [i, v] of muts) out[i % out.length] = v;
        return out;
      });
    const spliced = fc
      .tuple(valid, fc.constantFrom(...hostileMessagePack.all(256)), fc.nat())
      .map(([v, h, at]) => Buffer.concat([v.subarray(0, at % v.length), h, v.subarray(at % v.length)]));
    const inputs = fc.sample(fc.oneof(mutated, spliced), { numRuns: 2000, seed: 99 }).map(framed);
    const h = batchCost(decodeRelayFrame, inputs, 1);
    expect(
      [...h.codes].every((c) => CODES.test(c)),
      [...h.codes].join(),
    ).toBe(true);
    expect(h.maxHeapBytes).toBeLessThan(8 * 1024 * 1024);
    const plain = inputs.map((f) =>
      encodeFrame({ t: 'data', d: { type: 'RELAY_MESSAGE', session_id: 's1', data: Buffer.alloc(Math.max(0, f.length - 60)) } }),
    );
    const p = batchCost(decodeRelayFrame, plain, 1);
    expect(h.ms / h.bytes).toBeLessThan((20 * p.ms) / p.bytes + 0.001);
  });

  it('a 24 KB nested bomb after a self-signed TLS handshake is refused at once; the relay keeps serving', async () => {
    const counters = new Counters();
    const r = await relay({ counters });
    const attacker = generateIdentity();
    const refusedIn = await bombRelay(attacker, r.server.port, hostileMessagePack.nestedBomb(24 * 1024));
    // before: ~6 s of a blocked relay and 1.5 GB of heap
    expect(refusedIn).toBeLessThan(2000);
    for (let i = 0; i < 40 && counters.get('frame_errors_DPC_DECODE_LIMIT') === 0; i++) await new Promise((res) => setTimeout(res, 25));
    expect(counters.get('frame_errors_DPC_DECODE_LIMIT')).toBe(1);
    const legit = await rawClient(generateIdentity(), r.id, r.server.port);
    expect(legit.remoteNodeId).toBe(r.id.nodeId);
    legit.close();
  });
});

/**
 * A control connection by hand: TLS 1.3 with a self-signed certificate, the dpc hello, then one
 * frame of `body`. Resolves with the ms from sending it to the relay closing the connection.
 */
async function bombRelay(identity: Identity, port: number, body: Buffer): Promise<number> {
  const tls = await rawHelloedTls(identity, port);
  const closed = once(tls, 'close');
  const t0 = performance.now();
  tls.write(framed(body));
  await closed;
  return performance.now() - t0;
}
