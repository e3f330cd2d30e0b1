import { type Socket, connect as tcpConnect } from 'node:net';
import { type PathHop, toAbortError } from '@dpc/core';
import { SPLICE_CLOSE_GRACE_MS } from './constants.js';
import { RelayPathClosedError, RelayRefusedError } from './errors.js';
import type { DisconnectReason, RefusalCode, RelayMessageOut } from './messages.js';
import { encodePreamble } from './relay-splice.js';

/** What a spliced path needs from its control connection. */
export interface SpliceLink {
  send(msg: RelayMessageOut, opts?: { signal?: AbortSignal }): Promise<void>;
  detach(path: { sessionId: string }): void;
}

/**
 * The byte pipe of a spliced relay session: a plain TCP data connection to the relay, bound to
 * the session by the one-time token sent first; the relay copies its bytes to the peer's data
 * connection. The peers run their own TLS on the socket itself (`ready()`), so it is Node's
 * native TLS path end to end, and the relay still carries ciphertext only.
 *
 * Why the path closed comes over the control connection (RELAY_DISCONNECT, or its loss): this
 * is the connection's `PathHop`, so a data connection that ends unannounced waits a moment for
 * that reason (`explainClose`) before the connection closes with it, or as `relay_lost`.
 */
export class SplicePath implements PathHop {
  readonly sessionId: string;
  readonly peer: string;
  readonly relayNodeId: string;
  readonly #link: SpliceLink;
  readonly #socket: Socket;
  readonly #ready: Promise<Socket>;
  /** This end is done with the session (disposed). */
  #disposed = false;
  /** The relay said the session ended cleanly. */
  #endAnnounced = false;
  /** Why the path failed, as the connection reports it. */
  #closeError: RelayPathClosedError | undefined;
  #grace: NodeJS.Timeout | undefined;
  /** Connections waiting to learn why the data connection closed. */
  #waiters: Array<(err: Error | undefined) => void> = [];
  /** A refusal the relay sent for this session (e.g. `data_timeout`), reported instead of a broken handshake. */
  #refusal: RelayRefusedError | undefined;
  /** Called with the typed error when the relay ends the session or is lost. */
  onPathClosed: ((err: RelayPathClosedError) => void) | undefined;

  constructor(
    link: SpliceLink,
    relay: { ip: string; node_id: string },
    grant: { session_id: string; peer: string; data_port: number; data_token: Uint8Array },
  ) {
    this.#link = link;
    this.sessionId = grant.session_id;
    this.peer = grant.peer;
    this.relayNodeId = relay.node_id;
    const preamble = encodePreamble(grant.session_id, grant.data_token);
    const socket = tcpConnect({ host: relay.ip, port: grant.data_port, noDelay: true });
    this.#socket = socket;
    // Errors are reported by ready(), then by the TLS socket that takes this one over.
    socket.on('error', () => {});
    this.#ready = new Promise<Socket>((resolve, reject) => {
      const onClose = () => reject(new RelayPathClosedError('relay_lost'));
      const onError = (err: Error) => reject(new RelayPathClosedError('relay_lost', { cause: err }));
      socket.once('close', onClose);
      socket.once('error', onError);
      socket.once('connect', () => {
        // The preamble is written before TLS takes the socket over (no round trip: nothing answers it).
        socket.write(preamble, (err) => {
          socket.off('close', onClose);
          socket.off('error', onError);
          if (err) reject(new RelayPathClosedError('relay_lost', { cause: err }));
          else resolve(socket);
        });
      });
    });
    this.#ready.catch(() => {});
  }

  /**
   * The data connection once it is up and its preamble written, for TLS to run on as is. Rejects
   * typed when the relay cannot be reached, the path failed, or `signal` aborts.
   */
  ready(signal?: AbortSignal): Promise<Socket> {
    if (this.#closeError) return Promise.reject(this.pathError);
    if (!signal) return this.#ready;
    return new Promise<Socket>((resolve, reject) => {
      const onAbort = () => reject(toAbortError(signal));
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.#ready.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  /** Why the path failed, once it did (a relay refusal first): typed. */
  get pathError(): Error | undefined {
    return this.#closeError && (this.#refusal ?? this.#closeError);
  }

  /**
   * The data connection closed under the connection on it: resolves with the typed reason once
   * the relay told it (or undefined for a clean end), or as `relay_lost` after a grace period.
   */
  explainClose(cause: Error | undefined): Promise<Error | undefined> {
    if (this.#closeError) return Promise.resolve(this.#closeError);
    if (this.#endAnnounced || this.#disposed) return Promise.resolve(undefined);
    this.#grace ??= setTimeout(() => this.#fail('relay_lost', cause), SPLICE_CLOSE_GRACE_MS);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /**
   * The handshake on the data connection failed with `err`: the relay's typed reason when it
   * gives one within the grace period (a refusal, the session's end), else `err` itself.
   */
  async handshakeFailed(err: Error): Promise<Error> {
    if (!this.#closeError && !this.#endAnnounced && !this.#disposed) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        timer = setTimeout(resolve, SPLICE_CLOSE_GRACE_MS);
        this.#waiters.push(() => resolve());
      });
      clearTimeout(timer);
    }
    return this.pathError ?? err;
  }

  /** The relay refused something on this session (followed by RELAY_DISCONNECT). */
  refused(code: RefusalCode, reason: string): void {
    this.#refusal ??= new RelayRefusedError(code, reason, this.relayNodeId);
  }

  /** The relay ended the session, or the control connection was lost (called by the link). */
  remoteClosed(reason: DisconnectReason | 'relay_lost', cause?: unknown): void {
    if (this.#closeError || this.#endAnnounced) return;
    // A clean end: the data connection still delivers what was forwarded, then ends (TLS sees it).
    if (reason === 'end') {
      this.#endAnnounced = true;
      this.#settle(undefined);
      return;
    }
    this.#fail(reason, cause);
  }

  #settle(err: Error | undefined): void {
    clearTimeout(this.#grace);
    this.#grace = undefined;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w(err);
  }

  #fail(reason: DisconnectReason | 'relay_lost', cause?: unknown): void {
    if (this.#closeError || this.#endAnnounced) return;
    const err = new RelayPathClosedError(reason, cause === undefined ? undefined : { cause });
    this.#closeError = err;
    this.#settle(err);
    // The typed error reaches the secure connection above; the pipe itself just goes.
    this.onPathClosed?.(err);
    this.#socket.destroy();
    this.destroy();
  }

  /**
   * This end is done with the session (its connection closed, or the handshake failed): the data
   * connection goes, and the relay is told unless it ended the session itself.
   */
  destroy(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    // Tell the relay first, so the peer sees a clean end rather than a lost peer.
    if (!this.#closeError && !this.#endAnnounced) {
      this.#link.send({ type: 'RELAY_DISCONNECT', session_id: this.sessionId, reason: 'end' }).catch(() => {});
    }
    this.#settle(this.#closeError);
    this.#socket.destroy();
    this.#link.detach(this);
  }
}
