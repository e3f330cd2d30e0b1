import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  abortable,
  type Connection,
  type Counters,
  type DeferredItem,
  encode,
  holdProcess,
  isDpcError,
  KvBatcher,
  type KvOp,
  memoryKvStore,
  type TierName,
  throwIfAborted,
  toAbortError,
} from '@dpc/core';
import {
  DEFAULT_MAX_REORDER_BYTES,
  DEFAULT_MAX_UNACKED,
  MAX_ACK_SELECTIVE,
  MAX_REORDER,
  PATH_LINGER_MS,
  RX_EPOCHS_KEPT,
} from './constants.js';
import { SessionClosedError, SessionStoreError } from './errors.js';
import { type SessionFrame, sessionFrameSchema } from './messages.js';
import { del, keys, type LoadedState, loadSessionState, put, putRaw } from './session-state.js';

type DataFrame = Extract<SessionFrame, { k: 'm' }>;
type AckFrame = Extract<SessionFrame, { k: 'a' }>;

interface Pending {
  body: unknown;
  waiters: Array<{ resolve: () => void; reject: (e: Error) => void }>;
  /** Handed to the deferred path (once is enough: it is durable there). */
  submitted: boolean;
}

/** A message accepted by `queue()`: durably in the outbox, delivery still to come. */
export interface Queued {
  /** Its number in this session (the receiver delivers in this order). */
  seq: number;
  /** Resolves when the peer acknowledged it (over any path, live or deferred). */
  delivered: Promise<void>;
}

/** Receipts and items of the deferred path (tier 6) for one peer. */
export interface DeferredPort {
  submit(item: DeferredItem): Promise<void>;
  receipt(ids: string[]): Promise<void>;
}

export interface PeerSession extends EventEmitter {
  readonly peerId: string;
  /** Tier of the current path: a live tier, `gossip` while deferred, or undefined. */
  readonly tier: TierName | undefined;
  /** A live path is up. */
  readonly connected: boolean;
  /** No live path: messages go to the deferred path (tier 6) while live tiers are retried. */
  readonly deferred: boolean;
  /** Transport address of the current path, when it has one (direct tiers). */
  readonly remoteAddress: string | undefined;
  readonly closed: boolean;
  /** Messages sent and not yet acknowledged. */
  readonly unacked: number;
  /**
   * Sends one application message; resolves when the peer acknowledged it. Messages are
   * numbered, written to the outbox (durable with a disk store) and kept until acknowledged:
   * if the path fails, a better one is found or either side restarts, they are resent and the
   * receiver drops duplicates. Aborting stops the wait (the message may still be delivered).
   */
  send(body: unknown, opts?: { signal?: AbortSignal }): Promise<void>;
  /** Like send(), but resolves as soon as the message is durably accepted. */
  queue(body: unknown, opts?: { signal?: AbortSignal }): Promise<Queued>;
  close(): Promise<void>;
  on(event: 'message', listener: (body: unknown, meta: { tier: TierName; seq: number; epoch: string }) => void): this;
  on(event: 'path', listener: (e: { tier: TierName; previous: TierName | undefined }) => void): this;
  on(event: 'path-lost', listener: (e: { tier: TierName; error?: Error }) => void): this;
  /** The peer closed the current path cleanly (it said goodbye: a node stopping), not a loss. */
  on(event: 'path-closed', listener: (e: { tier: TierName; reason?: string }) => void): this;
  on(event: 'close', listener: () => void): this;
}

/**
 * How good a tier is as the path messages take, 1 (best) to 6: the spec's priority order, except
 * that a punched UDP path (tier 4: UDX, tens of MB/s) ranks above a WebRTC data channel (tier 3:
 * werift, a few MB/s). Tier 3 is tried first because it connects through more NATs; a session on it
 * keeps trying tier 4 and moves there when the punch works.
 */
export const PATH_RANK: Readonly<Record<TierName, number>> = {
  ipv6_direct: 1,
  ipv4_direct: 2,
  udp_hole_punch: 3,
  hub_webrtc: 4,
  volunteer_relay: 5,
  gossip: 6,
};

/** Which of two connections to keep: the better path (`PATH_RANK`), else the one dialled by the smaller node id. */
export function preferConnection(a: { tier: TierName; initiator: string }, b: { tier: TierName; initiator: string }): 'a' | 'b' {
  const pa = PATH_RANK[a.tier];
  const pb = PATH_RANK[b.tier];
  if (pa !== pb) return pa < pb ? 'a' : 'b';
  return a.initiator <= b.initiator ? 'a' : 'b';
}

interface Path {
  conn: Connection;
  initiator: string;
}

/** What the receiver knows of one epoch (one sender incarnation) of the peer. */
interface RxEpoch {
  e: string;
  next: number;
  /** Out-of-order messages by number, with their encoded size; `stored` once committed (then acknowledged). */
  ooo: Map<number, { body: unknown; bytes: number; stored: boolean }>;
}

export interface SessionOptions {
  maxUnacked?: number;
  /** Bytes of out-of-order messages held per session. */
  maxReorderBytes?: number;
  counters?: Counters;
  /** Where the outbox and receiver state live (shared by all sessions). Default: in memory. */
  batcher?: KvBatcher;
  /** Shared budget of reorder bytes across sessions. */
  reorderBudget?: { used: number; max: number };
}

const itemId = (epoch: string, seq: number): string => `${epoch}:${seq}`;

/**
 * One peer's message stream over whatever paths come and go. Sender: numbers messages within
 * an epoch that survives restarts (kept in the store with the outbox), so after a crash the
 * same numbers are resent. Every data frame carries the sender's lowest unacknowledged number,
 * so a receiver that lost its state learns where to start instead of waiting forever.
 * Receiver: delivers in order, stores out-of-order messages before acknowledging them
 * selectively, and keeps per-epoch state in the store, so duplicates are dropped across its own
 * restarts.
 */
export class Session extends EventEmitter implements PeerSession {
  readonly peerId: string;
  readonly #localId: string;
  #epoch = randomBytes(8).toString('hex');
  readonly #maxUnacked: number;
  readonly #maxReorderBytes: number;
  readonly #counters: Counters | undefined;
  readonly #batcher: KvBatcher;
  readonly #budget: { used: number; max: number };
  #nextSeq = 1;
  readonly #pending = new Map<number, Pending>();
  readonly #room = new Set<() => void>();
  #current: Path | undefined;
  readonly #paths = new Set<Path>();
  readonly #rx = new Map<string, RxEpoch>();
  #reorderBytes = 0;
  #ackTimer: NodeJS.Immediate | undefined;
  readonly #ackDue = new Map<Path, Set<string>>();
  #deferred: DeferredPort | undefined;
  #deferredActive = false;
  #publicKey: Buffer | undefined;
  #keyStored = false;
  readonly ready: Promise<void>;
  /** Last time a message or path came or went (LRU eviction). */
  lastActive = Date.now();
  closed = false;

  constructor(peerId: string, localId: string, opts: SessionOptions = {}) {
    super();
    this.peerId = peerId;
    this.#localId = localId;
    this.#maxUnacked = opts.maxUnacked ?? DEFAULT_MAX_UNACKED;
    this.#maxReorderBytes = opts.maxReorderBytes ?? DEFAULT_MAX_REORDER_BYTES;
    this.#counters = opts.counters;
    this.#batcher = opts.batcher ?? new KvBatcher(memoryKvStore());
    this.#budget = opts.reorderBudget ?? { used: 0, max: Number.POSITIVE_INFINITY };
    this.ready = loadSessionState(this.#batcher.store, peerId).then(
      (s) => this.#restore(s),
      (err: unknown) => {
        this.#counters?.inc('session_store_errors');
        this.emit('store-error', err);
      },
    );
  }

  #restore(s: LoadedState): void {
    if (s.tx) {
      this.#epoch = s.tx.e;
      this.#nextSeq = s.tx.n;
    }
    for (const m of s.outbox) {
      if (m.seq >= this.#nextSeq) this.#nextSeq = m.seq + 1;
      this.#pending.set(m.seq, { body: m.body, waiters: [], submitted: false });
    }
    for (const r of s.rx.slice(-RX_EPOCHS_KEPT)) this.#rx.set(r.e, { e: r.e, next: r.next, ooo: new Map() });
    for (const q of s.ooo) {
      const st = this.#rx.get(q.e);
      if (!st || q.seq < st.next) continue;
      st.ooo.set(q.seq, { body: q.body, bytes: q.bytes, stored: true });
      this.#reorderBytes += q.bytes;
      this.#budget.used += q.bytes;
    }
    if (s.publicKey && !this.#publicKey) {
      this.#publicKey = s.publicKey;
      this.#keyStored = true;
    }
    // Whatever arrived out of order and is now contiguous (it cannot be: kept for safety).
    if (this.#pending.size > 0) this.emit('need-path');
  }

  get tier(): TierName | undefined {
    if (this.#current) return this.#current.conn.tier;
    return this.#deferredActive ? 'gossip' : undefined;
  }

  get remoteAddress(): string | undefined {
    return this.#current?.conn.remoteAddress;
  }

  get connected(): boolean {
    return this.#current !== undefined && !this.#current.conn.closed;
  }

  get deferred(): boolean {
    return this.#deferredActive && !this.connected;
  }

  get unacked(): number {
    return this.#pending.size;
  }

  /** The peer's public key, when known (a connection proved it, or the store had it). */
  get publicKey(): Buffer | undefined {
    return this.#publicKey;
  }

  /** The session can be dropped from memory: no path, nothing to deliver, nothing buffered. */
  get idle(): boolean {
    return !this.connected && this.#pending.size === 0 && this.#reorderBytes === 0 && this.#paths.size === 0;
  }

  /**
   * Remembers the peer's key in memory; it is stored only with the first message exchanged (so
   * identities that merely connect leave nothing on disk).
   */
  rememberKey(publicKey: Buffer): void {
    if (this.#publicKey?.equals(publicKey)) return;
    this.#publicKey = publicKey;
    this.#keyStored = false;
  }

  /** The op that stores the peer's key, once. */
  #keyOps(): KvOp[] {
    if (this.#keyStored || !this.#publicKey) return [];
    this.#keyStored = true;
    return [putRaw(keys.key(this.peerId), this.#publicKey)];
  }

  /** Connects the deferred path; `activate` starts using it for what is unacknowledged. */
  setDeferred(port: DeferredPort | undefined): void {
    this.#deferred = port;
    if (!port) this.#deferredActive = false;
  }

  /** Use the deferred path until a live path attaches. Returns false when there is none. */
  activateDeferred(): boolean {
    if (!this.#deferred || this.closed) return false;
    if (!this.#deferredActive) {
      this.#deferredActive = true;
      if (!this.connected) this.emit('path', { tier: 'gossip', previous: undefined });
    }
    this.#submitPending();
    return true;
  }

  /** Adds a path. Returns true when it became the current one. */
  attach(conn: Connection, initiator: string): boolean {
    if (this.closed || conn.closed) {
      void conn.close('session closed');
      return false;
    }
    this.lastActive = Date.now();
    this.rememberKey(conn.remotePublicKey);
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
    const previous = cur?.conn.tier ?? (this.#deferredActive ? 'gossip' : undefined);
    this.#deferredActive = false;
    this.emit('path', { tier: conn.tier, previous });
    void this.ready.then(() => this.#resend());
    return true;
  }

  send(body: unknown, opts: { signal?: AbortSignal } = {}): Promise<void> {
    // The caller awaits the acknowledgement: it holds the process until then (the paths'
    // sockets and timers may be unref'd and all that is left running).
    return holdProcess(this.queue(body, opts).then((q) => abortable(q.delivered, opts.signal)));
  }

  async queue(body: unknown, opts: { signal?: AbortSignal } = {}): Promise<Queued> {
    throwIfAborted(opts.signal);
    if (this.closed) throw new SessionClosedError();
    await this.ready;
    // Closed while waiting: queued now, it would never settle (close() rejected only what it found).
    if (this.closed) throw new SessionClosedError();
    while (this.#pending.size >= this.#maxUnacked) {
      await this.#waitForRoom(opts.signal);
      if (this.closed) throw new SessionClosedError();
    }
    this.lastActive = Date.now();
    const n = this.#nextSeq++;
    let entry!: Pending;
    const delivered = new Promise<void>((resolve, reject) => {
      entry = { body, waiters: [{ resolve, reject }], submitted: false };
    });
    delivered.catch(() => {}); // a caller of queue() may never await delivery
    this.#pending.set(n, entry);
    let stored: Error | undefined;
    try {
      await this.#batcher.write([
        put(keys.outbox(this.peerId, n), body),
        put(keys.tx(this.peerId), { e: this.#epoch, n: this.#nextSeq }),
        ...this.#keyOps(),
      ]);
    } catch (err) {
      // Still sent (a gap in the numbering would stall the receiver), but not durable.
      this.#counters?.inc('session_store_errors');
      stored = new SessionStoreError(`message ${n} to ${this.peerId} is not durable`, err);
    }
    if (!this.#pending.has(n)) {
      // Acknowledged already (or the session closed meanwhile).
    } else {
      const cur = this.#current;
      if (cur && !cur.conn.closed) this.#write(cur, this.#dataFrame(n, body));
      else {
        if (this.#deferredActive) this.#submitPending();
        this.emit('need-path'); // live tiers are retried even while the deferred path carries it
      }
    }
    if (stored) throw stored;
    return { seq: n, delivered };
  }

  #waitForRoom(signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        signal?.removeEventListener('abort', onAbort);
        this.#room.delete(done);
        resolve();
      };
      const onAbort = () => {
        this.#room.delete(done);
        reject(toAbortError(signal as AbortSignal));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#room.add(done);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearImmediate(this.#ackTimer);
    const err = new SessionClosedError(`session with ${this.peerId} closed with ${this.#pending.size} message(s) unacknowledged`);
    for (const p of this.#pending.values()) for (const w of p.waiters) w.reject(err);
    this.#pending.clear();
    for (const r of [...this.#room]) r();
    this.#budget.used -= this.#reorderBytes;
    this.#reorderBytes = 0;
    for (const st of this.#rx.values()) st.ooo.clear();
    const paths = [...this.#paths];
    this.#paths.clear();
    this.#current = undefined;
    await Promise.all(paths.map((p) => p.conn.close('session closed').catch(() => {})));
    this.emit('close');
  }

  #dataFrame(n: number, body: unknown): DataFrame {
    return { k: 'm', e: this.#epoch, n, l: this.#lowestUnacked(), b: body };
  }

  #lowestUnacked(): number {
    for (const n of this.#pending.keys()) return n;
    return this.#nextSeq;
  }

  #write(path: Path, frame: SessionFrame): void {
    path.conn.send(frame).catch((err: unknown) => {
      // The path is failing: its close event moves the session; the message stays pending.
      if (!isDpcError(err, 'DPC_CONNECTION_CLOSED')) this.#counters?.inc('session_send_errors');
    });
  }

  #resend(): void {
    const cur = this.#current;
    if (!cur || cur.conn.closed || this.closed) return;
    for (const [n, p] of this.#pending) this.#write(cur, this.#dataFrame(n, p.body));
    if (this.#pending.size > 0) this.#counters?.inc('session_resent', this.#pending.size);
  }

  #submitPending(): void {
    const port = this.#deferred;
    if (!port || this.closed) return;
    for (const [n, p] of this.#pending) {
      if (p.submitted) continue;
      p.submitted = true;
      port.submit({ id: itemId(this.#epoch, n), body: this.#dataFrame(n, p.body) }).then(
        () => this.#counters?.inc('session_deferred_submitted'),
        () => {
          p.submitted = false; // submitted again on the next activation
          this.#counters?.inc('session_deferred_submit_errors');
        },
      );
    }
  }

  /** Acknowledges exactly these numbers of our epoch (cumulative `upTo`, plus a selective list). */
  #acknowledge(epoch: string, upTo: number, selective: readonly number[]): void {
    if (epoch !== this.#epoch) return;
    const done: number[] = [];
    for (const n of this.#pending.keys()) {
      if (n > upTo) break;
      done.push(n);
    }
    for (const n of selective) if (n > upTo && this.#pending.has(n)) done.push(n);
    if (done.length === 0) return;
    this.lastActive = Date.now();
    for (const n of done) {
      const p = this.#pending.get(n);
      this.#pending.delete(n);
      for (const w of p?.waiters ?? []) w.resolve();
    }
    void this.#batcher.write(done.map((n) => del(keys.outbox(this.peerId, n)))).catch(() => this.#counters?.inc('session_store_errors'));
    for (const r of [...this.#room]) {
      if (this.#pending.size >= this.#maxUnacked) break;
      r();
    }
  }

  /** A receipt from the deferred path: ids are `<epoch>:<seq>`. */
  onReceipt(ids: readonly string[]): void {
    const bySeq: number[] = [];
    for (const id of ids) {
      const i = id.lastIndexOf(':');
      if (id.slice(0, i) !== this.#epoch) continue;
      const n = Number(id.slice(i + 1));
      if (Number.isSafeInteger(n)) bySeq.push(n);
    }
    this.#acknowledge(this.#epoch, 0, bySeq);
  }

  /** An item that came over the deferred path. */
  onDeferred(item: DeferredItem): void {
    this.#receive(undefined, item.body, item.id);
  }

  #onFrame(path: Path, raw: unknown): void {
    this.#receive(path, raw, undefined);
  }

  #receive(path: Path | undefined, raw: unknown, deferredId: string | undefined): void {
    let f: SessionFrame;
    try {
      f = sessionFrameSchema(raw);
    } catch {
      this.#counters?.inc('session_bad_frames');
      return;
    }
    if (f.k === 'a') {
      this.#acknowledge(f.e, f.n, f.s ?? []);
      return;
    }
    if (this.closed) return;
    this.lastActive = Date.now();
    void this.ready.then(() => this.#onData(path, f as DataFrame, deferredId));
  }

  #rxEpoch(e: string): RxEpoch {
    let st = this.#rx.get(e);
    if (st) {
      // Most recently used last (the oldest epoch is forgotten first).
      this.#rx.delete(e);
      this.#rx.set(e, st);
      return st;
    }
    st = { e, next: 1, ooo: new Map() };
    this.#rx.set(e, st);
    while (this.#rx.size > RX_EPOCHS_KEPT) {
      const oldest = this.#rx.values().next().value as RxEpoch;
      this.#rx.delete(oldest.e);
      this.#commit(this.#forgetOoo(oldest, Number.POSITIVE_INFINITY)).catch(() => this.#counters?.inc('session_store_errors'));
    }
    return st;
  }

  /** Drops stored out-of-order messages below `below`; returns the delete ops. */
  #forgetOoo(st: RxEpoch, below: number): KvOp[] {
    const ops: KvOp[] = [];
    for (const [n, m] of st.ooo) {
      if (n >= below) continue;
      st.ooo.delete(n);
      this.#reorderBytes -= m.bytes;
      this.#budget.used -= m.bytes;
      ops.push(del(keys.ooo(this.peerId, st.e, n)));
    }
    return ops;
  }

  #rxStateOp(): KvOp {
    return put(
      keys.rx(this.peerId),
      [...this.#rx.values()].map((r) => ({ e: r.e, next: r.next })),
    );
  }

  #onData(path: Path | undefined, f: DataFrame, deferredId: string | undefined): void {
    if (this.closed) return;
    const st = this.#rxEpoch(f.e);
    const ops: KvOp[] = [];
    if (f.l > st.next) {
      // Everything below l was acknowledged to the sender, so this receiver delivered it before
      // it lost its state (a restart without a store): start from l instead of waiting forever.
      this.#counters?.inc('session_receiver_resync');
      ops.push(...this.#forgetOoo(st, f.l));
      st.next = f.l;
    }
    const tier: TierName = path?.conn.tier ?? 'gossip';
    const deliveries: unknown[] = [];
    const stored: Array<{ stored: boolean }> = [];
    if (f.n < st.next || st.ooo.has(f.n)) {
      this.#counters?.inc('session_duplicates_dropped');
    } else if (f.n === st.next) {
      deliveries.push(f.b);
      st.next++;
      for (let m = st.ooo.get(st.next); m !== undefined; m = st.ooo.get(st.next)) {
        deliveries.push(m.body);
        ops.push(...this.#forgetOoo(st, st.next + 1));
        st.next++;
      }
    } else {
      const bytes = encode(f.b).length;
      if (
        st.ooo.size >= MAX_REORDER ||
        this.#reorderBytes + bytes > this.#maxReorderBytes ||
        this.#budget.used + bytes > this.#budget.max
      ) {
        // Not stored, so not acknowledged: the sender sends it again later.
        this.#counters?.inc('session_reorder_overflow');
        return;
      }
      const entry = { body: f.b, bytes, stored: false };
      st.ooo.set(f.n, entry);
      stored.push(entry);
      this.#reorderBytes += bytes;
      this.#budget.used += bytes;
      ops.push(put(keys.ooo(this.peerId, f.e, f.n), f.b));
    }
    if (deliveries.length > 0 || ops.length > 0) ops.push(this.#rxStateOp(), ...this.#keyOps());
    const firstSeq = st.next - deliveries.length;
    const delivered = () => {
      for (const e of stored) e.stored = true;
      // Handed to the application only once committed, in order.
      deliveries.forEach((b, i) => {
        this.emit('message', b, { tier, seq: firstSeq + i, epoch: f.e });
      });
      if (deferredId !== undefined) {
        void this.#deferred?.receipt([deferredId]).catch(() => this.#counters?.inc('session_deferred_receipt_errors'));
      }
      const reply = path && !path.conn.closed ? path : this.#current;
      if (reply) this.#scheduleAck(reply, f.e);
    };
    const kv = this.#batcher.store;
    if (kv.batchSync) {
      // Commit and hand over in the same turn (no thread-pool round trip in between).
      try {
        if (ops.length > 0) kv.batchSync(ops);
      } catch {
        this.#counters?.inc('session_store_errors');
      }
      delivered();
      return;
    }
    this.#commit(ops)
      .catch(() => this.#counters?.inc('session_store_errors'))
      .then(delivered);
  }

  /**
   * Receiver-side writes: committed synchronously when the store can (then the hand-over to the
   * application follows in the same turn, with no thread-pool round trip in between, so a kill at
   * any moment neither loses nor repeats a delivery), else through the group commit.
   */
  #commit(ops: KvOp[]): Promise<void> {
    if (ops.length === 0) return Promise.resolve();
    const kv = this.#batcher.store;
    if (kv.batchSync) {
      try {
        kv.batchSync(ops);
        return Promise.resolve();
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.#batcher.write(ops);
  }

  #scheduleAck(path: Path, epoch: string): void {
    let set = this.#ackDue.get(path);
    if (!set) {
      set = new Set();
      this.#ackDue.set(path, set);
    }
    set.add(epoch);
    this.#ackTimer ??= setImmediate(() => void this.#sendAcks());
  }

  /** Acknowledges what is committed, once it is flushed to disk (the sender then forgets it). */
  async #sendAcks(): Promise<void> {
    this.#ackTimer = undefined;
    // The acknowledgements are taken now, so they name only what the flush below covers.
    const frames: Array<[Path, AckFrame]> = [];
    for (const [p, epochs] of this.#ackDue) {
      for (const e of epochs) {
        const st = this.#rx.get(e);
        if (!st) continue;
        // Only what is committed is acknowledged: the sender drops what an ack names.
        const s = [...st.ooo]
          .filter(([, m]) => m.stored)
          .map(([n]) => n)
          .sort((a, b) => a - b)
          .slice(0, MAX_ACK_SELECTIVE);
        frames.push([p, { k: 'a', e, n: st.next - 1, ...(s.length > 0 && { s }) } as AckFrame]);
      }
    }
    this.#ackDue.clear();
    const store = this.#batcher.store;
    if (store.flush) await store.flush().catch(() => this.#counters?.inc('session_store_errors'));
    for (const [p, frame] of frames) if (!p.conn.closed) this.#write(p, frame);
  }

  #linger(path: Path): void {
    const t = setTimeout(() => void path.conn.close('replaced by a better path').catch(() => {}), PATH_LINGER_MS);
    t.unref();
  }

  #onPathClosed(path: Path, err?: Error): void {
    this.#paths.delete(path);
    this.#ackDue.delete(path);
    if (this.#current !== path) return;
    this.lastActive = Date.now();
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
    const bye = err ? undefined : path.conn.closedByPeer;
    if (bye) this.emit('path-closed', { tier: path.conn.tier, ...(bye.reason !== undefined && { reason: bye.reason }) });
    else this.emit('path-lost', { tier: path.conn.tier, ...(err && { error: err }) });
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
