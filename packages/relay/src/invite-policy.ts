import type { RelayRef } from './directory.js';
import { publicAddressProblem } from './public-address.js';
import { TokenBucket } from './token-bucket.js';

/**
 * Why a relay invite (a DHT SIGNAL saying "I wait for you at this relay") is not answered.
 * Stable strings, counted as `invites_refused_<code>` and emitted as `invite-refused`.
 * - `unauthorized`: the sender is refused by `authorize` (or is ourselves)
 * - `sender_rate_limited`: this sender sent more invites than its rate allows
 * - `rate_limited`: invites from all senders are over the total rate
 * - `address`: the relay address is a hostname, or loopback / private without `allowLoopback` / `allowPrivate`
 * - `busy`: `maxInvitesInFlight` invites are being answered already
 * - `unknown_relay`: no relay offer in the directory has this node id, ip and port
 */
export const INVITE_REFUSAL_CODES = ['unauthorized', 'sender_rate_limited', 'rate_limited', 'address', 'busy', 'unknown_relay'] as const;
export type InviteRefusalCode = (typeof INVITE_REFUSAL_CODES)[number];

export interface InviteRefusal {
  code: InviteRefusalCode;
  reason: string;
}

/**
 * Where an invite may send us: an IP address (never a hostname: resolving it would let the
 * sender pick any host), public unless loopback / private addresses are allowed.
 */
export function inviteAddressProblem(ip: string, policy: { allowLoopback?: boolean; allowPrivate?: boolean }): string | undefined {
  return publicAddressProblem(ip, policy);
}

/** True when an offer (or a relay we already know) names the same relay at the same address. */
export function sameRelay(a: RelayRef, b: RelayRef): boolean {
  return a.node_id === b.node_id && a.ip === b.ip && a.port === b.port;
}

/** Per-sender and total token buckets for invites; senders beyond `maxSenders` are forgotten least recently seen first. */
export class InviteRateLimit {
  readonly #senders = new Map<string, TokenBucket>();
  readonly #total: TokenBucket;
  readonly #o: { perSenderPerSecond: number; senderBurst: number; maxSenders: number; now?: () => number };

  constructor(o: {
    perSenderPerSecond: number;
    senderBurst: number;
    perSecond: number;
    burst: number;
    maxSenders: number;
    now?: () => number;
  }) {
    this.#o = o;
    this.#total = new TokenBucket({ ratePerSec: o.perSecond, burst: o.burst, ...(o.now && { now: o.now }) });
  }

  /** Takes one invite from `from`; the refusal when over a rate (nothing taken then from the total). */
  take(from: string): InviteRefusal | undefined {
    let b = this.#senders.get(from);
    if (b) this.#senders.delete(from);
    else
      b = new TokenBucket({ ratePerSec: this.#o.perSenderPerSecond, burst: this.#o.senderBurst, ...(this.#o.now && { now: this.#o.now }) });
    this.#senders.set(from, b);
    while (this.#senders.size > this.#o.maxSenders) this.#senders.delete(this.#senders.keys().next().value as string);
    if (!b.tryTake(1)) return { code: 'sender_rate_limited', reason: `more than ${b.ratePerSec} invites/s from ${from}` };
    if (!this.#total.tryTake(1)) return { code: 'rate_limited', reason: `more than ${this.#total.ratePerSec} invites/s in total` };
    return undefined;
  }
}
