import { readFileSync } from 'node:fs';
import type { Counters, DpcConfig, Identity, TierContext } from '@dpc/core';
import { createHubClient, type HubClient, type HubClientOptions } from './client.js';
import { HubConfigError } from './errors.js';
import { createHubServer } from './server.js';
import type { HubServer, HubServerOptions } from './server-options.js';

/** The contents of the PEM file a `[hub]` key names (typed error naming the key when unreadable). */
function pemFile(key: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new HubConfigError(`[hub] ${key} = ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * A Hub from a node's config: `[hub] host`, `port`, `url` (the URL nodes dial, named in the
 * challenges), `redis_url`, `cluster_secret`, `turn_secret`, `turn_servers`, `turn_ttl`, `tls_cert` + `tls_key` (serve
 * `wss://`), and `[webrtc] stun_servers` as the STUN servers handed out.
 */
export function hubServerFromConfig(config: DpcConfig, extra: Partial<HubServerOptions> & { counters?: Counters } = {}): HubServer {
  const h = config.hub;
  if ((h.tls_cert === '') !== (h.tls_key === ''))
    throw new HubConfigError('[hub] tls_cert and [hub] tls_key go together: set both or neither');
  return createHubServer({
    ...(h.tls_cert && { tls: { cert: pemFile('tls_cert', h.tls_cert), key: pemFile('tls_key', h.tls_key) } }),
    host: h.host === 'dual' ? '::' : h.host,
    port: h.port,
    ...(h.url && { url: h.url }),
    ...(h.redis_url && { redisUrl: h.redis_url }),
    ...(h.cluster_secret && { clusterSecret: h.cluster_secret }),
    ...(h.turn_secret && { turnSecret: h.turn_secret }),
    turnServers: h.turn_servers,
    turnTtlS: h.turn_ttl,
    stunServers: config.webrtc.stun_servers,
    ...extra,
  });
}

/**
 * A Hub client from `[hub] url` (and `[hub] ca`, the CA of a `wss://` Hub's certificate);
 * undefined when no URL is configured or `[hub] auto_connect` is off.
 */
export function hubClientFromConfig(config: DpcConfig, identity: Identity, extra: Partial<HubClientOptions> = {}): HubClient | undefined {
  if (!config.hub.url || !config.hub.auto_connect) return undefined;
  return createHubClient({ url: config.hub.url, identity, ...(config.hub.ca && { ca: pemFile('ca', config.hub.ca) }), ...extra });
}

/**
 * For the tier 3 plugin: connects to `[hub] url` and keeps the node informed — `hubConnected`
 * through `ctx.reportNetwork` (the orchestrator skips tier 3 while it is false, and tiers 4–5
 * while it is true, in sequential mode), and the `hub` part of the endpoint record (the URL while
 * logged in, null otherwise) so peers know where to signal this node. Stops with `ctx.signal`.
 */
export function startHubLink(ctx: TierContext, extra: Partial<HubClientOptions> = {}): HubClient | undefined {
  const client = hubClientFromConfig(ctx.config, ctx.identity, { counters: ctx.counters, ...extra });
  if (!client) return undefined;
  const setHubPart = (value: string | null) => {
    try {
      ctx.setEndpointPart('hub', value);
    } catch (err) {
      ctx.log.warn('cannot put the Hub URL in the endpoint record', { url: client.url, error: (err as Error).message });
    }
  };
  client.on('up', ({ url }) => {
    ctx.log.info('logged in to the Hub', { url });
    ctx.reportNetwork({ hubConnected: true });
    setHubPart(url);
  });
  client.on('down', ({ error }) => {
    ctx.log.warn('lost the Hub', { url: client.url, ...(error && { error: error.message }) });
    ctx.reportNetwork({ hubConnected: false });
    setHubPart(null);
  });
  client.on('error', (err) => ctx.log.debug('Hub connect attempt failed', { url: client.url, error: err.message }));
  ctx.signal.addEventListener('abort', () => void client.stop(), { once: true });
  client.start();
  return client;
}
