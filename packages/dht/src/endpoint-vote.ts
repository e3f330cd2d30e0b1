/** One answer to DISCOVER_ENDPOINT: the address a peer saw us at, and who answered. */
export interface EndpointSample {
  ip: string;
  port: number;
  responder: { nodeId: string; host: string; port: number };
}

export interface VoteResult {
  ip: string;
  port: number;
  /** Samples that agree with the winner. */
  votes: number;
  total: number;
  /** True when more than half of the samples agree. */
  majority: boolean;
}

/**
 * The reflexive endpoint most peers agree on (plurality; ties go to the one seen first), or
 * null without samples. Different ports from different peers hint at a symmetric NAT.
 */
export function majorityVote(samples: ReadonlyArray<{ ip: string; port: number }>): VoteResult | null {
  const counts = new Map<string, { ip: string; port: number; n: number }>();
  for (const s of samples) {
    const key = `${s.ip}|${s.port}`;
    const c = counts.get(key);
    if (c) c.n++;
    else counts.set(key, { ip: s.ip, port: s.port, n: 1 });
  }
  let best: { ip: string; port: number; n: number } | undefined;
  for (const c of counts.values()) if (!best || c.n > best.n) best = c;
  if (!best) return null;
  return { ip: best.ip, port: best.port, votes: best.n, total: samples.length, majority: best.n * 2 > samples.length };
}
