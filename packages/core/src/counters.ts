/** A bag of named monotonic counters, shared by the components of one node. */
export class Counters {
  readonly #values = new Map<string, number>();
  /** Bound on distinct names, so attacker-chosen labels cannot grow it without end. */
  readonly #maxNames: number;

  constructor(maxNames = 1024) {
    this.#maxNames = maxNames;
  }

  inc(name: string, by = 1): void {
    const cur = this.#values.get(name);
    if (cur === undefined && this.#values.size >= this.#maxNames) {
      this.#values.set('counters_dropped', (this.#values.get('counters_dropped') ?? 0) + by);
      return;
    }
    this.#values.set(name, (cur ?? 0) + by);
  }

  get(name: string): number {
    return this.#values.get(name) ?? 0;
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.#values].sort(([a], [b]) => a.localeCompare(b)));
  }
}
