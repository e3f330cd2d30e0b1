/**
 * The forwarding choice (pure): up to `fanout` of the connected peers, never the ones in
 * `exclude` (already_forwarded, the previous hop, the source). The destination itself, when
 * connected, is the only choice (one copy). Otherwise half of the picks (rounded up) are the
 * peers closest to the destination in the DHT keyspace (XOR of Kademlia ids), the rest random
 * among the others (the epidemic part, so a wrong guess about the keyspace does not starve it).
 */
export interface ForwardCandidate {
  nodeId: string;
  /** 16-byte Kademlia id. */
  kademliaId: Uint8Array;
}

export function xorDistanceCompare(a: Uint8Array, b: Uint8Array, target: Uint8Array): number {
  for (let i = 0; i < target.length; i++) {
    const da = (a[i] ?? 0) ^ (target[i] ?? 0);
    const db = (b[i] ?? 0) ^ (target[i] ?? 0);
    if (da !== db) return da - db;
  }
  return 0;
}

export function chooseForwardPeers<C extends ForwardCandidate>(
  candidates: readonly C[],
  destination: { nodeId: string; kademliaId: Uint8Array },
  exclude: ReadonlySet<string>,
  fanout: number,
  random: () => number = Math.random,
): C[] {
  const eligible = candidates.filter((c) => !exclude.has(c.nodeId));
  const direct = eligible.find((c) => c.nodeId === destination.nodeId);
  if (direct) return [direct];
  if (eligible.length <= fanout) return [...eligible];
  const byDistance = [...eligible].sort((a, b) => xorDistanceCompare(a.kademliaId, b.kademliaId, destination.kademliaId));
  const closest = byDistance.slice(0, Math.ceil(fanout / 2));
  const rest = byDistance.slice(closest.length);
  for (let i = rest.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [rest[i], rest[j]] = [rest[j] as C, rest[i] as C];
  }
  return [...closest, ...rest.slice(0, fanout - closest.length)];
}
