/**
 * A token bucket: `ratePerSec` tokens are added per second up to `burst`. Used per peer for
 * messages/s and per relay for bytes/s. The clock is injectable so tests are deterministic.
 */
export class TokenBucket {
  readonly ratePerSec: number;
  readonly burst: number;
  readonly #now: () => number;
  #tokens: number;
  #at: number;

  constructor(opts: { ratePerSec: number; burst: number; now?: () => number }) {
    this.ratePerSec = opts.ratePerSec;
    this.burst = opts.burst;
    this.#now = opts.now ?? (() => performance.now());
    this.#tokens = opts.burst;
    this.#at = this.#now();
  }

  /** Tokens available now (negative while in debt). */
  get tokens(): number {
    this.#refill();
    return this.#tokens;
  }

  /** Takes `n` tokens if they are there; false (and nothing taken) otherwise. */
  tryTake(n = 1): boolean {
    this.#refill();
    if (this.#tokens < n) return false;
    this.#tokens -= n;
    return true;
  }

  /** Takes `n` tokens even if that goes into debt; returns the ms until the debt is paid (0 if none). */
  takeDebt(n: number): number {
    this.#refill();
    this.#tokens -= n;
    return this.#tokens >= 0 ? 0 : this.#waitFor(-this.#tokens);
  }

  /** Ms until `n` tokens are available (0 when they are now). */
  waitMs(n = 1): number {
    this.#refill();
    return this.#tokens >= n ? 0 : this.#waitFor(n - this.#tokens);
  }

  #waitFor(missing: number): number {
    if (this.ratePerSec <= 0) return Number.POSITIVE_INFINITY;
    return Math.ceil((missing / this.ratePerSec) * 1000);
  }

  #refill(): void {
    const now = this.#now();
    const elapsed = Math.max(0, now - this.#at);
    this.#at = now;
    if (this.#tokens < this.burst) this.#tokens = Math.min(this.burst, this.#tokens + (elapsed / 1000) * this.ratePerSec);
  }
}
