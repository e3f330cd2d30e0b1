import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DpcConfig, defaultConfig, type TierName } from '@dpc/core';
import { localAddresses } from '@dpc/direct';
import type { OrchestratorStats } from '@dpc/orchestrator';
import { createLogger, type LogLevel } from './log.js';
import { DpcNode } from './node.js';
import { loadTierPlugins } from './plugins.js';

interface Row {
  from: string;
  to: string;
  offered: string;
  tier: string;
  connectMs: number | null;
  delivered: boolean;
  note: string;
}

/**
 * The config of a node of a network on this machine (the demo's, the tests' in-process nodes):
 * ephemeral TCP and DHT ports, `seed` (or none: the bootstrap node), DHT deadlines of 5 s, no
 * API; `mutate` changes it further.
 */
export function localNodeConfig(seed: string | undefined, listenHost: string, mutate?: (c: DpcConfig) => void): DpcConfig {
  const c = defaultConfig();
  c.p2p.listen_port = 0;
  c.p2p.listen_host = listenHost;
  c.dht.port = 0;
  c.dht.seed_nodes = seed ? [seed] : [];
  c.dht.bootstrap_timeout = 5;
  c.dht.lookup_timeout = 5;
  c.api.enabled = false;
  mutate?.(c);
  return c;
}

function demoConfig(seed: string | undefined, mutate?: (c: DpcConfig) => void): DpcConfig {
  return localNodeConfig(seed, 'dual', (c) => {
    c.webrtc.stun_servers = [];
    c.connection.total_timeout = 20;
    mutate?.(c);
  });
}

/** `dpc-node demo`: a small network on this machine, every installed tier at work, a summary. */
export async function runDemo(opts: { json: boolean; logLevel: LogLevel }): Promise<number> {
  const logger = createLogger({ level: opts.logLevel });
  const base = await mkdtemp(join(tmpdir(), 'dpc-demo-'));
  const nodes: DpcNode[] = [];
  const say = (text: string) => {
    if (!opts.json) process.stdout.write(`${text}\n`);
  };
  const hasV6 = localAddresses().ipv6.includes('::1');
  try {
    say('dpc demo: a small dpc network on this machine (loopback addresses only)\n');
    const installed = (await loadTierPlugins()).plugins.map((p) => p.name);
    const mk = async (name: string, seed: string | undefined, mutate?: (c: DpcConfig) => void) => {
      const n = new DpcNode({
        dataDir: join(base, name),
        config: demoConfig(seed, mutate),
        logger: logger.child({ who: name }),
        allowLoopback: true,
        dhtHost: '127.0.0.1',
      });
      await n.start({ signal: AbortSignal.timeout(20_000) });
      nodes.push(n);
      say(`  started ${name.padEnd(9)} ${n.nodeId}  tcp ${n.listener.addresses().join(' ')}  dht udp ${n.dht.address?.port}`);
      return n;
    };
    const bootstrap = await mk('bootstrap', undefined);
    const seed = `127.0.0.1:${bootstrap.dht.address?.port}`;
    if (installed.includes('volunteer_relay')) {
      await mk('relay', seed, (c) => {
        c.relay.volunteer = true;
        c.relay.region = 'local';
      });
    }
    const alice = await mk('alice', seed);
    const bob = await mk('bob', seed);
    const carol = await mk('carol', seed);
    const dave = await mk('dave', seed);
    const erin = await mk('erin', seed);
    for (const n of nodes) await n.dht.announceFull({ signal: AbortSignal.timeout(10_000) }).catch(() => {});
    say(`\n  the DHT knows ${bootstrap.dht.stats().routingTableSize} nodes; every peer announced its signed endpoint record\n`);

    const rows: Row[] = [];
    const names = new Map(
      nodes.map((n, i) => [
        n.nodeId,
        ['bootstrap', ...(installed.includes('volunteer_relay') ? ['relay'] : []), 'alice', 'bob', 'carol', 'dave', 'erin'][i] as string,
      ]),
    );
    const exchange = async (from: DpcNode, to: DpcNode, tiers: TierName[] | undefined, note: string) => {
      const row: Row = {
        from: names.get(from.nodeId) ?? '?',
        to: names.get(to.nodeId) ?? '?',
        offered: tiers ? tiers.join(',') : 'all (racing)',
        tier: '-',
        connectMs: null,
        delivered: false,
        note,
      };
      const got = new Promise<string>((resolve) => {
        const on = (m: { from: string; text: string }) => {
          if (m.from === from.nodeId) {
            to.off('message', on);
            resolve(m.text);
          }
        };
        to.on('message', on);
      });
      try {
        const text = `hello ${row.to}, this is ${row.from} (${note})`;
        const r = await from.send(to.nodeId, text, { signal: AbortSignal.timeout(20_000), ...(tiers && { tiers }) });
        row.tier = r.tier;
        row.connectMs = Math.round(r.connectMs);
        row.delivered = (await Promise.race([got, new Promise<string>((r2) => setTimeout(() => r2(''), 2000))])) === text;
      } catch (err) {
        row.note = `${note}: ${(err as Error).message.split('\n')[0]}`;
      }
      rows.push(row);
      say(
        `  ${row.delivered ? '✓' : '✗'} ${row.from} → ${row.to} via ${row.tier}${row.connectMs !== null ? ` in ${row.connectMs} ms` : ''} — ${row.note}`,
      );
    };

    say('  exchanges (each tier forced once, then the orchestrator left to choose):');
    if (hasV6) await exchange(alice, bob, ['ipv6_direct'], 'tier 1: IPv6 direct over ::1');
    await exchange(carol, dave, ['ipv4_direct'], 'tier 2: IPv4 direct over 127.0.0.1');
    if (installed.includes('volunteer_relay'))
      await exchange(dave, erin, ['volunteer_relay'], 'tier 5: through the volunteer relay, end-to-end TLS');
    await exchange(erin, alice, undefined, 'racing: best tier wins');
    const skipped = (['hub_webrtc', 'udp_hole_punch', 'volunteer_relay', 'gossip'] as const).filter((t) => !installed.includes(t));
    if (skipped.length) say(`\n  not installed in this build (simply not offered): ${skipped.join(', ')}`);

    const stats: Record<string, OrchestratorStats> = Object.fromEntries(
      nodes.map((n) => [names.get(n.nodeId) ?? n.nodeId, n.orchestrator.stats()]),
    );
    const ok = rows.every((r) => r.delivered);
    if (opts.json) {
      process.stdout.write(
        `${JSON.stringify({ event: 'demo', ok, exchanges: rows, installed_tiers: ['ipv6_direct', 'ipv4_direct', ...installed], stats })}\n`,
      );
    } else {
      say('\n  summary');
      say(
        `  ${'from'.padEnd(6)} ${'to'.padEnd(6)} ${'tiers offered'.padEnd(16)} ${'tier used'.padEnd(16)} ${'connect'.padStart(8)}  delivered`,
      );
      for (const r of rows) {
        say(
          `  ${r.from.padEnd(6)} ${r.to.padEnd(6)} ${r.offered.padEnd(16)} ${r.tier.padEnd(16)} ${(r.connectMs === null ? '-' : `${r.connectMs} ms`).padStart(8)}  ${r.delivered ? 'yes' : 'NO'}`,
        );
      }
      const usage: Record<string, number> = {};
      for (const s of Object.values(stats)) for (const [t, n] of Object.entries(s.strategy_usage)) usage[t] = (usage[t] ?? 0) + n;
      say(
        `\n  orchestrator stats (all nodes): ${JSON.stringify({ successful_connections: Object.values(stats).reduce((a, s) => a + s.successful_connections, 0), strategy_usage: usage })}`,
      );
      say(ok ? '\n  every message was delivered and acknowledged.' : '\n  some exchanges failed (see above).');
    }
    return ok ? 0 : 1;
  } finally {
    for (const n of nodes.reverse()) await n.stop().catch(() => {});
    await rm(base, { recursive: true, force: true });
  }
}
