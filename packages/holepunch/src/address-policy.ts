import { isIP } from 'node:net';

/**
 * Why a peer-supplied punch candidate must not be probed, or undefined when it may be. Probes go
 * to addresses another node names, so without this a peer could aim our probes at our own host,
 * at our LAN or at a broadcast address. Loopback, private, CGNAT, link-local and unique-local
 * addresses are allowed only with `allowLocal` (tests and demos on one machine or one LAN, where
 * tier 2 is the better path anyway); unspecified, multicast and broadcast never.
 */
export function candidateProblem(ip: string, opts: { allowLocal?: boolean } = {}): string | undefined {
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
  if (mapped) return candidateProblem(mapped[1] as string, opts);
  const local = v === '::1' || /^f[cd]/.test(v) || /^fe[89ab]/.test(v);
  if (local && !opts.allowLocal) return 'a loopback, unique-local or link-local address';
  return undefined;
}
