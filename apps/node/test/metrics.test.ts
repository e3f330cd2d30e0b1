import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isSecurityCounter } from '../src/metrics.js';
import { apiNode, eventsClient, parseMetrics, sample, scrape } from './dashboard-helpers.js';
import { apiClient, seedFrom } from './harness.js';

describe('dpc-node /metrics', () => {
  it('serves the spec stats, connect-time histograms, DHT size and counters in the Prometheus text format, and they move after a send', async () => {
    const root = await mkdtemp(join(tmpdir(), 'dpc-metrics-'));
    const a = await apiNode(root, 'a');
    const b = await apiNode(root, 'b', seedFrom(a.dht));

    const before = parseMetrics(await scrape(a.metrics, a.token));
    expect(before.types.get('dpc_strategy_usage_total')).toBe('counter');
    expect(before.types.get('dpc_connect_duration_seconds')).toBe('histogram');
    expect(before.types.get('dpc_sessions')).toBe('gauge');
    expect(before.types.get('process_cpu_user_seconds_total')).toBe('counter');
    expect(sample(before.samples, 'dpc_node_info', { node_id: a.nodeId })).toBe(1);
    expect(sample(before.samples, 'dpc_strategy_usage_total', { tier: 'ipv4_direct' })).toBe(0);
    expect(sample(before.samples, 'dpc_connections_successful_total')).toBe(0);
    expect(sample(before.samples, 'dpc_connect_duration_seconds_count', { tier: 'ipv4_direct' })).toBeUndefined();
    expect(sample(before.samples, 'dpc_relay_volunteering')).toBe(0);

    const atB = await eventsClient(b.api, b.token);
    const client = await apiClient(a.api, a.dataDir);
    const sent = await client.call('send', { to: b.nodeId, text: 'counted' });
    expect(sent.error, JSON.stringify(sent)).toBeUndefined();
    await atB.next('message', (d) => d.text === 'counted' && d.from === a.nodeId);
    // the ack round trip is observed once the acknowledgement is back: the send's answer waited for it
    const after = parseMetrics(await scrape(a.metrics, a.token));
    expect(sample(after.samples, 'dpc_strategy_usage_total', { tier: 'ipv4_direct' })).toBe(1);
    expect(sample(after.samples, 'dpc_connections_successful_total')).toBe(1);
    expect(sample(after.samples, 'dpc_connection_attempts_total')).toBe(1);
    expect(sample(after.samples, 'dpc_tier_successes_total', { tier: 'ipv4_direct' })).toBe(1);
    expect(sample(after.samples, 'dpc_sessions', { state: 'connected', tier: 'ipv4_direct' })).toBe(1);
    expect(sample(after.samples, 'dpc_dht_routing_table_size')).toBeGreaterThanOrEqual(1);
    // histograms: one connect and one ack round trip, cumulative buckets ending at +Inf = count
    for (const h of ['dpc_connect_duration_seconds', 'dpc_message_ack_rtt_seconds']) {
      const count = sample(after.samples, `${h}_count`, { tier: 'ipv4_direct' });
      expect(count, h).toBe(1);
      expect(sample(after.samples, `${h}_sum`, { tier: 'ipv4_direct' })).toBeGreaterThan(0);
      const buckets = after.samples.filter((s) => s.name === `${h}_bucket` && s.labels.tier === 'ipv4_direct');
      expect(buckets.length).toBeGreaterThan(5);
      for (let i = 1; i < buckets.length; i++)
        expect((buckets[i] as { value: number }).value).toBeGreaterThanOrEqual((buckets[i - 1] as { value: number }).value);
      expect(buckets.at(-1)?.labels.le).toBe('+Inf');
      expect(buckets.at(-1)?.value).toBe(count);
    }
    // the node's Counters (frames, handshakes) moved too
    const countersBefore = before.samples.filter((s) => s.name === 'dpc_counter_total').length;
    expect(after.samples.filter((s) => s.name === 'dpc_counter_total').length).toBeGreaterThan(countersBefore);

    // a refused request is a security counter, visible at the next scrape
    const unauthorizedBefore = sample(after.samples, 'dpc_counter_total', { name: 'api_unauthorized', security: 'true' }) ?? 0;
    expect((await fetch(a.metrics, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    const third = parseMetrics(await scrape(a.metrics, a.token));
    expect(sample(third.samples, 'dpc_counter_total', { name: 'api_unauthorized', security: 'true' })).toBe(unauthorizedBefore + 1);
    client.close();
    atB.close();
  });

  it('takes the token as ?token= too, and refuses a scrape without it', async () => {
    const root = await mkdtemp(join(tmpdir(), 'dpc-metrics-'));
    const a = await apiNode(root, 'a');
    const noToken = await fetch(a.metrics);
    expect(noToken.status).toBe(401);
    expect(noToken.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await noToken.text()).not.toMatch(/dpc_/);
    const q = await fetch(`${a.metrics}?token=${a.token}`);
    expect(q.status).toBe(200);
    expect(parseMetrics(await q.text()).samples.length).toBeGreaterThan(20);
  });

  it('labels refused, rejected and malformed input as security counters', () => {
    const table: Array<[string, boolean]> = [
      ['api_unauthorized', true],
      ['api_foreign_origin', true],
      ['rejects.rate_limited', true],
      ['handshakes_failed', true],
      ['handshake_errors_DPC_TLS', true],
      ['frame_errors_DPC_FRAME_TOO_LARGE', true],
      ['connections_refused_source_limit', true],
      ['session_wrong_peer', true],
      ['session_bad_frames', true],
      ['api_socket_errors_WS_ERR_INVALID_UTF8', true],
      ['frames_in', false],
      ['bytes_forwarded', false],
      ['lookups.node', false],
      ['sessions_opened', false],
    ];
    for (const [name, security] of table) expect(isSecurityCounter(name), name).toBe(security);
  });
});
