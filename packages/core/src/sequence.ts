import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DpcError } from './errors.js';

// Sequence numbers of the records a node signs. A newer record replaces an older one only when
// its seq is higher, so seq must grow across restarts even when the clock does not: a node whose
// clock was set back an hour would otherwise sign records that every DHT node refuses as stale
// until the old one expires. The last seq used is kept in the data directory; the next one is
// max(last + 1, now), so it stays close to the wall clock (readable, and a fresh data directory
// on a machine with a sane clock still beats an old record) and never goes back.

/** File in the data directory that holds the last record sequence number used. */
export const SEQUENCE_FILE = 'record-seq';

/** The next sequence number: above the last one used, and at least the clock in ms. */
export function nextSequence(last: number | undefined, now: number): number {
  const floor = Math.floor(now);
  return last === undefined || !Number.isSafeInteger(last) ? floor : Math.max(last + 1, floor);
}

/** The sequence file could not be written: no record may be signed with a seq that was not kept. */
export class SequenceStoreError extends DpcError {
  constructor(message: string, cause?: unknown) {
    super('DPC_SEQUENCE_STORE', message, { cause });
  }
}

export interface SequenceStoreOptions {
  /** The clock, ms since the epoch. Default Date.now. */
  now?: () => number;
  /** File name inside the data directory. Default `record-seq`. */
  fileName?: string;
}

/** Record sequence numbers that only go up, across restarts and clock changes. */
export interface SequenceStore {
  /** The next seq (see {@link nextSequence}), written to the data directory before it is returned; bound, so it can be passed on. */
  readonly next: () => number;
  /** The last seq handed out or found on disk; undefined before the first. */
  readonly last: number | undefined;
  /** Path of the file. */
  readonly path: string;
}

class FileSequenceStore implements SequenceStore {
  readonly path: string;
  readonly #dir: string;
  readonly #now: () => number;
  #last: number | undefined;

  constructor(dataDir: string, opts: SequenceStoreOptions) {
    this.#dir = dataDir;
    this.path = join(dataDir, opts.fileName ?? SEQUENCE_FILE);
    this.#now = opts.now ?? Date.now;
    this.#last = readSequence(this.path);
  }

  get last(): number | undefined {
    return this.#last;
  }

  // An arrow, so `store.next` can be handed on as a plain function (DhtOptions.sequence).
  readonly next = (): number => {
    const seq = nextSequence(this.#last, this.#now());
    // Kept before it is used: a crash right after signing must not let the next start go lower.
    writeAtomically(this.#dir, this.path, `${seq}\n`);
    this.#last = seq;
    return seq;
  };
}

/** The last seq in the file; undefined when there is none or it is unreadable (then the clock decides). */
function readSequence(path: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const n = Number(text.trim());
  return /^\d+$/.test(text.trim()) && Number.isSafeInteger(n) ? n : undefined;
}

/** Writes a temporary file, flushes it to disk, then renames it over `path`. */
function writeAtomically(dir: string, path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    throw new SequenceStoreError(`cannot keep the record sequence number in ${path}: ${(err as Error).message}`, err);
  }
}

/**
 * Record sequence numbers kept in `dataDir` (file `record-seq`, written with write + fsync +
 * rename before each number is handed out), so they grow across restarts even when the clock
 * went back.
 *
 * @example
 * ```ts
 * const seq = openSequenceStore(dataDir);
 * const record = createRecord(identity, { kind: 'endpoint', body, seq: seq.next() });
 * ```
 */
export function openSequenceStore(dataDir: string, opts: SequenceStoreOptions = {}): SequenceStore {
  return new FileSequenceStore(dataDir, opts);
}
