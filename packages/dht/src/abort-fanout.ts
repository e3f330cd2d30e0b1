import { TimeoutError } from '@dpc/core';

// Many requests share one signal (a lookup's, an operation's deadline, stop()'s): hundreds at
// once during a bootstrap or a burst of lookups. Rather than one 'abort' listener per request
// (and a raised listener limit to hide them), each signal gets one listener that calls the
// current subscribers.

const subscribers = new WeakMap<AbortSignal, Set<() => void>>();

/**
 * Calls `fn` once when `signal` aborts; returns the unsubscribe function. One real listener per
 * signal, however many subscribers come and go. The caller checks `signal.aborted` first.
 */
export function onAbort(signal: AbortSignal, fn: () => void): () => void {
  let set = subscribers.get(signal);
  if (!set) {
    const s = new Set<() => void>();
    set = s;
    subscribers.set(signal, s);
    signal.addEventListener(
      'abort',
      () => {
        subscribers.delete(signal);
        for (const f of [...s]) f();
        s.clear();
      },
      { once: true },
    );
  }
  const own = set;
  own.add(fn);
  return () => {
    own.delete(fn);
  };
}

/** An AbortSignal that aborts after `ms` (TimeoutError) or with `parent`; `clear()` when done. */
export function deadline(ms: number, what: string, parent?: AbortSignal): { signal: AbortSignal; clear: () => void } {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(new TimeoutError(`${what} timed out after ${ms} ms`)), ms);
  timer.unref?.();
  let off = () => {};
  if (parent?.aborted) ctrl.abort(parent.reason);
  else if (parent) off = onAbort(parent, () => ctrl.abort(parent.reason));
  return {
    signal: ctrl.signal,
    clear: () => {
      clearTimeout(timer);
      off();
    },
  };
}

/** Waits `ms`; rejects with the signal's reason when it aborts first. */
export function sleepUnless(ms: number, signal: AbortSignal | undefined, toError: (s: AbortSignal) => Error): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(toError(signal));
    let off = () => {};
    const t = setTimeout(() => {
      off();
      resolve();
    }, ms);
    if (signal)
      off = onAbort(signal, () => {
        clearTimeout(t);
        reject(toError(signal));
      });
  });
}
