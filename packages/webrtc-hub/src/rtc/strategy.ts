import {
  type Applicability,
  type Connection,
  type NetworkState,
  type SignedRecord,
  type Strategy,
  TierNotApplicableError,
  throwIfAborted,
  tierPriority,
} from '@dpc/core';
import type { RtcPeer } from './rtc-peer.js';

export interface WebRtcStrategyOptions {
  peer: RtcPeer;
}

class HubWebRtcStrategy implements Strategy {
  readonly name = 'hub_webrtc' as const;
  readonly priority = tierPriority('hub_webrtc');
  readonly #peer: RtcPeer;

  constructor(o: WebRtcStrategyOptions) {
    this.#peer = o.peer;
  }

  isApplicable(peer: SignedRecord<'endpoint'>, network: NetworkState): Applicability {
    if (!network.hubConnected) return { applicable: false, reason: 'this node is not connected to a Hub' };
    if (peer.body.hub === null) return { applicable: false, reason: 'peer is not connected to a Hub (no hub in its endpoint record)' };
    return { applicable: true };
  }

  async connect(peer: SignedRecord<'endpoint'>, opts: { signal: AbortSignal; network?: NetworkState }): Promise<Connection> {
    throwIfAborted(opts.signal);
    const verdict = this.isApplicable(peer, opts.network ?? { hubConnected: true });
    if (!verdict.applicable) throw new TierNotApplicableError(this.name, verdict.reason);
    return this.#peer.connect(peer.nodeId, { signal: opts.signal });
  }
}

/**
 * Tier 3 for the orchestrator: a WebRTC data channel to the peer, signalled through the Hub, with
 * the @dpc/core TLS channel inside. Applicable when this node is on a Hub and the peer's endpoint
 * record names one (the Hubs of a deployment share routing through Redis).
 */
export function hubWebRtcStrategy(opts: WebRtcStrategyOptions): Strategy {
  return new HubWebRtcStrategy(opts);
}
