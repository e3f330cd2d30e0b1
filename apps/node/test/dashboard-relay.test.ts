// Relay load on the dashboard and in /metrics: real nodes in one process (DHT over UDP, direct TCP,
// the real @dpc/relay plugin on loopback), the volunteer's API server started as `dpc-node start` does.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DpcConfig } from '@dpc/core';
import { tierPlugin as relayPlugin } from '@dpc/relay';
import { afterEach, describe, expect, it } from 'vitest';
import { type ApiServer, startApi } from '../src/api.js';
import type { Overview } from '../src/dashboard-state.js';
import { launchChromium, parseMetrics, sample, scrape } from './dashboard-helpers.js';
import { apiClient, quietLogger as quiet, startInProcessNode, until } from './harness.js';

const apis: ApiServer[] = [];
afterEach(async () => {
  for (const a of apis.splice(0)) await a.close(); // before the nodes (harness.ts) stop
});

/** A started in-process node (harness.ts) with the relay plugin. */
const node = (seed: string | undefined, mutate?: (c: DpcConfig) => void) =>
  startInProcessNode(seed, { plugins: [relayPlugin], ...(mutate && { mutate }) });

describe('dpc-node dashboard and /metrics on a relay volunteer', () => {
  it('show the relayed session, its bytes and the volunteering flag; the sender shows its session upgraded from the relay to direct', async () => {
    const boot = await node(undefined);
    const seed = `127.0.0.1:${boot.dht.address?.port}`;
    const relay = await node(seed, (c) => {
      c.relay.volunteer = true;
      c.relay.port = 0;
      c.relay.region = 'test';
    });
    const token = 'a'.repeat(64);
    const api = await startApi(relay, { host: '127.0.0.1', port: 0, token, logger: quiet });
    apis.push(api);
    const metricsUrl = api.dashboardUrl.replace(/dashboard$/, 'metrics');
    const idle = parseMetrics(await scrape(metricsUrl, token));
    expect(sample(idle.samples, 'dpc_relay_volunteering')).toBe(1);
    expect(sample(idle.samples, 'dpc_relay_sessions_total')).toBe(0);
    expect(sample(idle.samples, 'dpc_relay_active_sessions')).toBe(0);

    const bob = await node(seed, (c) => {
      c.relay.reserve = 'always';
    });
    const alice = await node(seed);
    await until('bob listing the relay', async () => {
      const r = await alice.dht.findPeer(bob.nodeId, { signal: AbortSignal.timeout(5000) });
      return r.body.relays.some((x) => x.node_id === relay.nodeId) ? r : undefined;
    });
    expect(await alice.send(bob.nodeId, 'x'.repeat(4000), { tiers: ['volunteer_relay'] })).toMatchObject({ tier: 'volunteer_relay' });

    const busy = parseMetrics(await scrape(metricsUrl, token));
    expect(sample(busy.samples, 'dpc_relay_sessions_total')).toBe(1);
    expect(sample(busy.samples, 'dpc_relay_active_sessions')).toBe(1);
    expect(sample(busy.samples, 'dpc_relay_forwarded_bytes_total')).toBeGreaterThan(4000);

    // the dashboard's data: the API's `overview`
    const client = await apiClient(api.url, await tokenDir(token));
    const o = (await client.call('overview')).result as Overview;
    expect(o.nodeId).toBe(relay.nodeId);
    expect(o.relay).toMatchObject({ volunteering: true, activeSessions: 1, sessionsTotal: 1 });
    expect(o.relay.bytesForwarded).toBeGreaterThan(4000);
    client.close();

    // The volunteer's dashboard in Chromium: the relay box shows the load.
    const browser = await launchChromium();
    const page = await browser.newPage();
    await page.goto(`${api.dashboardUrl}?token=${token}`);
    await page.waitForFunction(() => document.getElementById('relay-active')?.textContent === '1', { timeout: 20_000 });
    expect(await page.$eval('#relay-volunteer', (e) => e.textContent)).toBe('yes');
    expect(await page.$eval('#relay-total', (e) => e.textContent)).toBe('1');
    expect(await page.$eval('#relay-bytes', (e) => e.textContent)).toMatch(/^\d+(\.\d)? (KiB|B)$/);

    // Alice moves the session to tier 2: an upgrade, on her dashboard, in her stats and /metrics.
    const aliceToken = 'b'.repeat(64);
    const aliceApi = await startApi(alice, { host: '127.0.0.1', port: 0, token: aliceToken, logger: quiet });
    apis.push(aliceApi);
    expect(await alice.send(bob.nodeId, 'direct now', { tiers: ['ipv4_direct'] })).toMatchObject({ tier: 'ipv4_direct' });
    expect(alice.orchestrator.stats().upgrades).toBe(1);
    const am = parseMetrics(await scrape(aliceApi.dashboardUrl.replace(/dashboard$/, 'metrics'), aliceToken));
    expect(sample(am.samples, 'dpc_session_upgrades_total')).toBe(1);
    await page.goto(`${aliceApi.dashboardUrl}?token=${aliceToken}`);
    await page.waitForSelector(`tr[data-peer="${bob.nodeId}"]`, { timeout: 20_000 });
    const row = await page.$$eval(`tr[data-peer="${bob.nodeId}"] td`, (tds) => tds.map((t) => t.textContent));
    expect(row[1]).toBe('ipv4_direct');
    expect(row[6]).toBe('volunteer_relay → ipv4_direct');
    expect(await page.$eval('#stat-upgrades', (e) => e.textContent)).toBe('1');
    await page.close();

    // the session ends with alice's node: the active count drops, the total stays
    await alice.stop();
    await until('the relayed session to end', async () => {
      const m = parseMetrics(await scrape(metricsUrl, token));
      return sample(m.samples, 'dpc_relay_active_sessions') === 0 ? m : undefined;
    });
    const after = parseMetrics(await scrape(metricsUrl, token));
    expect(sample(after.samples, 'dpc_relay_sessions_total')).toBe(1);
  });
});

/** apiClient reads the token from a data directory: one holding this token. */
async function tokenDir(token: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dpc-dash-token-'));
  await writeFile(join(dir, 'api-token'), `${token}\n`);
  return dir;
}
