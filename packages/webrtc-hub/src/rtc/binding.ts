import { type Identity, nodeIdFromPublicKey, verifySignature } from '@dpc/core';
import { BINDING_MAX_SKEW_MS, BINDING_TTL_MS } from './constants.js';
import { RtcBindingError, RtcFingerprintMismatchError } from './errors.js';
import type { RtcAnswer, RtcOffer, RtcProtocol } from './messages.js';

/** Domain separation tag of the signed text (a browser builds the same text). */
export const BINDING_TAG = 'dpc-rtc-binding/1';

export interface BindingFields {
  kind: 'offer' | 'answer';
  sid: string;
  /** Signer's node id. */
  from: string;
  /** The node the signer means to reach. */
  to: string;
  /** `sha-256 AB:CD:…` of the signer's DTLS certificate, as in its SDP (normalized). */
  fingerprint: string;
  /** For an answer: the offer's protocol, echoed. */
  proto: RtcProtocol;
  /** Expiry, ms since the epoch. */
  exp: number;
}

/** The exact text signed: one field a line, in this order. */
export function bindingText(f: BindingFields): string {
  return [BINDING_TAG, f.kind, f.sid, f.from, f.to, f.fingerprint, f.proto, String(f.exp)].join('\n');
}

/**
 * The DTLS fingerprint an SDP declares, normalized to `sha-256 AB:CD:…`. Every fingerprint line
 * must carry the same sha-256 value (a second, different one would let an attacker's
 * certificate match too), so anything else throws.
 */
export function sdpFingerprint(sdp: string): string {
  const found = new Set<string>();
  for (const line of sdp.split(/\r?\n/)) {
    const m = /^a=fingerprint:(\S+)\s+([0-9A-Fa-f:]+)\s*$/.exec(line);
    if (m) found.add(`${(m[1] as string).toLowerCase()} ${(m[2] as string).toUpperCase()}`);
    else if (line.startsWith('a=fingerprint:')) throw new RtcFingerprintMismatchError('SDP has an unreadable fingerprint line');
  }
  if (found.size === 0) throw new RtcFingerprintMismatchError('SDP declares no DTLS fingerprint');
  if (found.size > 1) throw new RtcFingerprintMismatchError(`SDP declares ${found.size} different DTLS fingerprints`);
  const fp = [...found][0] as string;
  if (!/^sha-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}$/.test(fp)) throw new RtcFingerprintMismatchError(`SDP fingerprint is not sha-256: ${fp}`);
  return fp;
}

/** Signs a binding with the node key: `{ pk, exp, sig }` for the offer or answer message. */
export function signBinding(
  identity: Identity,
  f: Omit<BindingFields, 'from' | 'exp'>,
  now = Date.now(),
): { fp: string; pk: string; exp: number; sig: string } {
  const exp = now + BINDING_TTL_MS;
  const text = bindingText({ ...f, from: identity.nodeId, exp });
  return {
    fp: f.fingerprint,
    pk: identity.publicKey.toString('base64url'),
    exp,
    sig: identity.sign(Buffer.from(text)).toString('base64url'),
  };
}

export interface VerifyBindingOptions {
  kind: 'offer' | 'answer';
  /** Sender as the signaller reported it. */
  from: string;
  /** This node. */
  to: string;
  /** The node this side wanted to reach (offerer checking an answer). */
  expectedSigner?: string;
  proto: RtcProtocol;
  now?: number;
}

/**
 * Checks an offer's or answer's binding: the key is the sender's node id (and the wanted node's,
 * when one is wanted), the signature covers this session, sender, this node, the SDP's own
 * fingerprint, the protocol and an expiry not passed. Returns the verified signer's key and
 * fingerprint; throws RtcBindingError or RtcFingerprintMismatchError.
 */
export function verifyBinding(
  m: RtcOffer | RtcAnswer,
  o: VerifyBindingOptions,
): { publicKey: Buffer; nodeId: string; fingerprint: string } {
  const publicKey = Buffer.from(m.pk, 'base64url');
  const nodeId = nodeIdFromPublicKey(publicKey);
  if (o.expectedSigner !== undefined && nodeId !== o.expectedSigner) {
    throw new RtcBindingError(`${o.kind} is signed by ${nodeId}, not by ${o.expectedSigner} whom this node called`);
  }
  if (nodeId !== o.from) throw new RtcBindingError(`${o.kind} from ${o.from} is signed by ${nodeId}`);
  const now = o.now ?? Date.now();
  if (m.exp < now - BINDING_MAX_SKEW_MS) throw new RtcBindingError(`${o.kind} binding expired ${now - m.exp} ms ago`);
  if (m.exp > now + BINDING_TTL_MS + BINDING_MAX_SKEW_MS) throw new RtcBindingError(`${o.kind} binding expires too far ahead`);
  const text = bindingText({ kind: o.kind, sid: m.sid, from: nodeId, to: o.to, fingerprint: m.fp, proto: o.proto, exp: m.exp });
  if (!verifySignature(publicKey, Buffer.from(text), Buffer.from(m.sig, 'base64url'))) {
    throw new RtcBindingError(`${o.kind} binding signature is not valid for session ${m.sid}, ${nodeId} → ${o.to}`);
  }
  const fingerprint = sdpFingerprint(m.sdp);
  if (fingerprint !== m.fp) {
    throw new RtcFingerprintMismatchError(
      `${o.kind} SDP carries fingerprint ${fingerprint}, but ${nodeId} signed ${m.fp} (SDP swapped on the way)`,
    );
  }
  return { publicKey, nodeId, fingerprint };
}
