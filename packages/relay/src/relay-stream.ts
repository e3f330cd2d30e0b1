import { Duplex } from 'node:stream';
import { sleep } from '@dpc/core';
import { STREAM_READ_HIGH_WATER_BYTES, STREAM_WRITE_WINDOW_BYTES } from './constants.js';
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
  /** Written bytes not yet handed to the control connection. */
  #queue: Buffer[] = [];
  #queued = 0;
  /** Bytes handed to the control connection whose send has not settled. */
  #inflight = 0;
  /** The running pump (undefined when idle). */
  #pumpRun: Promise<void> | undefined;
  /** The write callback held while the window is full. */
  #blocked: ((err?: Error | null) => void) | undefined;
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
    this.#enqueue(chunk);
    this.#accepted(cb);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    for (const c of chunks) this.#enqueue(c.chunk);
    this.#accepted(cb);
  }

  #enqueue(chunk: Buffer): void {
    this.#queue.push(chunk);
    this.#queued += chunk.length;
  }

  /**
   * The writer may go on at once while the bytes queued here and not yet handed to the control
   * connection stay under the window; above it, its callback waits for the pump.
   */
  #accepted(cb: (err?: Error | null) => void): void {
    if (this.#over) {
      cb(new RelayPathClosedError('end'));
      return;
    }
    this.#schedule();
    if (this.#queued + this.#inflight < STREAM_WRITE_WINDOW_BYTES) cb();
    else this.#blocked = cb;
  }

  #release(err?: Error): void {
    const cb = this.#blocked;
    if (!cb) return;
    if (!err && this.#queued + this.#inflight >= STREAM_WRITE_WINDOW_BYTES) return;
    this.#blocked = undefined;
    cb(err);
  }

  /**
   * The pump starts on the next turn of the event loop, so the records the TLS layer writes in
   * one go (a whole burst of messages) leave as one RELAY_MESSAGE of up to the relay's size.
   */
  #schedule(): void {
    if (this.#pumpRun) return;
    this.#pumpRun = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.#pump())
      .then(
        () => {
          this.#pumpRun = undefined;
          if (this.#queued > 0 && !this.#over) this.#schedule();
        },
        (err: Error) => {
          this.#pumpRun = undefined;
          this.#release(err);
          this.destroy(err);
        },
      );
  }

  /** Resolves once every byte written so far was handed to the control connection. */
  async #flushed(): Promise<void> {
    while (this.#pumpRun) await this.#pumpRun;
  }

  async #pump(): Promise<void> {
    while (this.#queued > 0) {
      if (this.#over) throw new RelayPathClosedError('end');
      const wait = this.#rate.waitMs(1);
      // While we wait for a token, more writes pile up and leave together.
      if (wait > 0) await sleep(wait, this.#abort.signal);
      if (this.#over) throw new RelayPathClosedError('end');
      this.#rate.tryTake(1);
      const data = this.#take(this.#max);
      this.#inflight += data.length;
      const sent = this.#link.send({ type: 'RELAY_MESSAGE', session_id: this.sessionId, data }, { signal: this.#abort.signal });
      const settle = () => {
        this.#inflight -= data.length;
        this.#release();
      };
      sent.then(settle, (err: Error) => {
        settle();
        if (!this.#over) this.destroy(err);
      });
      this.#release();
      // Keep at most a window in the control connection; wait for it to take this one meanwhile.
      if (this.#inflight >= STREAM_WRITE_WINDOW_BYTES) await sent;
    }
  }

  /** Up to `n` queued bytes, as one buffer (no copy when one chunk covers it). */
  #take(n: number): Buffer {
    const first = this.#queue[0] as Buffer;
    if (first.length >= n || this.#queue.length === 1) {
      const out = first.length > n ? first.subarray(0, n) : first;
      if (out === first) this.#queue.shift();
      else this.#queue[0] = first.subarray(n);
      this.#queued -= out.length;
      return out;
    }
    const len = Math.min(n, this.#queued);
    const out = Buffer.allocUnsafe(len);
    let off = 0;
    while (off < len) {
      const c = this.#queue[0] as Buffer;
      const k = Math.min(c.length, len - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) this.#queue.shift();
      else this.#queue[0] = c.subarray(k);
    }
    this.#queued -= len;
    return out;
  }

  override _final(cb: (err?: Error | null) => void): void {
    // Closing our side ends the session at the relay, so nothing more will come from the peer:
    // what was written goes first.
    this.#flushed().then(() => {
      if (!this.#over) {
        this.#over = true;
        this.#link.send({ type: 'RELAY_DISCONNECT', session_id: this.sessionId, reason: 'end' }).catch(() => {});
        this.push(null);
      }
      cb();
    }, cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.#over) {
      this.#over = true;
      this.#abort.abort();
      this.#link.send({ type: 'RELAY_DISCONNECT', session_id: this.sessionId, reason: 'end' }).catch(() => {});
    }
    this.#queue = [];
    this.#queued = 0;
    this.#release(err ?? new RelayPathClosedError('end'));
    this.#link.detach(this);
    cb(err);
  }
}
