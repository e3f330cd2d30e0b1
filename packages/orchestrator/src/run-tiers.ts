import {
  type Connection,
  type Counters,
  type DpcConfig,
  isDpcError,
  type NetworkState,
  type SignedRecord,
  type Strategy,
  type TierName,
  timeoutSignal,
  toAbortError,
} from '@dpc/core';
import { type TierOutcome, WrongPeerError } from './errors.js';
import { tierTimeoutMs } from './plan.js';

export interface RunOptions {
  config: DpcConfig['connection'];
  peer: SignedRecord<'endpoint'>;
  network: NetworkState;
  signal: AbortSignal;
  /** Racing: a winner of this priority or worse leaves better attempts running (upgrades). */
  upgradeFromPriority?: number;
  counters?: Counters;
  onAttempt?: (tier: TierName) => void;
  onOutcome?: (o: TierOutcome) => void;
}

export interface RunResult {
  conn?: Connection;
  outcomes: TierOutcome[];
  /** Racing: attempts of better tiers still running after a worse tier won (upgrade candidates). */
  pending?: Array<Promise<Connection | undefined>>;
}

/**
 * The orchestrator's own check of what a tier returned (as js-libp2p's upgrader does centrally):
 * the connection is to the peer that was asked for and carries the strategy's tier.
 */
function checked(conn: Connection, s: Strategy, opts: RunOptions): Connection {
  let problem: string | undefined;
  if (conn.remoteNodeId !== opts.peer.nodeId) problem = `reached ${conn.remoteNodeId} instead of ${opts.peer.nodeId}`;
  else if (!conn.remotePublicKey?.equals?.(opts.peer.publicKey)) problem = `the peer's key does not match its record`;
  else if (conn.tier !== s.name) problem = `returned a ${conn.tier} connection`;
  if (!problem) return conn;
  opts.counters?.inc('tier_wrong_connection');
  void conn.close('wrong peer or tier');
  throw new WrongPeerError(`${s.name} ${problem}`);
}

/** One tier attempt under its own deadline; never rejects. */
async function attempt(s: Strategy, opts: RunOptions, signal: AbortSignal): Promise<{ conn?: Connection; outcome: TierOutcome }> {
  // The tier's own deadline for this peer (tier 4: a birthday punch), else its config key.
  const own = s.deadlineMs?.(opts.peer, opts.network);
  const ms = own !== undefined && Number.isFinite(own) && own > 0 ? own : tierTimeoutMs(opts.config, s.name);
  const t = timeoutSignal(ms, s.name, signal);
  const t0 = performance.now();
  opts.onAttempt?.(s.name);
  try {
    const conn = checked(await s.connect(opts.peer, { signal: t.signal, network: opts.network }), s, opts);
    const outcome: TierOutcome = { tier: s.name, result: 'connected', afterMs: performance.now() - t0 };
    opts.onOutcome?.(outcome);
    return { conn, outcome };
  } catch (err) {
    const afterMs = performance.now() - t0;
    let outcome: TierOutcome;
    if (signal.aborted) {
      const reason = toAbortError(signal);
      outcome = isDpcError(reason, 'DPC_TIMEOUT')
        ? { tier: s.name, result: 'timed out', afterMs }
        : { tier: s.name, result: 'cancelled', detail: reason.message };
    } else if (t.signal.aborted || isDpcError(err, 'DPC_TIMEOUT')) {
      outcome = { tier: s.name, result: 'timed out', afterMs };
    } else {
      const code = isDpcError(err) ? err.code : undefined;
      outcome = { tier: s.name, result: 'failed', reason: (err as Error)?.message ?? String(err), afterMs, ...(code && { code }) };
    }
    opts.onOutcome?.(outcome);
    return { outcome };
  } finally {
    t.clear();
  }
}

/** The spec's sequential mode: priority order, one tier at a time, early success. */
export async function runSequential(eligible: readonly Strategy[], opts: RunOptions): Promise<RunResult> {
  const outcomes: TierOutcome[] = [];
  for (const s of eligible) {
    if (opts.signal.aborted) {
      outcomes.push({ tier: s.name, result: 'cancelled', detail: toAbortError(opts.signal).message });
      continue;
    }
    const r = await attempt(s, opts, opts.signal);
    outcomes.push(r.outcome);
    if (r.conn) return { conn: r.conn, outcomes };
  }
  return { outcomes };
}

/**
 * Racing mode (Happy Eyeballs across tiers): tier i starts `staggerMs` after tier i-1, or at
 * once when every started tier has failed. The best tier that succeeds wins; after a success,
 * better tiers still running get `graceMs` to beat it. Worse attempts are cancelled. When the
 * winner's priority is `upgradeFromPriority` or worse, better attempts still running are handed back as `pending` (the
 * session moves up if one succeeds) instead of being cancelled.
 */
export function runRacing(eligible: readonly Strategy[], opts: RunOptions & { staggerMs: number; graceMs: number }): Promise<RunResult> {
  const ctrls = eligible.map(() => new AbortController());
  const outcomes: Array<TierOutcome | undefined> = eligible.map(() => undefined);
  const results: Array<Promise<Connection | undefined> | undefined> = eligible.map(() => undefined);
  return new Promise<RunResult>((resolve) => {
    let started = 0;
    let settled = 0;
    let best = -1;
    let bestConn: Connection | undefined;
    let done = false;
    const background = new Set<number>();
    let staggerTimer: NodeJS.Timeout | undefined;
    let graceTimer: NodeJS.Timeout | undefined;
    const onAbort = () => finish();
    opts.signal.addEventListener('abort', onAbort, { once: true });

    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(staggerTimer);
      clearTimeout(graceTimer);
      opts.signal.removeEventListener('abort', onAbort);
      const keepBetter = best >= 0 && (eligible[best]?.priority ?? 0) >= (opts.upgradeFromPriority ?? Number.POSITIVE_INFINITY);
      const pending: Array<Promise<Connection | undefined>> = [];
      eligible.forEach((s, i) => {
        if (i === best) return;
        if (outcomes[i] === undefined && results[i]) {
          if (keepBetter && i < best) {
            background.add(i);
            pending.push(results[i] as Promise<Connection | undefined>);
          } else ctrls[i]?.abort(new Error(best >= 0 ? `${eligible[best]?.name} won` : 'connect cancelled'));
        } else if (results[i] === undefined) {
          outcomes[i] = { tier: s.name, result: 'cancelled', detail: best >= 0 ? `${eligible[best]?.name} won first` : 'connect ended' };
        }
      });
      // Outcomes of still-running attempts are reported as cancelled/pending now.
      const final = eligible.map(
        (s, i) =>
          outcomes[i] ??
          ({ tier: s.name, result: 'cancelled', detail: i < best ? 'still trying in the background' : 'a better tier won' } as TierOutcome),
      );
      resolve({ ...(bestConn && { conn: bestConn }), outcomes: final, ...(pending.length > 0 && { pending }) });
    };

    const maybeFinish = () => {
      if (done) return;
      if (best >= 0) {
        // Won outright when no better tier is still running or yet to start.
        const betterRunning = eligible.some((_, i) => i < best && outcomes[i] === undefined);
        if (!betterRunning) return finish();
        if (!graceTimer) graceTimer = setTimeout(finish, opts.graceMs);
        return;
      }
      if (settled === eligible.length) return finish();
      if (settled === started) startNext();
    };

    const startNext = () => {
      if (done || started >= eligible.length) return;
      if (best >= 0) return; // something already won: no worse tier is needed
      const i = started++;
      clearTimeout(staggerTimer);
      if (started < eligible.length) staggerTimer = setTimeout(startNext, opts.staggerMs);
      const s = eligible[i] as Strategy;
      const p = attempt(s, opts, AbortSignal.any([opts.signal, (ctrls[i] as AbortController).signal])).then(({ conn, outcome }) => {
        outcomes[i] = outcome;
        settled++;
        if (conn) {
          if (done) {
            if (background.has(i)) return conn; // an upgrade for the session
            void conn.close('a better tier won');
            return undefined;
          }
          if (best < 0 || i < best) {
            if (bestConn) void bestConn.close('a better tier won');
            best = i;
            bestConn = conn;
          } else void conn.close('a better tier won');
        }
        maybeFinish();
        return undefined;
      });
      results[i] = p;
    };
    if (eligible.length === 0) return finish();
    startNext();
  });
}
