/**
 * @dpc/store — the durable `KvStore` of dpc on LevelDB (`classic-level`, whose native binary
 * ships inside its npm package). Every `batch()` is atomic and synced to disk before it
 * resolves, so a SIGKILL after it resolved loses nothing. One process at a time can open a
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
import { DpcError, type KvOp, type KvStore } from '@dpc/core';
import { ClassicLevel } from 'classic-level';

/** The store directory is open in another process (one node per data directory). */
export class StoreLockedError extends DpcError {
  constructor(path: string, cause?: unknown) {
    super('DPC_STORE_LOCKED', `the store ${path} is in use by another process (one dpc node per data directory)`, { cause });
  }
}

/** The store could not be opened or written. */
export class StoreError extends DpcError {
  constructor(message: string, cause?: unknown) {
    super('DPC_STORE', message, { cause, retryable: false });
  }
}

export interface OpenStoreOptions {
  /** fsync every batch before it resolves. Default true (turn off only for benchmarks). */
  sync?: boolean;
}

/** Opens (creating it if needed) the LevelDB store in `path`. */
export async function openStore(path: string, opts: OpenStoreOptions = {}): Promise<KvStore> {
  await mkdir(path, { recursive: true, mode: 0o700 });
  const db = new ClassicLevel<string, Uint8Array>(path, { keyEncoding: 'utf8', valueEncoding: 'view' });
  try {
    await db.open();
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    if ((err as { code?: string }).code === 'LEVEL_LOCKED' || cause?.code === 'LEVEL_LOCKED' || /lock/i.test(String(cause?.message)))
      throw new StoreLockedError(path, err);
    throw new StoreError(`cannot open the store ${path}: ${(err as Error).message}`, err);
  }
  const sync = opts.sync ?? true;
  return {
    async get(key) {
      const v = await db.get(key);
      return v === undefined ? undefined : v;
    },
    async batch(ops: readonly KvOp[]) {
      if (ops.length === 0) return;
      try {
        await db.batch(
          ops.map((op) =>
            op.type === 'put' ? { type: 'put' as const, key: op.key, value: op.value } : { type: 'del' as const, key: op.key },
          ),
          { sync },
        );
      } catch (err) {
        throw new StoreError(`store write failed: ${(err as Error).message}`, err);
      }
    },
    async *entries(prefix, o = {}) {
      // '\uffff' sorts after every key that starts with the prefix.
      for await (const [k, v] of db.iterator({ gte: prefix, lt: `${prefix}\uffff`, ...(o.limit !== undefined && { limit: o.limit }) })) {
        yield [k, v];
      }
    },
    async close() {
      await db.close();
    },
  };
}
