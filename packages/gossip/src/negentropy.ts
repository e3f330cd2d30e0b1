/**
 * Range-based set reconciliation: the Negentropy protocol, version 1 (byte 0x61), as used by
 * NIP-77. Two peers each hold a set of (timestamp, 32-byte id) items; the initiator learns which
 * ids only it has (`have`) and which only the peer has (`need`) in a number of round trips
 * logarithmic in the set size, sending about 334 bytes when the sets already match.
 *
 * ```ts
 * import { Negentropy, NegentropyStorage } from '@dpc/gossip';
 *
 * const mine = NegentropyStorage.from([{ timestamp: 1_700_000_000, id: new Uint8Array(32).fill(1) }]);
 * const theirs = NegentropyStorage.from([{ timestamp: 1_700_000_001, id: new Uint8Array(32).fill(2) }]);
 * const initiator = new Negentropy(mine);
 * const responder = new Negentropy(theirs);
 * let msg: Uint8Array | null = initiator.initiate();
 * const have: Uint8Array[] = [];
 * const need: Uint8Array[] = [];
 * while (msg) {
 *   const r = initiator.reconcile(responder.respond(msg)); // one round trip
 *   have.push(...r.have);
 *   need.push(...r.need);
 *   msg = r.output;
 * }
 * // have: [0x01 × 32], need: [0x02 × 32]
 * ```
 */
import { Buffer } from 'node:buffer';
import { type Counters, isDpcError } from '@dpc/core';
import {
  type Bound,
  BoundDecoder,
  BoundEncoder,
  ByteReader,
  ByteWriter,
  compareBounds,
  INFINITY_BOUND,
  Mode,
  NEGENTROPY_FINGERPRINT_BYTES,
  NEGENTROPY_ID_BYTES,
  NEGENTROPY_PROTOCOL_V1,
  readIdCount,
  readMode,
  ZERO_BOUND,
} from './negentropy-codec.js';
import { NegentropyBoundError, NegentropyTooLargeError, NegentropyUsageError, NegentropyVersionError } from './negentropy-errors.js';
import type { NegentropyStorage } from './negentropy-storage.js';

export { NEGENTROPY_FINGERPRINT_BYTES, NEGENTROPY_ID_BYTES, NEGENTROPY_PROTOCOL_V1 } from './negentropy-codec.js';
export * from './negentropy-errors.js';
export { type NegentropyItem, NegentropyStorage } from './negentropy-storage.js';
export * from './negentropy-sync.js';

const ID = NEGENTROPY_ID_BYTES;
/** Ranges are split into this many sub-ranges when their fingerprints differ. */
const BUCKETS = 16;
/** Below this many items a range is sent as an id list instead of being split. */
const ID_LIST_THRESHOLD = BUCKETS * 2;
/** Room kept free under `frameSizeLimit` for the closing Skip and Fingerprint ranges. */
const FRAME_SLACK_BYTES = 200;
/** Smallest frameSizeLimit accepted (as in the reference implementation). */
export const NEGENTROPY_MIN_FRAME_SIZE_LIMIT = 4096;
/** Default bound on a received message: 16 MiB (an id list of 500k ids). */
export const DEFAULT_NEGENTROPY_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** Largest encoded bound: timestamp varint (8) + length varint (1) + 32-byte prefix. */
const MAX_BOUND_BYTES = 8 + 1 + ID;

export interface NegentropyOptions {
  /**
   * Largest message this side produces, in bytes; 0 (default) for no limit, else at least 4096.
   * A side that hits it stops early and ends the message with a fingerprint of everything not yet
   * processed, which costs extra round trips but never loses a difference.
   */
  frameSizeLimit?: number;
  /** Largest message accepted from the peer, in bytes (default 16 MiB); larger: `DPC_NEGENTROPY_TOO_LARGE`. */
  maxMessageBytes?: number;
  /** Refused messages are counted as `negentropy_rejected` and `negentropy_rejected_<code>`. */
  counters?: Counters;
}

/** What one `reconcile()` of the initiator produced. */
export interface NegentropyReconcileResult {
  /** The next message to send, or null when reconciliation is complete. */
  output: Uint8Array | null;
  /** Ids this side has and the peer lacks (found in this message). */
  have: Uint8Array[];
  /** Ids the peer has and this side lacks (found in this message). */
  need: Uint8Array[];
}

type Role = 'unset' | 'initiator' | 'responder';

interface ProcessResult {
  output: Uint8Array;
  have: Uint8Array[];
  need: Uint8Array[];
}

/**
 * One side of one reconciliation. The initiator calls `initiate()` then `reconcile()` on each
 * reply until `output` is null; the responder calls `respond()` on each received message and
 * sends back what it returns. An instance plays one role; the storage must be sealed.
 */
export class Negentropy {
  readonly #storage: NegentropyStorage;
  readonly #frameSizeLimit: number;
  readonly #maxMessageBytes: number;
  readonly #counters: Counters | undefined;
  #role: Role = 'unset';

  constructor(storage: NegentropyStorage, options: NegentropyOptions = {}) {
    if (!storage.sealed) throw new NegentropyUsageError('seal() the storage before reconciling');
    const limit = options.frameSizeLimit ?? 0;
    if (!Number.isSafeInteger(limit) || (limit !== 0 && limit < NEGENTROPY_MIN_FRAME_SIZE_LIMIT)) {
      throw new NegentropyUsageError(`frameSizeLimit must be 0 or an integer >= ${NEGENTROPY_MIN_FRAME_SIZE_LIMIT}, got ${limit}`);
    }
    const maxIn = options.maxMessageBytes ?? DEFAULT_NEGENTROPY_MAX_MESSAGE_BYTES;
    if (!Number.isSafeInteger(maxIn) || maxIn < 1) {
      throw new NegentropyUsageError(`maxMessageBytes must be a positive integer, got ${maxIn}`);
    }
    this.#storage = storage;
    this.#frameSizeLimit = limit;
    this.#maxMessageBytes = maxIn;
    this.#counters = options.counters;
  }

  /** The first message of the initiator. */
  initiate(): Uint8Array {
    if (this.#role !== 'unset') throw new NegentropyUsageError(`initiate() on a ${this.#role}`);
    this.#role = 'initiator';
    const out = new ByteWriter();
    out.byte(NEGENTROPY_PROTOCOL_V1);
    this.#splitRange(0, this.#storage.size, INFINITY_BOUND, out, new BoundEncoder());
    return out.finish();
  }

  /** Initiator: processes the responder's reply. */
  reconcile(msg: Uint8Array): NegentropyReconcileResult {
    if (this.#role !== 'initiator') throw new NegentropyUsageError('reconcile() needs initiate() first');
    const r = this.#guard(msg, true);
    return { output: r.output.length === 1 ? null : r.output, have: r.have, need: r.need };
  }

  /** Responder: processes the initiator's message and returns the reply (always sent, even when 1 byte). */
  respond(msg: Uint8Array): Uint8Array {
    if (this.#role === 'initiator') throw new NegentropyUsageError('respond() on an initiator');
    this.#role = 'responder';
    return this.#guard(msg, false).output;
  }

  #guard(msg: Uint8Array, initiator: boolean): ProcessResult {
    try {
      if (!(msg instanceof Uint8Array)) throw new NegentropyUsageError('message must be a Uint8Array');
      if (msg.length > this.#maxMessageBytes) {
        throw new NegentropyTooLargeError(`message of ${msg.length} bytes exceeds maxMessageBytes ${this.#maxMessageBytes}`);
      }
      return this.#process(msg, initiator);
    } catch (err) {
      if (this.#counters && isDpcError(err)) {
        this.#counters.inc('negentropy_rejected');
        this.#counters.inc(`negentropy_rejected_${err.code}`);
      }
      throw err;
    }
  }

  #process(msg: Uint8Array, initiator: boolean): ProcessResult {
    const storage = this.#storage;
    const limit = this.#frameSizeLimit;
    const r = new ByteReader(msg);
    const have: Uint8Array[] = [];
    const need: Uint8Array[] = [];
    const version = r.byte('protocol byte');
    if (version < 0x60 || version > 0x6f) {
      throw new NegentropyVersionError(`0x${version.toString(16)} is not a negentropy protocol byte`);
    }
    const out = new ByteWriter();
    out.byte(NEGENTROPY_PROTOCOL_V1);
    if (version !== NEGENTROPY_PROTOCOL_V1) {
      // The responder answers an unknown version with the one it speaks; the initiator gives up.
      if (initiator) throw new NegentropyVersionError(`peer speaks negentropy protocol version ${version - 0x60}, we speak 1`);
      return { output: out.finish(), have, need };
    }
    const enc = new BoundEncoder();
    const dec = new BoundDecoder();
    const size = storage.size;
    let prevBound: Bound = ZERO_BOUND;
    let prevIndex = 0;
    let skip = false;
    const flushSkip = (): void => {
      if (!skip) return;
      skip = false;
      enc.write(out, prevBound);
      out.varint(Mode.Skip);
    };

    while (r.remaining > 0) {
      const currBound = dec.read(r);
      if (compareBounds(currBound, prevBound) <= 0) throw new NegentropyBoundError('range bounds are not strictly increasing');
      const mode = readMode(r);
      const lower = prevIndex;
      const upper = storage.findLowerBound(prevIndex, size, currBound);
      const mark = out.length;
      const encMark = enc.last;
      const skipBefore = skip;

      if (mode === Mode.Skip) {
        skip = true;
      } else if (mode === Mode.Fingerprint) {
        const theirs = r.bytes(NEGENTROPY_FINGERPRINT_BYTES, 'fingerprint');
        const ours = storage.fingerprint(lower, upper);
        if (equalBytes(theirs, ours)) {
          skip = true;
        } else {
          flushSkip();
          this.#splitRange(lower, upper, currBound, out, enc);
        }
      } else {
        const count = readIdCount(r);
        const theirIds = r.bytes(count * ID, 'id list');
        if (initiator) {
          diffIdList(storage, lower, upper, theirIds, count, have, need);
          skip = true;
        } else {
          flushSkip();
          const n = upper - lower;
          let fit = n;
          if (limit !== 0) {
            const budget = limit - FRAME_SLACK_BYTES - out.length - MAX_BOUND_BYTES - 2 - 8;
            fit = Math.max(0, Math.floor(budget / ID));
          }
          if (fit >= n) {
            writeIdList(storage, lower, upper, currBound, out, enc);
          } else if (fit > 0) {
            // Send the first `fit` ids up to the next item, then a fingerprint of all the rest.
            const end = lower + fit;
            writeIdList(storage, lower, end, { timestamp: storage.timestampAt(end), id: storage.idView(end) }, out, enc);
            enc.write(out, INFINITY_BOUND);
            out.varint(Mode.Fingerprint);
            out.bytes(storage.fingerprint(end, size));
            break;
          } else {
            // No room for a single id: close the message from this range on, as on overflow.
            out.truncate(mark);
            enc.last = encMark;
            skip = skipBefore;
            this.#closeOverflow(out, enc, skip, prevBound, lower, size);
            break;
          }
        }
      }

      if (limit !== 0 && out.length > limit - FRAME_SLACK_BYTES) {
        // Drop this range's output; say "the rest differs" with one fingerprint from its start.
        out.truncate(mark);
        enc.last = encMark;
        this.#closeOverflow(out, enc, skipBefore, prevBound, lower, size);
        break;
      }
      prevBound = currBound;
      prevIndex = upper;
    }
    return { output: out.finish(), have, need };
  }

  /** Ends a message cut by the frame size limit: [lower, end of set) as one fingerprint range. */
  #closeOverflow(out: ByteWriter, enc: BoundEncoder, skipPending: boolean, prevBound: Bound, lower: number, size: number): void {
    if (skipPending) {
      enc.write(out, prevBound);
      out.varint(Mode.Skip);
    }
    enc.write(out, INFINITY_BOUND);
    out.varint(Mode.Fingerprint);
    out.bytes(this.#storage.fingerprint(lower, size));
  }

  /** Describes items [lower, upper) below `upperBound`: an id list when short, else 16 fingerprints. */
  #splitRange(lower: number, upper: number, upperBound: Bound, out: ByteWriter, enc: BoundEncoder): void {
    const storage = this.#storage;
    const n = upper - lower;
    if (n < ID_LIST_THRESHOLD) {
      writeIdList(storage, lower, upper, upperBound, out, enc);
      return;
    }
    const per = Math.floor(n / BUCKETS);
    const extra = n % BUCKETS;
    let curr = lower;
    for (let b = 0; b < BUCKETS; b++) {
      const start = curr;
      curr += per + (b < extra ? 1 : 0);
      const bound = curr === upper ? upperBound : minimalBound(storage, curr - 1, curr);
      enc.write(out, bound);
      out.varint(Mode.Fingerprint);
      out.bytes(storage.fingerprint(start, curr));
    }
  }
}

function writeIdList(storage: NegentropyStorage, lower: number, upper: number, bound: Bound, out: ByteWriter, enc: BoundEncoder): void {
  enc.write(out, bound);
  out.varint(Mode.IdList);
  out.varint(upper - lower);
  for (let i = lower; i < upper; i++) out.bytes(storage.idView(i));
}

/** The shortest bound above item `i - 1` and not above item `i`. */
function minimalBound(storage: NegentropyStorage, prev: number, curr: number): Bound {
  const t = storage.timestampAt(curr);
  if (storage.timestampAt(prev) !== t) return { timestamp: t, id: new Uint8Array(0) };
  const a = storage.idView(prev);
  const b = storage.idView(curr);
  let shared = 0;
  while (shared < ID && a[shared] === b[shared]) shared++;
  return { timestamp: t, id: b.slice(0, Math.min(ID, shared + 1)) };
}

/** Initiator: compares the peer's id list with our items [lower, upper). */
function diffIdList(
  storage: NegentropyStorage,
  lower: number,
  upper: number,
  theirIds: Uint8Array,
  count: number,
  have: Uint8Array[],
  need: Uint8Array[],
): void {
  const theirs = new Map<string, number>();
  const buf = Buffer.from(theirIds.buffer, theirIds.byteOffset, theirIds.byteLength);
  for (let k = 0; k < count; k++) theirs.set(buf.toString('latin1', k * ID, (k + 1) * ID), k);
  for (let i = lower; i < upper; i++) {
    const view = storage.idView(i);
    const key = Buffer.from(view.buffer, view.byteOffset, ID).toString('latin1');
    if (theirs.has(key)) theirs.delete(key);
    else have.push(storage.idAt(i));
  }
  for (const k of theirs.values()) need.push(theirIds.slice(k * ID, (k + 1) * ID));
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
