import { isIPv4, isIPv6 } from 'node:net';

// Per-address caps count by "source": the place an attacker sends from. One IPv4 address is
// cheap to vary within its /24 and one IPv6 host commonly holds a whole /64, so those are the
// units. Loopback addresses are all this host: each counts alone (127.0.0.2 and 127.0.0.3 are
// two sources, which tests use), and with `loopbackPerPort` each loopback ip:port does (many
// nodes of a test network on one host, where a cap per address would only measure the test).

/** Options of {@link sourceKey}. */
export interface SourceKeyPolicy {
  /** Count each loopback ip:port as its own source (tests running many nodes on one host). Default false. */
  loopbackPerPort?: boolean;
}

function v6Groups(ip: string): number[] | undefined {
  const text = ip.split('%')[0] as string;
  const [left, right] = text.split('::') as [string, string | undefined];
  const l = left ? left.split(':') : [];
  const r = right ? right.split(':') : [];
  if (right === undefined && l.length !== 8) return undefined;
  const fill = right === undefined ? [] : new Array<string>(Math.max(0, 8 - l.length - r.length)).fill('0');
  const groups = [...l, ...fill, ...r].map((g) => Number.parseInt(g, 16));
  return groups.length === 8 && groups.every((g) => g >= 0 && g <= 0xffff) ? groups : undefined;
}

/**
 * The source an address counts under: `a.b.c.0/24` for IPv4 (IPv4-mapped IPv6 too), the `/64`
 * for IPv6, the address itself for loopback (`ip:port` with `loopbackPerPort`), and the input
 * unchanged when it is not an IP address.
 */
export function sourceKey(ip: string, port?: number, policy: SourceKeyPolicy = {}): string {
  const v4 = ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
  if (isIPv4(v4)) {
    if (v4.startsWith('127.')) return policy.loopbackPerPort && port !== undefined ? `${v4}:${port}` : v4;
    const [a, b, c] = v4.split('.');
    return `${a}.${b}.${c}.0/24`;
  }
  if (!isIPv6(ip)) return ip;
  const g = v6Groups(ip);
  if (!g) return ip;
  if (g.slice(0, 7).every((x) => x === 0) && g[7] === 1) {
    return policy.loopbackPerPort && port !== undefined ? `[::1]:${port}` : '::1';
  }
  return `${g
    .slice(0, 4)
    .map((x) => x.toString(16))
    .join(':')}::/64`;
}

/** Counts per source (or per identity), forgetting a key whose count drops to zero. */
export class SourceCounts {
  readonly #counts = new Map<string, number>();

  get(key: string): number {
    return this.#counts.get(key) ?? 0;
  }

  inc(key: string): number {
    const n = this.get(key) + 1;
    this.#counts.set(key, n);
    return n;
  }

  dec(key: string): void {
    const n = this.get(key) - 1;
    if (n <= 0) this.#counts.delete(key);
    else this.#counts.set(key, n);
  }

  /** Keys with a non-zero count. */
  get size(): number {
    return this.#counts.size;
  }
}
