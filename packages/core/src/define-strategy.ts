import { TierNotApplicableError } from './errors.js';
import type { SignedRecord } from './records.js';
import { throwIfAborted } from './signal.js';
import { type Applicability, type Connection, type NetworkState, type Strategy, type TierName, tierPriority } from './tiers.js';

/** What a tier tells `defineStrategy`: its name, its applicability rule and how it reaches a peer. */
export interface StrategyDefinition<Name extends TierName = TierName> {
  /** The tier (the spec's name); the priority follows from it. */
  name: Name;
  /** Decides, without waiting, whether this tier can be tried for the peer. */
  isApplicable(peer: SignedRecord<'endpoint'>, network: NetworkState): Applicability;
  /**
   * Reaches the peer: called only with a signal not yet aborted, after `isApplicable` said yes
   * for the same `network`.
   */
  connect(peer: SignedRecord<'endpoint'>, opts: { signal: AbortSignal; network: NetworkState }): Promise<Connection>;
  /** The network state assumed when connect() is given none. Default `{ hubConnected: false }`. */
  defaultNetwork?: NetworkState;
  /** This tier's deadline for the peer when not its `<tier>_timeout` (see `Strategy.deadlineMs`). */
  deadlineMs?(peer: SignedRecord<'endpoint'>, network: NetworkState): number | undefined;
}

/**
 * A tier's `Strategy` from its rule and its dial: `connect` rejects at once with the signal's
 * error when it is already aborted, and with `TierNotApplicableError` (`DPC_TIER_NOT_APPLICABLE`,
 * the rule's reason) when the tier does not apply, so the tier's own code only reaches the peer.
 *
 * @example
 * ```ts
 * import { defineStrategy } from '@dpc/core';
 *
 * export const relayStrategy = (client: RelayClient) =>
 *   defineStrategy({
 *     name: 'volunteer_relay',
 *     isApplicable: (peer) =>
 *       peer.body.relays.length > 0 ? { applicable: true } : { applicable: false, reason: 'peer lists no relay' },
 *     connect: (peer, { signal }) => client.connect(peer.nodeId, { signal }),
 *   });
 * ```
 */
export function defineStrategy<Name extends TierName>(def: StrategyDefinition<Name>): Strategy & { readonly name: Name } {
  const fallback: NetworkState = def.defaultNetwork ?? { hubConnected: false };
  const deadline = def.deadlineMs?.bind(def);
  return {
    name: def.name,
    priority: tierPriority(def.name),
    isApplicable: (peer, network) => def.isApplicable(peer, network),
    ...(deadline && { deadlineMs: (peer: SignedRecord<'endpoint'>, network: NetworkState) => deadline(peer, network) }),
    async connect(peer, opts) {
      throwIfAborted(opts.signal);
      const network = opts.network ?? fallback;
      const verdict = def.isApplicable(peer, network);
      if (!verdict.applicable) throw new TierNotApplicableError(def.name, verdict.reason);
      return def.connect(peer, { signal: opts.signal, network });
    },
  };
}
