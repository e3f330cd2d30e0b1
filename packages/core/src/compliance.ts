/**
 * @dpc/core/compliance — the shared test suite every tier's `Strategy` must pass. It registers
 * vitest tests (vitest is an optional peer dependency: only this subpath needs it).
 *
 * @example
 * ```ts
 * import { strategyCompliance } from '@dpc/core/compliance';
 *
 * strategyCompliance('ipv4_direct', async () => ({
 *   strategy: ipv4DirectStrategy({ identity: alice, allowLoopback: true, timeoutMs: 1000 }),
 *   timeoutMs: 1000,
 *   reachable, misdirected, silent, notApplicable, // endpoint records, see StrategyFixture
 *   close: () => listener.stop(),
 * }));
 * ```
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDpcError } from './errors.js';
import type { SignedRecord } from './records.js';
import { type Connection, type NetworkState, type Strategy, TIERS, tierPriority } from './tiers.js';

/** What the suite needs to exercise one strategy over real paths the fixture set up. */
export interface StrategyFixture {
  /** The strategy under test, built with `timeoutMs` as its own deadline. */
  strategy: Strategy;
  /** The strategy's own deadline for one attempt, ms (its configured tier timeout). */
  timeoutMs: number;
  /** Network state shown to the strategy. Default `{ hubConnected: false }`. */
  network?: NetworkState;
  /** A record of a peer that this strategy reaches (the peer is up and accepts). */
  reachable: SignedRecord<'endpoint'>;
  /** A record of peer X (signed by X) whose path leads to another node Y that accepts. */
  misdirected: SignedRecord<'endpoint'>;
  /** A record whose path accepts and then never answers (a stalled handshake). */
  silent: SignedRecord<'endpoint'>;
  /** A record without the fields this tier needs. */
  notApplicable: SignedRecord<'endpoint'>;
  /** Stops everything the fixture started. */
  close(): Promise<void>;
}

/** Slack allowed on top of a deadline before a late answer counts as a failure, ms. */
const SLACK_MS = 1_000;
/** "At once": an answer that needs no network, ms. */
const AT_ONCE_MS = 250;

interface Outcome {
  conn?: Connection;
  error?: unknown;
  ms: number;
}

async function attempt(s: Strategy, peer: SignedRecord<'endpoint'>, signal: AbortSignal, network?: NetworkState): Promise<Outcome> {
  const t0 = performance.now();
  try {
    const conn = await s.connect(peer, { signal, ...(network && { network }) });
    return { conn, ms: performance.now() - t0 };
  } catch (error) {
    return { error, ms: performance.now() - t0 };
  }
}

/** Fails with the reason (and closes a connection that should not exist). */
async function rejected(o: Outcome, what: string): Promise<unknown> {
  if (o.conn) {
    const to = o.conn.remoteNodeId;
    await o.conn.close('compliance: unexpected connection').catch(() => {});
    expect.fail(`${what}: connect resolved with a connection to ${to}; it must reject`);
  }
  return o.error;
}

function code(err: unknown): string {
  return isDpcError(err) ? err.code : `untyped ${(err as Error)?.name ?? typeof err}: ${(err as Error)?.message ?? String(err)}`;
}

/**
 * Registers the Strategy compliance tests for one strategy: identity of the peer, abort before,
 * during and after an attempt, its own deadline and the caller's, and "not applicable" answered
 * at once. `setup` runs once before the tests; `close` after them.
 */
export function strategyCompliance(name: string, setup: () => Promise<StrategyFixture>): void {
  describe(`${name}: Strategy compliance`, () => {
    let f: StrategyFixture;
    beforeAll(async () => {
      f = await setup();
    });
    afterAll(async () => {
      await f?.close();
    });
    const connect = (peer: SignedRecord<'endpoint'>, signal: AbortSignal) => attempt(f.strategy, peer, signal, f.network);

    it('names a tier and has that tier’s priority', () => {
      expect(TIERS).toContain(f.strategy.name);
      expect(f.strategy.priority).toBe(tierPriority(f.strategy.name));
    });

    it('reaches a reachable peer: the connection is to that peer and tagged with this tier', async () => {
      const o = await connect(f.reachable, AbortSignal.timeout(f.timeoutMs + SLACK_MS));
      expect(o.error, `connect failed: ${code(o.error)}`).toBeUndefined();
      const conn = o.conn as Connection;
      try {
        expect(conn.remoteNodeId).toBe(f.reachable.nodeId);
        expect(Buffer.from(conn.remotePublicKey).equals(f.reachable.publicKey)).toBe(true);
        expect(conn.tier).toBe(f.strategy.name);
        expect(conn.closed).toBe(false);
      } finally {
        await conn.close();
      }
    });

    it('wrong peer: a path to another node rejects with a typed error, never a connection to that node', async () => {
      const o = await connect(f.misdirected, AbortSignal.timeout(f.timeoutMs + SLACK_MS));
      const err = await rejected(o, 'wrong peer');
      expect(isDpcError(err), code(err)).toBe(true);
    });

    it('abort before start: an aborted signal rejects at once with DPC_ABORTED', async () => {
      const ctrl = new AbortController();
      ctrl.abort(new Error('compliance: aborted before start'));
      const o = await connect(f.reachable, ctrl.signal);
      const err = await rejected(o, 'abort before start');
      expect(code(err)).toBe('DPC_ABORTED');
      expect(o.ms).toBeLessThan(AT_ONCE_MS);
    });

    it('abort during: aborting a stalled attempt rejects promptly with DPC_ABORTED', async () => {
      const ctrl = new AbortController();
      const abortAfterMs = Math.min(100, f.timeoutMs / 4);
      setTimeout(() => ctrl.abort(new Error('compliance: aborted during connect')), abortAfterMs);
      const o = await connect(f.silent, ctrl.signal);
      const err = await rejected(o, 'abort during');
      expect(code(err)).toBe('DPC_ABORTED');
      expect(o.ms).toBeGreaterThanOrEqual(abortAfterMs - 5);
      expect(o.ms).toBeLessThan(abortAfterMs + AT_ONCE_MS * 3);
    });

    it('abort after: aborting the signal once connected leaves the connection open and working', async () => {
      const ctrl = new AbortController();
      const o = await connect(f.reachable, ctrl.signal);
      expect(o.error, `connect failed: ${code(o.error)}`).toBeUndefined();
      const conn = o.conn as Connection;
      try {
        ctrl.abort(new Error('compliance: aborted after connect'));
        await new Promise((r) => setTimeout(r, 50));
        expect(conn.closed).toBe(false);
        expect(await conn.ping({ signal: AbortSignal.timeout(5_000) })).toBeGreaterThanOrEqual(0);
      } finally {
        await conn.close();
      }
    });

    it('timeout: a peer that never answers is given up within the tier’s own deadline, with a typed timeout', async () => {
      const o = await connect(f.silent, new AbortController().signal);
      const err = await rejected(o, 'own deadline');
      expect(['DPC_TIMEOUT', 'DPC_HANDSHAKE_TIMEOUT']).toContain(code(err));
      expect(o.ms).toBeGreaterThanOrEqual(f.timeoutMs * 0.9);
      expect(o.ms).toBeLessThan(f.timeoutMs + SLACK_MS);
    });

    it('timeout: the caller’s deadline (a timeout signal) is honoured with DPC_TIMEOUT', async () => {
      const deadlineMs = Math.min(200, f.timeoutMs / 2);
      const o = await connect(f.silent, AbortSignal.timeout(deadlineMs));
      const err = await rejected(o, 'caller deadline');
      expect(code(err)).toBe('DPC_TIMEOUT');
      expect(o.ms).toBeLessThan(deadlineMs + AT_ONCE_MS * 3);
    });

    it('not applicable: isApplicable answers synchronously and fast; connect rejects at once with DPC_TIER_NOT_APPLICABLE', async () => {
      const network = f.network ?? { hubConnected: false };
      const t0 = performance.now();
      const a = f.strategy.isApplicable(f.notApplicable, network);
      for (let i = 0; i < 99; i++) f.strategy.isApplicable(f.notApplicable, network);
      const perCallMs = (performance.now() - t0) / 100;
      expect(typeof (a as unknown as { then?: unknown }).then).toBe('undefined');
      expect(a.applicable).toBe(false);
      expect(a.applicable === false && a.reason.length > 0).toBe(true);
      expect(perCallMs).toBeLessThan(2);
      expect(f.strategy.isApplicable(f.reachable, network)).toEqual({ applicable: true });
      const o = await connect(f.notApplicable, AbortSignal.timeout(f.timeoutMs + SLACK_MS));
      const err = await rejected(o, 'not applicable');
      expect(code(err)).toBe('DPC_TIER_NOT_APPLICABLE');
      expect(o.ms).toBeLessThan(AT_ONCE_MS);
    });
  });
}
