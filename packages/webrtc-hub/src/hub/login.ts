import { type Identity, isNodeId, nodeIdFromPublicKey, verifySignature } from '@dpc/core';
import { HUB_LOGIN_CONTEXT } from './constants.js';

/** What the Hub asks a node to sign. */
export interface LoginChallenge {
  /** The Hub's URL as it names itself; the node signs only a challenge naming the Hub it dialled. */
  hub: string;
  /** 32 random bytes, base64, fresh for each connection. */
  nonce: string;
  /** ms since the epoch; a login after it is refused. */
  expires_at: number;
}

/**
 * The bytes a node signs to log in: a context string (so the signature means nothing elsewhere),
 * the Hub's URL, the connection's nonce, the expiry and the node id, one per line. Plain text, so
 * a browser (WebCrypto) builds the same bytes.
 */
export function loginBytes(c: LoginChallenge, nodeId: string): Buffer {
  return Buffer.from(`${HUB_LOGIN_CONTEXT}\n${c.hub}\n${c.nonce}\n${c.expires_at}\n${nodeId}`, 'utf8');
}

/** Signs a challenge: the node's answer (`login` message fields). */
export function signLogin(identity: Identity, c: LoginChallenge): { node_id: string; public_key: string; signature: string } {
  return {
    node_id: identity.nodeId,
    public_key: identity.publicKey.toString('base64'),
    signature: identity.sign(loginBytes(c, identity.nodeId)).toString('base64'),
  };
}

/**
 * Checks a login against the challenge this connection was given. Returns the reason it is
 * refused, or undefined when it is good. Pure: `now` is passed in.
 */
export function checkLogin(
  c: LoginChallenge,
  login: { node_id: string; public_key: string; signature: string },
  now: number,
): string | undefined {
  if (now > c.expires_at) return 'the login challenge expired';
  if (!isNodeId(login.node_id)) return 'not a node id';
  const pub = Buffer.from(login.public_key, 'base64');
  if (pub.length !== 32) return 'the public key is not 32 bytes';
  if (nodeIdFromPublicKey(pub) !== login.node_id) return 'the node id is not the hash of the public key';
  const sig = Buffer.from(login.signature, 'base64');
  if (sig.length !== 64) return 'the signature is not 64 bytes';
  if (!verifySignature(pub, loginBytes(c, login.node_id), sig)) return 'the signature does not verify for this challenge';
  return undefined;
}

/** A URL in the one form both sides compare (`new URL(u).href`); the input unchanged when it is no URL. */
export function normalizeHubUrl(u: string): string {
  try {
    return new URL(u).href;
  } catch {
    return u;
  }
}
