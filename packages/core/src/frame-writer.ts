import type { Writable } from 'node:stream';
import { abortable, toAbortError } from './signal.js';

/** Bytes queued for the transport above which writers wait, in call order, for 'drain'. */
export const MAX_QUEUED_BYTES = 4 * 1024 * 1024;
/**
 * A write resolves at once while less than this is queued in the transport, instead of after a
 * 'drain' each time the socket's own 16 KiB mark is passed (so a sender keeps the pipe full).
 */
export const SEND_WINDOW_BYTES = 256 * 1024;
/**
 * Frames written in one tick go to the socket together, as one write (one encryption call, one
 * TLS record: its plaintext is at most 16 KiB), when the tick ends or before the queue would grow
 * past this size. A frame at least this large is written on its own, uncopied, as before.
 */
export const COALESCE_BYTES = 16 * 1024;

interface Blocked {
  bytes: Buffer;
  resolve: () => void;
  reject: (err: Error) => void;
  detach: () => void;
}

/**
 * Writes encoded frames to a socket: coalesced per tick (a TLS socket otherwise makes one record
 * and one syscall per small frame), with backpressure, in call order. `write` resolves once the
 * frame is handed over (in this tick's queue or the socket's buffer), not when it is sent.
 */
export class FrameWriter {
  readonly #socket: Writable;
  readonly #closedError: () => Error;
  readonly #queue: Buffer[] = [];
  #queuedBytes = 0;
  #flushScheduled = false;
  /** Writers waiting for room, oldest first; their frames are not handed over yet. */
  readonly #blocked: Blocked[] = [];
  #pumping = false;
  #drain: { promise: Promise<void>; reject: (err: Error) => void } | undefined;
  #done: Error | undefined;

  /** `closedError` makes the error a write fails with once the socket is ended or gone. */
  constructor(socket: Writable, closedError: () => Error) {
    this.#socket = socket;
    this.#closedError = closedError;
  }

  /** Bytes handed over and not yet taken by the kernel: the socket's buffer and this tick's queue. */
  get pendingBytes(): number {
    return this.#socket.writableLength + this.#queuedBytes;
  }

  /**
   * Hands `bytes` over after every frame written before it. Waits (abortably; the frame is then
   * not sent) while more than MAX_QUEUED_BYTES are pending, and for 'drain' after handing over
   * while more than SEND_WINDOW_BYTES are.
   */
  async write(bytes: Buffer, signal?: AbortSignal): Promise<void> {
    if (this.#done || !this.#socket.writable) throw this.#closedError();
    if (this.#blocked.length > 0 || this.pendingBytes > MAX_QUEUED_BYTES) return this.#block(bytes, signal);
    this.#enqueue(bytes);
    if (this.pendingBytes >= SEND_WINDOW_BYTES) {
      this.flush();
      if (this.#socket.writableNeedDrain && this.#socket.writableLength >= SEND_WINDOW_BYTES) await abortable(this.#drained(), signal);
    }
  }

  /** Writes this tick's queue to the socket now, as one buffer. */
  flush(): void {
    if (this.#queue.length === 0) return;
    const bytes = this.#queue.length === 1 ? this.#queue[0]! : Buffer.concat(this.#queue, this.#queuedBytes);
    this.#queue.length = 0;
    this.#queuedBytes = 0;
    if (!this.#done && this.#socket.writable) this.#socket.write(bytes);
  }

  /**
   * Ends the socket after what is handed over and `last` (a goodbye frame, written ahead of the
   * writers still waiting for room, which fail).
   */
  end(last?: Buffer): void {
    if (this.#done) return;
    if (last && this.#socket.writable) this.#enqueue(last);
    this.flush();
    this.#finish(this.#closedError());
    this.#socket.end();
  }

  /** The socket is gone: waiting writers fail with `err`, the queue is dropped. */
  close(err: Error): void {
    this.#queue.length = 0;
    this.#queuedBytes = 0;
    this.#finish(err);
  }

  #finish(err: Error): void {
    this.#done ??= err;
    for (const b of this.#blocked.splice(0)) {
      b.detach();
      b.reject(err);
    }
    if (this.#drain) {
      this.#drain.reject(err);
      this.#drain = undefined;
    }
  }

  #enqueue(bytes: Buffer): void {
    if (bytes.length >= COALESCE_BYTES) {
      this.flush();
      if (!this.#done && this.#socket.writable) this.#socket.write(bytes);
      return;
    }
    if (this.#queuedBytes + bytes.length > COALESCE_BYTES) this.flush(); // a write fills one TLS record at most
    this.#queue.push(bytes);
    this.#queuedBytes += bytes.length;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      process.nextTick(() => {
        this.#flushScheduled = false;
        this.flush();
      });
    }
  }

  #block(bytes: Buffer, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(toAbortError(signal));
      const onAbort = () => {
        const i = this.#blocked.indexOf(entry);
        if (i >= 0) this.#blocked.splice(i, 1);
        reject(toAbortError(signal as AbortSignal));
      };
      const entry: Blocked = { bytes, resolve, reject, detach: () => signal?.removeEventListener('abort', onAbort) };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#blocked.push(entry);
      if (!this.#pumping) void this.#pump();
    });
  }

  /** Hands the waiting writers' frames over, oldest first, as room frees up. */
  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      while (this.#blocked.length > 0) {
        while (this.#blocked.length > 0 && this.pendingBytes <= MAX_QUEUED_BYTES) {
          const b = this.#blocked.shift()!;
          b.detach();
          this.#enqueue(b.bytes);
          b.resolve();
        }
        if (this.#blocked.length === 0) return;
        this.flush();
        if (this.#socket.writableNeedDrain) await this.#drained();
        else if (!this.#socket.writable)
          this.#finish(this.#closedError()); // no 'drain' will come
        else await new Promise<void>((r) => setImmediate(r));
      }
    } catch {
      // #finish() failed the waiting writers
    } finally {
      this.#pumping = false;
    }
  }

  /** The socket's next 'drain'; one listener shared by every waiting writer. */
  #drained(): Promise<void> {
    if (this.#done) return Promise.reject(this.#done);
    if (!this.#drain) {
      let reject!: (err: Error) => void;
      const promise = new Promise<void>((resolve, rej) => {
        const onDrain = () => {
          this.#drain = undefined;
          resolve();
        };
        this.#socket.once('drain', onDrain);
        reject = (err) => {
          this.#socket.off('drain', onDrain);
          rej(err);
        };
      });
      promise.catch(() => {}); // every waiter awaits it through abortable(); none may be left
      // Shared by every waiter; when the socket fails before any awaits it, not unhandled.
      promise.catch(() => {});
      this.#drain = { promise, reject };
    }
    return this.#drain.promise;
  }
}
