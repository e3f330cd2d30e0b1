import { isIPv4, isIPv6 } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { EndpointBody } from '@dpc/core';
import { MAX_CANDIDATES } from './constants.js';

/** A TCP address to dial. */
export interface Candidate {
  ip: string;
  port: number;
  /** Why it was chosen: 'global-ipv6', 'local' (shared subnet behind the same NAT), 'external', 'loopback'. */
  kind: 'global-ipv6' | 'local' | 'external' | 'loopback';
}

/** This node's addresses, as the applicability checks need them. */
export interface LocalAddresses {
  ipv6: string[];
  ipv4: Array<{ ip: string; prefix: number }>;
}

/** Expands an IPv6 address to its 8 16-bit groups; undefined for anything else. */
export function ipv6Groups(ip: string): number[] | undefined {
  if (!isIPv6(ip)) return undefined;
  let addr = ip.split('%')[0] as string;
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(addr);
  if (v4) {
    const n = ipv4ToInt(v4[1] as string);
    addr = `${addr.slice(0, -(v4[1] as string).length)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const [head, tail] = addr.includes('::') ? addr.split('::') : [addr, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : new Array(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((g) => Number.parseInt(g, 16));
}

/** True for a global unicast IPv6 address (2000::/3), as tier 1 requires. */
export function isGlobalIPv6(ip: string): boolean {
  const g = ipv6Groups(ip);
  return g !== undefined && ((g[0] as number) & 0xe000) === 0x2000;
}

export function ipv4ToInt(ip: string): number {
  const p = ip.split('.').map(Number);
  return (((p[0] as number) << 24) | ((p[1] as number) << 16) | ((p[2] as number) << 8) | (p[3] as number)) >>> 0;
}

/** True for 127.0.0.0/8 and ::1 (and IPv4-mapped loopback). */
export function isLoopback(ip: string): boolean {
  if (isIPv4(ip)) return ip.startsWith('127.');
  const g = ipv6Groups(ip);
  if (!g) return false;
  if (g.slice(0, 7).every((x) => x === 0) && g[7] === 1) return true;
  return g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff && (g[6] as number) >> 8 === 127;
}

/** True when both IPv4 addresses lie in one /prefix network. */
export function sameSubnet(a: string, b: string, prefix: number): boolean {
  if (!isIPv4(a) || !isIPv4(b) || prefix < 0 || prefix > 32) return false;
  if (prefix === 0) return true;
  const mask = prefix === 32 ? 0xffffffff : ~((1 << (32 - prefix)) - 1) >>> 0;
  return (ipv4ToInt(a) & mask) >>> 0 === (ipv4ToInt(b) & mask) >>> 0;
}

/** This machine's addresses from its interfaces. */
export function localAddresses(): LocalAddresses {
  const out: LocalAddresses = { ipv6: [], ipv4: [] };
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.family === 'IPv4') out.ipv4.push({ ip: a.address, prefix: Number(a.cidr?.split('/')[1] ?? 32) });
      else out.ipv6.push(a.address);
    }
  }
  return out;
}

/**
 * Tier 1 candidates: the peer's global IPv6 addresses (2000::/3); ::1 only with allowLoopback.
 */
export function ipv6Candidates(peer: EndpointBody, opts: { allowLoopback?: boolean } = {}): Candidate[] {
  const out: Candidate[] = [];
  for (const e of peer.ipv6) {
    if (isGlobalIPv6(e.ip)) out.push({ ip: e.ip, port: e.port, kind: 'global-ipv6' });
    else if (opts.allowLoopback && isLoopback(e.ip)) out.push({ ip: e.ip, port: e.port, kind: 'loopback' });
  }
  return dedupe(out);
}

/**
 * True when this node and the peer sit behind one NAT: one of our external IPv4 addresses
 * equals one the peer announces. Only then is the peer's local address worth dialing: two homes
 * both on 192.168.1.0/24 share a subnet but not a LAN. Unknown on either side (no external
 * address learned or announced) counts as not proven, so false. Behind carrier-grade NAT two
 * homes can share an external address too; the dial then reaches nobody, or someone who fails
 * the TLS node-id check, and the external candidate is raced beside it.
 */
export function sameExternalIPv4(ownExternal: readonly string[] | undefined, peer: Pick<EndpointBody, 'ipv4_external'>): boolean {
  if (!ownExternal?.length) return false;
  return peer.ipv4_external.some((e) => isIPv4(e.ip) && ownExternal.includes(e.ip));
}

/** Options of {@link ipv4Candidates}. */
export interface Ipv4CandidateOptions {
  /** Dial loopback addresses (tests only). Default false. */
  allowLoopback?: boolean;
  /**
   * This node's external IPv4 addresses (learned from DHT peers or `[p2p] external_address`).
   * The peer's local addresses are dialed only when one of these equals one of its external
   * addresses; unknown (undefined or empty) means they are never dialed. Default unknown.
   */
  ownExternalIPv4?: readonly string[] | undefined;
}

/**
 * Tier 2 candidates: the peer's local IPv4 addresses that share a subnet with one of ours,
 * when both nodes are behind the same NAT (equal external IPv4, see {@link sameExternalIPv4}),
 * first; then its external addresses (public IP or port forward). Loopback only with
 * allowLoopback.
 */
export function ipv4Candidates(peer: EndpointBody, local: LocalAddresses, opts: Ipv4CandidateOptions = {}): Candidate[] {
  const out: Candidate[] = [];
  const sameNat = sameExternalIPv4(opts.ownExternalIPv4, peer);
  for (const e of peer.ipv4_local) {
    if (isLoopback(e.ip)) {
      if (opts.allowLoopback) out.push({ ip: e.ip, port: e.port, kind: 'loopback' });
      continue;
    }
    if (!sameNat) continue;
    const shared = local.ipv4.some((mine) => !isLoopback(mine.ip) && sameSubnet(mine.ip, e.ip, Math.min(mine.prefix, e.prefix)));
    if (shared) out.push({ ip: e.ip, port: e.port, kind: 'local' });
  }
  for (const e of peer.ipv4_external) {
    if (isLoopback(e.ip) && !opts.allowLoopback) continue;
    out.push({ ip: e.ip, port: e.port, kind: 'external' });
  }
  return dedupe(out);
}

function dedupe(c: Candidate[]): Candidate[] {
  const seen = new Set<string>();
  return c
    .filter((x) => {
      const k = `${x.ip}|${x.port}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    })
    .slice(0, MAX_CANDIDATES);
}

/** A listening socket as bound: its address, family, and whether an IPv6 socket takes IPv6 only. */
export interface BoundSocket {
  address: string;
  family: 'IPv4' | 'IPv6';
  ipv6Only?: boolean;
}

function sameIPv6(a: string, b: string): boolean {
  const x = ipv6Groups(a);
  const y = ipv6Groups(b);
  return x !== undefined && y !== undefined && x.every((g, i) => g === y[i]);
}

/** True when a TCP connection to `ip` reaches one of the bound sockets (a wildcard of its family, or `ip` itself). */
export function listensOn(ip: string, bound: readonly BoundSocket[]): boolean {
  if (isIPv4(ip)) {
    return bound.some((b) =>
      b.family === 'IPv4'
        ? b.address === '0.0.0.0' || b.address === ip
        : (b.address === '::' && !b.ipv6Only) || sameIPv6(b.address, `::ffff:${ip}`),
    );
  }
  if (!isIPv6(ip)) return false;
  return bound.some((b) => b.family === 'IPv6' && (b.address === '::' || sameIPv6(b.address, ip)));
}

/** Of this node's addresses, those a connection to would reach one of the bound sockets. */
export function listenedAddresses(local: LocalAddresses, bound: readonly BoundSocket[]): LocalAddresses {
  return { ipv4: local.ipv4.filter((a) => listensOn(a.ip, bound)), ipv6: local.ipv6.filter((ip) => listensOn(ip, bound)) };
}

/**
 * True when `external` (an IPv4 address peers see for us: our public address, or a NAT's with a
 * port forward) can reach the bound sockets: it is one of them, or an IPv4-capable socket is
 * bound to something other than loopback (a wildcard, or the LAN address a forward points at).
 * A listener on 127.0.0.1 only is reachable from nowhere else, whatever the NAT forwards.
 */
export function acceptsExternal(external: string, bound: readonly BoundSocket[]): boolean {
  if (!isIPv4(external)) return false;
  if (listensOn(external, bound)) return true;
  return bound.some((b) =>
    b.family === 'IPv4'
      ? !isLoopback(b.address)
      : (b.address === '::' && !b.ipv6Only) || (b.address.startsWith('::ffff:') && !isLoopback(b.address)),
  );
}

/**
 * The part of an endpoint record that describes this node's own addresses for tiers 1–2:
 * global IPv6 and local IPv4 with prefix (loopback only with allowLoopback).
 */
export function localEndpointBody(
  port: number,
  opts: { allowLoopback?: boolean; addresses?: LocalAddresses } = {},
): Pick<EndpointBody, 'ipv6' | 'ipv4_local'> {
  const a = opts.addresses ?? localAddresses();
  return {
    ipv6: a.ipv6
      .filter((ip) => isGlobalIPv6(ip) || (opts.allowLoopback && isLoopback(ip)))
      .map((ip) => ({ ip, port }))
      .slice(0, 8),
    ipv4_local: a.ipv4
      .filter((x) => !isLoopback(x.ip) || opts.allowLoopback)
      .map((x) => ({ ip: x.ip, port, prefix: x.prefix }))
      .slice(0, 8),
  };
}
