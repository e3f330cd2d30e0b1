import { Transform, type TransformCallback } from 'node:stream';
import { type DecodeLimits, decodeUntrusted } from './bounded-decode.js';
import { encodeWithHeaderSpace } from './codec.js';
import type { Counters } from './counters.js';
import { DpcError, FrameMalformedError, FrameTooLargeError, FrameTruncatedError } from './errors.js';
import type { Schema } from './schema.js';

/** Default largest frame: 1 MiB. */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;
const HEADER_BYTES = 4;

/** Encodes one value as a frame: 4-byte big-endian length, then the MessagePack bytes. */
export function encodeFrame(value: unknown, maxFrameBytes = DEFAULT_MAX_FRAME_BYTES): Buffer {
  // The body is encoded after 4 reserved bytes: the length goes in front without copying it.
  const out = encodeWithHeaderSpace(value, HEADER_BYTES);
  const len = out.length - HEADER_BYTES;
  if (len > maxFrameBytes) throw new FrameTooLargeError(len, maxFrameBytes);
  out.writeUInt32BE(len, 0);
  return out;
}

export interface FrameDecoderOptions<T> {
  /** Largest frame accepted (default 1 MiB). The length is checked before any allocation. */
  maxFrameBytes?: number;
  /** Bounds of each frame's MessagePack (default: depth 64, 100,000 values; see `DecodeLimits`). */
  decodeLimits?: DecodeLimits;
  /** Validates each decoded value before it is passed on. */
  schema?: Schema<T>;
  /** Counts `frames_in`, and `frame_errors_<code>` on each rejected frame. */
  counters?: Counters;
  /** Decoded values buffered before the source is paused (default 64). */
  highWaterMark?: number;
}

/**
 * Bytes in, validated values out (object mode). A malformed, oversized or truncated frame
 * destroys the stream with a typed error; backpressure propagates to the byte source.
 */
export class FrameDecoder<T = unknown> extends Transform {
  readonly #max: number;
  readonly #schema: Schema<T> | undefined;
  readonly #counters: Counters | undefined;
  readonly #limits: DecodeLimits | undefined;
  #chunks: Buffer[] = [];
  #buffered = 0;

  constructor(opts: FrameDecoderOptions<T> = {}) {
    super({ readableObjectMode: true, readableHighWaterMark: opts.highWaterMark ?? 64 });
    this.#max = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.#schema = opts.schema;
    this.#counters = opts.counters;
    this.#limits = opts.decodeLimits;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    try {
      this.#drain();
      cb();
    } catch (err) {
      this.#counters?.inc(`frame_errors_${(err as DpcError).code ?? 'unknown'}`);
      cb(err as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    if (this.#buffered > 0) {
      const err = new FrameTruncatedError(this.#buffered);
      this.#counters?.inc(`frame_errors_${err.code}`);
      cb(err);
    } else cb();
  }

  #drain(): void {
    while (this.#buffered >= HEADER_BYTES) {
      const head = this.#peek(HEADER_BYTES);
      const len = head.readUInt32BE(0);
      if (len > this.#max) throw new FrameTooLargeError(len, this.#max);
      if (len === 0) throw new FrameMalformedError('empty frame');
      if (this.#buffered < HEADER_BYTES + len) return;
      const frame = this.#take(HEADER_BYTES + len).subarray(HEADER_BYTES);
      let value: unknown = decodeUntrusted(frame, this.#limits);
      if (value === null || value === undefined) throw new FrameMalformedError('nil frame');
      if (this.#schema) {
        try {
          value = this.#schema(value);
        } catch (err) {
          throw err instanceof DpcError ? err : new FrameMalformedError('schema check failed', { cause: err });
        }
      }
      this.#counters?.inc('frames_in');
      this.push(value);
    }
  }

  #peek(n: number): Buffer {
    const first = this.#chunks[0] as Buffer;
    if (first.length >= n) return first.subarray(0, n);
    const joined = Buffer.concat(this.#chunks);
    this.#chunks = [joined];
    return joined.subarray(0, n);
  }

  #take(n: number): Buffer {
    const first = this.#chunks[0] as Buffer;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
    } else {
      const joined = Buffer.concat(this.#chunks);
      out = joined.subarray(0, n);
      this.#chunks = joined.length > n ? [joined.subarray(n)] : [];
    }
    this.#buffered -= n;
    return out;
  }
}
