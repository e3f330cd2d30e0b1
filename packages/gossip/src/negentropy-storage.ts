import { createHash } from 'node:crypto';
import { type Bound, compareBytes, NEGENTROPY_FINGERPRINT_BYTES, NEGENTROPY_ID_BYTES, varintBytes } from './negentropy-codec.js';
import { NegentropyUsageError } from './negentropy-errors.js';

const ID = NEGENTROPY_ID_BYTES;

/** One item of a reconciled set: a timestamp in seconds and a 32-byte id. */
export interface NegentropyItem {
  readonly timestamp: number;
  readonly id: Uint8Array;
}

/**
 * The sorted set one side reconciles: items (timestamp, 32-byte id) ordered by timestamp, then
 * id. Add items, then `seal()` (sorts, drops exact duplicates, builds prefix sums); after that the
 * storage is read-only and every fingerprint costs O(1) additions plus one SHA-256, whatever the
 * range length. Memory: about 72 bytes per item (id, timestamp, 256-bit prefix sum).
 *
 * Timestamps are integers in [0, 2^53 - 1] (JavaScript numbers; the wire allows uint64, larger
 * values from a peer are refused as `DPC_NEGENTROPY_VARINT`).
 */
export class NegentropyStorage {
  #pendingTs: number[] = [];
  #pendingIds: Uint8Array[] = [];
  #sealed = false;
  #size = 0;
  #ts = new Float64Array(0);
  #ids = new Uint8Array(0);
  /** (size + 1) little-endian 256-bit sums: #prefix[i] = sum of ids 0..i-1 mod 2^256. */
  #prefix = new Uint8Array(ID);

  /** Builds and seals a storage from any iterable of items (in any order). */
  static from(items: Iterable<NegentropyItem>): NegentropyStorage {
    const s = new NegentropyStorage();
    for (const item of items) s.add(item.timestamp, item.id);
    s.seal();
    return s;
  }

  /** Adds an item (copied). Only before `seal()`. */
  add(timestamp: number, id: Uint8Array): void {
    if (this.#sealed) throw new NegentropyUsageError('storage is sealed; build a new one to add items');
    if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
      throw new NegentropyUsageError(`item timestamp must be an integer in [0, 2^53 - 1], got ${timestamp}`);
    }
    if (!(id instanceof Uint8Array) || id.length !== ID) {
      throw new NegentropyUsageError(`item id must be ${ID} bytes`);
    }
    this.#pendingTs.push(timestamp);
    this.#pendingIds.push(id.slice());
  }

  /** Sorts the items, drops exact duplicates and makes the storage read-only. Idempotent. */
  seal(): void {
    if (this.#sealed) return;
    const ts = this.#pendingTs;
    const ids = this.#pendingIds;
    const order = Array.from({ length: ts.length }, (_, i) => i);
    order.sort((a, b) => {
      const d = (ts[a] as number) - (ts[b] as number);
      return d !== 0 ? d : compareBytes(ids[a] as Uint8Array, ids[b] as Uint8Array);
    });
    const n = order.length;
    const outTs = new Float64Array(n);
    const outIds = new Uint8Array(n * ID);
    let size = 0;
    for (const i of order) {
      const t = ts[i] as number;
      const id = ids[i] as Uint8Array;
      if (size > 0 && outTs[size - 1] === t && compareBytes(outIds.subarray((size - 1) * ID, size * ID), id) === 0) continue;
      outTs[size] = t;
      outIds.set(id, size * ID);
      size++;
    }
    this.#size = size;
    this.#ts = outTs.slice(0, size);
    this.#ids = size === n ? outIds : outIds.slice(0, size * ID);
    this.#prefix = new Uint8Array((size + 1) * ID);
    const p = this.#prefix;
    for (let i = 0; i < size; i++) {
      const src = i * ID;
      const prev = i * ID;
      const dst = (i + 1) * ID;
      let carry = 0;
      for (let j = 0; j < ID; j++) {
        const s = (p[prev + j] as number) + (this.#ids[src + j] as number) + carry;
        p[dst + j] = s & 0xff;
        carry = s >>> 8;
      }
    }
    this.#pendingTs = [];
    this.#pendingIds = [];
    this.#sealed = true;
  }

  get sealed(): boolean {
    return this.#sealed;
  }

  /** Number of (distinct) items; only meaningful once sealed. */
  get size(): number {
    return this.#sealed ? this.#size : this.#pendingTs.length;
  }

  timestampAt(i: number): number {
    this.#check(i, i + 1);
    return this.#ts[i] as number;
  }

  /** A copy of the id at index `i` in sorted order. */
  idAt(i: number): Uint8Array {
    this.#check(i, i + 1);
    return this.#ids.slice(i * ID, (i + 1) * ID);
  }

  /** A read-only view of the id at index `i` (no copy; do not keep or modify). */
  idView(i: number): Uint8Array {
    return this.#ids.subarray(i * ID, (i + 1) * ID);
  }

  /** The items in sorted order (copies of the ids). */
  *items(): IterableIterator<NegentropyItem> {
    this.#check(0, this.#size);
    for (let i = 0; i < this.#size; i++) yield { timestamp: this.#ts[i] as number, id: this.idAt(i) };
  }

  /** Compares item `i` with a bound: negative when the item is below it. */
  compareItem(i: number, bound: Bound): number {
    const t = this.#ts[i] as number;
    if (t !== bound.timestamp) return t < bound.timestamp ? -1 : 1;
    const ids = this.#ids;
    const base = i * ID;
    const prefix = bound.id;
    const n = prefix.length;
    for (let j = 0; j < n; j++) {
      const d = (ids[base + j] as number) - (prefix[j] as number);
      if (d !== 0) return d;
    }
    return ID - n;
  }

  /** First index in [begin, end) whose item is not below `bound`, or `end`. O(log n). */
  findLowerBound(begin: number, end: number, bound: Bound): number {
    this.#check(begin, end);
    let lo = begin;
    let hi = end;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.compareItem(mid, bound) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Fingerprint of items [begin, end): the first 16 bytes of SHA-256 over the sum of their ids
   * (as 256-bit little-endian integers, mod 2^256, 32 bytes little-endian) followed by the
   * varint of their count.
   */
  fingerprint(begin: number, end: number): Uint8Array {
    this.#check(begin, end);
    const p = this.#prefix;
    const sum = new Uint8Array(ID);
    const hiBase = end * ID;
    const loBase = begin * ID;
    let borrow = 0;
    for (let j = 0; j < ID; j++) {
      let d = (p[hiBase + j] as number) - (p[loBase + j] as number) - borrow;
      if (d < 0) {
        d += 0x100;
        borrow = 1;
      } else {
        borrow = 0;
      }
      sum[j] = d;
    }
    const h = createHash('sha256');
    h.update(sum);
    h.update(varintBytes(end - begin));
    return new Uint8Array(h.digest().subarray(0, NEGENTROPY_FINGERPRINT_BYTES));
  }

  #check(begin: number, end: number): void {
    if (!this.#sealed) throw new NegentropyUsageError('storage must be sealed first');
    if (!(begin >= 0 && begin <= end && end <= this.#size)) {
      throw new NegentropyUsageError(`range [${begin}, ${end}) outside storage of ${this.#size} items`);
    }
  }
}
