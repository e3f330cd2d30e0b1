/**
 * nftables rulesets for lab routers and lossy links (pure functions: text in, text out).
 *
 * Every router drops unsolicited inbound packets in its forward and input filter hooks, as home
 * routers do. This matters beyond realism: a packet that is accepted gets a confirmed conntrack
 * entry, and Linux then picks another external port for a later outbound flow that would clash
 * with it, silently turning a cone NAT into a symmetric one. Dropped packets leave no entry.
 */

export interface RouterRules {
  /** Interface towards the internet (or the carrier NAT). */
  wan: string;
  /** Interface (bridge) of the LAN. */
  lan: string;
  /** IPv4 NAT on the WAN: none, endpoint-independent (`masquerade`) or random ports per flow. */
  nat: 'none' | 'cone' | 'symmetric';
  /** Drop every UDP packet crossing or reaching the router. */
  blockUdp?: boolean;
  /** Forward inbound IPv6 that no LAN host asked for. Default false (dropped). */
  openInboundIpv6?: boolean;
  /** Port forwards to LAN hosts (DNAT on the WAN). */
  portForwards?: Array<{ protocol: 'tcp' | 'udp'; port: number; toIpv4: string; toPort: number }>;
}

/** The whole ruleset of one router (one `inet` table named `dpclab`). */
export function routerRuleset(r: RouterRules): string {
  const wan = JSON.stringify(r.wan);
  const lan = JSON.stringify(r.lan);
  const masquerade = r.nat === 'none' ? [] : [`oifname ${wan} meta nfproto ipv4 masquerade${r.nat === 'symmetric' ? ' fully-random' : ''}`];
  const dnat = (r.portForwards ?? []).map(
    (f) => `iifname ${wan} meta nfproto ipv4 ${f.protocol} dport ${f.port} dnat ip to ${f.toIpv4}:${f.toPort}`,
  );
  const udp = r.blockUdp ? ['meta l4proto udp drop'] : [];
  const chain = (name: string, hook: string, priority: string, policy: string, rules: string[]) =>
    [`  chain ${name} {`, `    type ${hook} priority ${priority}; policy ${policy};`, ...rules.map((l) => `    ${l}`), '  }'].join('\n');
  return [
    'table inet dpclab {',
    chain('prerouting', 'nat hook prerouting', 'dstnat', 'accept', dnat),
    chain('postrouting', 'nat hook postrouting', 'srcnat', 'accept', masquerade),
    chain('forward', 'filter hook forward', 'filter', 'drop', [
      ...udp,
      'ct state invalid drop',
      'ct state established,related accept',
      `iifname ${lan} oifname ${wan} accept`,
      ...(r.portForwards?.length ? [`iifname ${wan} ct status dnat accept`] : []),
      ...(r.openInboundIpv6 ? [`iifname ${wan} oifname ${lan} meta nfproto ipv6 accept`] : []),
    ]),
    chain('input', 'filter hook input', 'filter', 'drop', [
      ...udp,
      'ct state invalid drop',
      'ct state established,related accept',
      'iifname "lo" accept',
      `iifname ${lan} accept`,
      // Neighbour discovery must work on both sides; it is not a "connection".
      'icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert } accept',
    ]),
    '}',
    '',
  ].join('\n');
}

/**
 * Random loss on packets entering `ifname` (netdev ingress hook). Put one on each end of a link
 * for loss in both directions. ARP and neighbour discovery pass, so addresses stay resolvable.
 */
export function lossRuleset(ifname: string, lossPercent: number): string {
  const pct = Math.round(Math.min(100, Math.max(0, lossPercent)));
  const table = `dpclab_loss_${ifname.replace(/[^a-zA-Z0-9_]/g, '_')}`;
  return [
    `table netdev ${table} {`,
    '  chain ingress {',
    `    type filter hook ingress device ${JSON.stringify(ifname)} priority 0; policy accept;`,
    '    ether type arp accept',
    '    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept',
    `    numgen random mod 100 < ${pct} drop`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/**
 * The internet namespace's own stack: it is the default gateway of every internet host and
 * silently drops what is not addressed to it, as the real internet drops packets to private
 * addresses (no ICMP error, so a dial times out rather than failing at once).
 */
export function sinkRuleset(bridge: string): string {
  return [
    'table inet dpclab_sink {',
    '  chain prerouting {',
    '    type filter hook prerouting priority -300; policy accept;',
    // Only what the bridge hands up to this stack (bridged traffic between hosts is not ours).
    `    iifname ${JSON.stringify(bridge)} fib daddr type != { local, broadcast, multicast } drop`,
    '  }',
    '}',
    '',
  ].join('\n');
}
