import { type DpcConfig, hostPort, loadOrCreateIdentity, parseExternalAddress, TIERS, type TierName } from '@dpc/core';
import { createDht, type DiscoveredEndpoint, dhtOptionsFromConfig } from '@dpc/dht';
import { isGlobalIPv6, localAddresses } from '@dpc/direct';
import { tierEnabled } from '@dpc/orchestrator';
import { jsonReplacer } from './api.js';
import type { Logger } from './log.js';
import { loadTierPlugins, TIER_PACKAGES, type TierPackage } from './plugins.js';

/** One line of the doctor's table: ok true ✓, false ✗, null neutral. */
export interface DoctorCheck {
  name: string;
  value: string;
  ok: boolean | null;
}

/** What the doctor learnt, from which the one-line verdict is drawn. */
export interface DoctorFacts {
  seedsConfigured: number;
  seedsAnswering: number;
  globalIPv6: string[];
  listenPort: number;
  /** The external IPv4 address as DHT nodes see it, with how many saw the same mapping. */
  external?: { ip: string; local: boolean; samples: number; mappingVaries: boolean };
  configuredExternal?: string;
  installed: Set<TierName>;
  enabled: Set<TierName>;
  relaysFound: number | undefined;
}

/**
 * The doctor's verdict in one line, in the spirit of `tailscale netcheck`: how peers will reach
 * this node from where it stands.
 */
export function verdict(f: DoctorFacts): string {
  if (f.seedsConfigured === 0) return 'no [dht] seed_nodes: this node would start a new network as its bootstrap node';
  if (f.seedsAnswering === 0)
    return `offline: none of the ${f.seedsConfigured} configured seed(s) answered; check [dht] seed_nodes and the network`;
  const v6 = f.enabled.has('ipv6_direct') && f.globalIPv6.length > 0 ? (f.globalIPv6[0] as string) : undefined;
  const v6Text = v6 ? ` and on IPv6 ${hostPort(v6, f.listenPort)}` : '';
  const relays = !f.installed.has('volunteer_relay')
    ? 'relays are not installed (@dpc/relay)'
    : f.relaysFound
      ? `${f.relaysFound} relay(s) found`
      : 'no relay found yet';
  if (f.configuredExternal)
    return `reachable directly on ${f.configuredExternal} ([p2p] external_address, if the router forwards the port)${v6Text}`;
  const ext = f.external;
  if (ext?.local) return `reachable directly on ${hostPort(ext.ip, f.listenPort)} (no NAT)${v6Text}`;
  if (v6) return `reachable directly on IPv6 ${hostPort(v6, f.listenPort)}; IPv4 peers behind NAT will use relays (${relays})`;
  if (!ext) return `behind NAT (its type not learnt: no DHT node told this node its address): peers will use relays (${relays})`;
  if (ext.mappingVaries) return `behind a symmetric NAT (${ext.ip}): peers will use relays (${relays})`;
  const punch = f.installed.has('udp_hole_punch') && f.enabled.has('udp_hole_punch');
  if (ext.samples < 2)
    return `behind NAT (${ext.ip}; its type not learnt: only one DHT node answered): peers will use ${punch ? 'hole punching or ' : ''}relays (${relays})`;
  return punch
    ? `behind a NAT that keeps one mapping (${ext.ip}): peers will punch through it (tier 4), else use relays (${relays})`
    : `behind a NAT that keeps one mapping (${ext.ip}): hole punching would work but @dpc/holepunch is not installed; peers will use relays (${relays})`;
}

/**
 * `dpc-node doctor`: what this node can do from where it stands. It joins the DHT with its own
 * identity on a free port and only reads: it announces nothing, saves no contacts and starts
 * no tier.
 */
export async function runDoctor(opts: {
  config: DpcConfig;
  dataDir: string;
  json: boolean;
  logger: Logger;
  allowLoopback: boolean;
  tierPackages?: readonly TierPackage[];
}): Promise<number> {
  const cfg = opts.config;
  const rows: DoctorCheck[] = [];
  const row = (name: string, value: string, ok: boolean | null) => rows.push({ name, value, ok });
  const addrs = localAddresses();
  const v6 = addrs.ipv6.filter(isGlobalIPv6);
  row('global IPv6', v6.join(', ') || 'none (tier 1 cannot be used)', v6.length > 0);
  const v4 = addrs.ipv4.filter((a) => !a.ip.startsWith('127.'));
  row('local IPv4', v4.map((a) => `${a.ip}/${a.prefix}`).join(', ') || 'none', v4.length > 0);
  const identity = await loadOrCreateIdentity(opts.dataDir);
  row('node id', identity.nodeId, null);

  const loaded = await loadTierPlugins(opts.tierPackages ?? TIER_PACKAGES);
  const installed = new Set<TierName>(['ipv6_direct', 'ipv4_direct', ...loaded.plugins.map((p) => p.name)]);
  const enabled = new Set<TierName>(TIERS.filter((t) => tierEnabled(cfg.connection, t)));
  const facts: DoctorFacts = {
    seedsConfigured: cfg.dht.seed_nodes.length,
    seedsAnswering: 0,
    globalIPv6: v6,
    listenPort: cfg.p2p.listen_port,
    installed,
    enabled,
    relaysFound: undefined,
  };
  const configured = parseExternalAddress(cfg.p2p.external_address);
  if (configured) facts.configuredExternal = hostPort(configured.ip, configured.port ?? cfg.p2p.listen_port);

  // A DHT node of our own on a free port: no dataDir (no contacts saved), nothing announced.
  const dht = createDht({
    ...dhtOptionsFromConfig(cfg, identity),
    port: 0,
    allowLoopback: opts.allowLoopback,
    allowPrivate: opts.allowLoopback,
  });
  let code = 0;
  try {
    if (cfg.dht.seed_nodes.length === 0) {
      row('DHT', 'no [dht] seed_nodes: this node would be a bootstrap node', null);
    } else {
      try {
        await dht.start({ signal: AbortSignal.timeout((cfg.dht.bootstrap_timeout + 5) * 1000) });
      } catch (err) {
        opts.logger.debug('joining the DHT failed', { error: err });
      }
      // Each configured seed is asked on its own: the count is of the seeds in the config.
      const configuredSeeds = dhtOptionsFromConfig(cfg, identity).seeds ?? [];
      const seeds = configuredSeeds.map((s) => hostPort(s.host, s.port));
      const answers = await Promise.all(
        configuredSeeds.map((s) =>
          dht.ping(s, { signal: AbortSignal.timeout(cfg.dht.bootstrap_timeout * 1000) }).then(
            () => true,
            () => false,
          ),
        ),
      );
      facts.seedsAnswering = answers.filter(Boolean).length;
      const silent = seeds.filter((_, i) => !answers[i]);
      const known = dht.contacts().length;
      if (facts.seedsAnswering === 0) {
        row('DHT', `not reachable: none of ${seeds.length} seed(s) answered (${seeds.join(', ')})`, false);
        code = 1;
      } else {
        row(
          'DHT',
          `reachable: ${facts.seedsAnswering} of ${seeds.length} seed(s) answer${silent.length ? ` (silent: ${silent.join(', ')})` : ''}; ${known} node(s) known`,
          true,
        );
      }
    }
    if (facts.seedsAnswering > 0) {
      let ep: DiscoveredEndpoint | undefined;
      let why = '';
      try {
        ep = await dht.discoverEndpoint({ signal: AbortSignal.timeout(5000) });
      } catch (err) {
        why = (err as Error).message;
      }
      if (ep) {
        const local = [...addrs.ipv4.map((a) => a.ip), ...addrs.ipv6].includes(ep.ip);
        const mappings = new Set(ep.samples.map((s) => hostPort(s.ip, s.port)));
        facts.external = { ip: ep.ip, local, samples: ep.samples.length, mappingVaries: mappings.size > 1 };
        row('external IPv4', `${ep.ip} (seen by ${ep.samples.length} DHT node(s)${local ? '; a local address: no NAT' : ''})`, true);
        row(
          'NAT mapping',
          local
            ? 'none (no NAT)'
            : ep.samples.length < 2
              ? 'not learnt: only one DHT node answered'
              : mappings.size > 1
                ? `varies by destination (${[...mappings].join(', ')}): a symmetric NAT`
                : `the same for ${ep.samples.length} DHT nodes (${[...mappings][0]}): endpoint-independent`,
          local || ep.samples.length < 2 ? null : mappings.size === 1,
        );
        // Tier 4's classifier (hyperdht's rules) on the same answers, with which peer saw which port.
        const hp = (await import('@dpc/holepunch').catch(() => undefined)) as typeof import('@dpc/holepunch') | undefined;
        if (hp) {
          const own = [...addrs.ipv4.map((a) => a.ip), ...addrs.ipv6];
          const nat = hp.classifyNat(
            ep.samples.map((x) => ({ ip: x.ip, port: x.port, responder: x.responder.nodeId })),
            own,
            true,
          );
          row('NAT type', `${nat.type} (seen as: ${nat.evidence})`, nat.type === 'unknown' ? null : nat.type !== 'blocked');
        }
      } else {
        row('external IPv4', `not learnt although the DHT answers: ${why}`, false);
      }
      const relays = await dht
        .findRelays({ signal: AbortSignal.timeout(5000), ...(cfg.relay.prefer_region && { region: cfg.relay.prefer_region }) })
        .catch(() => []);
      facts.relaysFound = relays.length;
      row(
        'relays found',
        relays.length
          ? relays
              .map(
                (r) => `${hostPort(r.body.ip, r.body.port)} (${r.body.region || 'no region'}, ${r.body.current_peers}/${r.body.max_peers})`,
              )
              .join('; ')
          : 'none',
        relays.length > 0,
      );
    }
    row(
      'Hub',
      cfg.hub.url
        ? `configured (${cfg.hub.url})${installed.has('hub_webrtc') ? '' : '; tier 3 (@dpc/webrtc-hub) is not installed'}`
        : 'none configured (tiers 4–6 work without it)',
      null,
    );
    for (const t of TIERS) {
      const missing = loaded.missing.find((m) => m.tier === t);
      const broken = loaded.broken.find((m) => m.tier === t);
      const state = installed.has(t)
        ? 'installed'
        : missing
          ? `not installed (${missing.package})`
          : broken
            ? `broken install (${broken.package}: ${broken.error.message})`
            : 'not installed';
      row(`tier ${TIERS.indexOf(t) + 1} ${t}`, `${state}, ${enabled.has(t) ? 'enabled' : 'disabled'}`, installed.has(t) && enabled.has(t));
    }
  } finally {
    await dht.stop();
  }
  const line = verdict(facts);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ checks: rows, verdict: line }, jsonReplacer)}\n`);
  } else {
    const w = Math.max(...rows.map((r) => r.name.length));
    for (const { name, value, ok } of rows) process.stdout.write(`${ok === null ? ' ' : ok ? '✓' : '✗'} ${name.padEnd(w)}  ${value}\n`);
    process.stdout.write(`\n${line}\n`);
  }
  return code;
}
