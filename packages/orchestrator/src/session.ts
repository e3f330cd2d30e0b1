import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  abortable,
  type Connection,
  type Counters,
  isDpcError,
  type TierName,
  throwIfAborted,
  tierPriority,
  toAbortError,
} from '@dpc/core';
import { DEFAULT_MAX_UNACKED, MAX_REORDER, PATH_LINGER_MS } from './constants.js';
import { SessionClosedError } from './errors.js';
import { type SessionFrame, sessionFrameSchema } from './messages.js';

interface Pending {
  body: unknown;
  waiters: Array<{ resolve: () => void; reject: (e: Error) => void }>;
}

export interface PeerSession extends EventEmitter {
  readonly peerId: string;
  /** Tier of the current path, or undefined while there is none. */
  readonly tier: TierName | undefined;
  readonly connected: boolean;
  /** Transport address of the current path, when it has one (direct tiers). */
  readonly remoteAddress: string | undefined;
  readonly closed: boolean;
  /** Messages sent and not yet acknowledged. */
  readonly unacked: number;
  /**
   * Sends one application message; resolves when the peer acknowledged it. Messages are
   * numbered and kept until acknowledged: if the path fails or a better one is found they are
   * resent on the new path, and the receiver drops duplicates. Aborting stops the wait (the
   * message may still be delivered).
   */
  send(body: unknown, opts?: { signal?: AbortSignal }): Promise<void>;
  close(): Promise<void>;
  on(event: 'message', listener: (body: unknown, meta: { tier: TierName; seq: number }) => void): this;
  on(event: 'path', listener: (e: { tier: TierName; previous: TierName | undefined }) => void): this;
  on(event: 'path-lost', listener: (e: { tier: TierName; error?: Error }) => void): this;
  on(event: 'close', listener: () => void): this;
}

/** Which of two connections to keep: the better tier, else the one dialled by the smaller node id. */
export function preferConnection(a: { tier: TierName; initiator: string }, b: { tier: TierName; initiator: string }): 'a' | 'b' {
  const pa = tierPriority(a.tier);
  const pb = tierPriority(b.tier);
  if (pa !== pb) return pa < pb ? 'a' : 'b';
  return a.initiator <= b.initiator ? 'a' : 'b';
}

interface Path {
  conn: Connection;
  initiator: string;
}

export class Session extends EventEmitter implements PeerSession {
  readonly peerId: string;
  readonly #localId: string;
  readonly #epoch = randomBytes(8).toString('hex');
  readonly #maxUnacked: number;
  readonly #counters: Counters | undefined;
  #nextSeq = 1;
  readonly #pending = new Map<number, Pending>();
  readonly #room: Array<() => void> = [];
  #current: Path | undefined;
  readonly #paths = new Set<Path>();
  // receiving side
  #peerEpoch: string | undefined;
  #recvNext = 1;
  readonly #reorder = new Map<number, unknown>();
  closed = false;

  constructor(peerId: string, localId: string, opts: { maxUnacked?: number; counters?: Counters } = {}) {
    super();
    this.peerId = peerId;
    this.#localId = localId;
    this.#maxUnacked = opts.maxUnacked ?? DEFAULT_MAX_UNACKED;
    this.#counters = opts.counters;
  }

  get tier(): TierName | undefined {
    return this.#current?.conn.tier;
  }

  get remoteAddress(): string | undefined {
    return this.#current?.conn.remoteAddress;
  }

  get connected(): boolean {
    return this.#current !== undefined && !this.#current.conn.closed;
  }

  get unacked(): number {
    return this.#pending.size;
  }

  /** Adds a path. Returns true when it became the current one. */
  attach(conn: Connection, initiator: string): boolean {
    if (this.closed || conn.closed) {
      void conn.close('session closed');
      return false;
    }
    const path: Path = { conn, initiator };
    this.#paths.add(path);
    conn.on('message', (m) => this.#onFrame(path, m));
    conn.on('close', (err?: Error) => this.#onPathClosed(path, err));
    const cur = this.#current;
    if (
      cur &&
      !cur.conn.closed &&
      preferConnection({ tier: cur.conn.tier, initiator: cur.initiator }, { tier: conn.tier, initiator }) === 'a'
    ) {
      this.#linger(path);
      return false;
    }
    this.#current = path;
    if (cur) this.#linger(cur);
    this.emit('path', { tier: conn.tier, previous: cur?.conn.tier });
    this.#resend();
    return true;
  }

  async send(body: unknown, opts: { signal?: AbortSignal } = {}): Promise<void> {
    throwIfAborted(opts.signal);
    if (this.closed) throw new SessionClosedError();
    while (this.#pending.size >= this.#maxUnacked) {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(toAbortError(opts.signal as AbortSignal));
        opts.signal?.addEventListener('abort', onAbort, { once: true });
        this.#room.push(() => {
          opts.signal?.removeEventListener('abort', onAbort);
          resolve();
        });
      });
      if (this.closed) throw new SessionClosedError();
    }
    const n = this.#nextSeq++;
    const acked = new Promise<void>((resolve, reject) => {
      this.#pending.set(n, { body, waiters: [{ resolve, reject }] });
    });
    const cur = this.#current;
    if (cur && !cur.conn.closed) this.#write(cur, { k: 'm', e: this.#epoch, n, b: body });
    else this.emit('need-path');
    return abortable(acked, opts.signal);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new SessionClosedError(`session with ${this.peerId} closed with ${this.#pending.size} message(s) unacknowledged`);
    for (const p of this.#pending.values()) for (const w of p.waiters) w.reject(err);
    this.#pending.clear();
    for (const r of this.#room.splice(0)) r();
    const paths = [...this.#paths];
    this.#paths.clear();
    this.#current = undefined;
    await Promise.all(paths.map((p) => p.conn.close('session closed').catch(() => {})));
    this.emit('close');
  }

  #write(path: Path, frame: SessionFrame): void {
    path.conn.send(frame).catch((err: unknown) => {
      // The path is failing: its close event moves the session; the message stays pending.
      if (!isDpcError(err, 'DPC_CONNECTION_CLOSED')) this.#counters?.inc('session_send_errors');
    });
  }

  #resend(): void {
    const cur = this.#current;
    if (!cur) return;
    for (const [n, p] of this.#pending) this.#write(cur, { k: 'm', e: this.#epoch, n, b: p.body });
    if (this.#pending.size > 0) this.#counters?.inc('session_resent', this.#pending.size);
  }

  #onFrame(path: Path, raw: unknown): void {
    let f: SessionFrame;
    try {
      f = sessionFrameSchema(raw);
    } catch {
      this.#counters?.inc('session_bad_frames');
      return;
    }
    if (f.k === 'a') {
      if (f.e !== this.#epoch) return;
      for (const [n, p] of this.#pending) {
        if (n > f.n) break;
        this.#pending.delete(n);
        for (const w of p.waiters) w.resolve();
      }
      while (this.#room.length > 0 && this.#pending.size < this.#maxUnacked) this.#room.shift()?.();
      return;
    }
    if (f.e !== this.#peerEpoch) {
      // The peer started a new session (e.g. after a restart): numbering starts again.
      this.#peerEpoch = f.e;
      this.#recvNext = 1;
      this.#reorder.clear();
    }
    if (f.n < this.#recvNext) {
      this.#counters?.inc('session_duplicates_dropped');
    } else if (f.n === this.#recvNext) {
      this.#deliver(f.b, path.conn.tier);
      while (this.#reorder.has(this.#recvNext)) {
        const b = this.#reorder.get(this.#recvNext);
        this.#reorder.delete(this.#recvNext);
        this.#deliver(b, path.conn.tier);
      }
    } else if (this.#reorder.size < MAX_REORDER) {
      this.#reorder.set(f.n, f.b);
    } else {
      this.#counters?.inc('session_reorder_overflow');
    }
    this.#write(path, { k: 'a', e: f.e, n: this.#recvNext - 1 });
  }

  #deliver(body: unknown, tier: TierName): void {
    const seq = this.#recvNext++;
    this.emit('message', body, { tier, seq });
  }

  #linger(path: Path): void {
    const t = setTimeout(() => void path.conn.close('replaced by a better path').catch(() => {}), PATH_LINGER_MS);
    t.unref();
  }

  #onPathClosed(path: Path, err?: Error): void {
    this.#paths.delete(path);
    if (this.#current !== path) return;
    // Fall back to another open path if there is one, else report the loss.
    let next: Path | undefined;
    for (const p of this.#paths) {
      if (p.conn.closed) continue;
      if (
        !next ||
        preferConnection({ tier: p.conn.tier, initiator: p.initiator }, { tier: next.conn.tier, initiator: next.initiator }) === 'a'
      )
        next = p;
    }
    this.#current = next;
    if (this.closed) return;
    this.emit('path-lost', { tier: path.conn.tier, ...(err && { error: err }) });
    if (next) {
      this.emit('path', { tier: next.conn.tier, previous: path.conn.tier });
      this.#resend();
    }
  }

  /** The local node id (for tie-breaks). */
  get localId(): string {
    return this.#localId;
  }
}
