import { Duplex } from 'node:stream';
import type { RTCDataChannel } from 'werift';
import { DC_CHUNK_BYTES, DC_HIGH_WATER_BYTES, DC_LOW_WATER_BYTES, DC_MAX_UNREAD_BYTES } from './constants.js';
import { RtcOverflowError, RtcSessionError } from './errors.js';

export interface DataChannelStreamOptions {
  /** Largest data-channel message written, bytes. Default 64 KiB. */
  chunkBytes?: number;
  /** bufferedAmount above which writes wait, bytes. Default 1 MiB. */
  highWaterBytes?: number;
  /** bufferedAmount at which waiting writes go on, bytes. Default 256 KiB. */
  lowWaterBytes?: number;
  /** Unread received bytes held before the stream fails with RtcOverflowError. Default 16 MiB. */
  maxUnreadBytes?: number;
}

/**
 * A byte Duplex over one open werift data channel. Writes are cut into messages of at most
 * `chunkBytes` and wait while the channel's `bufferedAmount` is above `highWaterBytes` (until
 * `bufferedamountlow`), so a fast writer is slowed to the path's pace instead of filling memory.
 * Ending the writable side closes the channel once the buffer is drained.
 */
export class DataChannelStream extends Duplex {
  readonly #dc: RTCDataChannel;
  readonly #chunk: number;
  readonly #high: number;
  readonly #maxUnread: number;
  #waiting: (() => void) | undefined;
  readonly #unsubs: Array<() => void> = [];

  constructor(dc: RTCDataChannel, o: DataChannelStreamOptions = {}) {
    super({ allowHalfOpen: false });
    this.#dc = dc;
    this.#chunk = o.chunkBytes ?? DC_CHUNK_BYTES;
    this.#high = o.highWaterBytes ?? DC_HIGH_WATER_BYTES;
    this.#maxUnread = o.maxUnreadBytes ?? DC_MAX_UNREAD_BYTES;
    dc.bufferedAmountLowThreshold = o.lowWaterBytes ?? DC_LOW_WATER_BYTES;
    const sub = <T extends unknown[]>(ev: { subscribe(fn: (...a: T) => void): { unSubscribe(): void } }, fn: (...a: T) => void) => {
      const s = ev.subscribe(fn);
      this.#unsubs.push(() => s.unSubscribe());
    };
    sub(dc.onMessage, (m: string | Buffer) => {
      const buf = typeof m === 'string' ? Buffer.from(m) : m;
      this.push(buf);
      if (this.readableLength > this.#maxUnread) this.destroy(new RtcOverflowError(this.readableLength));
    });
    sub(dc.bufferedAmountLow, () => this.#wake());
    sub(dc.stateChanged, (state: string) => {
      if (state === 'closed') {
        this.#wake();
        this.push(null);
        if (!this.writableFinished) this.destroy();
      }
    });
    sub(dc.error, (err: Error) => this.destroy(new RtcSessionError(`data channel error: ${err.message}`, { cause: err })));
    if (dc.readyState !== 'open') this.destroy(new RtcSessionError(`data channel is ${dc.readyState}, not open`));
  }

  /** Bytes queued in the data channel, not yet sent. */
  get bufferedAmount(): number {
    return this.#dc.bufferedAmount;
  }

  #wake(): void {
    const w = this.#waiting;
    this.#waiting = undefined;
    w?.();
  }

  override _read(): void {
    // Data arrives as the peer sends it; SCTP here has no read-side flow control to resume.
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.#dc.readyState !== 'open') {
      cb(new RtcSessionError('data channel closed'));
      return;
    }
    try {
      for (let i = 0; i < chunk.length; i += this.#chunk) this.#dc.send(chunk.subarray(i, i + this.#chunk));
    } catch (err) {
      cb(new RtcSessionError(`data channel send failed: ${(err as Error).message}`, { cause: err }));
      return;
    }
    if (this.#dc.bufferedAmount <= this.#high) cb();
    else this.#waiting = () => (this.#dc.readyState === 'open' ? cb() : cb(new RtcSessionError('data channel closed')));
  }

  override _final(cb: (err?: Error | null) => void): void {
    const close = () => {
      try {
        this.#dc.close();
      } catch {
        // already closed
      }
      cb();
    };
    if (this.#dc.bufferedAmount === 0 || this.#dc.readyState !== 'open') close();
    else {
      this.#dc.bufferedAmountLowThreshold = 0;
      this.#waiting = close;
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    for (const u of this.#unsubs.splice(0)) u();
    this.#wake();
    try {
      if (this.#dc.readyState === 'open' || this.#dc.readyState === 'connecting') this.#dc.close();
    } catch {
      // already closed
    }
    cb(err);
  }
}
