import { isIP } from 'node:net';

// Address rules for abuse limits: which "host" a datagram comes from (rate limit: IPv4 address or
// IPv6 /64) and which subnet a sender or contact is in (storage quotas, and at most 2 contacts per
// /24 or /64 per bucket).

/** Which address classes are exempted from the per-host and per-subnet rules. */
export interface AddressPolicy {
  /** Treat each loopback ip:port as its own host and subnet (a testnet on 127.0.0.1). */
  allowLoopback: boolean;
  /** Same for private (RFC 1918, ULA, link-local) addresses: a testnet on a LAN. */
  allowPrivate: boolean;
}

const MAPPED_V4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;

/** Strips the IPv4-mapped IPv6 prefix (`::ffff:1.2.3.4` → `1.2.3.4`). */
export function normalizeIp(ip: string): string {
  const m = MAPPED_V4.exec(ip);
  return m ? (m[1] as string) : ip.toLowerCase();
}

/** The 8 groups of an IPv6 address as numbers, or null when it is not one. */
export function ipv6Groups(ip: string): number[] | null {
  if (isIP(ip) !== 6) return null;
  let text = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = (v4[1] as string).split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [left, right] = text.split('::') as [string, string | undefined];
  const l = left ? left.split(':') : [];
  const r = right ? right.split(':') : [];
  const fill = right === undefined ? [] : new Array(8 - l.length - r.length).fill('0');
  const groups = [...l, ...fill, ...r].map((g) => Number.parseInt(g, 16));
  return groups.length === 8 ? groups : null;
}

/** True for 127.0.0.0/8 and ::1. */
export function isLoopback(ip: string): boolean {
  const a = normalizeIp(ip);
  if (isIP(a) === 4) return a.startsWith('127.');
  const g = ipv6Groups(a);
  return g?.slice(0, 7).every((x) => x === 0) === true && g[7] === 1;
}

/** True for RFC 1918, 100.64/10 (CGNAT), 169.254/16, fc00::/7 and fe80::/10. */
export function isPrivate(ip: string): boolean {
  const a = normalizeIp(ip);
  if (isIP(a) === 4) {
    const [x, y] = a.split('.').map(Number) as [number, number];
    return (
      x === 10 ||
      (x === 172 && y >= 16 && y <= 31) ||
      (x === 192 && y === 168) ||
      (x === 100 && y >= 64 && y <= 127) ||
      (x === 169 && y === 254)
    );
  }
  const g = ipv6Groups(a);
  if (g === null) return false;
  const first = g[0] as number;
  return (first & 0xfe00) === 0xfc00 || (first & 0xffc0) === 0xfe80;
}

const exempt = (ip: string, policy: AddressPolicy): boolean =>
  (policy.allowLoopback && isLoopback(ip)) || (policy.allowPrivate && isPrivate(ip));

/**
 * The key the per-host rate limit counts by: the IPv4 address, the IPv6 /64 (one host commonly
 * holds a whole /64, so a per-address key would give it 2^64 buckets), or ip:port when exempt.
 */
export function hostKey(ip: string, port: number, policy: AddressPolicy): string {
  const a = normalizeIp(ip);
  if (exempt(a, policy)) return `${a}:${port}`;
  return isIP(a) === 6 ? subnetKey(a, port, policy) : a;
}

/** The subnet of an address for the bucket diversity rule: /24 for IPv4, /64 for IPv6. */
export function subnetKey(ip: string, port: number, policy: AddressPolicy): string {
  const a = normalizeIp(ip);
  if (exempt(a, policy)) return `${a}:${port}`;
  if (isIP(a) === 4) return `${a.split('.').slice(0, 3).join('.')}.0/24`;
  const g = ipv6Groups(a);
  if (g === null) return a;
  return `${g
    .slice(0, 4)
    .map((x) => x.toString(16))
    .join(':')}::/64`;
}
