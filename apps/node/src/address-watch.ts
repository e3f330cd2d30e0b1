import { networkInterfaces } from 'node:os';

// Network change: a laptop moves to another Wi-Fi, a router hands out a new prefix, a VPN comes
// up. The node polls its interface addresses (cheap: one getifaddrs call) and, when the set
// changes, re-reads its endpoint parts and re-learns its external IPv4, so the record in the DHT
// points at where it is now within seconds instead of at the next hourly republish.

/** Poll period of the local addresses, ms. */
export const DEFAULT_ADDRESS_POLL_MS = 2_000;

/** What changed between two polls (addresses as strings, sorted). */
export interface AddressChange {
  added: string[];
  removed: string[];
}

/**
 * The addresses that matter for the endpoint record: every non-internal one, link-local IPv6
 * excluded (it is never announced, and it comes and goes with interfaces that do not matter).
 */
export function interfaceAddresses(ifaces: ReturnType<typeof networkInterfaces> = networkInterfaces()): string[] {
  const out = new Set<string>();
  for (const list of Object.values(ifaces)) {
    for (const a of list ?? []) {
      if (a.internal) continue;
      if (a.family === 'IPv6' && /^fe[89ab]/i.test(a.address)) continue;
      out.add(a.address);
    }
  }
  return [...out].sort();
}

/** The difference between two address sets; undefined when they are equal. */
export function addressChange(before: readonly string[], after: readonly string[]): AddressChange | undefined {
  const b = new Set(before);
  const a = new Set(after);
  const added = [...a].filter((x) => !b.has(x)).sort();
  const removed = [...b].filter((x) => !a.has(x)).sort();
  return added.length === 0 && removed.length === 0 ? undefined : { added, removed };
}

export interface AddressWatchOptions {
  /** Called once per change; a change seen while it still runs is handled after it (never twice at once). */
  onChange: (change: AddressChange) => Promise<void> | void;
  /** Stops the watcher. */
  signal: AbortSignal;
  /** Poll period, ms. Default DEFAULT_ADDRESS_POLL_MS. */
  intervalMs?: number;
  /** Reads the current addresses. Default {@link interfaceAddresses}. */
  read?: () => string[];
  /** Called when `onChange` throws or rejects. */
  onError?: (err: unknown) => void;
}

/** Polls the local addresses until `signal` aborts; calls `onChange` when the set changes. */
export function watchAddresses(opts: AddressWatchOptions): void {
  const read = opts.read ?? (() => interfaceAddresses());
  let known = read();
  let running = false;
  const tick = async () => {
    if (running || opts.signal.aborted) return;
    const now = read();
    const change = addressChange(known, now);
    if (!change) return;
    known = now;
    running = true;
    try {
      await opts.onChange(change);
    } catch (err) {
      opts.onError?.(err);
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void tick(), opts.intervalMs ?? DEFAULT_ADDRESS_POLL_MS);
  timer.unref();
  opts.signal.addEventListener('abort', () => clearInterval(timer), { once: true });
}
