import { type DpcConfig, TIERS } from '@dpc/core';
import { isGlobalIPv6, localAddresses } from '@dpc/direct';
import { tierEnabled } from '@dpc/orchestrator';
import { jsonReplacer } from './api.js';
import type { Logger } from './log.js';
import { DpcNode } from './node.js';

/** `dpc-node doctor`: what this node can do from where it stands. */
export async function runDoctor(opts: {
  config: DpcConfig;
  dataDir: string;
  json: boolean;
  logger: Logger;
  allowLoopback: boolean;
}): Promise<number> {
  const rows: Array<[string, string, boolean | null]> = [];
  const addrs = localAddresses();
  const v6 = addrs.ipv6.filter(isGlobalIPv6);
  rows.push(['global IPv6', v6.join(', ') || 'none (tier 1 cannot be used)', v6.length > 0]);
  const v4 = addrs.ipv4.filter((a) => !a.ip.startsWith('127.'));
  rows.push(['local IPv4', v4.map((a) => `${a.ip}/${a.prefix}`).join(', ') || 'none', v4.length > 0]);
  const cfg = structuredClone(opts.config);
  cfg.api.enabled = false;
  cfg.p2p.listen_port = 0;
  cfg.dht.port = 0;
  const node = new DpcNode({ dataDir: opts.dataDir, config: cfg, logger: opts.logger, allowLoopback: opts.allowLoopback });
  let code = 0;
  let nat: { type: string; evidence: string } | undefined;
  node.on('tier-event', (e: { tier: string; event: string; fields: Record<string, unknown> }) => {
    if (e.tier === 'udp_hole_punch' && e.event === 'nat') nat = { type: String(e.fields.type), evidence: String(e.fields.evidence) };
  });
  try {
    await node.start({ signal: AbortSignal.timeout((cfg.dht.bootstrap_timeout + 5) * 1000) });
    const st = node.dht.stats();
    rows.push(['node id', node.nodeId, null]);
    rows.push([
      'DHT',
      cfg.dht.seed_nodes.length === 0
        ? 'no seed_nodes: this node would be a bootstrap node'
        : `reachable, ${st.routingTableSize} node(s) known`,
      cfg.dht.seed_nodes.length === 0 ? null : st.routingTableSize > 0,
    ]);
    const ext = node.dht.endpointBody().ipv4_external;
    rows.push(['external IPv4', ext.length ? ext.map((e) => e.ip).join(', ') : 'same as local, or unknown (no DHT peers to ask)', null]);
    if (node.installedTiers().includes('udp_hole_punch')) {
      // Tier 4 measures the NAT of the DHT socket from DISCOVER_ENDPOINT answers of distinct DHT peers.
      const until = performance.now() + (cfg.hole_punch.stun_timeout * 3 + 2) * 1000;
      while (!nat && node.dht.contacts().length > 0 && performance.now() < until) await new Promise((r) => setTimeout(r, 100));
      rows.push([
        'NAT type',
        nat ? `${nat.type} (seen as: ${nat.evidence})` : 'not measured: no DHT peer answered DISCOVER_ENDPOINT',
        nat ? nat.type !== 'blocked' : null,
      ]);
    } else rows.push(['NAT type', 'not measured: tier 4 (@dpc/holepunch) is not installed', null]);
    rows.push([
      'Hub',
      cfg.hub.url
        ? `configured (${cfg.hub.url}); tier 3 (@dpc/webrtc-hub) is not installed`
        : 'none configured (tiers 4–6 work without it)',
      null,
    ]);
    if (node.dht.contacts().length > 0) {
      const relays = await node.dht
        .findRelays({ signal: AbortSignal.timeout(5000), ...(cfg.relay.prefer_region && { region: cfg.relay.prefer_region }) })
        .catch(() => []);
      rows.push([
        'relays found',
        relays.length
          ? relays
              .map((r) => `${r.body.ip}:${r.body.port} (${r.body.region || 'no region'}, ${r.body.current_peers}/${r.body.max_peers})`)
              .join('; ')
          : 'none',
        relays.length > 0,
      ]);
    }
    const installed = new Set(node.installedTiers());
    for (const t of TIERS) {
      const enabled = tierEnabled(cfg.connection, t);
      const missing = node.missingTiers.find((m) => m.tier === t);
      rows.push([
        `tier ${TIERS.indexOf(t) + 1} ${t}`,
        `${installed.has(t) ? 'installed' : missing ? `not installed (${missing.package})` : 'not installed'}, ${enabled ? 'enabled' : 'disabled'}`,
        installed.has(t) && enabled,
      ]);
    }
  } catch (err) {
    rows.push(['DHT', `not reachable: ${(err as Error).message}`, false]);
    code = 1;
  } finally {
    await node.stop();
  }
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ checks: rows.map(([name, value, ok]) => ({ name, value, ok })) }, jsonReplacer)}\n`);
  } else {
    const w = Math.max(...rows.map((r) => r[0].length));
    for (const [name, value, ok] of rows) process.stdout.write(`${ok === null ? ' ' : ok ? '✓' : '✗'} ${name.padEnd(w)}  ${value}\n`);
  }
  return code;
}
