import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { createRecord, emptyEndpointBody, generateIdentity } from '@dpc/core';
import { batchCost, hostileMessagePack } from '@dpc/core/testing';
import { constants } from '@dpc/dht';
import { createTestnet } from '@dpc/dht/testnet';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeDatagram, encodeDatagram } from '../src/messages.js';

// Fuzz target of the DHT datagram decoder: typed errors only, and a cost per byte for hostile
// datagrams close to that of plain ones. Then the same bomb over real UDP at a running node.

const CODES = /^DPC_(DECODE_LIMIT|FRAME_MALFORMED|SCHEMA|DHT_DATAGRAM_TOO_LARGE)$/;
const id = Buffer.alloc(16, 7);
const x = Buffer.from([1, 2, 3, 4]);

describe('DHT datagram decoder under hostile input', () => {
  it('hostile 1,200-byte datagrams cost about what plain ones do, with typed errors only', () => {
    const n = 1200;
    const hostile = hostileMessagePack.all(n);
    const contacts = Array.from({ length: 20 }, (_, i) => ({ id: Buffer.alloc(16, i), host: `10.0.${i}.1`, port: 4000 + i }));
    const record = createRecord(generateIdentity(), { kind: 'endpoint', body: emptyEndpointBody() }).encoded;
    const plain = [
      encodeDatagram({ t: 'nodes', x, id, n: contacts, tk: Buffer.alloc(8) }),
      encodeDatagram({ t: 'store', x, id, k: id, r: Buffer.concat([record, Buffer.alloc(600)]), tk: Buffer.alloc(8) }),
      encodeDatagram({ t: 'ping', x, id }),
    ];
    decodeDatagram(plain[0] as Buffer); // warm up
    const p = batchCost((b) => decodeDatagram(b), plain, 20);
    const h = batchCost((b) => decodeDatagram(b), hostile, 20);
    expect(
      [...h.codes].every((c) => CODES.test(c)),
      [...h.codes].join(),
    ).toBe(true);
    expect(h.ms / h.bytes).toBeLessThan((20 * p.ms) / p.bytes + 0.001);
    // the bomb used to take ~200 MB of heap for one datagram
    expect(h.maxHeapBytes).toBeLessThan(4 * 1024 * 1024);
  });

  it('fuzz: random, mutated and spliced datagrams give typed errors, at a bounded cost', () => {
    const valid = fc.constantFrom(
      encodeDatagram({ t: 'ping', x, id }),
      encodeDatagram({ t: 'find_node', x, id, k: id }),
      encodeDatagram({ t: 'nodes', x, id, n: [{ id, host: '127.0.0.1', port: 1 }], tk: Buffer.alloc(8) }),
    );
    const mutated = fc
      .tuple(valid, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }))
      .map(([b, muts]) => {
        const out = Buffer.from(b);
        for (const [i, v] of muts) out[i % out.length] = v;
        return out;
      });
    const spliced = fc
      .tuple(valid, fc.constantFrom(...hostileMessagePack.all(64)), fc.nat())
      .map(([v, h, at]) => Buffer.concat([v.subarray(0, at % v.length), h, v.subarray(at % v.length)]));
    const random = fc.uint8Array({ maxLength: constants.MAX_DATAGRAM_BYTES }).map((a) => Buffer.from(a));
    const inputs = fc.sample(fc.oneof(mutated, spliced, random), { numRuns: 3000, seed: 77 });
    const h = batchCost((b) => decodeDatagram(b), inputs, 1);
    expect(
      [...h.codes].every((c) => CODES.test(c)),
      [...h.codes].join(),
    ).toBe(true);
    expect(h.maxHeapBytes).toBeLessThan(4 * 1024 * 1024);
    const plain = inputs.map((b) =>
      encodeDatagram({ t: 'store', x, id, k: id, r: Buffer.alloc(Math.max(0, b.length - 60)), tk: Buffer.alloc(8) }),
    );
    const p = batchCost((b) => decodeDatagram(b), plain, 1);
    expect(h.ms / h.bytes).toBeLessThan((20 * p.ms) / p.bytes + 0.001);
  });

  it('a burst of nested-bomb datagrams over UDP leaves the node answering at once', async () => {
    const net = await createTestnet(2);
    const attacker = createSocket('udp4');
    try {
      const [target] = net.nodes as [(typeof net.nodes)[0]];
      const addr = target.address as { host: string; port: number };
      attacker.bind(0, '127.0.0.1');
      await once(attacker, 'listening');
      const before = target.stats().rejects.decode_limit ?? 0;
      // Wrapped in a map ({ b: bomb }) so the demultiplexer hands it to the DHT's decoder.
      const bomb = Buffer.concat([Buffer.from([0x81, 0xa1, 0x62]), hostileMessagePack.nestedBomb(1197)]);
      // 100 datagrams within the per-source burst: ~70 s of frozen node before the bound
      const t0 = performance.now();
      // (in tens, so this one process's socket buffers do not overflow before the node reads)
      for (let i = 0; i < 100; i++) {
        attacker.send(bomb, addr.port, addr.host);
        if (i % 10 === 9) await new Promise((r) => setTimeout(r, 1));
      }
      const { rttMs } = await net.bootstrap.ping(addr);
      const elapsed = performance.now() - t0;
      expect(rttMs).toBeLessThan(1000);
      expect(elapsed).toBeLessThan(2000);
      // every bomb that got past the rate limit was counted as refused by the decode bounds
      const counted = () => {
        const s = target.stats();
        return (s.rejects.decode_limit ?? 0) - before + (s.rejects.rate_limited ?? 0);
      };
      for (let i = 0; i < 40 && counted() < 100; i++) await new Promise((r) => setTimeout(r, 50));
      expect(counted()).toBe(100);
    } finally {
      attacker.close();
      await net.destroy();
    }
  });
});
