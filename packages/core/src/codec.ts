import { Packr, RESERVE_START_SPACE } from 'msgpackr';
import { FrameMalformedError } from './errors.js';

// One msgpackr configuration for the whole stack: plain MessagePack (no msgpackr record
// extension, no structured clone), so other implementations can speak the protocol.
const packr = new Packr({
  useRecords: false,
  structuredClone: false,
  moreTypes: false,
  bundleStrings: false,
  mapsAsObjects: true,
  int64AsType: 'number',
});

/** Recursively sorts object keys so equal values always encode to the same bytes. */
export function canonicalize(value: unknown, depth = 0): unknown {
  if (depth > 32) throw new FrameMalformedError('value nested deeper than 32 levels');
  if (Array.isArray(value)) return value.map((v) => canonicalize(v, depth + 1));
  if (value instanceof Uint8Array || value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[k];
    if (v !== undefined) out[k] = canonicalize(v, depth + 1);
  }
  return out;
}

/** MessagePack encoding (not canonical: use `encodeCanonical` for anything signed). */
export function encode(value: unknown): Buffer {
  return packr.pack(value);
}

/**
 * MessagePack encoding preceded by `headerBytes` (≤ 255) bytes left for the caller to fill, so a
 * frame header costs no second copy of the body. The bytes are never reused by later encodes.
 */
export function encodeWithHeaderSpace(value: unknown, headerBytes: number): Buffer {
  return packr.pack(value, RESERVE_START_SPACE | headerBytes);
}

/** Canonical MessagePack: object keys sorted, undefined fields dropped. */
export function encodeCanonical(value: unknown): Buffer {
  return packr.pack(canonicalize(value));
}

/**
 * msgpackr's decoder with the stack's options and no bounds: only for bytes already checked by
 * `checkMessagePack` (see bounded-decode.ts). Any failure becomes a FrameMalformedError.
 */
export function unpackUnchecked(bytes: Uint8Array): unknown {
  try {
    return packr.unpack(bytes);
  } catch (err) {
    throw new FrameMalformedError(`not a MessagePack value: ${(err as Error).message}`, { cause: err });
  }
}
