import type { Counters, RelayOfferBody } from '@dpc/core';
import type { RelayDirectory } from './directory.js';

export interface AnnouncerOptions {
  directory: RelayDirectory;
  /** The offer as it would be announced now. */
  offer: () => RelayOfferBody;
  counters: Counters;
  signal: AbortSignal;
  intervalMs: number;
  debounceMs: number;
}

/**
 * Keeps a relay's offer in the directory: announced at start, refreshed every `intervalMs`, and
 * re-announced (at most every `debounceMs`) when its load (available / sessions) changed.
 */
export class RelayAnnouncer {
  readonly #o: AnnouncerOptions;
  #interval: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #last = '';
  #stopped = false;

  constructor(o: AnnouncerOptions) {
    this.#o = o;
  }

  start(): void {
    this.#announce();
    this.#interval = setInterval(() => this.#announce(true), this.#o.intervalMs);
    this.#interval.unref();
  }

  loadChanged(): void {
    if (this.#debounce || this.#stopped) return;
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      this.#announce();
    }, this.#o.debounceMs);
    this.#debounce.unref();
  }

  #announce(force = false): void {
    if (this.#stopped) return;
    const body = this.#o.offer();
    const load = `${body.available}/${body.current_peers}`;
    if (!force && load === this.#last) return;
    this.#last = load;
    this.#o.counters.inc('announces');
    this.#o.directory.announceRelay(body, { signal: this.#o.signal }).catch(() => this.#o.counters.inc('announce_errors'));
  }

  stop(): void {
    this.#stopped = true;
    clearInterval(this.#interval);
    clearTimeout(this.#debounce);
  }
}
