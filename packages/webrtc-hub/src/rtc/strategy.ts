import { defineStrategy, type Strategy } from '@dpc/core';
import type { RtcPeer } from './rtc-peer.js';

export interface WebRtcStrategyOptions {
  peer: RtcPeer;
}

/**
 * Tier 3 for the orchestrator: a WebRTC data channel to the peer, signalled through the Hub, with
 * the @dpc/core TLS channel inside. Applicable when this node is on a Hub and the peer's endpoint
 * record names one (the Hubs of a deployment share routing through Redis).
 */
export function hubWebRtcStrategy(opts: WebRtcStrategyOptions): Strategy {
  return defineStrategy({
    name: 'hub_webrtc',
    isApplicable(peer, network) {
      if (!network.hubConnected) return { applicable: false, reason: 'this node is not connected to a Hub' };
      if (peer.body.hub === null) return { applicable: false, reason: 'peer is not connected to a Hub (no hub in its endpoint record)' };
      return { applicable: true };
    },
    connect: (peer, { signal }) => opts.peer.connect(peer.nodeId, { signal }),
    defaultNetwork: { hubConnected: true },
  });
}
