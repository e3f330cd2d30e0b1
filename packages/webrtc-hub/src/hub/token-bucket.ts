/** A token bucket: `burst` tokens, refilled at `ratePerS`. Time comes from `now` (ms) so tests decide it. */
export class HubTokenBucket {
  #tokens: number;
  #last: number;
  readonly #rate: number;
  readonly #burst: number;

  constructor(ratePerS: number, burst: number, now: number) {
    this.#rate = ratePerS;
    this.#burst = burst;
    this.#tokens = burst;
    this.#last = now;
  }

  /** Takes one token; false when the bucket is empty. */
  take(now: number): boolean {
    const dt = Math.max(0, now - this.#last) / 1000;
    this.#last = Math.max(this.#last, now);
    this.#tokens = Math.min(this.#burst, this.#tokens + dt * this.#rate);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
