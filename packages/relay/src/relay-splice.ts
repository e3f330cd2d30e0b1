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
  readonly tokens: [Buffer, Buffer] = [randomBytes(DATA_TOKEN_BYTES), randomBytes(DATA_TOKEN_BYTES)];
  readonly sockets: [Socket | undefined, Socket | undefined] = [undefined, undefined];
  readonly #used = [false, false];
  readonly #timers = new Set<NodeJS.Timeout>();
  #over = false;
  /** The deadline for both data connections (set by the relay). */
  deadline: NodeJS.Timeout | undefined;

  /** The side (0 or 1) the token belongs to, compared in constant time; -1 for none. */
  sideOf(token: Buffer): 0 | 1 | -1 {
    let side: 0 | 1 | -1 = -1;
    if (token.length !== DATA_TOKEN_BYTES) return side;
    if (timingSafeEqual(token, this.tokens[0])) side = 0;
    if (timingSafeEqual(token, this.tokens[1])) side = 1;
    return side;
  }

  /** Binds a data connection to its side; false when that token was used already. */
  attach(side: 0 | 1, socket: Socket): boolean {
    if (this.#used[side] || this.#over) return false;
    this.#used[side] = true;
    this.sockets[side] = socket;
    return true;
  }

  get ready(): boolean {
    return this.sockets[0] !== undefined && this.sockets[1] !== undefined;
  }

  /** Starts moving bytes both ways (both sockets attached). */
  start(hooks: SpliceHooks): void {
    clearTimeout(this.deadline);
    const [a, b] = this.sockets as [Socket, Socket];
    this.#pipe(a, b, hooks);
    this.#pipe(b, a, hooks);
  }

  #pipe(src: Socket, dst: Socket, hooks: SpliceHooks): void {
    let holds = 0;
    const hold = () => {
      if (holds++ === 0) src.pause();
    };
    const release = () => {
      if (holds > 0 && --holds === 0 && !this.#over) src.resume();
    };
    src.on('data', (chunk: Buffer) => {
      if (this.#over || !hooks.onBytes(chunk.length)) return;
      if (!dst.write(chunk)) {
        hold();
        dst.once('drain', release);
      }
      const wait = hooks.debtMs(chunk.length);
      if (wait > 0) {
        hold();
        const t = setTimeout(() => {
          this.#timers.delete(t);
          release();
        }, wait);
        this.#timers.add(t);
      }
    });
    src.once('end', () => hooks.onClose('end'));
    src.once('close', () => hooks.onClose('peer_lost'));
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
    clearTimeout(this.deadline);
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
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
