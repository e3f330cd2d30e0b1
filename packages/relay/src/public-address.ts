import { isIP } from 'node:net';

// Which addresses a volunteer relay may announce as its public one. A relay offer is read by
// nodes anywhere on the internet: a private, loopback, link-local, CGNAT, multicast or
// unspecified address in it sends them to some machine on their own network, or nowhere.
// Documentation ranges (TEST-NET-1/2/3, 2001:db8::/32) stay allowed: the network lab uses them
// as its "internet", and nothing on the real internet routes them anyway.

/** Options of {@link publicAddressProblem}. */
export interface PublicAddressPolicy {
  /** Accept 127.0.0.0/8 and ::1 (tests and demos on one machine). Default false. */
  allowLoopback?: boolean;
  /** Accept private (RFC 1918), CGNAT (100.64/10) and unique-local (fc00::/7) addresses (a LAN). Default false. */
  allowPrivate?: boolean;
}

const PRIVATE_V4 = new Set(['10.0.0.0', '100.64.0.0', '172.16.0.0', '192.168.0.0']);

const V4_BOGONS: ReadonlyArray<[string, number, string]> = [
  ['0.0.0.0', 8, 'unspecified ("this network", 0.0.0.0/8)'],
  ['10.0.0.0', 8, 'private (RFC 1918, 10.0.0.0/8)'],
  ['100.64.0.0', 10, 'carrier-grade NAT (100.64.0.0/10)'],
  ['127.0.0.0', 8, 'loopback (127.0.0.0/8)'],
  ['169.254.0.0', 16, 'link-local (169.254.0.0/16)'],
  ['172.16.0.0', 12, 'private (RFC 1918, 172.16.0.0/12)'],
  ['192.0.0.0', 24, 'IETF protocol assignments (192.0.0.0/24)'],
  ['192.168.0.0', 16, 'private (RFC 1918, 192.168.0.0/16)'],
  ['198.18.0.0', 15, 'benchmarking (198.18.0.0/15)'],
  ['224.0.0.0', 4, 'multicast (224.0.0.0/4)'],
  ['240.0.0.0', 4, 'reserved or broadcast (240.0.0.0/4)'],
];

function v4Int(ip: string): number {
  return ip.split('.').reduce((n, x) => ((n << 8) | Number(x)) >>> 0, 0);
}

function v6Groups(ip: string): number[] | undefined {
  let text = ip.split('%')[0] as string;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = v4Int(v4[1] as string);
    text = `${text.slice(0, v4.index)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const [left, right] = text.split('::') as [string, string | undefined];
  const l = left ? left.split(':') : [];
  const r = right ? right.split(':') : [];
  const fill = right === undefined ? [] : new Array<string>(8 - l.length - r.length).fill('0');
  const groups = [...l, ...fill, ...r].map((g) => Number.parseInt(g, 16));
  return groups.length === 8 && groups.every((g) => g >= 0 && g <= 0xffff) ? groups : undefined;
}

/**
 * Why `ip` cannot be announced as a relay's public address, or undefined when it can. Refused:
 * anything that is not an IP address; IPv4 unspecified (0/8), private (RFC 1918), CGNAT
 * (100.64/10), loopback (unless `allowLoopback`), link-local, 192.0.0/24, benchmarking
 * (198.18/15), multicast, reserved and broadcast; IPv6 outside global unicast (2000::/3) — the
 * unspecified `::`, loopback `::1` (unless `allowLoopback`), link-local, unique-local,
 * multicast — and the IPv4-mapped form of a refused IPv4 address.
 */
export function publicAddressProblem(ip: string, policy: PublicAddressPolicy = {}): string | undefined {
  const family = isIP(ip);
  if (family === 4) {
    const n = v4Int(ip);
    for (const [base, prefix, what] of V4_BOGONS) {
      const mask = (~0 << (32 - prefix)) >>> 0;
      if ((n & mask) >>> 0 !== (v4Int(base) & mask) >>> 0) continue;
      if (prefix === 8 && base === '127.0.0.0' && policy.allowLoopback) return undefined;
      if (PRIVATE_V4.has(base) && policy.allowPrivate) return undefined;
      return `${ip} is ${what}`;
    }
    return undefined;
  }
  if (family !== 6) return `${JSON.stringify(ip)} is not an IP address`;
  const g = v6Groups(ip);
  if (!g) return `${JSON.stringify(ip)} is not an IP address`;
  const zeros = (k: number) => g.slice(0, k).every((x) => x === 0);
  if (zeros(8)) return `${ip} is unspecified (::)`;
  if (zeros(7) && g[7] === 1) return policy.allowLoopback ? undefined : `${ip} is loopback (::1)`;
  // ::ffff:a.b.c.d carries an IPv4 address: judge that one.
  if (zeros(5) && g[5] === 0xffff) {
    const v4 = [(g[6] as number) >> 8, (g[6] as number) & 0xff, (g[7] as number) >> 8, (g[7] as number) & 0xff].join('.');
    const why = publicAddressProblem(v4, policy);
    return why && `${ip} is IPv4-mapped: ${why}`;
  }
  const first = g[0] as number;
  if ((first & 0xff00) === 0xff00) return `${ip} is multicast (ff00::/8)`;
  if ((first & 0xffc0) === 0xfe80) return `${ip} is link-local (fe80::/10)`;
  if ((first & 0xfe00) === 0xfc00) return policy.allowPrivate ? undefined : `${ip} is unique-local (fc00::/7)`;
  if ((first & 0xe000) !== 0x2000) return `${ip} is not global unicast IPv6 (2000::/3)`;
  return undefined;
}

/** True when `ip` may be announced as a relay's public address (see {@link publicAddressProblem}). */
export function isPublicAddress(ip: string, policy: PublicAddressPolicy = {}): boolean {
  return publicAddressProblem(ip, policy) === undefined;
}
