import type { RelayOfferBody } from '@dpc/core';
import { LATENCY_CEILING_MS, WEIGHT_CAPACITY, WEIGHT_LATENCY, WEIGHT_UPTIME } from './constants.js';

/** The fields a relay's score depends on. */
export interface ScoreInput {
  /** Fraction of time the relay has been up, 0–1. */
  uptime: number;
  current_peers: number;
  max_peers: number;
  /** Latency to the relay in ms: the client's own measurement when it has one. */
  latency_ms: number;
}

const clamp = (x: number, lo: number, hi: number) => (Number.isFinite(x) ? Math.min(hi, Math.max(lo, x)) : hi);

/**
 * The spec's relay score, 0–1: uptime 50 %, free capacity 30 % (1 − current/max) and latency
 * 20 % (1 − latency/500, latency clamped to 0–500 ms). A relay with max_peers 0 has no capacity.
 */
export function scoreRelay(r: ScoreInput): number {
  const uptime = clamp(r.uptime, 0, 1);
  const capacity = r.max_peers > 0 ? 1 - clamp(r.current_peers / r.max_peers, 0, 1) : 0;
  const latency = 1 - clamp(r.latency_ms, 0, LATENCY_CEILING_MS) / LATENCY_CEILING_MS;
  return WEIGHT_UPTIME * uptime + WEIGHT_CAPACITY * capacity + WEIGHT_LATENCY * latency;
}

export interface RankOptions {
  /** Keep only relays of this region; when none is there, all regions are ranked (see README). */
  preferRegion?: string;
  /** Latency this client measured itself, by relay node id; it replaces the relay's own claim. */
  measuredLatencyMs?: ReadonlyMap<string, number>;
  /** Relay node ids to leave out (this node itself, relays that just failed). */
  exclude?: ReadonlySet<string>;
}

/**
 * Orders relay offers best first: unavailable and full relays are dropped, the region filter
 * applies when it leaves at least one relay, ties keep the input order.
 */
export function rankRelays<T extends { body: RelayOfferBody }>(offers: readonly T[], opts: RankOptions = {}): T[] {
  const usable = offers.filter((o) => o.body.available && o.body.current_peers < o.body.max_peers && !opts.exclude?.has(o.body.node_id));
  const region = opts.preferRegion;
  const inRegion = region ? usable.filter((o) => o.body.region === region) : usable;
  const pool = inRegion.length > 0 ? inRegion : usable;
  return pool
    .map((o, i) => ({
      o,
      i,
      score: scoreRelay({ ...o.body, latency_ms: opts.measuredLatencyMs?.get(o.body.node_id) ?? o.body.latency_ms }),
    }))
    .sort((a, b) => b.score - a.score || a.i - b.i)
    .map((x) => x.o);
}
