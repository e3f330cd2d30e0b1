import { type DpcConfig, type Identity, type Strategy, secondsToMs } from '@dpc/core';
import type { RelayDirectory, Signaller } from './directory.js';
import { createRelayClient, type RelayClient, type RelayClientOptions } from './relay-client.js';
import { createRelayServer } from './relay-server.js';
import type { RelayServer, RelayServerOptions } from './relay-server-options.js';
import { volunteerRelayStrategy } from './strategy.js';

/**
 * Tier 5 from a loaded config: the client and its strategy when `[relay] enabled` and
 * `[connection] enable_relays`, and a server when `[relay] volunteer` (not started).
 */
export function relayFromConfig(
  config: DpcConfig,
  identity: Identity,
  extra: { directory?: RelayDirectory; signaller?: Signaller } & Partial<RelayClientOptions> & Partial<RelayServerOptions> = {},
): { client?: RelayClient; strategy?: Strategy; server?: RelayServer } {
  const r = config.relay;
  const out: { client?: RelayClient; strategy?: Strategy; server?: RelayServer } = {};
  if (r.enabled && config.connection.enable_relays) {
    const client = createRelayClient({
      ...extra,
      identity,
      preferRegion: r.prefer_region,
      cacheTimeoutMs: secondsToMs(r.cache_timeout),
      relayTimeoutMs: secondsToMs(config.connection.relay_timeout),
    });
    out.client = client;
    out.strategy = volunteerRelayStrategy({ client, canDiscover: extra.directory !== undefined });
  }
  if (r.volunteer) {
    out.server = createRelayServer({
      ...extra,
      identity,
      maxPeers: r.max_peers,
      bandwidthLimitMbps: r.bandwidth_limit_mbps,
      region: r.region,
    });
  }
  return out;
}
