import { Duplex } from 'node:stream';
import { sleep } from '@dpc/core';
import { STREAM_READ_HIGH_WATER_BYTES } from './constants.js';
import { RelayPathClosedError } from './errors.js';
import type { DisconnectReason, RelayMessageOut } from './messages.js';
import { TokenBucket } from './token-bucket.js';

/** What a relayed stream needs from its control connection. */
export interface StreamLink {
  send(msg: RelayMessageOut, opts?: { signal?: AbortSignal }): Promise<void>;
  /** The stream's reader is full (true) or wants more (false); the link pauses its connection meanwhile. */
  setReadPaused(stream: RelayStream, paused: boolean): void;
  detach(stream: RelayStream): void;
}

export interface SessionLimits {
  msgs_per_s: number;
  msg_burst: number;
  max_message_bytes: number;
}

/**
 * The raw byte pipe of one relay session: writes become RELAY_MESSAGEs (coalesced up to the
 * relay's message size, paced under its message rate) and reads are the other peer's data.
 * The peers run their own TLS over it, so the relay only ever carries ciphertext.
 */
export class RelayStream extends Duplex {
  readonly sessionId: string;
  readonly peer: string;
  readonly #link: StreamLink;
  readonly #max: number;
  readonly #rate: TokenBucket;
  readonly #abort = new AbortController();
  #over = false;
  /** Called with the typed error when the relay ends the session or is lost. */
  onPathClosed: ((err: RelayPathClosedError) => void) | undefined;

  constructor(link: StreamLink, sessionId: string, peer: string, limits: SessionLimits) {
    super({ readableHighWaterMark: STREAM_READ_HIGH_WATER_BYTES, writableHighWaterMark: limits.max_message_bytes });
    this.#link = link;
    this.sessionId = sessionId;
    this.peer = peer;
    this.#max = limits.max_message_bytes;
    // Stay under the relay's limit with margin, so jitter on the way never trips it.
    this.#rate = new TokenBucket({ ratePerSec: limits.msgs_per_s * 0.9, burst: Math.max(1, Math.floor(limits.msg_burst / 2)) });
  }

  /** Data from the other peer (called by the link). */
  deliver(data: Uint8Array): void {
    if (this.#over) return;
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (!this.push(buf)) this.#link.setReadPaused(this, true);
  }

  /** The relay ended the session, or the relay was lost (called by the link). */
  remoteClosed(reason: DisconnectReason | 'relay_lost', cause?: unknown): void {
    if (this.#over) return;
    this.#over = true;
    this.#abort.abort();
    if (reason === 'end') {
      this.push(null);
      return;
    }
    const err = new RelayPathClosedError(reason, cause === undefined ? undefined : { cause });
    // The typed error reaches the secure connection above; the pipe itself just goes.
    this.onPathClosed?.(err);
    this.destroy();
  }

  override _read(): void {
    this.#link.setReadPaused(this, false);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#sendAll([chunk]).then(() => cb(), cb);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    this.#sendAll(chunks.map((c) => c.chunk)).then(() => cb(), cb);
  }

  async #sendAll(chunks: Buffer[]): Promise<void> {
    const all = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
    for (let off = 0; off < all.length; off += this.#max) {
      if (this.#over) throw new RelayPathClosedError('end');
      const wait = this.#rate.waitMs(1);
      if (wait > 0) await sleep(wait, this.#abort.signal);
      this.#rate.tryTake(1);
      await this.#link.send(
        { type: 'RELAY_MESSAGE', session_id: this.sessionId, data: all.subarray(off, off + this.#max) },
        { signal: this.#abort.signal },
      );
    }
  }

  override _final(cb: (err?: Error | null) => void): void {
    // Closing our side ends the session at the relay, so nothing more will come from the peer.
    if (!this.#over) {
      this.#over = true;
      this.#link.send({ type: 'RELAY_DISCONNECT', session_id: this.sessionId, reason: 'end' }).catch(() => {});
      this.push(null);
    }
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.#over) {
      this.#over = true;
      this.#abort.abort();
      this.#link.send({ type: 'RELAY_DISCONNECT', session_id: this.sessionId, reason: 'end' }).catch(() => {});
    }
    this.#link.detach(this);
    cb(err);
  }
}
