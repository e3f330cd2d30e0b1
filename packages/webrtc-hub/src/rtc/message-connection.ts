import { EventEmitter } from 'node:events';
import {
  type Connection,
  ConnectionClosedError,
  type Counters,
  InboundMessages,
  type Schema,
  throwIfAborted,
  timeoutSignal,
  toAbortError,
} from '@dpc/core';
import type { RTCDataChannel } from 'werift';
import { DC_HIGH_WATER_BYTES, DC_LOW_WATER_BYTES } from './constants.js';
import { RtcSessionError, RtcSignalMalformedError } from './errors.js';

/** Largest JSON frame accepted from a browser peer, characters. */
const MAX_FRAME_CHARS = 64 * 1024;
/** Messages held while nobody listens or the consumer paused. */
const HELD_MAX = 256;
const PING_TIMEOUT_MS = 10_000;

type Frame = { t: 'data'; d: unknown } | { t: 'ping'; n: number } | { t: 'pong'; n: number } | { t: 'bye'; reason?: string };

export interface MessageConnectionInit {
  dc: RTCDataChannel;
  localNodeId: string;
  remoteNodeId: string;
  remotePublicKey: Buffer;
  rttMs: number;
  messageSchema?: Schema<unknown>;
  counters?: Counters;
  onClose?: () => void;
}

/**
 * A Connection whose peer is authenticated by its signed DTLS fingerprint alone (protocol
 * `dpc-msg/1`, what a browser speaks): each data-channel message is one JSON text frame
 * (`{t:'data',d}`, `{t:'ping',n}`, `{t:'pong',n}`, `{t:'bye'}`). DTLS encrypts it; the binding
 * checked during signalling proves that the DTLS peer holds `remoteNodeId`'s key.
 */
export class MessageConnection extends EventEmitter implements Connection {
  readonly tier = 'hub_webrtc' as const;
  readonly localNodeId: string;
  readonly remoteNodeId: string;
  readonly remotePublicKey: Buffer;
  readonly remoteAddress = undefined;
  rttMs: number;
  closed = false;
  readonly #dc: RTCDataChannel;
  readonly #counters: Counters | undefined;
  readonly #pings = new Map<number, () => void>();
  /** Schema check, count, and the held queue while paused or unheard (a data channel cannot be paused: one too many fails). */
  readonly #inbound: InboundMessages;
  readonly #unsubs: Array<() => void> = [];
  readonly #onClose: (() => void) | undefined;
  #seq = 0;
  #drain: Array<() => void> = [];

  constructor(init: MessageConnectionInit) {
    super();
    this.#dc = init.dc;
    this.localNodeId = init.localNodeId;
    this.remoteNodeId = init.remoteNodeId;
    this.remotePublicKey = init.remotePublicKey;
    this.rttMs = init.rttMs;
    this.#counters = init.counters;
    this.#inbound = new InboundMessages({
      target: this,
      schema: init.messageSchema,
      counters: init.counters,
      max: HELD_MAX,
      overflow: { error: (max) => new RtcSessionError(`peer sent more than ${max} messages nobody read`) },
      onError: (err) => this.#fail(err),
    });
    this.#onClose = init.onClose;
    this.#dc.bufferedAmountLowThreshold = DC_LOW_WATER_BYTES;
    const a = this.#dc.onMessage.subscribe((m) => this.#onFrame(m));
    const b = this.#dc.stateChanged.subscribe((st) => {
      if (st === 'closed') this.#finish();
    });
    const c = this.#dc.bufferedAmountLow.subscribe(() => {
      for (const w of this.#drain.splice(0)) w();
    });
    this.#unsubs.push(
      () => a.unSubscribe(),
      () => b.unSubscribe(),
      () => c.unSubscribe(),
    );
  }

  #onFrame(raw: string | Buffer): void {
    let f: Frame;
    try {
      const text = typeof raw === 'string' ? raw : raw.toString('utf8');
      if (text.length > MAX_FRAME_CHARS) throw new RtcSignalMalformedError(`frame of ${text.length} characters`);
      f = JSON.parse(text) as Frame;
      if (typeof f !== 'object' || f === null || typeof f.t !== 'string')
        throw new RtcSignalMalformedError('frame is not an object with t');
    } catch (err) {
      this.#counters?.inc('rtc_msg_frame_errors');
      this.#fail(err instanceof RtcSignalMalformedError ? err : new RtcSignalMalformedError('frame is not JSON', { cause: err }));
      return;
    }
    switch (f.t) {
      case 'data':
        this.#inbound.receive(f.d);
        return;
      case 'ping':
        if (Number.isSafeInteger(f.n)) this.#sendFrame({ t: 'pong', n: f.n }).catch(() => {});
        return;
      case 'pong':
        this.#pings.get(f.n)?.();
        return;
      case 'bye':
        this.#finish();
        return;
      default:
        this.#counters?.inc('rtc_msg_frame_errors');
    }
  }

  async #sendFrame(f: Frame, signal?: AbortSignal): Promise<void> {
    if (this.closed || this.#dc.readyState !== 'open') throw new ConnectionClosedError();
    this.#dc.send(JSON.stringify(f));
    while (this.#dc.bufferedAmount > DC_HIGH_WATER_BYTES) {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(toAbortError(signal as AbortSignal));
        signal?.addEventListener('abort', onAbort, { once: true });
        this.#drain.push(() => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        });
      });
      if (this.closed) throw new ConnectionClosedError();
    }
  }

  async send(message: unknown, opts: { signal?: AbortSignal } = {}): Promise<void> {
    throwIfAborted(opts.signal);
    await this.#sendFrame({ t: 'data', d: message }, opts.signal);
    this.#counters?.inc('messages_out');
  }

  async ping(opts: { signal?: AbortSignal } = {}): Promise<number> {
    const n = this.#seq++;
    const t = timeoutSignal(PING_TIMEOUT_MS, 'ping', opts.signal);
    const started = performance.now();
    try {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(toAbortError(t.signal));
        const onClose = () => reject(new ConnectionClosedError());
        t.signal.addEventListener('abort', onAbort, { once: true });
        this.once('close', onClose);
        this.#pings.set(n, () => {
          t.signal.removeEventListener('abort', onAbort);
          this.off('close', onClose);
          resolve();
        });
        this.#sendFrame({ t: 'ping', n }, t.signal).catch(reject);
      });
      this.rttMs = performance.now() - started;
      return this.rttMs;
    } finally {
      this.#pings.delete(n);
      t.clear();
    }
  }

  pause(): void {
    this.#inbound.pause();
  }

  resume(): void {
    this.#inbound.resume();
  }

  async close(reason?: string): Promise<void> {
    if (this.closed) return;
    await this.#sendFrame(reason ? { t: 'bye', reason } : { t: 'bye' }).catch(() => {});
    this.#finish();
  }

  #fail(err: Error): void {
    if (this.closed) return;
    if (this.listenerCount('error') > 0) this.emit('error', err);
    this.#finish(err);
  }

  #finish(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    for (const u of this.#unsubs.splice(0)) u();
    for (const w of this.#drain.splice(0)) w();
    try {
      this.#dc.close();
    } catch {
      // already closed
    }
    this.#onClose?.();
    this.emit('close', err);
  }
}
