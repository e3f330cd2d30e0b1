/**
 * What tier 3 needs of a signalling path: send an opaque payload to a node, and receive the
 * payloads others send. The Hub client implements it; `@dpc/core`'s TierDht is shaped alike.
 * The signaller authenticates senders (the Hub checks the login) but can read and change
 * payloads: anything that must not be forged is signed end to end inside the payload.
 */
export interface Signaller {
  /** Resolves when the payload reached the peer's connection; rejects with a typed error (`DPC_HUB_PEER_OFFLINE`, ...). */
  send(to: string, payload: unknown, opts?: { signal?: AbortSignal }): Promise<void>;
  on(event: 'signal', fn: (e: SignalEvent) => void): unknown;
  off(event: 'signal', fn: (e: SignalEvent) => void): unknown;
}

/** A payload from another node; `from` is the node id the Hub checked at its login. */
export interface SignalEvent {
  from: string;
  payload: unknown;
}
