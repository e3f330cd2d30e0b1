import { isIP } from 'node:net';

/**
 * Why an address another node named must not be contacted, or undefined when it may be. Tiers
 * send to addresses peers supply (hole-punch candidates, gossip neighbours from DHT records):
 * without this rule a peer could aim our probes and dials at our own host, our LAN or a broadcast
 * address. Loopback, private, CGNAT, link-local and unique-local addresses only with `allowLocal`
 * (a testnet on one machine or one LAN); unspecified, multicast, broadcast and host names (not IP
 * addresses) never.
 *
 * ```ts
 * import { remoteAddressProblem } from '@dpc/core';
 * remoteAddressProblem('192.168.1.10'); // 'a loopback, private or link-local address'
 * remoteAddressProblem('198.51.100.7'); // undefined: may be contacted
 * ```
 */
export function remoteAddressProblem(ip: string, opts: { allowLocal?: boolean } = {}): string | undefined {
  const family = isIP(ip);
  if (family === 0) return 'not an IP address';
  if (family === 4) {
    const o = ip.split('.').map(Number) as [number, number, number, number];
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
  const v = ip.toLowerCase();
  if (v === '::' || v === '0:0:0:0:0:0:0:0') return 'an unspecified address';
  if (v.startsWith('ff')) return 'a multicast address';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(v);
  if (mapped) return remoteAddressProblem(mapped[1] as string, opts);
  const local = v === '::1' || /^f[cd]/.test(v) || /^fe[89ab]/.test(v);
  if (local && !opts.allowLocal) return 'a loopback, unique-local or link-local address';
  return undefined;
}
