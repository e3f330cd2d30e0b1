import { randomBytes } from 'node:crypto';
import { decode, encodeCanonical, type Identity, nodeIdFromPublicKey, s, verifySignature } from '@dpc/core';
import { MAX_SIGNAL_PAYLOAD_BYTES } from './constants.js';
import type { Peer } from './rpc.js';

// Signalling to nodes behind NAT. A node registers (signed REGISTER) with a few DHT nodes and
// keeps its UDP mapping to them open; a sender puts a signed envelope in a SIGNAL to one of them,
// which forwards it over that mapping. Only the envelope's signer can have written it.

const SIGNAL_CONTEXT = Buffer.from('dpc-dht-signal-v1\0');
const REGISTER_CONTEXT = Buffer.from('dpc-dht-register-v1\0');

/** A verified signal. */
export interface OpenedSignal {
  from: string;
  publicKey: Buffer;
  to: Buffer;
  ts: number;
  nonce: string;
  payload: unknown;
}

export type SignalRejection = 'malformed' | 'bad_signature' | 'wrong_target' | 'stale' | 'replay';

/** Signs `payload` for the node whose Kademlia id is `to`. Throws when it is too large. */
export function createSignalEnvelope(identity: Identity, to: Uint8Array, payload: unknown, now = Date.now()): Buffer {
  const inner = encodeCanonical([1, identity.publicKey, Buffer.from(to), now, randomBytes(8), payload]);
  if (inner.length > MAX_SIGNAL_PAYLOAD_BYTES) {
    throw new RangeError(`signal payload encodes to ${inner.length} bytes, the limit is ${MAX_SIGNAL_PAYLOAD_BYTES}`);
  }
  return encodeCanonical([inner, identity.sign(Buffer.concat([SIGNAL_CONTEXT, inner]))]);
}

const envelopeSchema = (v: unknown) => {
  if (!Array.isArray(v) || v.length !== 2) throw new TypeError('envelope');
  return { inner: s.bytes({ max: MAX_SIGNAL_PAYLOAD_BYTES })(v[0]), sig: s.bytes({ length: 64 })(v[1]) };
};

/** Verifies a signal envelope; `to` is checked by the caller (forwarder or recipient). */
export function openSignalEnvelope(bytes: Uint8Array): OpenedSignal | 'malformed' | 'bad_signature' {
  let inner: Uint8Array;
  let sig: Uint8Array;
  let fields: unknown[];
  try {
    ({ inner, sig } = envelopeSchema(decode(bytes)));
    const f = decode(inner);
    if (!Array.isArray(f) || f.length !== 6 || f[0] !== 1) return 'malformed';
    s.bytes({ length: 32 })(f[1]);
    s.bytes({ length: 16 })(f[2]);
    s.int({ min: 0 })(f[3]);
    s.bytes({ length: 8 })(f[4]);
    fields = f;
  } catch {
    return 'malformed';
  }
  const publicKey = Buffer.from(fields[1] as Uint8Array);
  if (!verifySignature(publicKey, Buffer.concat([SIGNAL_CONTEXT, inner]), sig)) return 'bad_signature';
  return {
    from: nodeIdFromPublicKey(publicKey),
    publicKey,
    to: Buffer.from(fields[2] as Uint8Array),
    ts: fields[3] as number,
    nonce: Buffer.from(fields[4] as Uint8Array).toString('hex'),
    payload: fields[5],
  };
}

/** The bytes a node signs to register with the forwarder `forwarderId` at time `ts`. */
export function registerPayload(forwarderId: Uint8Array, ts: number): Buffer {
  return Buffer.concat([REGISTER_CONTEXT, forwarderId, Buffer.from(String(ts))]);
}

/** A node behind NAT whose current UDP mapping this forwarder knows. */
export interface Registration {
  nodeId: string;
  peer: Peer;
  ts: number;
  expiresAt: number;
}

/** The forwarder's bounded table of registrations. */
export class Registrations {
  readonly #byNode = new Map<string, Registration>();
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#byNode.size;
  }

  /**
   * Adds or refreshes; refuses an older timestamp (replayed REGISTER) and a full table. The same
   * timestamp from the same address is a retransmission (our answer was lost or late) and is
   * accepted again; from another address it is a replay.
   */
  put(reg: Registration, now = Date.now()): 'ok' | 'replay' | 'full' {
    const old = this.#byNode.get(reg.nodeId);
    const retransmission = old !== undefined && reg.ts === old.ts && reg.peer.host === old.peer.host && reg.peer.port === old.peer.port;
    if (old && old.expiresAt > now && reg.ts <= old.ts && !retransmission) return 'replay';
    if (!old && this.#byNode.size >= this.#max) {
      this.sweep(now);
      if (this.#byNode.size >= this.#max) return 'full';
    }
    this.#byNode.set(reg.nodeId, reg);
    return 'ok';
  }

  get(nodeId: string, now = Date.now()): Registration | undefined {
    const r = this.#byNode.get(nodeId);
    return r && r.expiresAt > now ? r : undefined;
  }

  sweep(now = Date.now()): void {
    for (const [id, r] of this.#byNode) if (r.expiresAt <= now) this.#byNode.delete(id);
  }
}
