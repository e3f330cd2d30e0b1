import {
  CGNAT_IPV4_PREFIX,
  FIRST_INTERNET_HOST_NUMBER,
  INTERNET_IPV4_PREFIX,
  INTERNET_IPV6_PREFIX,
  SINK_HOST_NUMBER,
} from './constants.js';
import { TopologyError } from './errors.js';

/**
 * What a link does to the packets crossing it. Every field is optional and defaults to 0.
 * Delay and jitter apply in each direction (RTT ≈ 2 × delayMs); loss applies in each direction.
 */
export interface LinkShape {
  /** One-way delay added in each direction, ms. Default 0 (no forwarder). */
  delayMs?: number;
  /** Uniform jitter ± this many ms around delayMs (packet order is kept). Default 0. */
  jitterMs?: number;
  /** Percentage (0–100) of packets dropped in each direction. Default 0. */
  lossPercent?: number;
}

/**
 * How a router treats IPv4 (IPv6, when enabled, is always routed without NAT):
 * - `cone`: port-restricted cone NAT (`masquerade`; endpoint-independent mapping).
 * - `symmetric`: symmetric NAT (`masquerade fully-random`; address-and-port-dependent mapping).
 * - `double-nat`: a carrier-grade NAT (100.64.0.0/10) in front of a home cone NAT.
 * - `udp-blocked`: cone NAT that drops every UDP packet (TCP only), in both directions and on IPv6.
 * - `ipv6-only`: the LAN has no IPv4 at all (set `ipv6: true`).
 */
export type RouterKind = 'cone' | 'symmetric' | 'double-nat' | 'udp-blocked' | 'ipv6-only';
export const ROUTER_KINDS: readonly RouterKind[] = ['cone', 'symmetric', 'double-nat', 'udp-blocked', 'ipv6-only'];

export interface PortForward {
  protocol: 'tcp' | 'udp';
  /** External port on the router's WAN address. */
  port: number;
  /** Name of the LAN host that receives it. */
  host: string;
  /** Port on the LAN host. Default: same as `port`. */
  hostPort?: number;
}

export interface HostSpec {
  /** Lowercase letters and digits, starting with a letter, at most 12 characters; unique in the topology. */
  name: string;
  /** The link between this host and its segment (the internet or its router's LAN). */
  link?: LinkShape;
}

export interface PublicHostSpec extends HostSpec {
  /** How many IPv4 addresses on the internet segment (e.g. 2 for an RFC 5780 STUN server). Default 1. */
  ipv4Addresses?: number;
  /** Give the host a global IPv6 address (2001:db8::/64). Default true. */
  ipv6?: boolean;
}

export interface RouterSpec {
  name: string;
  kind: RouterKind;
  /** Route a global IPv6 /64 (2001:db8:<n>::/64) to the LAN, without NAT. Default false (IPv4 only). */
  ipv6?: boolean;
  /** Drop unsolicited inbound IPv6 (as many home routers do). Default false: inbound IPv6 is open. */
  ipv6Firewall?: boolean;
  /** For `double-nat`: the carrier NAT's behaviour. Default `cone`. */
  cgnat?: 'cone' | 'symmetric';
  /** IPv4 LAN as `a.b.c.0/24` inside 10.0.0.0/8 or 192.168.0.0/16. Default 10.<router number>.0.0/24. */
  lanSubnet?: string;
  portForwards?: PortForward[];
  /** The router's WAN link to the internet. */
  link?: LinkShape;
  /** The hosts on this router's LAN (at least one). */
  lan: HostSpec[];
}

/** A declarative lab topology (JSON-friendly). */
export interface Topology {
  /** Hosts directly on the internet, with public TEST-NET addresses (no NAT). */
  publicHosts?: PublicHostSpec[];
  routers?: RouterSpec[];
}

const NAME = /^[a-z][a-z0-9]{0,11}$/;
const RESERVED = new Set(['inet', 'all']);

function checkLink(where: string, link: LinkShape | undefined): void {
  if (!link) return;
  for (const key of ['delayMs', 'jitterMs', 'lossPercent'] as const) {
    const v = link[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new TopologyError(`${where}: link.${key} must be a number ≥ 0`);
  }
  if ((link.lossPercent ?? 0) > 100) throw new TopologyError(`${where}: link.lossPercent must be at most 100`);
  if ((link.jitterMs ?? 0) > (link.delayMs ?? 0)) throw new TopologyError(`${where}: link.jitterMs must not exceed link.delayMs`);
}

function parseLan(where: string, subnet: string): string {
  const m = /^(\d+)\.(\d+)\.(\d+)\.0\/24$/.exec(subnet);
  const [a, b, c] = m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [];
  const ok = m && b !== undefined && c !== undefined && b < 256 && c < 256 && (a === 10 || (a === 192 && b === 168));
  if (!ok) throw new TopologyError(`${where}: lanSubnet must be a /24 inside 10.0.0.0/8 or 192.168.0.0/16, got ${subnet}`);
  return `${a}.${b}.${c}`;
}

/** Checks a topology and throws a TopologyError saying what is wrong. Returns it typed. */
export function validateTopology(input: unknown): Topology {
  if (typeof input !== 'object' || input === null) throw new TopologyError('topology must be an object');
  const t = input as Topology;
  const names = new Set<string>();
  const claim = (where: string, name: unknown) => {
    if (typeof name !== 'string' || !NAME.test(name) || RESERVED.has(name)) {
      throw new TopologyError(`${where}: name must match ${NAME} and not be ${[...RESERVED].join('/')}, got ${JSON.stringify(name)}`);
    }
    if (names.has(name)) throw new TopologyError(`${where}: duplicate name ${name}`);
    names.add(name);
  };
  if (t.publicHosts !== undefined && !Array.isArray(t.publicHosts)) throw new TopologyError('publicHosts must be an array');
  if (t.routers !== undefined && !Array.isArray(t.routers)) throw new TopologyError('routers must be an array');
  let internetAddresses = 0;
  for (const h of t.publicHosts ?? []) {
    claim('publicHosts', h?.name);
    checkLink(h.name, h.link);
    const n = h.ipv4Addresses ?? 1;
    if (!Number.isInteger(n) || n < 1 || n > 8) throw new TopologyError(`${h.name}: ipv4Addresses must be an integer from 1 to 8`);
    internetAddresses += n;
  }
  const routers = t.routers ?? [];
  if (routers.length > 99) throw new TopologyError('at most 99 routers');
  for (const r of routers) {
    claim('routers', r?.name);
    if (!ROUTER_KINDS.includes(r.kind)) throw new TopologyError(`${r.name}: kind must be one of ${ROUTER_KINDS.join(', ')}`);
    if (r.kind === 'ipv6-only' && !r.ipv6) throw new TopologyError(`${r.name}: kind ipv6-only needs ipv6: true`);
    if (r.kind === 'double-nat' && r.ipv6) throw new TopologyError(`${r.name}: double-nat routers carry IPv4 only`);
    if (r.cgnat !== undefined && (r.kind !== 'double-nat' || !['cone', 'symmetric'].includes(r.cgnat))) {
      throw new TopologyError(`${r.name}: cgnat is cone or symmetric, and only for kind double-nat`);
    }
    if (r.lanSubnet !== undefined) parseLan(r.name, r.lanSubnet);
    checkLink(r.name, r.link);
    if (!Array.isArray(r.lan) || r.lan.length === 0) throw new TopologyError(`${r.name}: lan must list at least one host`);
    if (r.lan.length > 200) throw new TopologyError(`${r.name}: at most 200 LAN hosts`);
    for (const h of r.lan) {
      claim(`${r.name}.lan`, h?.name);
      checkLink(h.name, h.link);
    }
    for (const f of r.portForwards ?? []) {
      if (r.kind === 'ipv6-only' || r.kind === 'double-nat') throw new TopologyError(`${r.name}: port forwards need a one-level IPv4 NAT`);
      if (f.protocol !== 'tcp' && f.protocol !== 'udp') throw new TopologyError(`${r.name}: port forward protocol must be tcp or udp`);
      for (const p of [f.port, f.hostPort ?? f.port]) {
        if (!Number.isInteger(p) || p < 1 || p > 65535) throw new TopologyError(`${r.name}: port forward ports must be 1–65535`);
      }
      if (!r.lan.some((h) => h.name === f.host)) throw new TopologyError(`${r.name}: port forward to unknown LAN host ${f.host}`);
    }
    internetAddresses += 1;
  }
  for (const r of routers) {
    if (r.kind === 'double-nat' && names.has(`${r.name}cg`)) throw new TopologyError(`${r.name}cg is reserved for ${r.name}'s carrier NAT`);
  }
  if (FIRST_INTERNET_HOST_NUMBER + internetAddresses > 254) throw new TopologyError('too many addresses for the internet /24');
  return t;
}

/** One interface's addresses in the plan. */
export interface PlannedHost {
  name: string;
  role: 'public' | 'lan' | 'router' | 'carrier';
  /** The router a LAN host sits behind. */
  router?: string;
  ipv4: string[];
  ipv6: string[];
  /** Default gateways, when any. */
  gateway4?: string;
  gateway6?: string;
  link?: LinkShape;
}

export interface PlannedRouter {
  name: string;
  kind: RouterKind;
  /** Addresses on the internet (or, behind a carrier NAT, on the carrier link). */
  wanIpv4?: string;
  wanIpv6?: string;
  /** Public address the LAN is seen from (the carrier's for double-nat). */
  externalIpv4?: string;
  lanIpv4Subnet?: string;
  lanIpv4Gateway?: string;
  lanIpv6Prefix?: string;
  lanIpv6Gateway?: string;
  carrier?: { wanIpv4: string; linkSubnet: string; insideIpv4: string };
  spec: RouterSpec;
}

/** Every address of a topology, decided before anything is created (a pure function). */
export interface AddressPlan {
  sinkIpv4: string;
  sinkIpv6: string;
  hosts: PlannedHost[];
  routers: PlannedRouter[];
}

/** Assigns addresses: internet hosts from 198.51.100.10 up (2001:db8::10 …), LANs per router. */
export function planAddresses(topology: Topology): AddressPlan {
  const t = validateTopology(topology);
  let next = FIRST_INTERNET_HOST_NUMBER;
  const v4 = (n: number) => `${INTERNET_IPV4_PREFIX}.${n}`;
  // Decimal digits read as hex: 198.51.100.23 ↔ 2001:db8::23, easy to match by eye.
  const v6 = (n: number) => `${INTERNET_IPV6_PREFIX}:${n}`;
  const hosts: PlannedHost[] = [];
  const routers: PlannedRouter[] = [];
  for (const h of t.publicHosts ?? []) {
    const first = next;
    const ipv4 = Array.from({ length: h.ipv4Addresses ?? 1 }, () => v4(next++));
    const ipv6 = h.ipv6 === false ? [] : [v6(first)];
    hosts.push({
      name: h.name,
      role: 'public',
      ipv4,
      ipv6,
      gateway4: v4(SINK_HOST_NUMBER),
      ...(ipv6.length ? { gateway6: v6(SINK_HOST_NUMBER) } : {}),
      ...(h.link ? { link: h.link } : {}),
    });
  }
  (t.routers ?? []).forEach((r, i) => {
    const k = i + 1;
    const n = next++;
    const lan4 = r.kind === 'ipv6-only' ? undefined : r.lanSubnet ? parseLan(r.name, r.lanSubnet) : `10.${k}.0`;
    const lan6 = r.ipv6 ? `2001:db8:${k}::` : undefined;
    const planned: PlannedRouter = { name: r.name, kind: r.kind, spec: r };
    if (r.kind === 'double-nat') {
      const link = `${CGNAT_IPV4_PREFIX}.${k}`;
      planned.carrier = { wanIpv4: v4(n), linkSubnet: `${link}.0/24`, insideIpv4: `${link}.1` };
      planned.wanIpv4 = `${link}.2`;
      hosts.push({ name: `${r.name}cg`, role: 'carrier', ipv4: [v4(n)], ipv6: [], gateway4: v4(SINK_HOST_NUMBER) });
      hosts.push({
        name: r.name,
        role: 'router',
        ipv4: [planned.wanIpv4],
        ipv6: [],
        gateway4: `${link}.1`,
        ...(r.link ? { link: r.link } : {}),
      });
    } else {
      planned.wanIpv4 = v4(n);
      if (lan6) planned.wanIpv6 = v6(n);
      hosts.push({
        name: r.name,
        role: 'router',
        ipv4: [v4(n)],
        ipv6: lan6 ? [v6(n)] : [],
        gateway4: v4(SINK_HOST_NUMBER),
        ...(lan6 ? { gateway6: v6(SINK_HOST_NUMBER) } : {}),
        ...(r.link ? { link: r.link } : {}),
      });
    }
    planned.externalIpv4 = v4(n);
    if (lan4) {
      planned.lanIpv4Subnet = `${lan4}.0/24`;
      planned.lanIpv4Gateway = `${lan4}.1`;
    }
    if (lan6) {
      planned.lanIpv6Prefix = `${lan6}/64`;
      planned.lanIpv6Gateway = `${lan6}1`;
    }
    r.lan.forEach((h, j) => {
      hosts.push({
        name: h.name,
        role: 'lan',
        router: r.name,
        ipv4: lan4 ? [`${lan4}.${j + 2}`] : [],
        ipv6: lan6 ? [`${lan6}${j + 2}`] : [],
        ...(lan4 ? { gateway4: `${lan4}.1` } : {}),
        ...(lan6 ? { gateway6: `${lan6}1` } : {}),
        ...(h.link ? { link: h.link } : {}),
      });
    });
    routers.push(planned);
  });
  return { sinkIpv4: v4(SINK_HOST_NUMBER), sinkIpv6: v6(SINK_HOST_NUMBER), hosts, routers };
}
