import {
  type Applicability,
  type Connection,
  type NetworkState,
  type SignedRecord,
  type Strategy,
  TierNotApplicableError,
  tierPriority,
} from '@dpc/core';
import type { RelayClient } from './relay-client.js';

export interface RelayStrategyOptions {
  client: RelayClient;
  /** Whether relays can be looked up (a directory is configured). Default true. */
  canDiscover?: boolean;
}

class VolunteerRelayStrategy implements Strategy {
  readonly name = 'volunteer_relay' as const;
  readonly priority = tierPriority('volunteer_relay');
  readonly #o: RelayStrategyOptions;

  constructor(o: RelayStrategyOptions) {
    this.#o = o;
  }

  isApplicable(peer: SignedRecord<'endpoint'>, _network: NetworkState): Applicability {
    if (peer.body.relays.length > 0 || (this.#o.canDiscover ?? true)) return { applicable: true };
    return { applicable: false, reason: 'peer lists no relay and no relay directory is configured' };
  }

  async connect(peer: SignedRecord<'endpoint'>, opts: { signal: AbortSignal; network?: NetworkState }): Promise<Connection> {
    const verdict = this.isApplicable(peer, opts.network ?? { hubConnected: false });
    if (!verdict.applicable) throw new TierNotApplicableError(this.name, verdict.reason);
    return this.#o.client.connect(peer.nodeId, { signal: opts.signal, relays: peer.body.relays });
  }
}

/**
 * Tier 5 for the orchestrator: the relays the peer lists in its endpoint record (where it holds
 * a reservation) first, then the best scored relays from the directory (the peer is then told
 * through the signaller). The hybrid rule (skip tier 5 while a Hub is up) is the orchestrator's.
 */
export function volunteerRelayStrategy(opts: RelayStrategyOptions): Strategy {
  return new VolunteerRelayStrategy(opts);
}
