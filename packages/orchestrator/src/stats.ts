import { TIERS, type TierName } from '@dpc/core';
import { TTC_SAMPLES } from './constants.js';

export interface TierStats {
  attempts: number;
  successes: number;
  /** Failures by reason ('timed out', 'not applicable', error codes...). */
  failures: Record<string, number>;
  /** Time to connect, ms: p50, p90, p99 over the last 1000 successes. */
  time_to_connect_ms: { p50: number | null; p90: number | null; p99: number | null; samples: number };
}

/** The spec's stats shape plus per-tier detail. */
export interface OrchestratorStats {
  total_attempts: number;
  successful_connections: number;
  failed_connections: number;
  strategy_usage: Record<TierName, number>;
  tiers: Record<TierName, TierStats>;
  upgrades: number;
  sessions: number;
}

/** Percentile by nearest rank on a sorted copy. */
export function percentile(samples: readonly number[], p: number): number | null {
  if (samples.length === 0) return null;
  const sorted = [...samples].sort((a, b) => a - b);
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] as number;
}

export class StatsRecorder {
  total = 0;
  ok = 0;
  failed = 0;
  upgrades = 0;
  readonly #usage = Object.fromEntries(TIERS.map((t) => [t, 0])) as Record<TierName, number>;
  readonly #tiers = new Map<TierName, { attempts: number; successes: number; failures: Map<string, number>; ttc: number[] }>(
    TIERS.map((t) => [t, { attempts: 0, successes: 0, failures: new Map(), ttc: [] }]),
  );

  attempt(tier: TierName): void {
    (this.#tiers.get(tier) as { attempts: number }).attempts++;
  }

  success(tier: TierName, ms: number): void {
    const t = this.#tiers.get(tier);
    if (!t) return;
    t.successes++;
    t.ttc.push(ms);
    if (t.ttc.length > TTC_SAMPLES) t.ttc.shift();
  }

  failure(tier: TierName, reason: string): void {
    const t = this.#tiers.get(tier);
    if (!t) return;
    if (t.failures.size < 64 || t.failures.has(reason)) t.failures.set(reason, (t.failures.get(reason) ?? 0) + 1);
  }

  used(tier: TierName): void {
    this.#usage[tier]++;
  }

  snapshot(sessions: number): OrchestratorStats {
    const tiers = {} as Record<TierName, TierStats>;
    for (const [name, t] of this.#tiers) {
      tiers[name] = {
        attempts: t.attempts,
        successes: t.successes,
        failures: Object.fromEntries(t.failures),
        time_to_connect_ms: { p50: percentile(t.ttc, 50), p90: percentile(t.ttc, 90), p99: percentile(t.ttc, 99), samples: t.ttc.length },
      };
    }
    return {
      total_attempts: this.total,
      successful_connections: this.ok,
      failed_connections: this.failed,
      strategy_usage: { ...this.#usage },
      tiers,
      upgrades: this.upgrades,
      sessions,
    };
  }
}
