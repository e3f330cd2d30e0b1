import { EventEmitter } from 'node:events';
import {
  type Connection,
  Counters,
  type DeferredDelivery,
  type DeferredItem,
  type DpcConfig,
  holdProcess,
  KvBatcher,
  type KvStore,
  memoryKvStore,
  type NetworkState,
  type SignedRecord,
  type Strategy,
  secondsToMs,
  sleep,
  TIERS,
  type TierName,
  throwIfAborted,
  timeoutSignal,
} from '@dpc/core';
import {
  CONNECT_HOLD_GRACE_MS,
  DEFAULT_MAX_REORDER_TOTAL_BYTES,
  DEFAULT_MAX_SESSIONS,
  DEFAULT_UPGRADE_FROM_PRIORITY,
  DEFAULT_UPGRADE_INTERVAL_MS,
  MAX_RESUMED_SESSIONS,
  RECONNECT_BACKOFF_MS,
  STOP_HOLD_MS,
} from './constants.js';
import { ConnectFailedError, OrchestratorStateError, PeerLookupError, type TierOutcome } from './errors.js';
import { planTiers } from './plan.js';
import { type RunResult, runRacing, runSequential } from './run-tiers.js';
import { PATH_RANK, type PeerSession, Session } from './session.js';
import { peersWithOutbox } from './session-state.js';
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
  /**
   * Tier 6: a deferred path (store-and-forward). Used when no live tier connects within
   * `[connection] gossip_timeout`, or when the peer's record cannot be found but its key is
   * known. Default none.
   */
  deferred?: DeferredDelivery;
  /**
   * Where sessions keep their outbox and receiver state. A disk store (`@dpc/store`) makes
   * messages survive restarts of either side. Default: in memory.
   */
  store?: KvStore;
  /** Background upgrade attempts period for sessions on a worse tier, ms. Default 30 000. */
  upgradeIntervalMs?: number;
  /**
   * A session whose path ranks this or worse (`PATH_RANK`: direct 1–2, hole punching 3, WebRTC 4,
   * relay 5, gossip 6) keeps trying the better-ranked eligible tiers in the background (so tier 3
   * moves to tier 4 too), and racing keeps better attempts running after a tier of this spec
   * priority or worse won. Default 3.
   */
  upgradeFromPriority?: number;
  /** Sessions kept in memory at most; idle ones are evicted, least recently used first. Default 4096. */
  maxSessions?: number;
  /** Unacknowledged messages per session. Default 1024. */
  maxUnacked?: number;
  /** Bytes of out-of-order messages held per session. Default 8 MiB. */
  maxReorderBytes?: number;
  /** Bytes of out-of-order messages held across sessions. Default 64 MiB. */
  maxReorderTotalBytes?: number;
  counters?: Counters;
}

/**
 * What a connect is doing, for people waiting on it (`connect(…, { onProgress })`): looking the
 * peer up, each tier tried and how it ended, and the move to deferred delivery (tier 6).
 */
export type ConnectProgress =
  | { step: 'lookup'; peerId: string }
  | { step: 'found'; peerId: string; tiers: TierName[] }
  | { step: 'trying'; peerId: string; tier: TierName }
  | { step: 'outcome'; peerId: string; outcome: TierOutcome }
  | { step: 'deferred'; peerId: string };

export interface ConnectEvent {
  peerId: string;
  tier: TierName;
  ms: number;
  outcomes: TierOutcome[];
}

export interface ConnectionOrchestrator extends EventEmitter {
  /** Reaches the peer through the best working tier and returns its session. */
  /** `onProgress` hears what this connect does (not a connect already in flight for the peer). */
  connect(
    peerId: string,
    opts?: { signal?: AbortSignal; tiers?: readonly TierName[]; onProgress?: (e: ConnectProgress) => void },
  ): Promise<PeerSession>;
  /** Hands over an inbound connection from any tier; it joins (or starts) that peer's session. */
  accept(conn: Connection): PeerSession | undefined;
  /**
   * Resumes the sessions that have messages in the store's outbox (after a restart): they are
   * reconnected and resent. Returns their peer ids.
   */
  resume(opts?: { signal?: AbortSignal }): Promise<string[]>;
  session(peerId: string): PeerSession | undefined;
  sessions(): PeerSession[];
  stats(): OrchestratorStats;
  stop(): Promise<void>;
  on(event: 'connect', listener: (e: ConnectEvent) => void): this;
  on(event: 'fail', listener: (e: { peerId: string; error: Error }) => void): this;
  on(event: 'upgrade', listener: (e: { peerId: string; from: TierName | undefined; to: TierName }) => void): this;
  on(event: 'session', listener: (session: PeerSession) => void): this;
  on(event: 'path-lost', listener: (e: { peerId: string; tier: TierName; error?: Error }) => void): this;
  /** A peer closed its session's current path cleanly (it said goodbye), e.g. its node stopped. */
  on(event: 'path-closed', listener: (e: { peerId: string; tier: TierName; reason?: string }) => void): this;
  on(event: 'message', listener: (e: { peerId: string; body: unknown; tier: TierName }) => void): this;
}

class Orchestrator extends EventEmitter implements ConnectionOrchestrator {
  readonly #opts: OrchestratorOptions;
  readonly #sessions = new Map<string, Session>();
  readonly #inflight = new Map<string, Promise<PeerSession>>();
  readonly #stats = new StatsRecorder();
  readonly #shutdown = new AbortController();
  readonly #counters: Counters;
  readonly #batcher: KvBatcher;
  readonly #reorderBudget: { used: number; max: number };
  /** Sessions with a maintenance loop running (reconnect, upgrade). */
  readonly #maintained = new Set<Session>();
  readonly #kicked = new Set<Session>();
  readonly #onDeferredMessage = (e: { from: string; publicKey: Buffer; item: DeferredItem }) => this.#deferredMessage(e);
  readonly #onDeferredReceipt = (e: { from: string; ids: string[] }) => this.#deferredReceipt(e);

  constructor(opts: OrchestratorOptions) {
    super();
    this.#opts = opts;
    this.#counters = opts.counters ?? new Counters();
    this.#batcher = new KvBatcher(opts.store ?? memoryKvStore());
    this.#reorderBudget = { used: 0, max: opts.maxReorderTotalBytes ?? DEFAULT_MAX_REORDER_TOTAL_BYTES };
    opts.deferred?.on('message', this.#onDeferredMessage);
    opts.deferred?.on('receipt', this.#onDeferredReceipt);
  }

  #network(): NetworkState {
    return this.#opts.network?.() ?? { hubConnected: false };
  }

  get #upgradeFrom(): number {
    return this.#opts.upgradeFromPriority ?? DEFAULT_UPGRADE_FROM_PRIORITY;
  }

  /** The peer's session, created when needed (evicting idle ones, least recently used first). */
  #session(peerId: string): Session {
    // None after stop(): it closed those it found, and a later one would stay open (and its
    // awaited sends hold the process) — a connect that stop() interrupted ends here.
    if (this.#shutdown.signal.aborted) throw new OrchestratorStateError('orchestrator is stopped');
    const existing = this.#sessions.get(peerId);
    if (existing && !existing.closed) {
      // Map order is recency order.
      this.#sessions.delete(peerId);
      this.#sessions.set(peerId, existing);
      return existing;
    }
    const max = this.#opts.maxSessions ?? DEFAULT_MAX_SESSIONS;
    if (this.#sessions.size >= max) this.#evictIdle(this.#sessions.size - max + 1);
    if (this.#sessions.size >= max) {
      throw new OrchestratorStateError(`session limit of ${max} reached (no idle session to evict)`);
    }
    const session = new Session(peerId, this.#opts.localNodeId, {
      counters: this.#counters,
      batcher: this.#batcher,
      reorderBudget: this.#reorderBudget,
      ...(this.#opts.maxUnacked !== undefined && { maxUnacked: this.#opts.maxUnacked }),
      ...(this.#opts.maxReorderBytes !== undefined && { maxReorderBytes: this.#opts.maxReorderBytes }),
    });
    this.#sessions.set(peerId, session);
    const deferred = this.#opts.deferred;
    if (deferred) {
      session.setDeferred({
        submit: (item) => {
          const publicKey = session.publicKey;
          if (!publicKey) return Promise.reject(new Error(`no public key known for ${peerId}`));
          return deferred.submit({ nodeId: peerId, publicKey }, item, { signal: this.#shutdown.signal });
        },
        receipt: (ids) => {
          const publicKey = session.publicKey;
          if (!publicKey) return Promise.reject(new Error(`no public key known for ${peerId}`));
          return deferred.receipt({ nodeId: peerId, publicKey }, ids, { signal: this.#shutdown.signal });
        },
      });
    }
    session.on('message', (body: unknown, meta: { tier: TierName }) => this.emit('message', { peerId, body, tier: meta.tier }));
    session.on('path', (e: { tier: TierName; previous: TierName | undefined }) => {
      if (e.previous && e.tier !== e.previous) {
        this.#stats.upgrades++;
        this.emit('upgrade', { peerId, from: e.previous, to: e.tier });
      }
      this.#maintain(session);
    });
    session.on('path-lost', (e: { tier: TierName; error?: Error }) => {
      this.emit('path-lost', { peerId, ...e });
      this.#maintain(session);
    });
    session.on('path-closed', (e: { tier: TierName; reason?: string }) => {
      this.emit('path-closed', { peerId, ...e });
      this.#maintain(session);
    });
    session.on('need-path', () => this.#maintain(session));
    session.on('close', () => {
      if (this.#sessions.get(peerId) === session) this.#sessions.delete(peerId);
    });
    return session;
  }

  /** Closes up to `n` idle sessions, least recently used first. Their state stays in the store. */
  #evictIdle(n: number): void {
    let left = n;
    for (const s of this.#sessions.values()) {
      if (left <= 0) break;
      if (!s.idle || this.#maintained.has(s)) continue;
      left--;
      this.#sessions.delete(s.peerId);
      this.#counters.inc('sessions_evicted');
      void s.close();
    }
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
    s.attach(conn, conn.initiator ?? conn.remoteNodeId);
    if (isNew) this.emit('session', s);
    return s;
  }

  async resume(opts: { signal?: AbortSignal } = {}): Promise<string[]> {
    throwIfAborted(opts.signal);
    const peers = await peersWithOutbox(
      this.#batcher.store,
      Math.min(MAX_RESUMED_SESSIONS, this.#opts.maxSessions ?? DEFAULT_MAX_SESSIONS),
    );
    for (const peerId of peers) {
      const s = this.#session(peerId);
      await s.ready;
      this.#maintain(s);
    }
    return peers;
  }

  connect(
    peerId: string,
    opts: { signal?: AbortSignal; tiers?: readonly TierName[]; onProgress?: (e: ConnectProgress) => void } = {},
  ): Promise<PeerSession> {
    // The caller awaits this: it holds the process until it settles (bounded by the deadline),
    // as the tiers' sockets and timers are unref'd and may be all that is left running.
    const total = secondsToMs(this.#opts.config.connection.total_timeout);
    return holdProcess(this.#join(peerId, opts), total + CONNECT_HOLD_GRACE_MS);
  }

  /** connect() without holding the process: joins a connect to the same peer (and tiers) in flight. */
  #join(
    peerId: string,
    opts: { signal?: AbortSignal; tiers?: readonly TierName[]; onProgress?: (e: ConnectProgress) => void },
  ): Promise<PeerSession> {
    if (this.#shutdown.signal.aborted) return Promise.reject(new OrchestratorStateError('orchestrator is stopped'));
    const existing = this.#sessions.get(peerId);
    if (existing?.connected && !opts.tiers) return Promise.resolve(existing);
    const key = opts.tiers ? `${peerId}|${opts.tiers.join(',')}` : peerId;
    let p = this.#inflight.get(key);
    if (!p) {
      p = this.#connect(peerId, opts, false).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, p);
    }
    return p;
  }

  /** Tier 6 may be used for this connect. */
  #deferredAllowed(tiers: readonly TierName[] | undefined): boolean {
    return (
      this.#opts.deferred !== undefined &&
      this.#opts.config.connection.enable_gossip &&
      this.#opts.config.gossip.enabled &&
      (!tiers || tiers.includes('gossip'))
    );
  }

  /** Moves the session to the deferred path and reports it as this connect's result. */
  #defer(session: Session, t0: number, outcomes: TierOutcome[]): PeerSession {
    // stop() came while the session loaded its state (it closed it).
    if (this.#shutdown.signal.aborted) throw new OrchestratorStateError('orchestrator is stopped');
    session.activateDeferred();
    this.#stats.ok++;
    this.#stats.used('gossip');
    this.#stats.success('gossip', performance.now() - t0);
    const all = [
      ...outcomes.filter((o) => o.tier !== 'gossip'),
      { tier: 'gossip', result: 'connected', afterMs: performance.now() - t0 } as TierOutcome,
    ];
    this.emit('connect', { peerId: session.peerId, tier: 'gossip', ms: performance.now() - t0, outcomes: all } satisfies ConnectEvent);
    this.#maintain(session);
    return session;
  }

  async #connect(
    peerId: string,
    opts: { signal?: AbortSignal; tiers?: readonly TierName[]; onProgress?: (e: ConnectProgress) => void },
    upgrade: boolean,
  ): Promise<PeerSession> {
    const cfg = this.#opts.config.connection;
    const progress = (e: ConnectProgress) => {
      try {
        opts.onProgress?.(e);
      } catch {
        // a listener's bug must not break the connect
      }
    };
    const signals = [this.#shutdown.signal, ...(opts.signal ? [opts.signal] : [])];
    const deadline = timeoutSignal(secondsToMs(cfg.total_timeout), `connect to ${peerId}`, AbortSignal.any(signals));
    const t0 = performance.now();
    const deferredOk = this.#deferredAllowed(opts.tiers);
    this.#stats.total++;
    try {
      let record: SignedRecord<'endpoint'>;
      progress({ step: 'lookup', peerId });
      try {
        record = await this.#opts.directory.findPeer(peerId, { signal: deadline.signal });
      } catch (err) {
        if (deferredOk && !opts.signal?.aborted) {
          // An offline peer's record may have expired: its key (from earlier) is enough for tier 6.
          const session = this.#session(peerId);
          await session.ready;
          if (session.publicKey) {
            progress({ step: 'deferred', peerId });
            return this.#defer(session, t0, []);
          }
        }
        throw new PeerLookupError(peerId, err);
      }
      if (record.nodeId !== peerId) throw new PeerLookupError(peerId, new Error(`the directory returned ${record.nodeId}'s record`));
      const network = this.#network();
      const only = opts.tiers ? new Set(opts.tiers) : undefined;
      const plan = planTiers(this.#opts.strategies, cfg, record, network, only, deferredOk, upgrade);
      for (const o of plan.skipped) this.#stats.failure(o.tier, `skipped: ${o.result === 'skipped' ? o.reason : ''}`);
      progress({ step: 'found', peerId, tiers: plan.eligible.map((st) => st.name) });
      // When gossip_timeout starts counting: at once in racing mode (every live tier starts within
      // the stagger); in sequential mode when the last live tier starts, as the spec's flow tries
      // tier 6 after tier 5 (a relay at 10.7 s lost to gossip at 5 s before).
      const lastLive = cfg.mode === 'sequential' ? plan.eligible.at(-1)?.name : undefined;
      let startGossipClock = () => {};
      const gossipClock = new Promise<void>((resolve) => {
        startGossipClock = resolve;
      });
      if (lastLive === undefined) startGossipClock();
      const run = {
        config: cfg,
        peer: record,
        network,
        signal: deadline.signal,
        upgradeFromPriority: this.#upgradeFrom,
        counters: this.#counters,
        onAttempt: (tier: TierName) => {
          this.#stats.attempt(tier);
          progress({ step: 'trying', peerId, tier });
          if (tier === lastLive) startGossipClock();
        },
        onOutcome: (o: TierOutcome) => {
          progress({ step: 'outcome', peerId, outcome: o });
          if (o.result === 'connected') this.#stats.success(o.tier, o.afterMs);
          else if (o.result === 'timed out') this.#stats.failure(o.tier, 'timed out');
          else if (o.result === 'failed') this.#stats.failure(o.tier, o.code ?? 'failed');
        },
      };
      const live: Promise<RunResult> =
        cfg.mode === 'sequential'
          ? runSequential(plan.eligible, run)
          : runRacing(plan.eligible, { ...run, staggerMs: secondsToMs(cfg.race_stagger), graceMs: secondsToMs(cfg.race_grace) });
      let result: RunResult | undefined;
      if (deferredOk) {
        // Tier 6 is taken only after gossip_timeout (counted from gossipClock) with no live
        // connection, or when every live tier has given up; the live tiers go on in the background.
        let wait: { signal: AbortSignal; clear: () => void } | undefined;
        let raced = false;
        result = await Promise.race([
          live,
          gossipClock.then(
            () =>
              new Promise<undefined>((r) => {
                if (raced) return r(undefined); // the live tiers settled first: no timer
                wait = timeoutSignal(secondsToMs(cfg.gossip_timeout), 'gossip_timeout', deadline.signal);
                wait.signal.addEventListener('abort', () => r(undefined), { once: true });
              }),
          ),
        ]);
        raced = true;
        (wait as { clear: () => void } | undefined)?.clear();
        if (!result && !opts.signal?.aborted && !this.#shutdown.signal.aborted) {
          const session = this.#session(peerId);
          session.rememberKey(record.publicKey);
          await session.ready;
          // The live attempt goes on in the background; a connection it makes takes over.
          void live.then((r) => {
            if (r.conn) this.#adopt(session, r);
          });
          progress({ step: 'deferred', peerId });
          return this.#defer(session, t0, plan.skipped);
        }
      }
      result ??= await live;
      const outcomes = [...plan.skipped, ...result.outcomes].sort((a, b) => TIERS.indexOf(a.tier) - TIERS.indexOf(b.tier));
      if (!result.conn) {
        throwIfAborted(opts.signal);
        if (deferredOk) {
          const session = this.#session(peerId);
          session.rememberKey(record.publicKey);
          await session.ready;
          progress({ step: 'deferred', peerId });
          return this.#defer(session, t0, outcomes);
        }
        throw new ConnectFailedError(peerId, outcomes);
      }
      let session: Session;
      try {
        session = this.#session(peerId);
      } catch (err) {
        const why = this.#shutdown.signal.aborted ? 'orchestrator stopped' : 'session limit';
        void result.conn.close(why);
        for (const p of result.pending ?? []) void p.then((c) => c?.close(why));
        throw err;
      }
      this.#adopt(session, result);
      this.#stats.ok++;
      this.#stats.used(result.conn.tier);
      const ev: ConnectEvent = { peerId, tier: result.conn.tier, ms: performance.now() - t0, outcomes };
      this.emit('connect', ev);
      return session;
    } catch (err) {
      this.#stats.failed++;
      this.emit('fail', { peerId, error: err as Error });
      throw err;
    } finally {
      deadline.clear();
    }
  }

  /** Attaches a run's connection and the better attempts still running (upgrades). */
  #adopt(session: Session, result: RunResult): void {
    if (!result.conn) return;
    // Who dialed, as the connection knows it (the same at both ends: a crossed tier-4 punch hands
    // one connection to both ends' connect()), else this side.
    session.attach(result.conn, result.conn.initiator ?? this.#opts.localNodeId);
    for (const pending of result.pending ?? []) {
      pending.then(
        (conn) => conn && session.attach(conn, conn.initiator ?? this.#opts.localNodeId),
        () => {},
      );
    }
  }

  /**
   * One background loop per session, ended when the session closes or has nothing left to do:
   * without a live path and with messages unacknowledged it reconnects with backoff (and falls
   * back to the deferred path); on a tier of priority ≥ upgradeFromPriority it tries the better
   * eligible tiers every upgradeIntervalMs.
   */
  #maintain(session: Session): void {
    if (session.closed || this.#shutdown.signal.aborted) return;
    if (this.#maintained.has(session)) {
      this.#kicked.add(session); // looked at again when the running loop ends
      return;
    }
    this.#maintained.add(session);
    const signal = this.#shutdown.signal;
    const interval = this.#opts.upgradeIntervalMs ?? DEFAULT_UPGRADE_INTERVAL_MS;
    // Both ends of a session run this loop, from the same moment (the path came up on both at
    // once): in step, their upgrades would punch each other at the same instant, and such crossed
    // punches fail (seen in the lab: tier 3 → 4 took two or three rounds). The end with the larger
    // node id stays half an interval behind, so the other end's attempt has come and gone first.
    let phase = this.#opts.localNodeId > session.peerId ? interval / 2 : 0;
    const loop = async () => {
      let delay: number = RECONNECT_BACKOFF_MS[0];
      while (!session.closed && !signal.aborted) {
        if (!session.connected) {
          // Nothing to deliver: reconnect lazily on the next send (a deferred session still
          // tries its live tiers once per send, so it moves up when the peer is back).
          if (session.unacked === 0 && !session.deferred) return;
          const wasDeferred = session.deferred;
          try {
            await this.#join(session.peerId, { signal }); // background: holds no process
          } catch {
            this.#counters.inc('session_reconnect_failures');
          }
          if (session.connected) {
            delay = RECONNECT_BACKOFF_MS[0];
            continue;
          }
          if (session.unacked === 0) return;
          // Deferred already: keep trying live tiers at the upgrade pace, not the backoff one.
          await sleep(wasDeferred && session.deferred ? interval : delay, signal).catch(() => {});
          delay = Math.min(delay * 2, RECONNECT_BACKOFF_MS[1]);
          continue;
        }
        const tier = session.tier;
        // Sessions on a path ranked at or below upgradeFromPriority keep trying the better paths.
        if (!tier || PATH_RANK[tier] < this.#upgradeFrom) return;
        await sleep(interval + phase, signal).catch(() => {});
        phase = 0;
        const now = session.tier;
        if (session.closed || signal.aborted || !session.connected || !now || PATH_RANK[now] < this.#upgradeFrom) continue;
        const better = this.#opts.strategies.filter((s) => PATH_RANK[s.name] < PATH_RANK[now]).map((s) => s.name);
        if (better.length === 0) return;
        await this.#connect(session.peerId, { tiers: better, signal }, true).catch(() => this.#counters.inc('session_upgrade_failures'));
      }
    };
    void loop().finally(() => {
      this.#maintained.delete(session);
      if (this.#kicked.delete(session)) this.#maintain(session);
    });
  }

  /** The session for something that came over the deferred path, or undefined (counted) when none can be had. */
  #deferredSession(from: string): Session | undefined {
    if (this.#shutdown.signal.aborted) return undefined;
    try {
      return this.#session(from);
    } catch {
      // Not taken, so not receipted: the deferred path keeps it and offers it again.
      this.#counters.inc('deferred_refused_session_limit');
      return undefined;
    }
  }

  #deferredMessage(e: { from: string; publicKey: Buffer; item: DeferredItem }): void {
    const s = this.#deferredSession(e.from);
    if (!s) return;
    s.rememberKey(e.publicKey);
    s.onDeferred(e.item);
  }

  #deferredReceipt(e: { from: string; ids: string[] }): void {
    const s = this.#deferredSession(e.from);
    if (s) void s.ready.then(() => s.onReceipt(e.ids));
  }

  stop(): Promise<void> {
    // Awaited too: held until the paths said goodbye (their sockets may be unref'd).
    return holdProcess(this.#stop(), STOP_HOLD_MS);
  }

  async #stop(): Promise<void> {
    this.#shutdown.abort(new OrchestratorStateError('orchestrator stopped'));
    this.#opts.deferred?.off('message', this.#onDeferredMessage);
    this.#opts.deferred?.off('receipt', this.#onDeferredReceipt);
    await Promise.all([...this.#sessions.values()].map((s) => s.close()));
    this.#sessions.clear();
    await this.#batcher.drain().catch(() => {});
  }
}

/** Creates the orchestrator; tier strategies are injected, none is imported. */
export function createOrchestrator(opts: OrchestratorOptions): ConnectionOrchestrator {
  return new Orchestrator(opts);
}
