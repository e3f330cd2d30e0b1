/**
 * @dpc/store — the durable `KvStore` of dpc on LMDB (`lmdb`, whose native binary ships inside
 * its npm package). `batch()` is atomic and resolves once committed and flushed to disk;
 * `batchSync()` commits on the calling thread before it returns (written, which survives a killed
 * process; `flush()` then syncs it to disk), so a receiver can commit a delivery and hand it to
 * the application in the same turn. One process at a time may open a
 * store: a second `openStore()` of the same directory fails with `DPC_STORE_LOCKED`.
 *
 * @example
 * ```ts
 * import { mkdtempSync } from 'node:fs';
 * import { tmpdir } from 'node:os';
 * import { join } from 'node:path';
 * import { openStore } from '@dpc/store';
 *
 * const store = await openStore(join(mkdtempSync(join(tmpdir(), 'dpc-')), 'store'));
 * await store.batch([{ type: 'put', key: 'o/peer/1', value: new TextEncoder().encode('hello') }]);
 * for await (const [key, value] of store.entries('o/')) console.log(key, new TextDecoder().decode(value));
 * await store.close();
 * ```
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DpcError, type KvOp, type KvStore } from '@dpc/core';
import { open } from 'lmdb';
import { acquireLock } from './lock.js';

/** The store directory is open in another process (one node per data directory). */
export class StoreLockedError extends DpcError {
  readonly pid: number | undefined;
  constructor(path: string, pid?: number) {
    super(
      'DPC_STORE_LOCKED',
      `the store ${path} is in use${pid ? ` by process ${pid}` : ''} (one dpc node per data directory: stop it, or use another --data-dir)`,
    );
    this.pid = pid;
  }
}

/** The store could not be opened or written. */
export class StoreError extends DpcError {
  constructor(message: string, cause?: unknown) {
    super('DPC_STORE', message, { cause, retryable: false });
  }
}

export interface OpenStoreOptions {
  /** Wait for each async batch to be flushed to disk (power-loss safe), not only committed. Default true. */
  sync?: boolean;
}

/** Opens (creating it if needed) the store in directory `path`. */
export async function openStore(path: string, opts: OpenStoreOptions = {}): Promise<KvStore> {
  try {
    await mkdir(path, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new StoreError(`cannot create the store directory ${path}: ${(err as Error).message}`, err);
  }
  const lock = await acquireLock(join(path, 'LOCK'));
  if (!lock.ok) throw new StoreLockedError(path, lock.pid);
  let db: ReturnType<typeof open<Buffer, string>>;
  try {
    // noSync: a synchronous commit only writes (which survives a killed process); flush() syncs.
    db = open<Buffer, string>({ path: join(path, 'data.mdb'), encoding: 'binary', cache: false, noSync: true });
  } catch (err) {
    await lock.release();
    throw new StoreError(`cannot open the store ${path}: ${(err as Error).message}`, err);
  }
  const sync = opts.sync ?? true;
  const flush = () =>
    new Promise<void>((resolve, reject) => {
      (db as unknown as { sync(cb: (err?: Error) => void): void }).sync((err) =>
        err ? reject(new StoreError(`store flush failed: ${err.message}`, err)) : resolve(),
      );
    });
  let closed = false;
  const inflight = new Set<Promise<void>>();
  const check = () => {
    if (closed) throw new StoreError(`the store ${path} is closed`);
  };
  const apply = (ops: readonly KvOp[]) => {
    for (const op of ops) {
      if (op.type === 'put') db.putSync(op.key, Buffer.from(op.value.buffer, op.value.byteOffset, op.value.byteLength));
      else db.removeSync(op.key);
    }
  };
  return {
    async get(key) {
      check();
      return db.getBinary(key) ?? undefined;
    },
    batch(ops) {
      check();
      if (ops.length === 0) return Promise.resolve();
      const write = (async () => {
        try {
          await db.transaction(() => {
            for (const op of ops) {
              if (op.type === 'put') db.put(op.key, Buffer.from(op.value.buffer, op.value.byteOffset, op.value.byteLength));
              else db.remove(op.key);
            }
          });
          if (sync) await flush();
        } catch (err) {
          throw new StoreError(`store write failed: ${(err as Error).message}`, err);
        }
      })();
      // close() lets every accepted batch commit first.
      inflight.add(write);
      const done = () => inflight.delete(write);
      write.then(done, done);
      return write;
    },
    batchSync(ops) {
      check();
      if (ops.length === 0) return;
      try {
        db.transactionSync(() => apply(ops));
      } catch (err) {
        throw new StoreError(`store write failed: ${(err as Error).message}`, err);
      }
    },
    async flush() {
      check();
      await flush();
    },
    async *entries(prefix, o = {}) {
      check();
      // '\uffff' sorts after every key that starts with the (ASCII) prefix.
      for (const { key, value } of db.getRange({
        start: prefix,
        end: `${prefix}\uffff`,
        ...(o.limit !== undefined && { limit: o.limit }),
      })) {
        yield [key, value];
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      // lmdb finishes pending writes on its own thread and reports back without holding the event
      // loop open: were nothing else left running (the last thing a stopping node does), the
      // process would exit with the close promise unsettled and those writes not committed.
      const keepAlive = setInterval(() => {}, 1_000);
      try {
        await Promise.allSettled([...inflight]);
        await db.close();
      } finally {
        clearInterval(keepAlive);
      }
      await lock.release();
    },
  };
}
