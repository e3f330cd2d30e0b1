/**
 * What tier 3 needs of the Hub: send a payload to a node by id, and receive payloads addressed
 * to this node with the sender's id as the Hub saw it (the Hub is not trusted with anything
 * else: every offer and answer carries a binding signed by the sender's node key).
 * `@dpc/webrtc-hub`'s HubClient satisfies it.
 */
export interface Signaller {
  send(to: string, payload: unknown, opts?: { signal?: AbortSignal }): Promise<void>;
  on(event: 'signal', fn: (e: { from: string; payload: unknown }) => void): unknown;
  off(event: 'signal', fn: (e: { from: string; payload: unknown }) => void): unknown;
}
