// What the DHT benchmarks (dht.mjs, dht-multi.mjs) measure, the same way in both: memory after GC,
// the queries a node sent (dpc: its rpcOut stats; bittorrent-dht: its k-rpc socket's queries,
// counted from construction), and one lookup timed with the RPCs the asking node sent meanwhile.
import { performance } from 'node:perf_hooks';

export const sum = (xs) => xs.reduce((a, b) => a + b, 0);

const gc = () => globalThis.gc?.();
/** Heap (heapUsed + external + arrayBuffers) and RSS after two GCs (run node with --expose-gc). */
export const memory = () => {
  gc();
  gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed + m.external + m.arrayBuffers, rss: m.rss };
};

/** Queries a @dpc/dht node has sent. */
export const dpcRpcs = (d) => sum(Object.values(d.stats().rpcOut));

/** Counts a bittorrent-dht node's queries in `d.__q`, from now on (call before it listens). */
export const countQueries = (d) => {
  d.__q = 0;
  const sock = d._rpc.socket;
  const orig = sock.query.bind(sock);
  sock.query = (...args) => {
    d.__q++;
    return orig(...args);
  };
  return d;
};

/** One findPeer of `key` from the @dpc/dht node `d`: found, time, RPCs it sent meanwhile. */
export async function dpcLookup(d, key) {
  const before = dpcRpcs(d);
  const t = performance.now();
  let ok = false;
  try {
    ok = (await d.findPeer(key)).nodeId === key;
  } catch {}
  return { ok, ms: performance.now() - t, rpcs: dpcRpcs(d) - before };
}

/** One BEP44 get of `hash` (a Buffer) from the counted bittorrent-dht node `d`: found, time, queries it sent meanwhile. */
export async function bittorrentLookup(d, hash) {
  const before = d.__q;
  const t = performance.now();
  const value = await new Promise((resolve) => d.get(hash, (err, res) => resolve(err ? null : res)));
  return { ok: Boolean(value?.v), ms: performance.now() - t, rpcs: d.__q - before };
}

export const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
};
export const median = (xs) => quantile(xs, 0.5);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** `count()` (sync or async) once it stops moving (two reads 200 ms apart agree): the PINGs back follow a join's answers. */
export async function settled(count) {
  for (let last = -1; ; await sleep(200)) {
    const now = await count();
    if (now === last) return now;
    last = now;
  }
}

/** The lookups of a run (what dpcLookup / bittorrentLookup return), as the columns of its result row. */
export class LookupStats {
  lat = [];
  rpcs = [];
  ok = 0;

  add(r) {
    if (r.ok) this.ok++;
    this.lat.push(r.ms);
    this.rpcs.push(r.rpcs);
  }

  columns() {
    return {
      lookups: this.lat.length,
      success: `${((100 * this.ok) / this.lat.length).toFixed(1)}%`,
      'median ms': quantile(this.lat, 0.5).toFixed(2),
      'p95 ms': quantile(this.lat, 0.95).toFixed(2),
      'RPCs/lookup (mean)': (sum(this.rpcs) / this.rpcs.length).toFixed(1),
      'RPCs/lookup (p95)': quantile(this.rpcs, 0.95),
    };
  }
}

/** The join columns of a result row from `{ own, network, ms }` (one entry per measured join). */
export const joinColumns = (join) => ({
  'join RPCs own (median)': median(join.own),
  'join RPCs network (median)': median(join.network),
  'join ms (median)': median(join.ms).toFixed(0),
});
