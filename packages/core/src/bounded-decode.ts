import { unpackUnchecked } from './codec.js';
import { DecodeLimitError, FrameMalformedError } from './errors.js';

// Untrusted MessagePack is walked once, without allocating, before msgpackr sees it. msgpackr
// trusts declared lengths (an array16 header makes it allocate 65,535 slots however few bytes
// follow) and has no depth bound, so a 1,200-byte datagram of nested `dc ff ff` headers cost
// ~0.2–0.7 s and ~200 MB. After the walk, every container's elements exist in the input (each
// takes at least one byte), so msgpackr's work and allocation are O(n) for n input bytes.

/** Default deepest nesting of arrays and maps (a top-level array is depth 1). */
export const DEFAULT_DECODE_MAX_DEPTH = 64;
/** Default most values in one decoded input, counting every container, element, map key and value. */
export const DEFAULT_DECODE_MAX_ELEMENTS = 100_000;

/** Bounds of one untrusted decode. */
export interface DecodeLimits {
  /** Deepest nesting of arrays and maps; a top-level array is depth 1 (default 64). */
  maxDepth?: number;
  /** Most values in total: containers, elements, map keys and values (default 100,000). */
  maxElements?: number;
}

// Extensions accepted: type 0 (undefined, as msgpackr writes it) and type -1 (timestamp of 4,
// 8 or 12 bytes, or msgpackr's 1-byte invalid date). msgpackr also knows records, bundled
// strings, Error, RegExp, Set, BigInt and typed-array extensions that read further values or
// jump around the buffer: plain MessagePack peers never send them, so they are refused.
const EXT_UNDEFINED = 0x00;
const EXT_TIMESTAMP = 0xff;

/**
 * Checks that `bytes` hold exactly one plain MessagePack value within `limits`, in O(n) time
 * and O(maxDepth) memory. Throws DecodeLimitError (`DPC_DECODE_LIMIT`) when a declared length
 * exceeds the bytes left, nesting is too deep or there are too many values, and
 * FrameMalformedError (`DPC_FRAME_MALFORMED`) for anything else that is not one plain value.
 */
export function checkMessagePack(bytes: Uint8Array, limits: DecodeLimits = {}): void {
  const maxDepth = limits.maxDepth ?? DEFAULT_DECODE_MAX_DEPTH;
  const maxElements = limits.maxElements ?? DEFAULT_DECODE_MAX_ELEMENTS;
  const end = bytes.length;
  // The container being read: values still to read, whether it is a map, and (maps) the largest
  // small array-index key seen so far. The parents' state waits on the stacks below.
  let left = 1;
  let inMap = false;
  let indexMax = -1;
  const stackLeft: number[] = [];
  const stackMap: boolean[] = [];
  const stackIndexMax: number[] = [];
  let pos = 0;
  let count = 0;
  const charge = (n: number): void => {
    count += n;
    if (count > maxElements) throw new DecodeLimitError('elements', `more than ${maxElements} values`);
  };
  const need = (n: number): void => {
    if (n > end - pos) throw new FrameMalformedError(`MessagePack value ends early at byte ${pos}`);
  };
  const fixed = (n: number): void => {
    need(n);
    pos += n;
  };
  const uint = (n: 1 | 2 | 4): number => {
    need(n);
    const v =
      n === 1 ? (bytes[pos] as number) : n === 2 ? ((bytes[pos] as number) << 8) | (bytes[pos + 1] as number) : readUint32(bytes, pos);
    pos += n;
    return v;
  };
  const skip = (n: number, what: string): void => {
    if (n > end - pos) throw new DecodeLimitError('length', `${what} declares ${n} bytes, ${end - pos} are left`);
    pos += n;
  };
  const ext = (len: number): void => {
    const type = bytes[pos];
    skip(1 + len, 'extension');
    if (!(type === EXT_UNDEFINED || (type === EXT_TIMESTAMP && (len === 1 || len === 4 || len === 8 || len === 12)))) {
      throw new FrameMalformedError(`unsupported MessagePack extension type ${type} of ${len} bytes`);
    }
  };

  while (left > 0) {
    if (pos >= end) throw new FrameMalformedError(`MessagePack value ends early at byte ${pos}`);
    charge(1);
    // Map entries alternate key, value: with an even count left, this value is a key.
    if (inMap && left % 2 === 0) {
      // V8 gives an object whose keys are array indexes a flat backing store as long as its
      // largest index: {"1023": nil} is 7 bytes and 12 KB of heap. It does so while each new
      // index is less than V8's gap (1,024) beyond the store's capacity (1.5 × size + 16);
      // farther, it switches to a dictionary. Such slots count as values, once per map.
      const k = smallIndexKey(bytes, pos);
      const reach = indexMax < 0 ? V8_MAX_GAP : 1.5 * (indexMax + 1) + 16 + V8_MAX_GAP;
      if (k > indexMax && k < reach) {
        charge(k - Math.max(indexMax, 0));
        indexMax = k;
      }
    }
    left--;
    const t = bytes[pos++] as number;
    let items = -1;
    let isMap = false;
    if (t <= 0x7f || t >= 0xe0) {
      // positive or negative fixint
    } else if (t <= 0x8f) {
      items = (t & 0x0f) * 2;
      isMap = true;
    } else if (t <= 0x9f) items = t & 0x0f;
    else if (t <= 0xbf) skip(t & 0x1f, 'string');
    else {
      switch (t) {
        case 0xc0: // nil
        case 0xc2: // false
        case 0xc3: // true
          break;
        case 0xc4:
          skip(uint(1), 'bin');
          break;
        case 0xc5:
          skip(uint(2), 'bin');
          break;
        case 0xc6:
          skip(uint(4), 'bin');
          break;
        case 0xc7:
          ext(uint(1));
          break;
        case 0xc8:
          ext(uint(2));
          break;
        case 0xc9:
          ext(uint(4));
          break;
        case 0xcc: // uint8
        case 0xd0: // int8
          fixed(1);
          break;
        case 0xcd:
        case 0xd1:
          fixed(2);
          break;
        case 0xca: // float32
        case 0xce:
        case 0xd2:
          fixed(4);
          break;
        case 0xcb: // float64
        case 0xcf:
        case 0xd3:
          fixed(8);
          break;
        case 0xd4:
          ext(1);
          break;
        case 0xd5:
          ext(2);
          break;
        case 0xd6:
          ext(4);
          break;
        case 0xd7:
          ext(8);
          break;
        case 0xd8:
          ext(16);
          break;
        case 0xd9:
          skip(uint(1), 'string');
          break;
        case 0xda:
          skip(uint(2), 'string');
          break;
        case 0xdb:
          skip(uint(4), 'string');
          break;
        case 0xdc:
          items = uint(2);
          break;
        case 0xdd:
          items = uint(4);
          break;
        case 0xde:
          items = uint(2) * 2;
          isMap = true;
          break;
        case 0xdf:
          items = uint(4) * 2;
          isMap = true;
          break;
        default: // 0xc1, never used
          throw new FrameMalformedError(`reserved MessagePack byte 0x${t.toString(16)} at ${pos - 1}`);
      }
    }
    if (items >= 0) {
      if (stackLeft.length + 1 > maxDepth) throw new DecodeLimitError('depth', `nested deeper than ${maxDepth} levels`);
      // Each element takes at least one byte: a longer claim is a lie, refused before any slot exists.
      if (items > end - pos) throw new DecodeLimitError('length', `container declares ${items} values, ${end - pos} bytes are left`);
      if (items > 0) {
        stackLeft.push(left);
        stackMap.push(inMap);
        stackIndexMax.push(indexMax);
        left = items;
        inMap = isMap;
        indexMax = -1;
      }
    }
    while (left === 0 && stackLeft.length > 0) {
      left = stackLeft.pop() as number;
      inMap = stackMap.pop() as boolean;
      indexMax = stackIndexMax.pop() as number;
    }
  }
  if (pos !== end) throw new FrameMalformedError(`${end - pos} bytes after the MessagePack value`);
}

/** V8's `kMaxGap`: an index this far beyond an object's element capacity makes it a dictionary. */
const V8_MAX_GAP = 1024;
/** Beyond this many slots V8 keeps a young object's elements flat only when they are dense. */
const SMALL_INDEX_LIMIT = 8192;

/**
 * The array index a map key at `at` becomes once msgpackr turns it into a property name, when
 * it is below SMALL_INDEX_LIMIT; else -1. Covers unsigned integers, integral floats and strings
 * of digits ("0", "17", not "017").
 */
function smallIndexKey(b: Uint8Array, at: number): number {
  const t = b[at] as number;
  const left = b.length - at - 1;
  let v = -1;
  if (t <= 0x7f) v = t;
  else if ((t === 0xcc || t === 0xd0) && left >= 1) v = t === 0xcc ? (b[at + 1] as number) : ((b[at + 1] as number) << 24) >> 24;
  else if ((t === 0xcd || t === 0xd1) && left >= 2) {
    const u = ((b[at + 1] as number) << 8) | (b[at + 2] as number);
    v = t === 0xcd ? u : (u << 16) >> 16;
  } else if ((t === 0xce || t === 0xd2) && left >= 4) {
    const u = readUint32(b, at + 1);
    v = t === 0xce ? u : u | 0;
  } else if ((t === 0xcf || t === 0xd3) && left >= 8) {
    // 64-bit: small only when the high word is zero
    if (readUint32(b, at + 1) === 0) v = readUint32(b, at + 5);
  } else if ((t === 0xca && left >= 4) || (t === 0xcb && left >= 8)) {
    const view = new DataView(b.buffer, b.byteOffset + at + 1, t === 0xca ? 4 : 8);
    const f = t === 0xca ? view.getFloat32(0) : view.getFloat64(0);
    if (Number.isInteger(f)) v = f;
  } else if (((t >= 0xa1 && t <= 0xa4) || (t === 0xd9 && left >= 1)) && left >= 1) {
    const off = t === 0xd9 ? 2 : 1;
    const len = t === 0xd9 ? (b[at + 1] as number) : t - 0xa0;
    if (len >= 1 && len <= 4 && left >= off - 1 + len) {
      let n = 0;
      for (let i = 0; i < len; i++) {
        const c = b[at + off + i] as number;
        if (c < 0x30 || c > 0x39 || (i === 0 && c === 0x30 && len > 1)) return -1;
        n = n * 10 + (c - 0x30);
      }
      v = n;
    }
  }
  return v >= 0 && v < SMALL_INDEX_LIMIT ? v : -1;
}

function readUint32(b: Uint8Array, at: number): number {
  return (b[at] as number) * 0x1000000 + (((b[at + 1] as number) << 16) | ((b[at + 2] as number) << 8) | (b[at + 3] as number));
}

/**
 * Decodes one MessagePack value received from anyone: checked by `checkMessagePack` first, so
 * any n input bytes cost O(n) time and memory; then decoded by msgpackr with the stack's options.
 * Throws DecodeLimitError (`DPC_DECODE_LIMIT`) or FrameMalformedError (`DPC_FRAME_MALFORMED`).
 */
export function decodeUntrusted(bytes: Uint8Array, limits?: DecodeLimits): unknown {
  checkMessagePack(bytes, limits);
  return unpackUnchecked(bytes);
}

/** Same as `decodeUntrusted(bytes)` with the default limits. */
export function decode(bytes: Uint8Array): unknown {
  return decodeUntrusted(bytes);
}
