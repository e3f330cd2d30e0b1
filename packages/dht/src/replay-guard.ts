import { DEFAULT_SIGNAL_REPLAY_CACHE_BYTES, SIGNAL_MAX_AGE_MS, SIGNAL_REPLAY_ENTRY_BYTES, SIGNAL_SOURCE_SHARE } from './constants.js';
import { RateLimiter } from './rate-limit.js';

export interface ReplayGuardOptions {
  /** Memory bound of the cache of seen signals. Default 2 MiB. */
  maxBytes?: number;
  /** A signal older than this, or this far ahead of our clock, is stale. Default 120 000 ms. */
  maxAgeMs?: number;
  /** Clock in ms (tests). */
  now?: () => number;
}

/** What the guard says about a signal: deliver it (null), or why not. */
export type ReplayVerdict = 'stale' | 'replay' | 'rate_limited' | 'source_rate_limited' | null;

/**
 * Replay and freshness check of the signals addressed to this node. A signal is fresh while
 * |now − ts| ≤ maxAgeMs, so its (sender, nonce) is remembered until ts + maxAgeMs, when it turns
 * stale by itself: the cache covers the whole window, and no remembered signal is ever evicted
 * early. The memory bound holds because of a rate limit on new signals: entries live at most
 * 2 × maxAgeMs, so at `perSecond` = capacity / (2 × maxAgeMs in s + 1), with a burst of one
 * second's worth, the cache cannot overflow. A flood beyond that rate is refused ('rate_limited'),
 * never remembered in part; and one source (the /24 or /64 that delivers it) gets at most a
 * quarter of that rate ('source_rate_limited'), so a flood from one place leaves room for others.
 */
export class ReplayGuard {
  readonly #seen = new Set<string>();
  /** Keys by the second they turn stale. */
  readonly #byExpiry = new Map<number, string[]>();
  readonly #capacity: number;
  readonly #maxAgeMs: number;
  readonly #perSecond: number;
  readonly #burst: number;
  readonly #now: () => number;
  readonly #perSource: RateLimiter;
  #tokens: number;
  #at: number;

  constructor(opts: ReplayGuardOptions = {}) {
    this.#maxAgeMs = opts.maxAgeMs ?? SIGNAL_MAX_AGE_MS;
    this.#capacity = Math.floor((opts.maxBytes ?? DEFAULT_SIGNAL_REPLAY_CACHE_BYTES) / SIGNAL_REPLAY_ENTRY_BYTES);
    // burst + perSecond × lifetime ≤ capacity, with a burst of one second's worth.
    this.#perSecond = this.#capacity / ((2 * this.#maxAgeMs) / 1000 + 1);
    const burst = this.#perSecond;
    this.#now = opts.now ?? Date.now;
    this.#tokens = burst;
    this.#burst = burst;
    this.#at = this.#now();
    const share = Math.max(1, this.#perSecond * SIGNAL_SOURCE_SHARE);
    this.#perSource = new RateLimiter({ perSecond: share, burst: share, now: this.#now });
  }

  /** New signals accepted per second at most (what keeps the cache under its bound). */
  get perSecond(): number {
    return this.#perSecond;
  }

  /** Signals remembered at most. */
  get capacity(): number {
    return this.#capacity;
  }

  get size(): number {
    return this.#seen.size;
  }

  /**
   * 'stale' when too old or too far ahead, 'replay' when seen, 'rate_limited' when new signals
   * arrive faster than the cache can remember them for their whole window; else remembers it and
   * returns null. A 'replay' is also what a retransmission of a delivered signal looks like (its
   * answer was lost or late), so the recipient acknowledges it again without delivering it twice.
   */
  check(sig: { from: string; nonce: string; ts: number }, source?: string): ReplayVerdict {
    const now = this.#now();
    if (Math.abs(now - sig.ts) > this.#maxAgeMs) return 'stale';
    const key = replayKey(sig.from, sig.nonce);
    if (this.#seen.has(key)) return 'replay';
    this.#sweep(now);
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#at) * this.#perSecond) / 1000);
    this.#at = now;
    if (this.#tokens < 1 || this.#seen.size >= this.#capacity) return 'rate_limited';
    if (source !== undefined && !this.#perSource.take(source)) return 'source_rate_limited';
    this.#tokens -= 1;
    this.#seen.add(key);
    const second = Math.ceil((sig.ts + this.#maxAgeMs) / 1000);
    const list = this.#byExpiry.get(second);
    if (list) list.push(key);
    else this.#byExpiry.set(second, [key]);
    return null;
  }

  /** Forgets the signals that are stale by now (at most 2 × maxAgeMs / 1 s buckets to look at). */
  #sweep(now: number): void {
    // A key expiring in second s is stale once now > s × 1000 ≥ ts + maxAgeMs.
    for (const [second, keys] of this.#byExpiry) {
      if (second * 1000 >= now) continue;
      for (const k of keys) this.#seen.delete(k);
      this.#byExpiry.delete(second);
    }
  }
}

/**
 * A flat 24-byte one-byte string (16 bytes of node id, 8 of nonce): about 80 bytes per remembered
 * signal with the set and bucket slots, measured on Node 20, under SIGNAL_REPLAY_ENTRY_BYTES.
 */
function replayKey(from: string, nonce: string): string {
  const b = Buffer.from(`${from.startsWith('dpc-node-') ? from.slice(9) : from}${nonce}`, 'hex');
  return b.length === 24 ? b.toString('latin1') : `${from}|${nonce}`;
}
