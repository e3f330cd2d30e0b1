import { Counters, defaultConfig, generateIdentity, type NetworkState, type TierContext, type TierDht } from '@dpc/core';
import { startHubLink } from '@dpc/webrtc-hub';
import { describe, expect, it } from 'vitest';
import { freePort, onCleanup, startHub } from './hub-helpers.js';

async function until(pred: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A tier context as dpc-node builds it, recording what the tier reports (the DHT is not used here). */
function context(url: string) {
  const config = defaultConfig();
  config.hub.url = url;
  const shutdown = new AbortController();
  onCleanup(() => shutdown.abort());
  const reported: Array<Partial<NetworkState>> = [];
  const parts: Array<[string, unknown]> = [];
  const quiet = () => {};
  const ctx: TierContext = {
    name: 'hub_webrtc',
    identity: generateIdentity(),
    config,
    dht: {} as TierDht,
    counters: new Counters(),
    log: { debug: quiet, info: quiet, warn: quiet, error: quiet },
    allowLoopback: true,
    signal: shutdown.signal,
    accept: () => {},
    setEndpointPart: (part, value) => void parts.push([part, value]),
    reportNetwork: (p) => void reported.push(p),
    emit: () => {},
  };
  return { ctx, reported, parts, shutdown };
}

describe('startHubLink: the tier 3 plugin keeps the node informed of the Hub', () => {
  it('reports hubConnected true / false / true and the endpoint record part `hub` as the Hub comes and goes', async () => {
    const port = await freePort();
    const hub = await startHub({ port });
    const { ctx, reported, parts, shutdown } = context(hub.url);
    const client = startHubLink(ctx, { backoff: { minMs: 100, maxMs: 300 } });
    expect(client).toBeDefined();
    await until(() => reported.length === 1);
    expect(reported).toEqual([{ hubConnected: true }]);
    expect(parts).toEqual([['hub', hub.url]]);
    await hub.stop();
    await until(() => reported.length === 2, 3_000);
    expect(reported[1]).toEqual({ hubConnected: false });
    expect(parts[1]).toEqual(['hub', null]);
    await startHub({ port });
    await until(() => reported.length === 3, 5_000);
    expect(reported[2]).toEqual({ hubConnected: true });
    shutdown.abort();
    await until(() => client?.connected === false);
  });

  it('does nothing without [hub] url', () => {
    const { ctx, reported } = context('');
    expect(startHubLink(ctx)).toBeUndefined();
    expect(reported).toEqual([]);
  });
});
