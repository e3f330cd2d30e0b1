import {
  NegentropyBoundError,
  NegentropyCountError,
  NegentropyModeError,
  NegentropyTruncatedError,
  NegentropyVarintError,
} from './negentropy-errors.js';

/** Byte that starts every message of Negentropy protocol version 1. */
export const NEGENTROPY_PROTOCOL_V1 = 0x61;
/** Length of an item id in bytes. */
export const NEGENTROPY_ID_BYTES = 32;
/** Length of a range fingerprint in bytes. */
export const NEGENTROPY_FINGERPRINT_BYTES = 16;

/** Range modes on the wire. */
export const Mode = { Skip: 0, Fingerprint: 1, IdList: 2 } as const;
export type Mode = (typeof Mode)[keyof typeof Mode];

/** Longest varint we accept: 8 groups of 7 bits hold every integer up to 2^53 - 1. */
const MAX_VARINT_BYTES = 8;

/**
 * A range bound: items strictly below it are in the range. `timestamp` may be `Infinity` (the
 * end of the set); `id` is a prefix of at most 32 bytes (empty: below every id of that second).
 */
export interface Bound {
  readonly timestamp: number;
  readonly id: Uint8Array;
}

export const INFINITY_BOUND: Bound = { timestamp: Number.POSITIVE_INFINITY, id: new Uint8Array(0) };
export const ZERO_BOUND: Bound = { timestamp: 0, id: new Uint8Array(0) };

/** Compares two bounds (or items, which are bounds with a 32-byte id): negative, 0 or positive. */
export function compareBounds(a: Bound, b: Bound): number {
  if (a.timestamp !== b.timestamp) return a.timestamp < b.timestamp ? -1 : 1;
  return compareBytes(a.id, b.id);
}

/** Lexicographic byte order; a proper prefix sorts first. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** Appends big-endian base-128 varints (high bit set on every byte but the last). */
export function varintBytes(value: number): Uint8Array {
  if (value < 0x80) return Uint8Array.of(value);
  const groups: number[] = [];
  let v = value;
  while (v > 0) {
    groups.push(v % 0x80);
    v = Math.floor(v / 0x80);
  }
  const out = new Uint8Array(groups.length);
  for (let i = 0; i < groups.length; i++) {
    const g = groups[groups.length - 1 - i] as number;
    out[i] = i === groups.length - 1 ? g : g | 0x80;
  }
  return out;
}

/** Growable output buffer. */
export class ByteWriter {
  #buf: Uint8Array;
  #len = 0;

  constructor(initial = 256) {
    this.#buf = new Uint8Array(initial);
  }

  get length(): number {
    return this.#len;
  }

  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let cap = this.#buf.length * 2;
    while (cap < this.#len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  byte(b: number): void {
    this.#reserve(1);
    this.#buf[this.#len++] = b;
  }

  bytes(b: Uint8Array): void {
    this.#reserve(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
  }

  varint(value: number): void {
    if (value < 0x80) this.byte(value);
    else this.bytes(varintBytes(value));
  }

  /** Drops everything written after the first `length` bytes. */
  truncate(length: number): void {
    if (length < this.#len) this.#len = length;
  }

  /** A view of the written bytes (valid until the next write). */
  view(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }

  /** A copy of the written bytes. */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

/**
 * Bounds-checked reader of one message. Every read either returns a value or throws a typed
 * `DPC_NEGENTROPY_*` error; nothing is allocated from a length before that length is checked
 * against the bytes actually present.
 */
export class ByteReader {
  readonly #buf: Uint8Array;
  #pos = 0;

  constructor(buf: Uint8Array) {
    this.#buf = buf;
  }

  get remaining(): number {
    return this.#buf.length - this.#pos;
  }

  byte(what: string): number {
    if (this.#pos >= this.#buf.length) throw new NegentropyTruncatedError(`message ends before ${what}`);
    return this.#buf[this.#pos++] as number;
  }

  /** A view of the next `n` bytes. */
  bytes(n: number, what: string): Uint8Array {
    if (n > this.remaining) throw new NegentropyTruncatedError(`message ends inside ${what} (${n} bytes needed, ${this.remaining} left)`);
    const out = this.#buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return out;
  }

  varint(what: string): number {
    let value = 0;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      const b = this.byte(what);
      value = value * 0x80 + (b & 0x7f);
      if (value > Number.MAX_SAFE_INTEGER) throw new NegentropyVarintError(`${what} exceeds 2^53 - 1`);
      if ((b & 0x80) === 0) return value;
    }
    throw new NegentropyVarintError(`${what} is a varint longer than ${MAX_VARINT_BYTES} bytes`);
  }
}

/**
 * Per-message timestamp delta state: each message starts at 0, every bound's timestamp is
 * encoded as (timestamp - previous) + 1, and 0 means infinity (after which all are infinity).
 */
export class BoundEncoder {
  /** Timestamp of the previous bound written (saved and restored when output is dropped). */
  last = 0;

  write(w: ByteWriter, bound: Bound): void {
    if (bound.timestamp === Number.POSITIVE_INFINITY) {
      this.last = Number.POSITIVE_INFINITY;
      w.byte(0);
    } else {
      w.varint(bound.timestamp - this.last + 1);
      this.last = bound.timestamp;
    }
    w.varint(bound.id.length);
    w.bytes(bound.id);
  }
}

export class BoundDecoder {
  #last = 0;

  read(r: ByteReader): Bound {
    const encoded = r.varint('bound timestamp');
    let timestamp: number;
    if (encoded === 0 || this.#last === Number.POSITIVE_INFINITY) {
      timestamp = Number.POSITIVE_INFINITY;
    } else {
      timestamp = this.#last + (encoded - 1);
      if (timestamp > Number.MAX_SAFE_INTEGER) throw new NegentropyVarintError('bound timestamp exceeds 2^53 - 1');
    }
    this.#last = timestamp;
    const len = r.varint('bound id length');
    if (len > NEGENTROPY_ID_BYTES) throw new NegentropyBoundError(`bound id prefix of ${len} bytes (at most ${NEGENTROPY_ID_BYTES})`);
    const id = r.bytes(len, 'bound id prefix');
    return { timestamp, id };
  }
}

/** Reads a range's mode. */
export function readMode(r: ByteReader): Mode {
  const mode = r.varint('range mode');
  if (mode !== Mode.Skip && mode !== Mode.Fingerprint && mode !== Mode.IdList) {
    throw new NegentropyModeError(`unknown range mode ${mode}`);
  }
  return mode;
}

/** Reads an id list's count and checks it against the bytes present before anything is allocated. */
export function readIdCount(r: ByteReader): number {
  const count = r.varint('id list count');
  if (count > Math.floor(r.remaining / NEGENTROPY_ID_BYTES)) {
    throw new NegentropyCountError(`id list announces ${count} ids but only ${r.remaining} bytes follow`);
  }
  return count;
}
