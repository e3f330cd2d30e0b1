import { createHash } from 'node:crypto';
import { decodeUntrusted, encodeCanonical, type Identity, isNodeId, nodeIdFromPublicKey, type Schema, s, verifySignature } from '@dpc/core';
import {
  DEFAULT_MAX_CLOCK_SKEW_MS,
  DEFAULT_MAX_MESSAGE_BYTES,
  GOSSIP_VERSION,
  MAX_ALREADY_FORWARDED,
  MAX_HOPS_LIMIT,
  MAX_RECEIPT_IDS,
  MAX_TTL_SECONDS,
} from './constants.js';
import {
  GossipExpiredError,
  GossipForgedError,
  GossipMalformedError,
  GossipOverHopError,
  GossipOversizedError,
  GossipTamperedError,
} from './errors.js';
import { seal } from './seal.js';

/** Signing and hashing contexts (domain separation from records and the TLS hello). */
const ID_CONTEXT = Buffer.from('dpc-gossip-id-v1\0');
const SIGN_CONTEXT = Buffer.from('dpc-gossip-sig-v1\0');
const AAD_CONTEXT = 'dpc-gossip-aad-v1';

export type GossipPriority = 'low' | 'normal' | 'high';
export type GossipKind = 'msg' | 'receipt';

/**
 * The spec's GOSSIP_MESSAGE. Everything but `hops` and `already_forwarded` is signed by the
 * source (through `id`, the hash of the signed part), so a forwarder can change only those two.
 */
export interface GossipMessage {
  /** SHA-256 of the signed part: 32 bytes. */
  id: Buffer;
  kind: GossipKind;
  /** Sender node id, and its raw Ed25519 key (the node id is derived from it). */
  source: string;
  sourceKey: Buffer;
  destination: string;
  /** Sealed to the destination (see seal.ts). */
  payload: Buffer;
  hops: number;
  max_hops: number;
  already_forwarded: string[];
  /** Per-origin counters (the source's own entry counts its messages). */
  vector_clock: Record<string, number>;
  /** Creation time, ms since the epoch, and lifetime in seconds. */
  created_at: number;
  ttl: number;
  priority: GossipPriority;
  /** Receipts only: ids of the messages this receipt confirms (lets forwarders drop them). */
  acks: Buffer[];
  signature: Buffer;
  /** The exact encoded bytes. */
  encoded: Buffer;
}

export interface CreateMessageOptions {
  kind?: GossipKind;
  destination: string;
  /** Raw Ed25519 key of the destination (to seal to). */
  destinationKey: Uint8Array;
  plaintext: Uint8Array;
  maxHops: number;
  ttlSeconds: number;
  priority: GossipPriority;
  vectorClock: Record<string, number>;
  acks?: Uint8Array[];
  now?: number;
  maxBytes?: number;
}

/** Additional data of a sealed payload: the envelope's source, destination and kind. */
export function payloadAad(source: string, destination: string, kind: GossipKind): Buffer {
  return Buffer.from(`${AAD_CONTEXT}\0${kind}\0${source}\0${destination}`);
}

function signedPart(m: Omit<GossipMessage, 'id' | 'signature' | 'encoded' | 'hops' | 'already_forwarded'>): Buffer {
  return encodeCanonical([
    GOSSIP_VERSION,
    m.kind,
    m.source,
    m.sourceKey,
    m.destination,
    m.created_at,
    m.ttl,
    m.max_hops,
    m.priority,
    m.vector_clock,
    m.acks,
    m.payload,
  ]);
}

function idOf(signed: Uint8Array): Buffer {
  return createHash('sha256').update(ID_CONTEXT).update(signed).digest();
}

function encodeMessage(signed: Buffer, id: Buffer, signature: Buffer, hops: number, alreadyForwarded: readonly string[]): Buffer {
  return encodeCanonical([GOSSIP_VERSION, signed, id, signature, hops, alreadyForwarded]);
}

/** Creates, seals and signs a message from `identity`. */
export function createMessage(identity: Identity, o: CreateMessageOptions): GossipMessage {
  const kind = o.kind ?? 'msg';
  const base = {
    kind,
    source: identity.nodeId,
    sourceKey: identity.publicKey,
    destination: o.destination,
    created_at: o.now ?? Date.now(),
    ttl: o.ttlSeconds,
    max_hops: o.maxHops,
    priority: o.priority,
    vector_clock: o.vectorClock,
    acks: (o.acks ?? []).map((a) => Buffer.from(a)),
    payload: seal(o.destinationKey, o.plaintext, payloadAad(identity.nodeId, o.destination, kind)),
  };
  const signed = signedPart(base);
  const id = idOf(signed);
  const signature = identity.sign(Buffer.concat([SIGN_CONTEXT, id]));
  const encoded = encodeMessage(signed, id, signature, 0, []);
  const max = o.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  if (encoded.length > max) throw new GossipOversizedError(encoded.length, max);
  return { ...base, id, signature, hops: 0, already_forwarded: [], encoded };
}

/** The same message one hop further: `hops` + 1 and `by` appended to already_forwarded (newest kept). */
export function forwardedCopy(m: GossipMessage, by: string): GossipMessage {
  const af = [...m.already_forwarded.filter((n) => n !== by), by].slice(-MAX_ALREADY_FORWARDED);
  const inner = decodeUntrusted(m.encoded) as [number, Uint8Array];
  const encoded = encodeMessage(Buffer.from(inner[1]), m.id, m.signature, m.hops + 1, af);
  return { ...m, hops: m.hops + 1, already_forwarded: af, encoded };
}

export interface VerifyMessageOptions {
  now?: number;
  maxBytes?: number;
  maxClockSkewMs?: number;
}

const nodeId: Schema<string> = (v, p = '') => {
  if (!isNodeId(v)) throw new GossipMalformedError(`${p}: not a node id`);
  return v;
};
const envelopeSchema = s.array(s.unknown(), { max: 6 });
const signedSchema = (max: number) => ({
  kind: s.oneOf(['msg', 'receipt'] as const),
  source: nodeId,
  sourceKey: s.bytes({ length: 32 }),
  destination: nodeId,
  created_at: s.int({ min: 0 }),
  ttl: s.int({ min: 1, max: MAX_TTL_SECONDS }),
  max_hops: s.int({ min: 0, max: MAX_HOPS_LIMIT }),
  priority: s.oneOf(['low', 'normal', 'high'] as const),
  vector_clock: s.record(s.int({ min: 0 }), { max: 64, key: nodeId }),
  acks: s.array(s.bytes({ length: 32 }), { max: MAX_RECEIPT_IDS }),
  payload: s.bytes({ max }),
});

/**
 * Decodes and checks a gossip message from anyone. Throws GossipOversizedError,
 * GossipMalformedError, GossipTamperedError (signed content does not hash to its id), GossipForgedError
 * (not signed by the source), GossipExpiredError, GossipOverHopError. Replay and dedupe are the
 * caller's (they need state).
 */
export function verifyMessage(bytes: Uint8Array, o: VerifyMessageOptions = {}): GossipMessage {
  const max = o.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  if (bytes.length > max) throw new GossipOversizedError(bytes.length, max);
  let signed: Uint8Array;
  let claimedId: Uint8Array;
  let signature: Uint8Array;
  let hops: number;
  let alreadyForwarded: string[];
  let f: ReturnType<typeof parseSigned>;
  try {
    const env = envelopeSchema(decodeUntrusted(bytes), 'message');
    if (env.length !== 6 || env[0] !== GOSSIP_VERSION) throw new GossipMalformedError('not a gossip envelope');
    signed = s.bytes({ max })(env[1], 'signed');
    claimedId = s.bytes({ length: 32 })(env[2], 'id');
    signature = s.bytes({ length: 64 })(env[3], 'signature');
    hops = s.int({ min: 0, max: MAX_HOPS_LIMIT + 1 })(env[4], 'hops');
    alreadyForwarded = s.array(nodeId, { max: MAX_ALREADY_FORWARDED })(env[5], 'already_forwarded');
    f = parseSigned(signed, max);
  } catch (err) {
    if ((err as { code?: string }).code === 'DPC_GOSSIP_MALFORMED') throw err;
    throw new GossipMalformedError(`malformed gossip message: ${(err as Error).message}`, { cause: err });
  }
  const id = idOf(signed);
  if (!id.equals(claimedId))
    throw new GossipTamperedError(`content of ${Buffer.from(claimedId).toString('hex').slice(0, 16)} was changed after signing`);
  if (nodeIdFromPublicKey(f.sourceKey) !== f.source) throw new GossipForgedError(`source key is not ${f.source}'s`);
  if (!verifySignature(f.sourceKey, Buffer.concat([SIGN_CONTEXT, id]), signature)) {
    throw new GossipForgedError(`signature of ${id.toString('hex').slice(0, 16)} does not verify with ${f.source}'s key`);
  }
  if (f.kind === 'msg' && f.acks.length > 0) throw new GossipMalformedError('a message carries acks');
  if (hops > f.max_hops) throw new GossipOverHopError(`travelled ${hops} hops, max_hops is ${f.max_hops}`);
  const now = o.now ?? Date.now();
  const skew = o.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
  if (f.created_at > now + skew) throw new GossipExpiredError(`created ${f.created_at - now} ms in the future`);
  if (f.created_at + f.ttl * 1000 <= now) throw new GossipExpiredError(`expired ${now - f.created_at - f.ttl * 1000} ms ago`);
  return {
    ...f,
    id,
    hops,
    already_forwarded: alreadyForwarded,
    signature: Buffer.from(signature),
    encoded: Buffer.from(bytes),
  };
}

function parseSigned(signed: Uint8Array, max: number) {
  const a = decodeUntrusted(signed);
  if (!Array.isArray(a) || a.length !== 12 || a[0] !== GOSSIP_VERSION)
    throw new GossipMalformedError('signed part is not a 12-field array');
  const sc = signedSchema(max);
  return {
    kind: sc.kind(a[1], 'kind'),
    source: sc.source(a[2], 'source'),
    sourceKey: Buffer.from(sc.sourceKey(a[3], 'source_key')),
    destination: sc.destination(a[4], 'destination'),
    created_at: sc.created_at(a[5], 'created_at'),
    ttl: sc.ttl(a[6], 'ttl'),
    max_hops: sc.max_hops(a[7], 'max_hops'),
    priority: sc.priority(a[8], 'priority'),
    vector_clock: { ...sc.vector_clock(a[9], 'vector_clock') },
    acks: sc.acks(a[10], 'acks').map((x) => Buffer.from(x)),
    payload: Buffer.from(sc.payload(a[11], 'payload')),
  };
}

/** Expiry of a message, ms since the epoch. */
export function expiresAt(m: Pick<GossipMessage, 'created_at' | 'ttl'>): number {
  return m.created_at + m.ttl * 1000;
}

/** Plaintext of a sealed `msg`: the deferred item. Of a `receipt`: the item ids it confirms. */
export const msgPlaintextSchema = s.object({ id: s.string({ max: 128 }), body: s.unknown() });
export const receiptPlaintextSchema = s.object({ ids: s.array(s.string({ max: 128 }), { max: MAX_RECEIPT_IDS }) });

/** Frames on a gossip link. */
export const linkFrameSchema = s.union('t', {
  /** A gossip message (its encoded bytes). */
  m: s.object({ t: s.literal('m'), b: s.bytes({ max: DEFAULT_MAX_MESSAGE_BYTES * 2 }) }),
  /** This hop stored it: id, or a refusal code. */
  a: s.object({ t: s.literal('a'), id: s.bytes({ length: 32 }), err: s.optional(s.string({ max: 64 })) }),
  /** Anti-entropy (Negentropy) message; `q` = 1 from the initiator, 0 from the responder. */
  n: s.object({ t: s.literal('n'), q: s.int({ min: 0, max: 1 }), s: s.int({ min: 0 }), b: s.bytes({ max: 1 << 20 }) }),
  /** Anti-entropy: ids the sender wants. */
  w: s.object({ t: s.literal('w'), ids: s.array(s.bytes({ length: 32 }), { max: 1024 }) }),
});
export type LinkFrame =
  | { t: 'm'; b: Uint8Array }
  | { t: 'a'; id: Uint8Array; err?: string | undefined }
  | { t: 'n'; q: number; s: number; b: Uint8Array }
  | { t: 'w'; ids: Uint8Array[] };
