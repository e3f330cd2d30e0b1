import { AbortedError, TimeoutError } from './errors.js';

/** Throws the signal's reason as a typed error when it is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw toAbortError(signal);
}

/** The error to surface for an aborted signal: its reason if typed, else an AbortedError. */
export function toAbortError(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  const code = (r as { code?: unknown } | undefined)?.code;
  if (r instanceof Error && typeof code === 'string' && code.startsWith('DPC_')) return r;
  if (r instanceof Error && r.name === 'TimeoutError') return new TimeoutError(r.message, { cause: r });
  return new AbortedError(r instanceof Error ? r.message : 'operation aborted', { cause: r });
}

/**
 * A signal that aborts when `parent` aborts or after `ms` milliseconds, with a TimeoutError
 * carrying `what` in its message. Call `clear()` when done so no timer is left running.
 */
export function timeoutSignal(ms: number, what: string, parent?: AbortSignal): { signal: AbortSignal; clear: () => void } {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(new TimeoutError(`${what} timed out after ${ms} ms`)), ms);
  timer.unref?.();
  const onAbort = () => ctrl.abort(parent?.reason);
  if (parent) {
    if (parent.aborted) ctrl.abort(parent.reason);
    else parent.addEventListener('abort', onAbort, { once: true });
  }
  return {
    signal: ctrl.signal,
    clear: () => {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onAbort);
    },
  };
}

/** Longest delay a Node timer takes (about 24.8 days); a longer one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Keeps the process alive while `promise` is pending, for `ms` at most (default: until it
 * settles), with a ref'd timer cleared when it settles. For an operation its caller awaits —
 * a connect, a send — whose sockets and timers are unref'd so that a library never holds its
 * user's process open by itself: `await orchestrator.connect(…)` as a script's last line then
 * still gets its result instead of the process ending with the promise unsettled.
 */
export function holdProcess<T>(promise: Promise<T>, ms = MAX_TIMER_MS): Promise<T> {
  const timer = setTimeout(() => {}, Math.min(Math.max(ms, 0), MAX_TIMER_MS));
  return promise.finally(() => clearTimeout(timer));
}

/**
 * Waits for `promise`, rejecting early with the signal's typed error when it aborts (the
 * promise itself goes on; only the wait stops). No listener is left behind either way.
 */
export function abortable<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(toAbortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(toAbortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** Sleeps `ms`, rejecting early when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(toAbortError(signal));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(toAbortError(signal as AbortSignal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Happy-Eyeballs style race: start `attempts` in order, the next one `staggerMs` after the
 * previous started or as soon as it failed; the first success wins and every other attempt is
 * aborted. Rejects with all the errors when every attempt failed.
 */
export async function raceStaggered<T>(
  attempts: ReadonlyArray<(signal: AbortSignal) => Promise<T>>,
  opts: { staggerMs: number; signal?: AbortSignal; onLoser?: (value: T) => void },
): Promise<T> {
  throwIfAborted(opts.signal);
  if (attempts.length === 0) throw new AggregateError([], 'no attempts');
  const ctrls = attempts.map(() => new AbortController());
  const errors: unknown[] = new Array(attempts.length);
  return new Promise<T>((resolve, reject) => {
    let started = 0;
    let failed = 0;
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      done = true;
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = () => {
      if (done) return;
      finish();
      for (const c of ctrls) c.abort(opts.signal?.reason);
      reject(toAbortError(opts.signal as AbortSignal));
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const startNext = () => {
      if (done || started >= attempts.length) return;
      const i = started++;
      if (timer) clearTimeout(timer);
      if (started < attempts.length) timer = setTimeout(startNext, opts.staggerMs);
      const ctrl = ctrls[i] as AbortController;
      const attempt = attempts[i] as (s: AbortSignal) => Promise<T>;
      attempt(ctrl.signal).then(
        (value) => {
          if (done) {
            opts.onLoser?.(value);
            return;
          }
          finish();
          for (const [j, c] of ctrls.entries()) if (j !== i) c.abort(new AbortedError('another attempt won'));
          resolve(value);
        },
        (err: unknown) => {
          errors[i] = err;
          failed++;
          if (done) return;
          if (failed === attempts.length) {
            finish();
            reject(new AggregateError(errors, 'every attempt failed'));
          } else if (failed === started) startNext();
        },
      );
    };
    startNext();
  });
}
