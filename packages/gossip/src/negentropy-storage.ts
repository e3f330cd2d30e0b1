import { createHash } from 'node:crypto';
import { type Bound, NEGENTROPY_FINGERPRINT_BYTES, NEGENTROPY_ID_BYTES, varintBytes } from './negentropy-codec.js';
import { NegentropyUsageError } from './negentropy-errors.js';

const ID = NEGENTROPY_ID_BYTES;
/** Item indices fit in 21 bits on the fast sorting path (timestamp·2^21 + index < 2^53). */
const INDEX_RANGE = 2 ** 21;

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
  /** Items added before seal(): timestamps and ids packed, grown by doubling. */
  #pendingTs = new Float64Array(64);
  #pendingIds = new Uint8Array(64 * ID);
  #pending = 0;
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
    const n = this.#pending;
    if (n === this.#pendingTs.length) {
      const ts = new Float64Array(n * 2);
      ts.set(this.#pendingTs);
      this.#pendingTs = ts;
      const ids = new Uint8Array(n * 2 * ID);
      ids.set(this.#pendingIds);
      this.#pendingIds = ids;
    }
    this.#pendingTs[n] = timestamp;
    this.#pendingIds.set(id, n * ID);
    this.#pending = n + 1;
  }

  /** Sorts the items, drops exact duplicates and makes the storage read-only. Idempotent. */
  seal(): void {
    if (this.#sealed) return;
    const n = this.#pending;
    const ts = this.#pendingTs;
    const ids = this.#pendingIds;
    const compareIds = (a: number, b: number): number => {
      const ba = a * ID;
      const bb = b * ID;
      for (let j = 0; j < ID; j++) {
        const d = (ids[ba + j] as number) - (ids[bb + j] as number);
        if (d !== 0) return d;
      }
      return 0;
    };
    const order = new Uint32Array(n);
    let maxTs = 0;
    for (let i = 0; i < n; i++) maxTs = Math.max(maxTs, ts[i] as number);
    if (n <= INDEX_RANGE && maxTs < 2 ** 32) {
      // Fast path (timestamps before 2106): sort numeric keys timestamp·2^21 + index natively,
      // then order each run of equal timestamps by id.
      const keys = new Float64Array(n);
      for (let i = 0; i < n; i++) keys[i] = (ts[i] as number) * INDEX_RANGE + i;
      keys.sort();
      for (let k = 0; k < n; k++) order[k] = (keys[k] as number) % INDEX_RANGE;
      for (let k = 0; k < n; ) {
        let e = k + 1;
        while (e < n && ts[order[e] as number] === ts[order[k] as number]) e++;
        if (e - k > 1) order.subarray(k, e).sort(compareIds);
        k = e;
      }
    } else {
      for (let i = 0; i < n; i++) order[i] = i;
      order.sort((a, b) => {
        const d = (ts[a] as number) - (ts[b] as number);
        return d !== 0 ? d : compareIds(a, b);
      });
    }
    // Keep the first of each run of identical (timestamp, id).
    let size = 0;
    for (let k = 0; k < n; k++) {
      const i = order[k] as number;
      if (size > 0) {
        const prev = order[size - 1] as number;
        if (ts[prev] === ts[i] && compareIds(prev, i) === 0) continue;
      }
      order[size++] = i;
    }
    const outTs = new Float64Array(size);
    const outIds = new Uint8Array(size * ID);
    const p = new Uint8Array((size + 1) * ID);
    for (let k = 0; k < size; k++) {
      const i = order[k] as number;
      outTs[k] = ts[i] as number;
      const src = i * ID;
      const dst = k * ID;
      let carry = 0;
      for (let j = 0; j < ID; j++) {
        const b = ids[src + j] as number;
        outIds[dst + j] = b;
        const sum = (p[dst + j] as number) + b + carry;
        p[dst + ID + j] = sum & 0xff;
        carry = sum >>> 8;
      }
    }
    this.#size = size;
    this.#ts = outTs;
    this.#ids = outIds;
    this.#prefix = p;
    this.#pendingTs = new Float64Array(0);
    this.#pendingIds = new Uint8Array(0);
    this.#pending = 0;
    this.#sealed = true;
  }

  get sealed(): boolean {
    return this.#sealed;
  }

  /** Number of (distinct) items; only meaningful once sealed. */
  get size(): number {
    return this.#sealed ? this.#size : this.#pending;
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
