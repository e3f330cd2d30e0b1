import { isIP } from 'node:net';

/**
 * Why a gossip link must not be dialled at `host`, or undefined when it may be. `dial()` takes
 * addresses from DHT lookups, i.e. addresses other nodes name: without this a peer could aim our
 * TCP dials at our own host or our LAN. Loopback, private, CGNAT, link-local and unique-local
 * addresses only with `allowLocal` (a testnet on one machine or one LAN); unspecified, multicast,
 * broadcast and host names (not IP addresses) never. The same rule as holepunch's `candidateProblem`.
 */
export function dialProblem(host: string, opts: { allowLocal?: boolean } = {}): string | undefined {
  const family = isIP(host);
  if (family === 0) return 'not an IP address';
  if (family === 4) {
    const o = host.split('.').map(Number) as [number, number, number, number];
    if (o[0] === 0) return 'an unspecified address';
    if (o[0] >= 224) return 'a multicast or reserved address';
    const local =
      o[0] === 127 ||
      o[0] === 10 ||
      (o[0] === 172 && o[1] >= 16 && o[1] <= 31) ||
      (o[0] === 192 && o[1] === 168) ||
      (o[0] === 169 && o[1] === 254) ||
      (o[0] === 100 && o[1] >= 64 && o[1] <= 127);
    if (local && !opts.allowLocal) return 'a loopback, private or link-local address';
    return undefined;
  }
  const v = host.toLowerCase();
  if (v === '::' || v === '0:0:0:0:0:0:0:0') return 'an unspecified address';
  if (v.startsWith('ff')) return 'a multicast address';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(v);
  if (mapped) return dialProblem(mapped[1] as string, opts);
  const local = v === '::1' || /^f[cd]/.test(v) || /^fe[89ab]/.test(v);
  if (local && !opts.allowLocal) return 'a loopback, unique-local or link-local address';
  return undefined;
}
