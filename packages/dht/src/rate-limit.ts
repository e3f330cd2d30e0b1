import { DEFAULT_MAX_TRACKED_HOSTS, DEFAULT_RATE_LIMIT_BURST, DEFAULT_RATE_LIMIT_PER_SEC } from './constants.js';

export interface RateLimiterOptions {
  /** Sustained rate per key, per second. */
  perSecond?: number;
  /** Bucket size. */
  burst?: number;
  /** Keys tracked at once; the least recently refilled is forgotten first. */
  maxKeys?: number;
  /** Clock in ms (tests). */
  now?: () => number;
}

/** A token bucket per key (a source host), bounded in memory. */
export class RateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  readonly #maxKeys: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(opts: RateLimiterOptions = {}) {
    this.#rate = opts.perSecond ?? DEFAULT_RATE_LIMIT_PER_SEC;
    this.#burst = opts.burst ?? DEFAULT_RATE_LIMIT_BURST;
    this.#maxKeys = opts.maxKeys ?? DEFAULT_MAX_TRACKED_HOSTS;
    this.#now = opts.now ?? Date.now;
  }

  /** Takes one token for `key`; false when the key is over its rate. */
  take(key: string, cost = 1): boolean {
    const now = this.#now();
    let b = this.#buckets.get(key);
    if (b === undefined) {
      if (this.#buckets.size >= this.#maxKeys) {
        const oldest = this.#buckets.keys().next().value as string;
        this.#buckets.delete(oldest);
      }
      b = { tokens: this.#burst, at: now };
    } else {
      this.#buckets.delete(key);
      b.tokens = Math.min(this.#burst, b.tokens + ((now - b.at) * this.#rate) / 1000);
      b.at = now;
    }
    this.#buckets.set(key, b);
    if (b.tokens < cost) return false;
    b.tokens -= cost;
    return true;
  }

  get trackedKeys(): number {
    return this.#buckets.size;
  }
}
