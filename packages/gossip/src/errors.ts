import { DpcError, type DpcErrorOptions } from '@dpc/core';

/** Why an incoming gossip message was refused. Every refusal is counted as `gossip_refused_<reason>`. */
export type GossipRefusal = 'forged' | 'tampered' | 'replayed' | 'expired' | 'over_hop' | 'oversized' | 'malformed' | 'undecryptable';

/** Base of the errors a gossip message check throws; `reason` names the counter. */
export class GossipMessageError extends DpcError {
  readonly reason: GossipRefusal;
  constructor(code: string, reason: GossipRefusal, message: string, options?: DpcErrorOptions) {
    super(code, message, options);
    this.reason = reason;
  }
}

/** The signature does not verify with the claimed source's key, or the key is not the source's. */
export class GossipForgedError extends GossipMessageError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_GOSSIP_FORGED', 'forged', message, options);
  }
}
/** The signed content does not hash to the message id: changed after signing. */
export class GossipTamperedError extends GossipMessageError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_GOSSIP_TAMPERED', 'tampered', message, options);
  }
}
/** The message was already delivered or receipted (its tombstone is live). */
export class GossipReplayedError extends GossipMessageError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_GOSSIP_REPLAYED', 'replayed', message, options);
  }
}
/** The message's lifetime is over, or it claims to be created in the future. */
export class GossipExpiredError extends GossipMessageError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_GOSSIP_EXPIRED', 'expired', message, options);
  }
}
/** The message has travelled more hops than its max_hops allows. */
export class GossipOverHopError extends GossipMessageError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_GOSSIP_OVER_HOP', 'over_hop', message, options);
  }
}
/** The encoded message is larger than the limit. */
export class GossipOversizedError extends GossipMessageError {
  constructor(size: number, max: number) {
    super('DPC_GOSSIP_OVERSIZED', 'oversized', `gossip message is ${size} bytes, the limit is ${max}`);
  }
}
/** Not a gossip message (bad encoding, missing or out-of-range fields). */
export class GossipMalformedError extends GossipMessageError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_GOSSIP_MALFORMED', 'malformed', message, options);
  }
}
/** The sealed payload does not open with this node's key (not for us, or altered). */
export class GossipUndecryptableError extends GossipMessageError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_GOSSIP_UNDECRYPTABLE', 'undecryptable', message, options);
  }
}
/** The store has no room for the message (it is not acknowledged, so the previous hop keeps it). */
export class GossipStoreFullError extends DpcError {
  constructor(message: string) {
    super('DPC_GOSSIP_STORE_FULL', message, { retryable: true });
  }
}
/** The gossip service is stopped. */
export class GossipStoppedError extends DpcError {
  constructor() {
    super('DPC_GOSSIP_STOPPED', 'gossip is stopped');
  }
}
