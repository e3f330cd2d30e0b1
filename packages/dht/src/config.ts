import { ConfigError, type DpcConfig, type Identity, secondsToMs } from '@dpc/core';
import type { DhtOptions, DhtPeer } from './types.js';

/** Parses a `host:port` seed (`[v6]:port` for IPv6). */
export function parseSeed(text: string): DhtPeer {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text.trim()) ?? /^([^:]+):(\d+)$/.exec(text.trim());
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ConfigError({ section: 'dht', key: 'seed_nodes', value: text, expected: 'host:port' });
  }
  return { host: m[1] as string, port };
}

/** DHT options from the `[dht]` section of a DpcConfig (seconds become milliseconds). */
export function dhtOptionsFromConfig(config: DpcConfig, identity: Identity): DhtOptions {
  const d = config.dht;
  return {
    identity,
    port: d.port,
    host: d.host,
    k: d.k,
    alpha: d.alpha,
    seeds: d.seed_nodes.map(parseSeed),
    bootstrapTimeoutMs: secondsToMs(d.bootstrap_timeout),
    lookupTimeoutMs: secondsToMs(d.lookup_timeout),
    bucketRefreshIntervalMs: secondsToMs(d.bucket_refresh_interval),
    announceIntervalMs: secondsToMs(d.announce_interval),
  };
}
