import { EventEmitter } from 'node:events';
import {
  type Connection,
  Counters,
  type DpcConfig,
  type NetworkState,
  type SignedRecord,
  type Strategy,
  secondsToMs,
  sleep,
  TIERS,
  type TierName,
  throwIfAborted,
  tierPriority,
  timeoutSignal,
} from '@dpc/core';
import { DEFAULT_MAX_SESSIONS, DEFAULT_UPGRADE_INTERVAL_MS, RECONNECT_BACKOFF_MS } from './constants.js';
import { ConnectFailedError, OrchestratorStateError, PeerLookupError, type TierOutcome } from './errors.js';
import { planTiers } from './plan.js';
import { type RunResult, runRacing, runSequential } from './run-tiers.js';
import { type PeerSession, Session } from './session.js';
import { type OrchestratorStats, StatsRecorder } from './stats.js';

/** Where peers' endpoint records come from (the DHT implements it). */
export interface PeerDirectory {
  findPeer(nodeId: string, opts?: { signal?: AbortSignal }): Promise<SignedRecord<'endpoint'>>;
}

export interface OrchestratorOptions {
  /** This node's id (tie-breaks between two paths of one tier). */
  localNodeId: string;
  directory: PeerDirectory;
  /** The loaded config; `[connection]` is read at every connect(), so changes apply. */
  config: DpcConfig;
  /** The installed tiers. Absent tiers are reported as "not installed". */
  strategies: readonly Strategy[];
  /** Current network state (Hub connected? own addresses). Default: no Hub. */
  network?: () => NetworkState;
  /** Background upgrade attempts period for relay/gossip sessions, ms. Default 30 000. */
  upgradeIntervalMs?: number;
  /** Sessions kept at most. Default 4096. */
  maxSessions?: number;
  /** Unacknowledged messages per session. Default 1024. */
  maxUnacked?: number;
  counters?: Counters;
}

export interface ConnectEvent {
  peerId: string;
  tier: TierName;
  ms: number;
  outcomes: TierOutcome[];
}

export interface ConnectionOrchestrator extends EventEmitter {
  /** Reaches the peer through the best working tier and returns its session. */
  connect(peerId: string, opts?: { signal?: AbortSignal; tiers?: readonly TierName[] }): Promise<PeerSession>;
  /** Hands over an inbound connection from any tier; it joins (or starts) that peer's session. */
  accept(conn: Connection): PeerSession | undefined;
  session(peerId: string): PeerSession | undefined;
  sessions(): PeerSession[];
  stats(): OrchestratorStats;
  stop(): Promise<void>;
  on(event: 'connect', listener: (e: ConnectEvent) => void): this;
  on(event: 'fail', listener: (e: { peerId: string; error: Error }) => void): this;
  on(event: 'upgrade', listener: (e: { peerId: string; from: TierName | undefined; to: TierName }) => void): this;
  on(event: 'session', listener: (session: PeerSession) => void): this;
  on(event: 'path-lost', listener: (e: { peerId: string; tier: TierName; error?: Error }) => void): this;
  on(event: 'message', listener: (e: { peerId: string; body: unknown; tier: TierName }) => void): this;
}

class Orchestrator extends EventEmitter implements ConnectionOrchestrator {
  readonly #opts: OrchestratorOptions;
  readonly #sessions = new Map<string, Session>();
  readonly #inflight = new Map<string, Promise<PeerSession>>();
  readonly #stats = new StatsRecorder();
  readonly #shutdown = new AbortController();
  readonly #counters: Counters;
  readonly #restoring = new Set<Session>();

  constructor(opts: OrchestratorOptions) {
    super();
    this.#opts = opts;
    this.#counters = opts.counters ?? new Counters();
  }

  #network(): NetworkState {
    return this.#opts.network?.() ?? { hubConnected: false };
  }

  #session(peerId: string): Session {
    let s = this.#sessions.get(peerId);
    if (s && !s.closed) return s;
    if (this.#sessions.size >= (this.#opts.maxSessions ?? DEFAULT_MAX_SESSIONS)) {
      throw new OrchestratorStateError(`session limit of ${this.#opts.maxSessions ?? DEFAULT_MAX_SESSIONS} reached`);
    }
    s = new Session(peerId, this.#opts.localNodeId, {
      counters: this.#counters,
      ...(this.#opts.maxUnacked !== undefined && { maxUnacked: this.#opts.maxUnacked }),
    });
    const session = s;
    this.#sessions.set(peerId, session);
    session.on('message', (body: unknown, meta: { tier: TierName }) => this.emit('message', { peerId, body, tier: meta.tier }));
    session.on('path', (e: { tier: TierName; previous: TierName | undefined }) => {
      if (e.previous && e.tier !== e.previous) {
        this.#stats.upgrades++;
        this.emit('upgrade', { peerId, from: e.previous, to: e.tier });
      }
    });
    session.on('path-lost', (e: { tier: TierName; error?: Error }) => {
      this.emit('path-lost', { peerId, ...e });
      this.#restore(session);
    });
    session.on('need-path', () => this.#restore(session));
    session.on('close', () => {
      if (this.#sessions.get(peerId) === session) this.#sessions.delete(peerId);
    });
    return session;
  }

  session(peerId: string): PeerSession | undefined {
    return this.#sessions.get(peerId);
  }

  sessions(): PeerSession[] {
    return [...this.#sessions.values()];
  }

  stats(): OrchestratorStats {
    return this.#stats.snapshot(this.#sessions.size);
  }

  accept(conn: Connection): PeerSession | undefined {
    if (this.#shutdown.signal.aborted) {
      void conn.close('orchestrator stopped');
      return undefined;
    }
    const isNew = !this.#sessions.get(conn.remoteNodeId) || this.#sessions.get(conn.remoteNodeId)?.closed;
    let s: Session;
    try {
      s = this.#session(conn.remoteNodeId);
    } catch {
      this.#counters.inc('inbound_refused_session_limit');
      void conn.close('session limit');
      return undefined;
    }
    s.attach(conn, conn.remoteNodeId);
    if (isNew) this.emit('session', s);
    return s;
  }

  connect(peerId: string, opts: { signal?: AbortSignal; tiers?: readonly TierName[] } = {}): Promise<PeerSession> {
    if (this.#shutdown.signal.aborted) return Promise.reject(new OrchestratorStateError('orchestrator is stopped'));
    const existing = this.#sessions.get(peerId);
    if (existing?.connected && !opts.tiers) return Promise.resolve(existing);
    const key = opts.tiers ? `${peerId}|${opts.tiers.join(',')}` : peerId;
    let p = this.#inflight.get(key);
    if (!p) {
      p = this.#connect(peerId, opts).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, p);
    }
    return p;
  }

  async #connect(peerId: string, opts: { signal?: AbortSignal; tiers?: readonly TierName[] }): Promise<PeerSession> {
    const cfg = this.#opts.config.connection;
    const signals = [this.#shutdown.signal, ...(opts.signal ? [opts.signal] : [])];
    const deadline = timeoutSignal(secondsToMs(cfg.total_timeout), `connect to ${peerId}`, AbortSignal.any(signals));
    const t0 = performance.now();
    this.#stats.total++;
    try {
      let record: SignedRecord<'endpoint'>;
      try {
        record = await this.#opts.directory.findPeer(peerId, { signal: deadline.signal });
      } catch (err) {
        throw new PeerLookupError(peerId, err);
      }
      const network = this.#network();
      const plan = planTiers(this.#opts.strategies, cfg, record, network, opts.tiers ? new Set(opts.tiers) : undefined);
      for (const o of plan.skipped) this.#stats.failure(o.tier, `skipped: ${o.result === 'skipped' ? o.reason : ''}`);
      const run = {
        config: cfg,
        peer: record,
        network,
        signal: deadline.signal,
        onAttempt: (tier: TierName) => this.#stats.attempt(tier),
        onOutcome: (o: TierOutcome) => {
          if (o.result === 'connected') this.#stats.success(o.tier, o.afterMs);
          else if (o.result === 'timed out') this.#stats.failure(o.tier, 'timed out');
          else if (o.result === 'failed') this.#stats.failure(o.tier, o.code ?? 'failed');
        },
      };
      const result: RunResult =
        cfg.mode === 'sequential'
          ? await runSequential(plan.eligible, run)
          : await runRacing(plan.eligible, { ...run, staggerMs: secondsToMs(cfg.race_stagger), graceMs: secondsToMs(cfg.race_grace) });
      const outcomes = [...plan.skipped, ...result.outcomes].sort((a, b) => TIERS.indexOf(a.tier) - TIERS.indexOf(b.tier));
      if (!result.conn) {
        throwIfAborted(opts.signal);
        throw new ConnectFailedError(peerId, outcomes);
      }
      const session = this.#session(peerId);
      session.attach(result.conn, this.#opts.localNodeId);
      this.#stats.ok++;
      this.#stats.used(result.conn.tier);
      const ev: ConnectEvent = { peerId, tier: result.conn.tier, ms: performance.now() - t0, outcomes };
      this.emit('connect', ev);
      for (const pending of result.pending ?? []) {
        pending.then(
          (conn) => conn && session.attach(conn, this.#opts.localNodeId),
          () => {},
        );
      }
      if (cfg.mode !== 'sequential' && tierPriority(result.conn.tier) >= 5) this.#keepUpgrading(session, plan.eligible);
      return session;
    } catch (err) {
      this.#stats.failed++;
      this.emit('fail', { peerId, error: err as Error });
      throw err;
    } finally {
      deadline.clear();
    }
  }

  /** While a session rides tier 5 or 6, periodically try the better tiers in the background. */
  #keepUpgrading(session: Session, eligible: readonly Strategy[]): void {
    const better = eligible.filter((s) => s.priority < 5);
    if (better.length === 0) return;
    const interval = this.#opts.upgradeIntervalMs ?? DEFAULT_UPGRADE_INTERVAL_MS;
    const loop = async () => {
      const signal = this.#shutdown.signal;
      while (!session.closed && !signal.aborted) {
        await sleep(interval, signal).catch(() => {});
        const tier = session.tier;
        if (session.closed || signal.aborted || (tier && TIERS.indexOf(tier) < 4)) return;
        await this.connect(session.peerId, { tiers: better.map((s) => s.name), signal }).catch(() => {});
      }
    };
    void loop();
  }

  /** A session lost its path (or has messages and none): reconnect with backoff. */
  #restore(session: Session): void {
    if (session.closed || this.#shutdown.signal.aborted || session.connected) return;
    if (this.#restoring.has(session)) return;
    this.#restoring.add(session);
    const loop = async () => {
      let delay: number = RECONNECT_BACKOFF_MS[0];
      try {
        while (!session.closed && !session.connected && !this.#shutdown.signal.aborted) {
          if (session.unacked === 0) return; // nothing to deliver: reconnect lazily on next send
          try {
            await this.connect(session.peerId, { signal: this.#shutdown.signal });
            if (session.connected) return;
          } catch {
            // retried below
          }
          await sleep(delay, this.#shutdown.signal).catch(() => {});
          delay = Math.min(delay * 2, RECONNECT_BACKOFF_MS[1]);
        }
      } finally {
        this.#restoring.delete(session);
      }
    };
    void loop();
  }

  async stop(): Promise<void> {
    this.#shutdown.abort(new OrchestratorStateError('orchestrator stopped'));
    await Promise.all([...this.#sessions.values()].map((s) => s.close()));
    this.#sessions.clear();
  }
}

/** Creates the orchestrator; tier strategies are injected, none is imported. */
export function createOrchestrator(opts: OrchestratorOptions): ConnectionOrchestrator {
  return new Orchestrator(opts);
}
