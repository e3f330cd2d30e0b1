import { lossRuleset, planAddresses, routerRuleset, sinkRuleset, type Topology, validateTopology } from '@dpc/netlab';
import { describe, expect, it } from 'vitest';

const bad: Array<[string, unknown, RegExp]> = [
  ['not an object', 42, /object/],
  ['duplicate names', { publicHosts: [{ name: 'a' }], routers: [{ name: 'a', kind: 'cone', lan: [{ name: 'b' }] }] }, /duplicate/],
  ['uppercase name', { publicHosts: [{ name: 'Alice' }] }, /name must match/],
  ['reserved name', { publicHosts: [{ name: 'inet' }] }, /name must match/],
  ['unknown kind', { routers: [{ name: 'r', kind: 'full-cone', lan: [{ name: 'h' }] }] }, /kind must be one of/],
  ['empty lan', { routers: [{ name: 'r', kind: 'cone', lan: [] }] }, /at least one host/],
  ['ipv6-only without ipv6', { routers: [{ name: 'r', kind: 'ipv6-only', lan: [{ name: 'h' }] }] }, /needs ipv6/],
  ['public lan subnet', { routers: [{ name: 'r', kind: 'cone', lanSubnet: '8.8.8.0/24', lan: [{ name: 'h' }] }] }, /lanSubnet/],
  ['negative delay', { publicHosts: [{ name: 'a', link: { delayMs: -1 } }] }, /delayMs/],
  ['loss over 100', { publicHosts: [{ name: 'a', link: { lossPercent: 101 } }] }, /at most 100/],
  ['jitter over delay', { publicHosts: [{ name: 'a', link: { delayMs: 5, jitterMs: 10 } }] }, /jitterMs/],
  [
    'forward to unknown host',
    { routers: [{ name: 'r', kind: 'cone', lan: [{ name: 'h' }], portForwards: [{ protocol: 'tcp', port: 80, host: 'x' }] }] },
    /unknown LAN host/,
  ],
  [
    'forward on double NAT',
    { routers: [{ name: 'r', kind: 'double-nat', lan: [{ name: 'h' }], portForwards: [{ protocol: 'tcp', port: 80, host: 'h' }] }] },
    /one-level IPv4 NAT/,
  ],
  [
    'carrier name clash',
    { publicHosts: [{ name: 'rcg' }], routers: [{ name: 'r', kind: 'double-nat', lan: [{ name: 'h' }] }] },
    /reserved/,
  ],
];

describe('topology validation', () => {
  it.each(bad)('rejects %s', (_, topology, message) => {
    expect(() => validateTopology(topology)).toThrow(message);
    try {
      validateTopology(topology);
    } catch (err) {
      expect((err as { code?: string }).code).toBe('NETLAB_TOPOLOGY_INVALID');
    }
  });
});

describe('address plan', () => {
  const topology: Topology = {
    publicHosts: [
      { name: 'stun', ipv4Addresses: 2 },
      { name: 'old', ipv6: false },
    ],
    routers: [
      { name: 'home', kind: 'cone', ipv6: true, lan: [{ name: 'alice' }, { name: 'bob' }] },
      { name: 'mobile', kind: 'double-nat', lan: [{ name: 'carol' }] },
      { name: 'v6', kind: 'ipv6-only', ipv6: true, lanSubnet: '192.168.1.0/24', lan: [{ name: 'dave' }] },
    ],
  };
  const plan = planAddresses(topology);
  const host = (n: string) => plan.hosts.find((h) => h.name === n)!;

  it('puts the internet on TEST-NET-2 and 2001:db8::/64 with a sink gateway', () => {
    expect(plan.sinkIpv4).toBe('198.51.100.1');
    expect(plan.sinkIpv6).toBe('2001:db8::1');
    expect(host('stun')).toMatchObject({ ipv4: ['198.51.100.10', '198.51.100.11'], ipv6: ['2001:db8::10'], gateway4: '198.51.100.1' });
    expect(host('old')).toMatchObject({ ipv4: ['198.51.100.12'], ipv6: [] });
  });

  it('gives each router a private LAN and a global IPv6 /64 when asked', () => {
    expect(host('home')).toMatchObject({ role: 'router', ipv4: ['198.51.100.13'], ipv6: ['2001:db8::13'] });
    expect(host('alice')).toMatchObject({ role: 'lan', router: 'home', ipv4: ['10.1.0.2'], ipv6: ['2001:db8:1::2'], gateway4: '10.1.0.1' });
    expect(host('bob').ipv4).toEqual(['10.1.0.3']);
    expect(host('dave')).toMatchObject({ ipv4: [], ipv6: ['2001:db8:3::2'] });
  });

  it('puts a double NAT behind a carrier on 100.64.0.0/10', () => {
    expect(host('mobilecg')).toMatchObject({ role: 'carrier', ipv4: ['198.51.100.14'] });
    expect(host('mobile')).toMatchObject({ role: 'router', ipv4: ['100.64.2.2'], gateway4: '100.64.2.1' });
    expect(plan.routers.find((r) => r.name === 'mobile')?.externalIpv4).toBe('198.51.100.14');
    expect(host('carol').ipv4).toEqual(['10.2.0.2']);
  });

  it('uses only lab ranges', () => {
    const allowed = /^(198\.51\.100\.|10\.|192\.168\.|100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.|2001:db8:)/;
    for (const h of plan.hosts) for (const a of [...h.ipv4, ...h.ipv6]) expect(a).toMatch(allowed);
  });
});

describe('router rulesets', () => {
  it('cone is masquerade, symmetric is masquerade fully-random', () => {
    expect(routerRuleset({ wan: 'wan0', lan: 'lan0', nat: 'cone' })).toMatch(/oifname "wan0" meta nfproto ipv4 masquerade\n/);
    expect(routerRuleset({ wan: 'wan0', lan: 'lan0', nat: 'symmetric' })).toContain('masquerade fully-random');
    expect(routerRuleset({ wan: 'wan0', lan: 'lan0', nat: 'none' })).not.toContain('masquerade');
  });

  it('drops unsolicited inbound in the forward and input hooks', () => {
    const rules = routerRuleset({ wan: 'wan0', lan: 'lan0', nat: 'cone' });
    expect(rules).toMatch(/hook forward priority filter; policy drop;/);
    expect(rules).toMatch(/hook input priority filter; policy drop;/);
    expect(rules).not.toMatch(/iifname "wan0" oifname "lan0" meta nfproto ipv6 accept/);
    expect(routerRuleset({ wan: 'wan0', lan: 'lan0', nat: 'cone', openInboundIpv6: true })).toMatch(
      /iifname "wan0" oifname "lan0" meta nfproto ipv6 accept/,
    );
  });

  it('forwards ports with dnat and lets them through the filter', () => {
    const rules = routerRuleset({
      wan: 'wan0',
      lan: 'lan0',
      nat: 'cone',
      portForwards: [{ protocol: 'tcp', port: 4000, toIpv4: '10.1.0.2', toPort: 5000 }],
    });
    expect(rules).toContain('iifname "wan0" meta nfproto ipv4 tcp dport 4000 dnat ip to 10.1.0.2:5000');
    expect(rules).toContain('ct status dnat accept');
  });

  it('blocks UDP first when asked', () => {
    expect(routerRuleset({ wan: 'wan0', lan: 'lan0', nat: 'cone', blockUdp: true })).toMatch(/policy drop;\n\s+meta l4proto udp drop/);
  });

  it('drops a share of packets at ingress with numgen, sparing ARP', () => {
    const rules = lossRuleset('eth0', 30);
    expect(rules).toContain('hook ingress device "eth0"');
    expect(rules).toContain('numgen random mod 100 < 30 drop');
    expect(rules.indexOf('ether type arp accept')).toBeLessThan(rules.indexOf('numgen'));
    expect(sinkRuleset('br0')).toContain('iifname "br0" fib daddr type');
  });
});
