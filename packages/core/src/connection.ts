import { EventEmitter } from 'node:events';
import type { TLSSocket } from 'node:tls';
import type { Counters } from './counters.js';
import { ConnectionClosedError, HandshakeError, HandshakeTimeoutError, PeerRejectedError } from './errors.js';
import { FrameWriter } from './frame-writer.js';
import { DEFAULT_MAX_FRAME_BYTES, encodeFrame, type FrameDecoder } from './frames.js';
import { InboundMessages } from './inbound.js';
import type { ConnectionFrame } from './messages.js';
import type { Schema } from './schema.js';
import type { PathHop } from './secure-channel.js';
import { throwIfAborted, timeoutSignal, toAbortError } from './signal.js';
import type { Connection, TierName } from './tiers.js';

const DEFAULT_PING_TIMEOUT_MS = 10_000;

export interface SecureConnectionInit {
  socket: TLSSocket;
  decoder: FrameDecoder<ConnectionFrame>;
  tier: TierName;
  localNodeId: string;
  remoteNodeId: string;
  remotePublicKey: Buffer;
  rttMs: number;
  maxFrameBytes?: number;
  /** Validates each application message before it is emitted. */
  messageSchema?: Schema<unknown>;
  counters?: Counters;
  /**
   * Dialing side, returned before the acceptor's verdict: the first frame must be its hello_ack
   * (or a reject with a reason, which closes the connection with PeerRejectedError) within
   * `timeoutMs`; `helloSentAt` (performance.now()) refines `rttMs` when the ack arrives.
   */
  awaitingAck?: { timeoutMs: number; helloSentAt: number };
  /** Accepting side: ping once at once, so `rttMs` (0 until then) is known one round trip later. */
  probeRtt?: boolean;
  /** The socket is one hop of a longer path (secure-channel.ts `PathHop`). */
  hop?: PathHop;
}

interface AwaitedAck {
  helloSentAt: number;
  timer: NodeJS.Timeout;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** A Connection over a TLS 1.3 socket, after the dpc handshake. */
export class SecureConnection extends EventEmitter implements Connection {
  readonly tier: TierName;
  readonly localNodeId: string;
  readonly remoteNodeId: string;
  readonly remotePublicKey: Buffer;
  readonly initiator: string;
  rttMs: number;
  closed = false;
  readonly #socket: TLSSocket;
  /** Coalesces the frames of a tick into one TLS write; backpressure and order (frame-writer.ts). */
  readonly #writer: FrameWriter;
  readonly #decoder: FrameDecoder<ConnectionFrame>;
  readonly #max: number;
  /** Schema check, count, and the held queue while paused or unheard (inbound.ts). */
  readonly #inbound: InboundMessages;
  readonly #counters: Counters | undefined;
  readonly #pings = new Map<number, (rtt: number) => void>();
  #pingSeq = 0;
  #closeError: Error | undefined;
  #closedByPeer: { reason?: string } | undefined;
  /** close()/destroy() was called here: an unsettled ack is then no handshake failure to count. */
  #closingLocally = false;
  /** Set while the dialer waits for the acceptor's hello_ack. */
  #ack: AwaitedAck | undefined;
  readonly #hop: PathHop | undefined;
  /** The socket closed; waiting for the hop to say why before 'close'. */
  #explaining = false;
  /**
   * Settles when the peer has admitted this connection: at once on the accepting side; on the
   * dialing side when the acceptor's hello_ack arrives, or rejects with its refusal
   * (PeerRejectedError, with the reason) or another typed error. Frames sent before a refusal
   * are discarded by the acceptor, never delivered.
   */
  readonly accepted: Promise<void>;

  constructor(init: SecureConnectionInit) {
    super();
    this.tier = init.tier;
    this.localNodeId = init.localNodeId;
    this.remoteNodeId = init.remoteNodeId;
    this.remotePublicKey = init.remotePublicKey;
    // The dialer waits for the acceptor's hello_ack.
    this.initiator = init.awaitingAck ? init.localNodeId : init.remoteNodeId;
    this.rttMs = init.rttMs;
    this.#socket = init.socket;
    this.#writer = new FrameWriter(init.socket, () => new ConnectionClosedError(undefined, { cause: this.#closeError }));
    this.#decoder = init.decoder;
    this.#max = init.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.#counters = init.counters;
    // Messages that arrive before anyone listens are held (bounded; the decoder pauses when
    // full) and delivered once a 'message' listener is attached.
    this.#inbound = new InboundMessages({
      target: this,
      schema: init.messageSchema,
      counters: init.counters,
      overflow: { pause: () => this.#decoder.pause(), resume: () => this.#decoder.resume() },
      onError: (err) => this.#fail(err),
    });
    this.#hop = init.hop;
    if (init.awaitingAck) {
      const { timeoutMs, helloSentAt } = init.awaitingAck;
      this.accepted = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => this.#fail(new HandshakeTimeoutError(timeoutMs)), timeoutMs);
        this.#ack = { helloSentAt, timer, resolve, reject };
      });
      this.accepted.catch(() => {}); // also reported as the 'close' error
    } else this.accepted = Promise.resolve();
    this.#decoder.on('data', (f: ConnectionFrame) => this.#onFrame(f));
    this.#decoder.on('error', (err) => this.#fail(err));
    this.#socket.on('error', (err) => this.#fail(err));
    this.#socket.on('close', () => this.#onClose());
    this.#decoder.on('end', () => this.#writer.end());
    this.#decoder.resume();
    if (init.probeRtt) this.ping().catch(() => {});
  }

  /** The remote transport address, when the pipe has one (TCP). */
  get remoteAddress(): string | undefined {
    return this.#hop ? undefined : this.#socket.remoteAddress;
  }

  async send(message: unknown, opts: { signal?: AbortSignal } = {}): Promise<void> {
    throwIfAborted(opts.signal);
    if (this.closed) throw new ConnectionClosedError(undefined, { cause: this.#closeError });
    await this.#write({ t: 'data', d: message }, opts.signal);
    this.#counters?.inc('messages_out');
  }

  async ping(opts: { signal?: AbortSignal } = {}): Promise<number> {
    const n = this.#pingSeq++;
    const t = timeoutSignal(DEFAULT_PING_TIMEOUT_MS, 'ping', opts.signal);
    try {
      const started = performance.now();
      const pong = this.#until((resolve) => {
        this.#pings.set(n, () => resolve());
        return undefined;
      }, t.signal);
      pong.catch(() => {}); // awaited below; if the write fails first, this must not go unhandled
      await this.#write({ t: 'ping', n }, t.signal);
      await pong;
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

  /** The peer's goodbye, when it closed the connection cleanly (see `Connection.closedByPeer`). */
  get closedByPeer(): { reason?: string } | undefined {
    return this.#closedByPeer;
  }

  async close(reason?: string): Promise<void> {
    if (this.closed) return;
    this.#closingLocally = true;
    let bye: Buffer | undefined;
    try {
      bye = encodeFrame(reason ? { t: 'bye', reason } : { t: 'bye' }, this.#max);
    } catch {
      // best effort
    }
    // Not events.once: it rejects on an 'error' (a reset while saying goodbye), and close() is
    // often fire-and-forget (`void conn.close()`): closing ends in 'close' whatever happens.
    const closed = new Promise<void>((resolve) => this.once('close', () => resolve()));
    this.#writer.end(bye);
    const t = setTimeout(() => this.#socket.destroy(), 2000);
    t.unref();
    await closed;
    clearTimeout(t);
  }

  /** Closes at once with an error (no goodbye). */
  destroy(err?: Error): void {
    this.#closingLocally = true;
    this.#fail(err ?? new ConnectionClosedError('destroyed'));
  }

  async #write(frame: ConnectionFrame, signal?: AbortSignal): Promise<void> {
    const bytes = encodeFrame(frame, this.#max);
    if (this.closed) throw new ConnectionClosedError(undefined, { cause: this.#closeError });
    await this.#writer.write(bytes, signal);
  }

  /**
   * Waits for `arm`'s resolve, rejecting when the signal aborts or the connection closes; every
   * listener is removed afterwards.
   */
  #until(arm: (resolve: () => void) => (() => void) | undefined, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.closed) return reject(new ConnectionClosedError(undefined, { cause: this.#closeError }));
      if (signal?.aborted) return reject(toAbortError(signal));
      let disarm: (() => void) | undefined;
      const cleanup = () => {
        disarm?.();
        this.off('close', onClose);
        signal?.removeEventListener('abort', onAbort);
      };
      const onClose = () => {
        cleanup();
        reject(new ConnectionClosedError(undefined, { cause: this.#closeError }));
      };
      const onAbort = () => {
        cleanup();
        reject(toAbortError(signal as AbortSignal));
      };
      this.once('close', onClose);
      signal?.addEventListener('abort', onAbort, { once: true });
      disarm = arm(() => {
        cleanup();
        resolve();
      });
    });
  }

  /** The dialer's first frame: the acceptor's verdict. */
  #onVerdict(f: ConnectionFrame, ack: AwaitedAck): void {
    if (f.t === 'hello_ack') {
      clearTimeout(ack.timer);
      this.#ack = undefined;
      this.rttMs = performance.now() - ack.helloSentAt;
      this.#counters?.inc('handshakes_ok');
      ack.resolve();
      return;
    }
    const err = f.t === 'reject' ? new PeerRejectedError(f.reason) : new HandshakeError(`expected hello_ack, got ${f.t}`);
    this.#fail(err);
  }

  #onFrame(f: ConnectionFrame): void {
    if (this.#ack) {
      this.#onVerdict(f, this.#ack);
      return;
    }
    switch (f.t) {
      case 'data':
        this.#inbound.receive(f.d);
        return;
      case 'ping':
        this.#write({ t: 'pong', n: f.n }).catch(() => {});
        return;
      case 'pong':
        this.#pings.get(f.n)?.(0);
        return;
      case 'bye': {
        const reason = (f as { reason?: unknown }).reason;
        this.#closedByPeer = typeof reason === 'string' ? { reason: reason.slice(0, 200) } : {};
        this.#writer.end();
        return;
      }
      default:
        // hello/ack/reject after the handshake are protocol errors
        this.#fail(new ConnectionClosedError(`unexpected ${f.t} frame after handshake`));
    }
  }

  #fail(err: Error): void {
    if (this.closed) return;
    this.#closeError ??= err;
    this.#settleAck();
    if (this.listenerCount('error') > 0) this.emit('error', err);
    this.#socket.destroy();
  }

  /** A connection that ends before the acceptor's verdict fails its handshake: typed, counted. */
  #settleAck(): void {
    const ack = this.#ack;
    if (!ack) return;
    this.#ack = undefined;
    clearTimeout(ack.timer);
    const err = this.#closeError ?? new HandshakeError('pipe closed before the peer accepted the connection');
    this.#closeError ??= err;
    if (!this.#closingLocally) this.#counters?.inc(`handshake_errors_${(err as { code?: string }).code ?? 'unknown'}`);
    ack.reject(err);
  }

  #onClose(): void {
    if (this.closed || this.#explaining) return;
    const hop = this.#hop;
    if (hop && !this.#closingLocally && !this.#closedByPeer) {
      // The pipe went under us: its hop may know why (typed) a moment later.
      this.#explaining = true;
      hop.explainClose(this.#closeError).then(
        (typed) => this.#finishClose(typed),
        () => this.#finishClose(undefined),
      );
      return;
    }
    this.#finishClose(undefined);
  }

  #finishClose(typed: Error | undefined): void {
    if (this.closed) return;
    if (typed) this.#closeError = typed;
    this.#settleAck();
    this.closed = true;
    this.#writer.close(new ConnectionClosedError(undefined, { cause: this.#closeError }));
    this.#decoder.destroy();
    this.emit('close', this.#closeError);
  }
}
