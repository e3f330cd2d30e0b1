import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import { DATA_PREAMBLE_BYTES, DATA_PREAMBLE_MAGIC, DATA_SESSION_ID_BYTES, DATA_TOKEN_BYTES } from './constants.js';

const MAGIC = Buffer.from(DATA_PREAMBLE_MAGIC, 'latin1');

/** The first byte of a data connection; a TLS ClientHello starts with 0x16, so one byte tells them apart. */
export const DATA_MAGIC_FIRST_BYTE = MAGIC[0] as number;

/** The fixed-size preamble a client sends first on its data connection. */
export function encodePreamble(sessionId: string, token: Uint8Array): Buffer {
  const id = Buffer.from(sessionId, 'latin1');
  if (id.length !== DATA_SESSION_ID_BYTES || token.length !== DATA_TOKEN_BYTES) throw new RangeError('bad session id or data token');
  return Buffer.concat([MAGIC, id, token]);
}

/** Parses a preamble; undefined when it is not one. */
export function decodePreamble(b: Buffer): { sessionId: string; token: Buffer } | undefined {
  if (b.length !== DATA_PREAMBLE_BYTES || !b.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const id = b.subarray(MAGIC.length, MAGIC.length + DATA_SESSION_ID_BYTES);
  return { sessionId: id.toString('latin1'), token: b.subarray(MAGIC.length + DATA_SESSION_ID_BYTES) };
}

/**
 * Reads exactly the preamble from a fresh data connection (what follows stays buffered in the
 * socket, to be spliced); undefined when the socket ends, sends something else, or is too slow.
 */
export function readPreamble(socket: Socket, timeoutMs: number): Promise<{ sessionId: string; token: Buffer } | undefined> {
  return new Promise((resolve) => {
    const done = (v: { sessionId: string; token: Buffer } | undefined) => {
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', onGone);
      socket.off('close', onGone);
      resolve(v);
    };
    const onGone = () => done(undefined);
    const onReadable = () => {
      const b = socket.read(DATA_PREAMBLE_BYTES) as Buffer | null;
      if (b !== null) done(decodePreamble(b));
    };
    const timer = setTimeout(onGone, timeoutMs);
    socket.on('readable', onReadable);
    socket.once('end', onGone);
    socket.once('close', onGone);
    onReadable();
  });
}

/** What a splice asks of the relay for every chunk, and tells it at the end. */
export interface SpliceHooks {
  /** `n` bytes arrived; false when they break the session's caps (the session ends, nothing is forwarded). */
  onBytes(n: number): boolean;
  /** Relay-wide bandwidth: how long to stop reading the sender after these bytes, ms. */
  debtMs(n: number): number;
  /** A side closed its data connection: cleanly (`end`) or not (`peer_lost`). */
  onClose(reason: 'end' | 'peer_lost'): void;
}

/**
 * The data path of one spliced session at the relay: a one-time token per side, the two plain
 * TCP data connections once both arrived, and the bytes between them (both ways, with
 * backpressure and the relay's bandwidth shaping by pausing reads).
 */
export class Splice {
  /** Each side's one-time token; dropped once both data connections are bound. */
  #tokens: [Buffer, Buffer] | undefined = [randomBytes(DATA_TOKEN_BYTES), randomBytes(DATA_TOKEN_BYTES)];
  readonly sockets: [Socket | undefined, Socket | undefined] = [undefined, undefined];
  /** Bandwidth holds under way (made only when the relay's bandwidth is in debt). */
  #timers: Set<NodeJS.Timeout> | undefined;
  #over = false;
  /** The deadline for both data connections (set by the relay). */
  deadline: NodeJS.Timeout | undefined;

  /** The token of a side, to be sent to that side's client (before its data connection is bound). */
  token(side: 0 | 1): Buffer {
    if (!this.#tokens) throw new Error('data connections are bound already');
    return this.#tokens[side];
  }

  /** The side (0 or 1) the token belongs to, compared in constant time; -1 for none. */
  sideOf(token: Buffer): 0 | 1 | -1 {
    let side: 0 | 1 | -1 = -1;
    const tokens = this.#tokens;
    if (!tokens || token.length !== DATA_TOKEN_BYTES) return side;
    if (timingSafeEqual(token, tokens[0])) side = 0;
    if (timingSafeEqual(token, tokens[1])) side = 1;
    return side;
  }

  /** Binds a data connection to its side; false when that token was used already. */
  attach(side: 0 | 1, socket: Socket): boolean {
    if (this.sockets[side] !== undefined || this.#over) return false;
    this.sockets[side] = socket;
    if (this.ready) this.#tokens = undefined;
    return true;
  }

  get ready(): boolean {
    return this.sockets[0] !== undefined && this.sockets[1] !== undefined;
  }

  /** Starts moving bytes both ways (both sockets attached). */
  start(hooks: SpliceHooks): void {
    clearTimeout(this.deadline);
    this.deadline = undefined;
    const [a, b] = this.sockets as [Socket, Socket];
    // One pair of end handlers for both sockets: an idle session holds no more closures than needed.
    const onEnd = () => hooks.onClose('end');
    const onLost = () => hooks.onClose('peer_lost');
    this.#pipe(a, b, hooks, onEnd, onLost);
    this.#pipe(b, a, hooks, onEnd, onLost);
  }

  #pipe(src: Socket, dst: Socket, hooks: SpliceHooks, onEnd: () => void, onLost: () => void): void {
    let holds = 0;
    const release = () => {
      if (holds > 0 && --holds === 0 && !this.#over) src.resume();
    };
    src.on('data', (chunk: Buffer) => {
      if (this.#over || !hooks.onBytes(chunk.length)) return;
      if (!dst.write(chunk)) {
        if (holds++ === 0) src.pause();
        dst.once('drain', release);
      }
      const wait = hooks.debtMs(chunk.length);
      if (wait > 0) {
        if (holds++ === 0) src.pause();
        const timers = (this.#timers ??= new Set());
        const t = setTimeout(() => {
          timers.delete(t);
          release();
        }, wait);
        timers.add(t);
      }
    });
    src.once('end', onEnd);
    src.once('close', onLost);
    src.resume();
  }

  /**
   * Ends the data path. `graceful` (a side ended its stream): what was forwarded is flushed, then
   * both connections end; otherwise they are cut at once (the reason goes over the control
   * connections).
   */
  close(graceful: boolean): void {
    if (this.#over) return;
    this.#over = true;
    this.#tokens = undefined;
    clearTimeout(this.deadline);
    for (const t of this.#timers ?? []) clearTimeout(t);
    this.#timers = undefined;
    for (const s of this.sockets) {
      if (!s) continue;
      if (graceful) {
        s.end();
        // A client that never closes its side does not hold the socket forever.
        const t = setTimeout(() => s.destroy(), 2_000);
        t.unref();
        s.once('close', () => clearTimeout(t));
      } else s.destroy();
    }
  }
}
