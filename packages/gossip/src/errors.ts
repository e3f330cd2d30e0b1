import { DpcError, type DpcErrorOptions, errorClass } from '@dpc/core';

/** Why an incoming gossip message was refused. Every refusal is counted as `gossip_refused_<reason>`. */
export type GossipRefusal = 'forged' | 'tampered' | 'replayed' | 'expired' | 'over_hop' | 'oversized' | 'malformed' | 'undecryptable';

/** Base of the errors a gossip message check throws; `reason` names the counter (`DPC_GOSSIP_OVER_HOP` → `over_hop`). */
export class GossipMessageError extends DpcError {
  readonly reason: GossipRefusal;
  constructor(code: string, message: string, options?: DpcErrorOptions) {
    super(code, message, options);
    this.reason = code.slice('DPC_GOSSIP_'.length).toLowerCase() as GossipRefusal;
  }
}

/** A refusal of an incoming gossip message: `DPC_GOSSIP_<REASON>`, a GossipMessageError. */
const refusal = <const R extends GossipRefusal>(reason: R) =>
  errorClass(`DPC_GOSSIP_${reason.toUpperCase() as Uppercase<R>}`, { base: GossipMessageError });

/** The signature does not verify with the claimed source's key, or the key is not the source's. */
export class GossipForgedError extends refusal('forged') {}
/** The signed content does not hash to the message id: changed after signing. */
export class GossipTamperedError extends refusal('tampered') {}
/** The message was already delivered or receipted (its tombstone is live). */
export class GossipReplayedError extends refusal('replayed') {}
/** The message's lifetime is over, or it claims to be created in the future. */
export class GossipExpiredError extends refusal('expired') {}
/** The message has travelled more hops than its max_hops allows. */
export class GossipOverHopError extends refusal('over_hop') {}
/** The encoded message is larger than the limit. */
export class GossipOversizedError extends errorClass('DPC_GOSSIP_OVERSIZED', {
  base: GossipMessageError,
  message: (size: number, max: number) => `gossip message is ${size} bytes, the limit is ${max}`,
}) {}
/** Not a gossip message (bad encoding, missing or out-of-range fields). */
export class GossipMalformedError extends refusal('malformed') {}
/** The sealed payload does not open with this node's key (not for us, or altered). */
export class GossipUndecryptableError extends refusal('undecryptable') {}
/** The store has no room for the message (it is not acknowledged, so the previous hop keeps it). */
export class GossipStoreFullError extends errorClass('DPC_GOSSIP_STORE_FULL', { retryable: true }) {}
/** The gossip service is stopped. */
export class GossipStoppedError extends errorClass('DPC_GOSSIP_STOPPED', { message: () => 'gossip is stopped' }) {}
