import { type Socket, connect as tcpConnect } from 'node:net';
import { Duplex } from 'node:stream';
import { SPLICE_CLOSE_GRACE_MS } from './constants.js';
import { RelayPathClosedError, RelayRefusedError } from './errors.js';
import type { DisconnectReason, RefusalCode, RelayMessageOut } from './messages.js';
import { encodePreamble } from './relay-splice.js';

/** What a spliced stream needs from its control connection. */
export interface SpliceLink {
  send(msg: RelayMessageOut, opts?: { signal?: AbortSignal }): Promise<void>;
  detach(stream: { sessionId: string }): void;
}

/**
 * The byte pipe of a spliced relay session: a plain TCP data connection to the relay, bound to
 * the session by the one-time token sent first; the relay copies its bytes to the peer's data
 * connection. The peers run their own TLS over it, so the relay still carries ciphertext only.
 * Why the path closed comes over the control connection (RELAY_DISCONNECT, or its loss): a data
 * connection that ends unannounced waits a moment for that reason before it fails as
 * `relay_lost`.
 */
export class SpliceStream extends Duplex {
  readonly sessionId: string;
  readonly peer: string;
  readonly #link: SpliceLink;
  readonly #raw: Socket;
  #over = false;
  /** The relay said the session ended cleanly: the data connection's end is expected. */
  #endAnnounced = false;
  /** We ended our side: the data connection's end is the answer. */
  #endedHere = false;
  #rawEnded = false;
  #grace: NodeJS.Timeout | undefined;
  #drainCb: ((err?: Error | null) => void) | undefined;
  /** A refusal the relay sent for this session (e.g. `data_timeout`), reported instead of a broken handshake. */
  #refusal: RelayRefusedError | undefined;
  /** Why the path failed, once it did (typed). */
  pathError: Error | undefined;
  /** Called with the typed error when the relay ends the session or is lost. */
  onPathClosed: ((err: RelayPathClosedError) => void) | undefined;

  constructor(
    link: SpliceLink,
    relay: { ip: string; node_id: string },
    grant: { session_id: string; peer: string; data_port: number; data_token: Uint8Array },
  ) {
    super();
    this.#link = link;
    this.sessionId = grant.session_id;
    this.peer = grant.peer;
    this.relayNodeId = relay.node_id;
    // Writes before the connection is up are queued by the socket, preamble first.
    this.#raw = tcpConnect({ host: relay.ip, port: grant.data_port, noDelay: true });
    this.#raw.write(encodePreamble(grant.session_id, grant.data_token));
    this.#raw.on('data', (d: Buffer) => {
      if (!this.push(d)) this.#raw.pause();
    });
    this.#raw.on('drain', () => {
      const cb = this.#drainCb;
      this.#drainCb = undefined;
      cb?.();
    });
    this.#raw.on('end', () => this.#onRawEnd());
    this.#raw.on('error', (err) => this.#onRawEnd(err));
    this.#raw.on('close', () => this.#onRawEnd());
  }

  readonly relayNodeId: string;

  override _read(): void {
    this.#raw.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.#raw.write(chunk)) cb();
    else this.#drainCb = cb;
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    this.#raw.cork();
    let ok = true;
    for (const c of chunks) ok = this.#raw.write(c.chunk);
    this.#raw.uncork();
    if (ok) cb();
    else this.#drainCb = cb;
  }

  override _final(cb: (err?: Error | null) => void): void {
    // Our end reaches the relay as the data connection's end; it ends the session cleanly.
    this.#endedHere = true;
    this.#raw.end();
    cb();
  }

  #onRawEnd(err?: Error): void {
    if (this.#over) return;
    this.#rawEnded = true;
    if (this.#endAnnounced || this.#endedHere) {
      this.#finish();
      return;
    }
    // Unannounced: the reason (or the control connection's loss) is on its way, or the relay is gone.
    this.#grace ??= setTimeout(() => this.#fail('relay_lost', err), SPLICE_CLOSE_GRACE_MS);
  }

  /** The relay refused something on this session (followed by RELAY_DISCONNECT). */
  refused(code: RefusalCode, reason: string): void {
    this.#refusal ??= new RelayRefusedError(code, reason, this.relayNodeId);
  }

  /** The relay ended the session, or the control connection was lost (called by the link). */
  remoteClosed(reason: DisconnectReason | 'relay_lost', cause?: unknown): void {
    if (this.#over) return;
    if (reason === 'end' || (reason === 'relay_lost' && this.#endAnnounced)) {
      // Clean end: the data connection still delivers what was forwarded, then ends.
      this.#endAnnounced = true;
      if (this.#rawEnded) this.#finish();
      else {
        clearTimeout(this.#grace);
        this.#grace = setTimeout(() => this.#finish(), SPLICE_CLOSE_GRACE_MS);
      }
      return;
    }
    this.#fail(reason, cause);
  }

  #finish(): void {
    if (this.#over) return;
    this.#over = true;
    clearTimeout(this.#grace);
    this.push(null);
  }

  #fail(reason: DisconnectReason | 'relay_lost', cause?: unknown): void {
    if (this.#over) return;
    this.#over = true;
    clearTimeout(this.#grace);
    const err = new RelayPathClosedError(reason, cause === undefined ? undefined : { cause });
    this.pathError = this.#refusal ?? err;
    // The typed error reaches the secure connection above; the pipe itself just goes.
    this.onPathClosed?.(err);
    this.destroy();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.#over) {
      this.#over = true;
      clearTimeout(this.#grace);
      // Tell the relay first, so the peer sees a clean end rather than a lost peer.
      this.#link.send({ type: 'RELAY_DISCONNECT', session_id: this.sessionId, reason: 'end' }).catch(() => {});
    }
    clearTimeout(this.#grace);
    this.#raw.destroy();
    const drain = this.#drainCb;
    this.#drainCb = undefined;
    drain?.(err ?? new RelayPathClosedError('end'));
    this.#link.detach(this);
    cb(err);
  }
}
