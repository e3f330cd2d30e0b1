/**
 * A durable key-value store, the one persistence contract of dpc: PeerSession outboxes and
 * receiver state, and tier 6's messages, live in it. `@dpc/store` implements it on LevelDB
 * (classic-level); `memoryKvStore()` is the in-process default (nothing survives a restart).
 */
export type KvOp = { type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string };

export interface KvStore {
  /** The value under `key`, or undefined. */
  get(key: string): Promise<Uint8Array | undefined>;
  /**
   * Applies every op atomically; resolves once they are durable (synced to disk for a disk
   * store), so a crash after it resolved loses none of them.
   */
  batch(ops: readonly KvOp[]): Promise<void>;
  /**
   * Optional: applies every op atomically and commits before returning, on the calling thread.
   * A receiver commits what it delivers and hands it to the application in the same turn, so a
   * process killed at any moment neither loses nor repeats a delivery (no thread-pool round
   * trip between the commit and the hand-over).
   */
  batchSync?(ops: readonly KvOp[]): void;
  /**
   * Optional, with batchSync: resolves once everything committed so far is flushed to disk
   * (power-loss safe). A store whose batchSync does not flush says so by having this.
   */
  flush?(): Promise<void>;
  /** Entries whose key starts with `prefix`, in key order. */
  entries(prefix: string, opts?: { limit?: number }): AsyncIterable<[string, Uint8Array]>;
  close(): Promise<void>;
}

/** A KvStore in memory (tests, and nodes without a data directory). */
export function memoryKvStore(): KvStore {
  const map = new Map<string, Uint8Array>();
  let closed = false;
  const check = () => {
    if (closed) throw new Error('store is closed');
  };
  return {
    async get(key) {
      check();
      return map.get(key);
    },
    async batch(ops) {
      this.batchSync?.(ops);
    },
    batchSync(ops) {
      check();
      for (const op of ops) {
        if (op.type === 'put') map.set(op.key, op.value);
        else map.delete(op.key);
      }
    },
    async *entries(prefix, opts = {}) {
      check();
      const keys = [...map.keys()].filter((k) => k.startsWith(prefix)).sort();
      let n = 0;
      for (const k of keys) {
        if (opts.limit !== undefined && n++ >= opts.limit) return;
        const v = map.get(k);
        if (v !== undefined) yield [k, v];
      }
    },
    async close() {
      closed = true;
    },
  };
}

/**
 * Group commit: ops written in the same tick go to the store as one atomic batch, and the
 * callers' promises resolve in the order they wrote (so work chained on them stays ordered).
 */
export class KvBatcher {
  readonly #kv: KvStore;
  #ops: KvOp[] = [];
  #waiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  #scheduled = false;
  #flushing: Promise<void> = Promise.resolve();

  constructor(kv: KvStore) {
    this.#kv = kv;
  }

  get store(): KvStore {
    return this.#kv;
  }

  write(ops: readonly KvOp[]): Promise<void> {
    this.#ops.push(...ops);
    const p = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#flush());
    }
    return p;
  }

  /** Resolves when everything written so far is durable. */
  async drain(): Promise<void> {
    if (this.#scheduled || this.#ops.length > 0) await this.write([]);
    await this.#flushing;
  }

  #flush(): void {
    const ops = this.#ops;
    const waiters = this.#waiters;
    this.#ops = [];
    this.#waiters = [];
    this.#scheduled = false;
    // Batches are applied one after the other, in order.
    this.#flushing = this.#flushing.then(async () => {
      try {
        if (ops.length > 0) await this.#kv.batch(ops);
        for (const w of waiters) w.resolve();
      } catch (err) {
        for (const w of waiters) w.reject(err as Error);
      }
    });
  }
}
