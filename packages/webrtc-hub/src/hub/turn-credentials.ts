import { createHmac } from 'node:crypto';
import type { IceServer } from './messages.js';

/**
 * TURN credentials in coturn's REST format (`use-auth-secret` / `static-auth-secret`): the
 * username is `<expiry unix seconds>:<node id>`, the password base64(HMAC-SHA1(secret, username)).
 * coturn checks the HMAC and refuses the username once its expiry has passed.
 */
export function turnCredentials(
  secret: string,
  nodeId: string,
  ttlS: number,
  nowMs: number,
): { username: string; credential: string; expiresAt: number } {
  const expiry = Math.floor(nowMs / 1000) + Math.max(1, Math.floor(ttlS));
  const username = `${expiry}:${nodeId}`;
  const credential = createHmac('sha1', secret).update(username).digest('base64');
  return { username, credential, expiresAt: expiry * 1000 };
}

/** The ICE servers the Hub hands a node: STUN as configured, TURN with fresh REST credentials. */
export function iceServersFor(
  o: { stunServers: readonly string[]; turnServers: readonly string[]; turnSecret?: string; turnTtlS: number },
  nodeId: string,
  nowMs: number,
): IceServer[] {
  const out: IceServer[] = [];
  if (o.stunServers.length > 0) out.push({ urls: [...o.stunServers] });
  if (o.turnServers.length > 0 && o.turnSecret) {
    const c = turnCredentials(o.turnSecret, nodeId, o.turnTtlS, nowMs);
    out.push({ urls: [...o.turnServers], username: c.username, credential: c.credential });
  }
  return out;
}
