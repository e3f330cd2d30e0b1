import { once } from 'node:events';
import { connect as tcpConnect } from 'node:net';
import { createSecureContext, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { createSelfSignedCertificate } from './certificate.js';
import { encodeFrame, FrameDecoder, type FrameDecoderOptions } from './frames.js';
import type { Identity } from './identity.js';

/**
 * @dpc/core/testing — hostile MessagePack for the fuzz targets of every decoder of the stack
 * (frames, DHT datagrams, relay messages, records, ...), and a cost probe. Test code only.
 *
 * @example
 * ```ts
 * import { decodeUntrusted } from '@dpc/core';
 * import { hostileMessagePack, measureCost } from '@dpc/core/testing';
 *
 * const bomb = hostileMessagePack.nestedBomb(1200); // `dc ff ff` repeated: array16 of 65,535, nested
 * const cost = measureCost(() => { try { decodeUntrusted(bomb); } catch {} });
 * console.log(cost.ms, cost.heapBytes);
 * ```
 */

function repeat(unit: readonly number[], n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = unit[i % unit.length] as number;
  return out;
}

function array32(count: number, body: Buffer): Buffer {
  const head = Buffer.from([0xdd, 0, 0, 0, 0]);
  head.writeUInt32BE(count, 1);
  return Buffer.concat([head, body]);
}

/** An array32 holding as many copies of `unit` as fit in `n` bytes (at least one). */
function arrayOf(unit: readonly number[], n: number): Buffer {
  const count = Math.max(1, Math.floor((n - 5) / unit.length));
  return array32(count, repeat(unit, count * unit.length));
}

/** Generators of `n`-byte (about) MessagePack inputs that were, or could be, expensive to decode. */
export const hostileMessagePack = {
  /** `dc ff ff` repeated: each array16 claims 65,535 elements and holds the next one. */
  nestedBomb: (n: number): Buffer => repeat([0xdc, 0xff, 0xff], n),
  /** The same with array32 claiming 4 billion. */
  nestedBomb32: (n: number): Buffer => repeat([0xdd, 0xff, 0xff, 0xff, 0xff], n),
  /** map16 of 65,535 pairs, nested. */
  mapBomb: (n: number): Buffer => repeat([0xde, 0xff, 0xff], n),
  /** One-element arrays nested as deep as the bytes go. */
  deepNesting: (n: number): Buffer => Buffer.concat([repeat([0x91], n - 1), Buffer.from([0xc0])]),
  /** One array of `n` nils: the most elements per byte. */
  manyNils: (n: number): Buffer => arrayOf([0xc0], n),
  /** One array of empty maps: an object per byte. */
  manyEmptyMaps: (n: number): Buffer => arrayOf([0x80], n),
  /** Maps {"1023": nil}: V8 gives each a 1,024-slot backing store (12 KB for 7 bytes). */
  indexKeyMaps: (n: number): Buffer => arrayOf([0x81, 0xa4, 0x31, 0x30, 0x32, 0x33, 0xc0], n),
  /** Maps {1023: nil} with an integer key: the same through another door. */
  intKeyMaps: (n: number): Buffer => arrayOf([0x81, 0xcd, 0x03, 0xff, 0xc0], n),
  /** str32, bin32, ext32, array32, map32 headers claiming 4 GB, then `n` bytes of padding. */
  hugeLengths: (n: number): Buffer[] =>
    [0xdb, 0xc6, 0xc9, 0xdd, 0xdf].map((tag) =>
      Buffer.concat([Buffer.from([tag, 0xff, 0xff, 0xff, 0xfe]), Buffer.alloc(Math.max(0, n - 5))]),
    ),
  /** All of the above at size `n`. */
  all(n: number): Buffer[] {
    const { all: _all, hugeLengths, ...one } = hostileMessagePack;
    return [...Object.values(one).map((f) => f(n)), ...hugeLengths(n)];
  },
};

/** What one call cost: wall time and the growth of the JS heap (while its result is held). */
export interface Cost {
  ms: number;
  heapBytes: number;
}

/**
 * Runs `fn` once and measures it. Heap growth is an upper bound of what `fn` allocated and kept
 * alive until it returned (a GC during the call only lowers it).
 */
export function measureCost(fn: () => unknown): Cost {
  const heap0 = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  const result = fn();
  const ms = performance.now() - t0;
  const heapBytes = process.memoryUsage().heapUsed - heap0;
  void result;
  return { ms, heapBytes };
}

/** What a batch of inputs cost one decoder: total time, the largest heap growth of one call, the error codes seen. */
export interface BatchCost {
  ms: number;
  bytes: number;
  maxHeapBytes: number;
  codes: Set<string>;
}

/**
 * Feeds every input to `decode` `rounds` times and measures. A throw is recorded by its `code`
 * (`untyped: <name>` when it has none), so a test can check that only typed errors came out.
 */
export function batchCost(decode: (bytes: Buffer) => unknown, inputs: readonly Buffer[], rounds = 3): BatchCost {
  const codes = new Set<string>();
  let maxHeapBytes = 0;
  let bytes = 0;
  const t0 = performance.now();
  for (let r = 0; r < rounds; r++) {
    for (const input of inputs) {
      bytes += input.length;
      const { heapBytes } = measureCost(() => {
        try {
          return decode(input);
        } catch (err) {
          const code = (err as { code?: unknown }).code;
          codes.add(typeof code === 'string' ? code : `untyped: ${(err as Error)?.name}`);
          return undefined;
        }
      });
      if (heapBytes > maxHeapBytes) maxHeapBytes = heapBytes;
    }
  }
  return { ms: performance.now() - t0, bytes, maxHeapBytes, codes };
}

/** `body` behind the frame codec's 4-byte length prefix (any bytes, hostile ones too). */
export function framed(body: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

/**
 * Decodes one complete frame synchronously with a `FrameDecoder` made from `opts` (the transform
 * runs inside write()); returns the value or throws the decoder's typed error.
 */
export function decodeOneFrame(frame: Buffer, opts: FrameDecoderOptions<unknown> = {}): unknown {
  const d = new FrameDecoder<unknown>(opts);
  d.on('error', () => {}); // read from `errored` below
  d.write(frame);
  const value: unknown = d.read();
  const error = d.errored;
  d.destroy();
  if (error) throw error;
  return value;
}

/**
 * A dpc control connection made by hand, for attacks that must put raw bytes inside the TLS
 * stream (secureConnect hides its socket): TLS 1.3 with `identity`'s self-signed certificate,
 * then the dpc hello, answered by the peer's hello_ack. Incoming data is read and dropped.
 */
export async function rawHelloedTls(identity: Identity, port: number, host = '127.0.0.1'): Promise<TLSSocket> {
  const socket = tcpConnect(port, host);
  await once(socket, 'connect');
  const tls = tlsConnect({
    socket,
    secureContext: createSecureContext({ key: identity.privateKeyPem, cert: createSelfSignedCertificate(identity), minVersion: 'TLSv1.3' }),
    rejectUnauthorized: false,
    ALPNProtocols: ['dpc/1'],
  });
  tls.on('error', () => {});
  await once(tls, 'secureConnect');
  tls.write(encodeFrame({ t: 'hello', v: 1 }));
  await once(tls, 'data'); // hello_ack
  tls.on('data', () => {});
  return tls;
}
