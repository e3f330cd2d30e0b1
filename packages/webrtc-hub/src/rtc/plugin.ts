import { type Connection, secondsToMs, type TierContext, type TierPlugin, timeoutSignal } from '@dpc/core';
import type { RTCIceServer } from 'werift';
import type { HubClient } from '../hub/client.js';
import { hubClientFromConfig } from '../hub/from-config.js';
import { iceServersFromConfig } from './ice-servers.js';
import { type RtcConnectionInfo, RtcPeer } from './rtc-peer.js';
import { hubWebRtcStrategy } from './strategy.js';

/** How long the plugin's start waits for the first Hub login, ms. */
const HUB_LOGIN_WAIT_MS = 3_000;

export interface WebRtcTierOptions {
  /**
   * Opens the link to the Hub for this node (started). Default: a HubClient to `[hub] url`
   * (`hubClientFromConfig`), counting into the node's counters.
   */
  connectHub?(ctx: TierContext): HubClient;
  /**
   * How long start waits for the first Hub login, ms (a short-lived `dpc-node send` then finds
   * tier 3 ready). A failed first attempt (refused, unreachable, TLS) ends the wait at once.
   * Default 3 000.
   */
  loginWaitMs?: number;
}

const unique = (servers: RTCIceServer[]) => {
  const seen = new Set<string>();
  return servers.filter((s) => {
    const k = JSON.stringify(s);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
};

/**
 * Tier 3 as a node plugin: with `enable_hub_webrtc` and a `[hub] url`, it logs in to the Hub,
 * reports `hubConnected` (so the orchestrator applies the hybrid rules), lists the Hub in the
 * endpoint record's `hub` part while logged in, offers the WebRTC strategy and hands inbound
 * sessions to `ctx.accept`. ICE servers of each attempt: `[webrtc] stun_servers`, `[turn]
 * servers / username / credential`, then what the Hub hands out (TURN with fresh credentials).
 * Deadline: `webrtc_timeout`. Start waits up to 3 s for the first login (less when the first attempt fails). Events: `webrtc` with
 * `kind` hub-up, hub-down, refused, session (an inbound session: peer, proto, candidate types).
 */
export function webRtcTier(o: WebRtcTierOptions = {}): TierPlugin {
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
      const hub =
        o.connectHub?.(ctx) ??
        (() => {
          const c = hubClientFromConfig(config, ctx.identity, { counters: ctx.counters }) as HubClient;
          c.start();
          return c;
        })();
      const configured = iceServersFromConfig(config);
      let handedOut: RTCIceServer[] = [];
      const peer = new RtcPeer({
        identity: ctx.identity,
        signaller: hub,
        // Fresh TURN credentials from the Hub for each attempt; the last ones if it does not answer.
        iceServers: async ({ signal }) => {
          const fromHub = await hub.iceServers({ signal }).then(
            (list) => {
              handedOut = list as RTCIceServer[];
              return handedOut;
            },
            () => handedOut,
          );
          return unique([...configured, ...fromHub]);
        },
        timeoutMs: secondsToMs(config.connection.webrtc_timeout),
        counters: ctx.counters,
        ...(ctx.allowLoopback && { additionalHostAddresses: ['127.0.0.1'] }),
      });
      peer.on('connection', (conn: Connection, info: RtcConnectionInfo) => {
        ctx.emit('webrtc', {
          kind: 'session',
          peer: conn.remoteNodeId,
          proto: info.proto,
          local: info.pair?.local,
          remote: info.pair?.remote,
        });
        ctx.accept(conn);
      });
      peer.on('refused', (e: { from: string; code: string; message: string }) => {
        log.warn('webrtc offer refused', { from: e.from, code: e.code, reason: e.message });
        ctx.emit('webrtc', { kind: 'refused', from: e.from, code: e.code });
      });
      const setUp = (up: boolean, url = hub.url, quiet = false) => {
        ctx.reportNetwork({ hubConnected: up });
        try {
          ctx.setEndpointPart('hub', up ? url : null);
        } catch (err) {
          log.warn('hub not listed in the endpoint record', { error: err });
        }
        if (!quiet) ctx.emit('webrtc', { kind: up ? 'hub-up' : 'hub-down', hub: url });
      };
      hub.on('up', (e) => {
        handedOut = e.iceServers as RTCIceServer[];
        log.info('logged in to the Hub', { url: e.url });
        setUp(true, e.url);
      });
      hub.on('down', (e) => {
        log.warn('lost the Hub', { url: hub.url, ...(e.error && { error: e.error.message }) });
        setUp(false);
      });
      hub.on('error', (err) => log.debug('Hub connect attempt failed', { url: hub.url, error: err.message }));
      setUp(hub.connected, hub.url, true);
      // A short-lived node (`dpc-node send`) should find the Hub up when it connects: wait a
      // little for the first login, but never fail the start on it (the client keeps trying).
      // A timer-held deadline: on Node 20, AbortSignal.any([…, AbortSignal.timeout()]) can be
      // garbage-collected before it fires, and this wait (a `dpc-node send` with the Hub down) hung.
      // The first failed attempt ends it too: with the Hub down, tier 3 is off at once (the client
      // keeps trying in the background, and hubConnected turns true when it logs in).
      const early = new AbortController();
      const onStop = () => early.abort(ctx.signal.reason);
      ctx.signal.addEventListener('abort', onStop, { once: true });
      const wait = timeoutSignal(o.loginWaitMs ?? HUB_LOGIN_WAIT_MS, 'waiting for the first Hub login', early.signal);
      let firstError: Error | undefined;
      const onError = (err: Error) => {
        firstError ??= err;
        early.abort(err);
      };
      hub.on('error', onError);
      await hub
        .waitConnected({ signal: wait.signal })
        .catch(() => {
          log.warn('not logged in to the Hub yet; tier 3 waits for it', {
            url: hub.url,
            ...(firstError && { error: firstError.message }),
          });
        })
        .finally(() => {
          hub.off('error', onError);
          ctx.signal.removeEventListener('abort', onStop);
          wait.clear();
        });
      return {
        strategy: hubWebRtcStrategy({ peer }),
        info: { enabled: true, hub: hub.url, ice_servers: configured.length },
        async stop() {
          await peer.stop();
          await hub.stop();
          ctx.reportNetwork({ hubConnected: false });
        },
      };
    },
  };
}

/** The plugin the node app loads when @dpc/webrtc-hub is installed. */
export const tierPlugin: TierPlugin = webRtcTier();
