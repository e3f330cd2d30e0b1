import { secondsToMs, type TierContext, type TierPlugin } from '@dpc/core';
import type { RTCIceServer } from 'werift';
import { iceServersFromConfig } from './ice-servers.js';
import { RtcPeer } from './rtc-peer.js';
import type { Signaller } from './signaller.js';
import { hubWebRtcStrategy } from './strategy.js';

/** A live link to a Hub as tier 3 uses it: a signaller that says when it is up or down. */
export interface HubLink extends Signaller {
  /** Whether the link is logged in right now. */
  readonly connected: boolean;
  on(event: 'signal', fn: (e: { from: string; payload: unknown }) => void): unknown;
  on(event: 'up' | 'down', fn: () => void): unknown;
  /** ICE servers the Hub hands out (TURN with short-lived credentials), when it does. */
  iceServers?(): RTCIceServer[];
  close(): Promise<void> | void;
}

export interface WebRtcTierOptions {
  /** Opens the link to `[hub] url` for this node. */
  connectHub(ctx: TierContext): Promise<HubLink>;
}

/**
 * Tier 3 as a node plugin: with `enable_hub_webrtc` and a `[hub] url`, it links to the Hub,
 * reports `hubConnected` (so the orchestrator applies the hybrid rules), lists the Hub in the
 * endpoint record's `hub` part while linked, offers the WebRTC strategy and hands inbound
 * sessions to `ctx.accept`. ICE servers: `[webrtc] stun_servers`, `[turn] servers / username /
 * credential`, then what the Hub hands out. Deadline: `webrtc_timeout`. Events: `webrtc` with
 * `kind` hub-up, hub-down, refused.
 */
export function webRtcTier(o: WebRtcTierOptions): TierPlugin {
  return {
    name: 'hub_webrtc',
    async start(ctx: TierContext) {
      const { config, log } = ctx;
      if (!config.connection.enable_hub_webrtc || !config.hub.url || !config.hub.auto_connect) {
        ctx.reportNetwork({ hubConnected: false });
        const why = !config.connection.enable_hub_webrtc
          ? 'enable_hub_webrtc = false'
          : !config.hub.url
            ? 'no [hub] url'
            : '[hub] auto_connect = false';
        return { info: { enabled: false, reason: why }, async stop() {} };
      }
      const hub = await o.connectHub(ctx);
      const configured = iceServersFromConfig(config);
      const peer = new RtcPeer({
        identity: ctx.identity,
        signaller: hub,
        iceServers: () => [...configured, ...(hub.iceServers?.() ?? [])],
        timeoutMs: secondsToMs(config.connection.webrtc_timeout),
        counters: ctx.counters,
        ...(ctx.allowLoopback && { additionalHostAddresses: ['127.0.0.1'] }),
      });
      peer.on('connection', (conn) => ctx.accept(conn));
      peer.on('refused', (e: { from: string; code: string; message: string }) => {
        log.warn('webrtc offer refused', { from: e.from, code: e.code, reason: e.message });
        ctx.emit('webrtc', { kind: 'refused', from: e.from, code: e.code });
      });
      const setUp = (up: boolean) => {
        ctx.reportNetwork({ hubConnected: up });
        try {
          ctx.setEndpointPart('hub', up ? config.hub.url : null);
        } catch (err) {
          log.warn('hub not listed in the endpoint record', { error: err });
        }
        ctx.emit('webrtc', { kind: up ? 'hub-up' : 'hub-down', hub: config.hub.url });
      };
      hub.on('up', () => setUp(true));
      hub.on('down', () => setUp(false));
      setUp(hub.connected);
      return {
        strategy: hubWebRtcStrategy({ peer }),
        info: { enabled: true, hub: config.hub.url, ice_servers: configured.length },
        async stop() {
          await peer.stop();
          await hub.close();
          ctx.reportNetwork({ hubConnected: false });
        },
      };
    },
  };
}
