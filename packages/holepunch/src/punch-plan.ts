/** A candidate address of the peer. */
export interface Candidate {
  ip: string;
  port: number;
}

/**
 * The probes of a direct (cone ↔ cone) punch: `rounds` rounds, each sending `probesPerRound`
 * probes to every distinct candidate (at most 8 candidates, the peer's published ones first).
 */
export function punchPlan(candidates: readonly Candidate[], opts: { rounds: number; probesPerRound: number }): Candidate[][] {
  const seen = new Set<string>();
  const distinct: Candidate[] = [];
  for (const c of candidates) {
    const k = `${c.ip}|${c.port}`;
    if (seen.has(k)) continue;
    seen.add(k);
    distinct.push({ ip: c.ip, port: c.port });
    if (distinct.length === 8) break;
  }
  if (distinct.length === 0) return [];
  const round = distinct.flatMap((c) => Array.from({ length: opts.probesPerRound }, () => c));
  return Array.from({ length: Math.max(1, opts.rounds) }, () => round);
}
