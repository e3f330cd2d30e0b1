import type { NetworkState } from '@dpc/core';

/** The NAT types of the endpoint record (`nat_type`): none = open, cone = consistent mapping, symmetric = random mapping. */
export type NatType = NonNullable<NetworkState['natType']>;

/** One DISCOVER_ENDPOINT answer: the address a DHT peer saw this node's DHT socket at. */
export interface NatSample {
  ip: string;
  port: number;
  /** Node id of the DHT peer that answered. */
  responder: string;
}

export interface NatVerdict {
  type: NatType;
  /** True when more samples could change the verdict (resample). */
  unsure: boolean;
  /** The reflexive endpoint to publish for punching (the agreed one; for a random NAT the last seen). */
  endpoint?: { ip: string; port: number };
  /** Samples the verdict is based on (one per distinct responder). */
  samples: NatSample[];
  /** Human-readable evidence: which peers saw which mapped ports. */
  evidence: string;
}

/** Keeps one sample per responder (the latest), at most `max`. */
export function distinctSamples(samples: readonly NatSample[], max = Number.POSITIVE_INFINITY): NatSample[] {
  const byResponder = new Map<string, NatSample>();
  for (const s of samples) {
    byResponder.delete(s.responder);
    byResponder.set(s.responder, s);
  }
  return [...byResponder.values()].slice(-max);
}

/**
 * The NAT type from DISCOVER_ENDPOINT samples, by hyperdht's rules: the same ip:port seen by 3 or
 * more distinct peers → consistent (cone); every sample a different port → random (symmetric);
 * a reflexive address that is one of this host's own → open. Fewer than 3 agreeing samples, or a
 * mix, is `unsure` (ask again); after the last round an unsure verdict stays `unknown` unless a
 * strict majority agrees.
 *
 * @param localAddresses this host's own IP addresses
 * @param final no more rounds will follow: decide what can be decided
 */
export function classifyNat(input: readonly NatSample[], localAddresses: readonly string[], final = false): NatVerdict {
  const samples = distinctSamples(input);
  const evidence = samples.map((s) => `${s.responder.slice(-8)}→${s.ip}:${s.port}`).join(', ') || 'no answers';
  if (samples.length === 0) return { type: 'blocked', unsure: !final, samples, evidence };
  const counts = new Map<string, { ip: string; port: number; n: number }>();
  for (const s of samples) {
    const k = `${s.ip}|${s.port}`;
    const c = counts.get(k) ?? { ip: s.ip, port: s.port, n: 0 };
    c.n++;
    counts.set(k, c);
  }
  const ranked = [...counts.values()].sort((a, b) => b.n - a.n);
  const top = ranked[0] as { ip: string; port: number; n: number };
  const endpoint = { ip: top.ip, port: top.port };
  const local = new Set(localAddresses);
  if (local.has(top.ip) && samples.every((s) => local.has(s.ip))) {
    // Our own address: no NAT (a firewall may still filter, which the punch itself tolerates).
    return { type: 'none', unsure: false, endpoint, samples, evidence };
  }
  if (top.n >= 3 && top.n * 2 > samples.length) return { type: 'cone', unsure: false, endpoint, samples, evidence };
  if (samples.length >= 2 && top.n === 1) {
    const last = samples[samples.length - 1] as NatSample;
    // Two or more peers, each saw a different mapping: a random (symmetric) NAT. With only two
    // samples a third could still agree with one of them, so it is checked once more.
    return { type: 'symmetric', unsure: samples.length < 3 && !final, endpoint: { ip: last.ip, port: last.port }, samples, evidence };
  }
  if (final && top.n >= 2 && top.n * 2 > samples.length) return { type: 'cone', unsure: false, endpoint, samples, evidence };
  return { type: 'unknown', unsure: !final, endpoint, samples, evidence };
}
