import { defineStrategy, type Strategy } from '@dpc/core';
import type { RelayClient } from './relay-client.js';

export interface RelayStrategyOptions {
  client: RelayClient;
  /** Whether relays can be looked up (a directory is configured). Default true. */
  canDiscover?: boolean;
}

/**
 * Tier 5 for the orchestrator: the relays the peer lists in its endpoint record (where it holds
 * a reservation) first, then the best scored relays from the directory (the peer is then told
 * through the signaller). The hybrid rule (skip tier 5 while a Hub is up) is the orchestrator's.
 */
export function volunteerRelayStrategy(opts: RelayStrategyOptions): Strategy {
  return defineStrategy({
    name: 'volunteer_relay',
    isApplicable(peer) {
      if (peer.body.relays.length > 0 || (opts.canDiscover ?? true)) return { applicable: true };
      return { applicable: false, reason: 'peer lists no relay and no relay directory is configured' };
    },
    connect: (peer, { signal }) => opts.client.connect(peer.nodeId, { signal, relays: peer.body.relays }),
  });
}
