import { isIP } from 'node:net';
import { decodeUntrusted } from './bounded-decode.js';
import { encodeCanonical } from './codec.js';
import {
  DpcError,
  RecordExpiredError,
  RecordMalformedError,
  RecordNodeIdMismatchError,
  RecordSignatureError,
  RecordTooLargeError,
  RecordWrongKeyError,
} from './errors.js';
import { type Identity, isNodeId, nodeIdFromPublicKey, verifySignature } from './identity.js';
import { type Infer, type Schema, s } from './schema.js';

/** Largest encoded record accepted by default: fits a DHT datagram under the path MTU. */
export const DEFAULT_MAX_RECORD_BYTES = 1000;
/**
 * How far the issuer's clock may be off from ours, both ways, ms: a record may be issued this far
 * in the future, and still counts as live this long after its `expiresAt`. Two hours, so a node
 * whose clock is an hour behind publishes records (ttl 1 h, republished every 30 min) that the
 * rest of the network keeps. A correctly timed record that has expired can be replayed for as
 * long; seq still keeps a newer record from being replaced by it.
 */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 2 * 3_600_000;
/** A receiver keeps a record at most this long after it got it, whatever its signed lifetime, ms. */
export const DEFAULT_MAX_RECORD_TTL_MS = 24 * 3_600_000;
const RECORD_VERSION = 1;
const SIGN_CONTEXT = Buffer.from('dpc-record-v1\0');

const ip = (family?: 4 | 6): Schema<string> => {
  const str = s.string({ max: 64 });
  return (v, p = '') => {
    const x = str(v, p);
    const f = isIP(x);
    if (f === 0 || (family !== undefined && f !== family)) throw new RecordMalformedError(`${p}: not an IPv${family ?? ''} address: ${x}`);
    return x;
  };
};
const port = s.int({ min: 1, max: 65535 });
const nodeId: Schema<string> = (v, p = '') => {
  if (!isNodeId(v)) throw new RecordMalformedError(`${p}: not a node id`);
  return v;
};

/** A reachable endpoint: address and port. */
export const endpointSchema = s.object({ ip: ip(), port });
export type Endpoint = Infer<typeof endpointSchema>;

/** Body of an `endpoint` record: everything a peer needs to reach this node on any tier. */
export const endpointBodySchema = s.object({
  /** Global IPv6 addresses with the TCP port (tier 1). */
  ipv6: s.array(s.object({ ip: ip(6), port }), { max: 8 }),
  /** Local IPv4 addresses with prefix length, for the shared-subnet check (tier 2). */
  ipv4_local: s.array(s.object({ ip: ip(4), port, prefix: s.int({ min: 0, max: 32 }) }), { max: 8 }),
  /** External IPv4 endpoints: public address or port forward (tier 2). */
  ipv4_external: s.array(s.object({ ip: ip(4), port }), { max: 4 }),
  nat_type: s.oneOf(['none', 'cone', 'symmetric', 'blocked', 'unknown'] as const),
  /** Reflexive UDP endpoints for hole punching (tier 4). */
  punch: s.array(endpointSchema, { max: 4 }),
  accepts_punch: s.boolean(),
  /** Relays holding a reservation for this node (tier 5). */
  relays: s.array(s.object({ node_id: nodeId, ip: ip(), port }), { max: 4 }),
  /** DHT nodes keeping this node's UDP mapping alive; SIGNAL goes through them. */
  signal_via: s.array(s.object({ node_id: nodeId, ip: ip(), port }), { max: 4 }),
  /** Hub URL, when the node is connected to one (tier 3). */
  hub: s.nullable(s.string({ max: 256 })),
});
export type EndpointBody = Infer<typeof endpointBodySchema>;

/** Body of a `relay-offer` record: the spec's relay fields. */
export const relayOfferBodySchema = s.object({
  node_id: nodeId,
  ip: ip(),
  port,
  available: s.boolean(),
  max_peers: s.int({ min: 0, max: 1_000_000 }),
  current_peers: s.int({ min: 0, max: 1_000_000 }),
  region: s.string({ max: 64 }),
  uptime: s.number({ min: 0, max: 1 }),
  latency_ms: s.number({ min: 0, max: 600_000 }),
  bandwidth_mbps: s.number({ min: 0, max: 1_000_000 }),
});
export type RelayOfferBody = Infer<typeof relayOfferBodySchema>;

/** Record kinds and their body schemas. */
export const recordBodySchemas = {
  endpoint: endpointBodySchema,
  'relay-offer': relayOfferBodySchema,
} as const;
export type RecordKind = keyof typeof recordBodySchemas;
export type RecordBody<K extends RecordKind> = Infer<(typeof recordBodySchemas)[K]>;

/** A verified signed record. */
export interface SignedRecord<K extends RecordKind = RecordKind> {
  kind: K;
  nodeId: string;
  /** Raw 32-byte Ed25519 public key of the subject (and signer). */
  publicKey: Buffer;
  /** Higher replaces lower for the same (kind, nodeId). */
  seq: number;
  /** Milliseconds since the epoch. */
  issuedAt: number;
  /** Milliseconds since the epoch. */
  expiresAt: number;
  body: RecordBody<K>;
  /** The exact signed bytes, as sent on the wire. */
  encoded: Buffer;
}

export interface CreateRecordOptions<K extends RecordKind> {
  kind: K;
  body: RecordBody<K>;
  /**
   * Default: the current time in ms, which goes back when the clock does. A long-lived node keeps
   * its seq in its data directory instead (`openSequenceStore(dataDir).next()`).
   */
  seq?: number;
  /** Lifetime in ms. Default 1 hour. */
  ttlMs?: number;
  now?: number;
  maxBytes?: number;
}

/** Creates and signs a record about `identity`. */
export function createRecord<K extends RecordKind>(identity: Identity, opts: CreateRecordOptions<K>): SignedRecord<K> {
  const now = opts.now ?? Date.now();
  const body = recordBodySchemas[opts.kind](opts.body, 'body') as RecordBody<K>;
  const rec = {
    kind: opts.kind,
    nodeId: identity.nodeId,
    publicKey: identity.publicKey,
    seq: opts.seq ?? now,
    issuedAt: now,
    expiresAt: now + (opts.ttlMs ?? 3_600_000),
    body,
  };
  if (opts.kind === 'relay-offer' && (body as RelayOfferBody).node_id !== identity.nodeId) {
    throw new RecordMalformedError('relay offer names another node id');
  }
  const payload = encodeCanonical([RECORD_VERSION, rec.kind, rec.nodeId, rec.publicKey, rec.seq, rec.issuedAt, rec.expiresAt, rec.body]);
  const signature = identity.sign(Buffer.concat([SIGN_CONTEXT, payload]));
  const encoded = encodeCanonical([RECORD_VERSION, payload, signature]);
  const max = opts.maxBytes ?? DEFAULT_MAX_RECORD_BYTES;
  if (encoded.length > max) throw new RecordTooLargeError(encoded.length, max);
  return { ...rec, encoded };
}

export interface VerifyRecordOptions {
  /** Default DEFAULT_MAX_RECORD_BYTES. */
  maxBytes?: number;
  /** Current time in ms (default Date.now()). */
  now?: number;
  /** Reject unless the record is about (and signed by) this node. */
  expectedNodeId?: string;
  /** Reject unless signed by this raw public key. */
  expectedPublicKey?: Uint8Array;
  /** Reject unless of this kind. */
  kind?: RecordKind;
  /**
   * Tolerated difference between the issuer's clock and ours, ms, both ways: issuedAt may lie this
   * far in the future, and the record is refused as expired only this long after expiresAt.
   * Default DEFAULT_MAX_CLOCK_SKEW_MS (2 hours); 0 judges expiry by our clock alone.
   */
  maxClockSkewMs?: number;
}

const headerSchema = s.object({
  version: s.literal(RECORD_VERSION),
  kind: s.oneOf(Object.keys(recordBodySchemas) as RecordKind[]),
  nodeId: s.string({ max: 64 }),
  publicKey: s.bytes({ length: 32 }),
  seq: s.int({ min: 0 }),
  issuedAt: s.int({ min: 0 }),
  expiresAt: s.int({ min: 0 }),
});

/**
 * Decodes and verifies a record. Throws a typed error: RecordTooLargeError, RecordMalformedError,
 * RecordNodeIdMismatchError (node id does not match the key), RecordWrongKeyError (not the
 * expected signer), RecordSignatureError, RecordExpiredError.
 */
export function verifyRecord(bytes: Uint8Array, opts: VerifyRecordOptions = {}): SignedRecord {
  const max = opts.maxBytes ?? DEFAULT_MAX_RECORD_BYTES;
  if (bytes.length > max) throw new RecordTooLargeError(bytes.length, max);
  const now = opts.now ?? Date.now();
  let payload: Uint8Array;
  let signature: Uint8Array;
  let fields: unknown[];
  try {
    const env = decodeUntrusted(bytes);
    if (!Array.isArray(env) || env.length !== 3 || env[0] !== RECORD_VERSION) throw new RecordMalformedError('not a record envelope');
    payload = s.bytes({ max })(env[1], 'payload');
    signature = s.bytes({ length: 64 })(env[2], 'signature');
    const inner = decodeUntrusted(payload);
    if (!Array.isArray(inner) || inner.length !== 8) throw new RecordMalformedError('record payload is not an 8-field array');
    fields = inner;
  } catch (err) {
    if (err instanceof DpcError && err.code === 'DPC_RECORD_MALFORMED') throw err;
    throw new RecordMalformedError(`malformed record: ${(err as Error).message}`, { cause: err });
  }
  let header: Infer<typeof headerSchema>;
  try {
    const [version, kind, nodeId, publicKey, seq, issuedAt, expiresAt] = fields;
    header = headerSchema({ version, kind, nodeId, publicKey, seq, issuedAt, expiresAt });
  } catch (err) {
    throw new RecordMalformedError(`malformed record header: ${(err as Error).message}`, { cause: err });
  }
  const derived = nodeIdFromPublicKey(header.publicKey);
  if (derived !== header.nodeId) throw new RecordNodeIdMismatchError(header.nodeId, derived);
  if (opts.expectedNodeId !== undefined && header.nodeId !== opts.expectedNodeId) {
    throw new RecordWrongKeyError(opts.expectedNodeId, header.nodeId);
  }
  if (opts.expectedPublicKey !== undefined && !Buffer.from(opts.expectedPublicKey).equals(header.publicKey)) {
    throw new RecordWrongKeyError(nodeIdFromPublicKey(opts.expectedPublicKey), header.nodeId);
  }
  if (!verifySignature(header.publicKey, Buffer.concat([SIGN_CONTEXT, payload]), signature)) {
    throw new RecordSignatureError();
  }
  const skew = opts.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
  if (header.expiresAt + skew <= now) throw new RecordExpiredError(header.expiresAt, now);
  if (header.issuedAt > now + skew) {
    throw new RecordMalformedError(`record issued in the future (${new Date(header.issuedAt).toISOString()})`);
  }
  if (opts.kind !== undefined && header.kind !== opts.kind) {
    throw new RecordMalformedError(`expected a ${opts.kind} record, got ${header.kind}`);
  }
  let body: unknown;
  try {
    body = recordBodySchemas[header.kind](fields[7], 'body');
  } catch (err) {
    throw new RecordMalformedError(`bad ${header.kind} body: ${(err as Error).message}`, { cause: err });
  }
  if (header.kind === 'relay-offer' && (body as RelayOfferBody).node_id !== header.nodeId) {
    throw new RecordMalformedError('relay offer names another node id than its signer');
  }
  return {
    kind: header.kind,
    nodeId: header.nodeId,
    publicKey: Buffer.from(header.publicKey),
    seq: header.seq,
    issuedAt: header.issuedAt,
    expiresAt: header.expiresAt,
    body: body as RecordBody<RecordKind>,
    encoded: Buffer.from(bytes),
  };
}

/**
 * True when a verified record no longer counts as live at `now` (ours): its expiresAt lies more
 * than the tolerated clock skew behind us.
 */
export function isRecordExpired(
  record: Pick<SignedRecord, 'expiresAt'>,
  now: number = Date.now(),
  maxClockSkewMs: number = DEFAULT_MAX_CLOCK_SKEW_MS,
): boolean {
  return record.expiresAt + maxClockSkewMs <= now;
}

/**
 * Until when (our clock, ms) a receiver keeps a record it got at `receivedAt`: its signed
 * lifetime (expiresAt - issuedAt, at most `maxTtlMs`) counted from when we got it, and never
 * past expiresAt plus the tolerated clock skew. A record from a correctly timed issuer, stored
 * as it is published, lives until its expiresAt; one from an issuer whose clock is an hour behind
 * lives its full ttl too, instead of arriving already expired.
 */
export function recordLiveUntil(
  record: Pick<SignedRecord, 'issuedAt' | 'expiresAt'>,
  receivedAt: number,
  opts: { maxClockSkewMs?: number; maxTtlMs?: number } = {},
): number {
  const lifetime = Math.max(0, Math.min(record.expiresAt - record.issuedAt, opts.maxTtlMs ?? DEFAULT_MAX_RECORD_TTL_MS));
  return Math.min(receivedAt + lifetime, record.expiresAt + (opts.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS));
}

/** An empty endpoint body, to fill in. */
export function emptyEndpointBody(): EndpointBody {
  return {
    ipv6: [],
    ipv4_local: [],
    ipv4_external: [],
    nat_type: 'unknown',
    punch: [],
    accepts_punch: false,
    relays: [],
    signal_via: [],
    hub: null,
  };
}
