import { randomBytes } from 'node:crypto';
import { abortable, type Counters, timeoutSignal } from '@dpc/core';
import { createClient } from 'redis';
import { openBusMessage, presenceInstance, presenceValue, ReplayGuard, sealBusMessage } from './bus-auth.js';
import { HubUnavailableError } from './errors.js';

// Scale-out: Hubs sharing one Redis. Each node logged in anywhere has a presence key
// `<prefix>node:<node id>` = the id of its Hub instance (with a TTL the instance refreshes); each
// instance subscribes to its own channel `<prefix>inst:<instance id>`. A message for a node on
// another instance is published to that instance's channel, and that instance answers on the
// sender's channel whether it delivered it (so an offline target is reported at once).
// Whoever can publish on Redis is not trusted: every message and presence value carries an
// HMAC under the cluster secret (bus-auth.ts); untagged, mis-tagged, stale or replayed messages are
// dropped and counted (`hub_bus_forged`, `hub_bus_stale`, `hub_bus_replayed`), and a presence
// value with a wrong tag is taken as "logged in nowhere" (`hub_bus_forged_presence`).

/** What one Hub instance asks of the shared bus. */
export interface HubBusHandlers {
  /** A message for `to` arrived from another instance: deliver it; false when `to` is not here. */
  deliver(from: string, to: string, payload: unknown): boolean;
  /** Another instance took over `nodeId` (it logged in there): drop the local connection. */
  kick(nodeId: string): void;
  /** Redis errors (counted; the bus reconnects by itself). */
  onError(err: Error): void;
}

export interface RedisBusOptions {
  url: string;
  /** `[hub] cluster_secret`: shared by every Hub instance on this Redis. */
  clusterSecret: string;
  /** A message whose sender clock differs from ours by more than this is refused, ms. */
  maxClockSkewMs: number;
  prefix: string;
  presenceTtlMs: number;
  routeTimeoutMs: number;
  /** Deadline of the first connection to Redis, ms. */
  connectTimeoutMs: number;
  maxPendingRoutes: number;
  counters: Counters;
  handlers: HubBusHandlers;
}

type BusMessage =
  | { k: 'sig'; rid: string; from: string; to: string; payload: unknown; reply: string }
  | { k: 'res'; rid: string; ok: boolean }
  | { k: 'kick'; node_id: string };

/** Tags remembered against replays (a replay older than the skew window is refused as stale). */
const MAX_REMEMBERED_TAGS = 200_000;

/** Rewrites our presence (also after a Redis restart); another value is returned for a look. */
const REFRESH = `local v = redis.call('get', KEYS[1])
if v == false or v == ARGV[1] then redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return v`;
/** Replaces the value ARGV[1] (a forged one) with ours, unless it changed in between. */
const REPLACE = `if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end
return 0`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0`;

/** The URL without its password, for messages. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.href;
  } catch {
    return '<redis url>';
  }
}

/** Presence and routing of several Hub instances through Redis. */
export class RedisBus {
  readonly instanceId = randomBytes(8).toString('hex');
  readonly #o: RedisBusOptions;
  readonly #cmd;
  readonly #sub;
  readonly #pending = new Map<string, { resolve: (ok: boolean) => void }>();
  readonly #local = new Set<string>();
  readonly #replay: ReplayGuard;
  #refreshTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(o: RedisBusOptions) {
    this.#o = o;
    this.#replay = new ReplayGuard(o.maxClockSkewMs, MAX_REMEMBERED_TAGS);
    // No offline queue: while Redis is away a command fails at once instead of waiting.
    this.#cmd = createClient({
      url: o.url,
      disableOfflineQueue: true,
      socket: { connectTimeout: 5_000, reconnectStrategy: (n) => Math.min(100 * 2 ** n, 2_000) },
    });
    this.#sub = this.#cmd.duplicate();
    for (const c of [this.#cmd, this.#sub]) c.on('error', (err: Error) => this.#o.handlers.onError(err));
  }

  get #channel(): string {
    return `${this.#o.prefix}inst:${this.instanceId}`;
  }
  #key(nodeId: string): string {
    return `${this.#o.prefix}node:${nodeId}`;
  }
  /** This instance's presence value for `nodeId`. */
  #mine(nodeId: string): string {
    return presenceValue(this.#o.clusterSecret, this.#key(nodeId), this.instanceId);
  }
  /** The instance a presence value read for `nodeId` names; undefined (counted) when forged. */
  #instanceOf(nodeId: string, value: string): string | undefined {
    const id = presenceInstance(this.#o.clusterSecret, this.#key(nodeId), value);
    if (id === undefined) this.#o.counters.inc('hub_bus_forged_presence');
    return id;
  }

  async start(signal?: AbortSignal): Promise<void> {
    const t = timeoutSignal(this.#o.connectTimeoutMs, 'connecting to Redis', signal);
    try {
      await abortable(Promise.all([this.#cmd.connect(), this.#sub.connect()]), t.signal);
      await abortable(
        this.#sub.subscribe(this.#channel, (msg) => this.#onMessage(msg)),
        t.signal,
      );
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new HubUnavailableError(`cannot reach the Hubs\u2019 Redis at ${redactUrl(this.#o.url)}`, { cause: err });
    } finally {
      t.clear();
    }
    const every = Math.max(50, Math.floor(this.#o.presenceTtlMs / 3));
    this.#refreshTimer = setInterval(() => void this.#refresh(), every);
    this.#refreshTimer.unref();
  }

  /** `nodeId` logged in here: its presence points to this instance; an older login elsewhere is kicked. */
  async claim(nodeId: string): Promise<void> {
    this.#local.add(nodeId);
    const t = AbortSignal.timeout(this.#o.routeTimeoutMs);
    const set = this.#cmd.sendCommand<string | null>([
      'SET',
      this.#key(nodeId),
      this.#mine(nodeId),
      'PX',
      String(this.#o.presenceTtlMs),
      'GET',
    ]);
    const value = await abortable(set, t);
    const old = value ? this.#instanceOf(nodeId, value) : undefined;
    if (old && old !== this.instanceId) {
      this.#o.counters.inc('hub_bus_kick_sent');
      await this.#publish(`${this.#o.prefix}inst:${old}`, { k: 'kick', node_id: nodeId });
    }
  }

  /** `nodeId` left this instance. */
  async release(nodeId: string): Promise<void> {
    this.#local.delete(nodeId);
    await this.#cmd.sendCommand(['EVAL', RELEASE, '1', this.#key(nodeId), this.#mine(nodeId)]);
  }

  /**
   * Routes a message to a node on another instance. Resolves true when that instance delivered
   * it, false when the node is logged in nowhere; rejects with HubUnavailableError when Redis or
   * the other instance does not answer in time.
   */
  async route(from: string, to: string, payload: unknown, signal?: AbortSignal): Promise<boolean> {
    if (this.#pending.size >= this.#o.maxPendingRoutes) throw new HubUnavailableError('too many messages in flight between Hubs');
    const t = timeoutSignal(this.#o.routeTimeoutMs, 'routing through another Hub', signal);
    let value: string | null;
    try {
      value = (await abortable(this.#cmd.sendCommand(['GET', this.#key(to)]), t.signal)) as string | null;
    } catch (err) {
      t.clear();
      throw new HubUnavailableError('the Hubs\u2019 shared Redis is unreachable', { cause: err });
    }
    const where = value ? this.#instanceOf(to, value) : undefined;
    if (!value || !where || where === this.instanceId) {
      // Logged in nowhere, or here (the caller already looked locally: a stale key).
      t.clear();
      return false;
    }
    const rid = randomBytes(9).toString('base64');
    const answer = new Promise<boolean>((resolve) => this.#pending.set(rid, { resolve }));
    try {
      const receivers = await this.#publish(`${this.#o.prefix}inst:${where}`, { k: 'sig', rid, from, to, payload, reply: this.instanceId });
      if (receivers === 0) {
        // That instance is gone (crashed without cleaning up): its presence key is stale.
        this.#o.counters.inc('hub_bus_stale_presence');
        await this.#cmd.sendCommand(['EVAL', RELEASE, '1', this.#key(to), value]).catch(() => {});
        return false;
      }
      return await abortable(answer, t.signal);
    } catch (err) {
      if ((err as { code?: string }).code === 'DPC_TIMEOUT')
        throw new HubUnavailableError(`the Hub holding ${to} did not answer`, { cause: err });
      if ((err as { code?: string }).code?.startsWith('DPC_')) throw err;
      throw new HubUnavailableError('the Hubs\u2019 shared Redis is unreachable', { cause: err });
    } finally {
      t.clear();
      this.#pending.delete(rid);
    }
  }

  async #publish(channel: string, m: BusMessage): Promise<number> {
    const sealed = sealBusMessage(this.#o.clusterSecret, channel, JSON.stringify({ ...m, ts: Date.now() }));
    return (await this.#cmd.sendCommand(['PUBLISH', channel, sealed])) as number;
  }

  #onMessage(raw: string): void {
    const opened = openBusMessage(this.#o.clusterSecret, this.#channel, raw);
    if (!opened.ok) {
      this.#o.counters.inc('hub_bus_forged');
      return;
    }
    let m: BusMessage & { ts?: unknown };
    try {
      m = JSON.parse(opened.json) as BusMessage & { ts?: unknown };
    } catch {
      this.#o.counters.inc('hub_bus_bad_message');
      return;
    }
    const fresh = this.#replay.check(opened.tag, typeof m.ts === 'number' ? m.ts : Number.NaN, Date.now());
    if (fresh !== 'ok') {
      this.#o.counters.inc(`hub_bus_${fresh}`);
      return;
    }
    if (m.k === 'res') {
      this.#pending.get(m.rid)?.resolve(m.ok === true);
    } else if (m.k === 'sig') {
      const ok = this.#o.handlers.deliver(m.from, m.to, m.payload);
      this.#o.counters.inc(ok ? 'hub_bus_delivered' : 'hub_bus_not_here');
      this.#publish(`${this.#o.prefix}inst:${m.reply}`, { k: 'res', rid: m.rid, ok }).catch((err: Error) => this.#o.handlers.onError(err));
    } else if (m.k === 'kick') {
      this.#o.counters.inc('hub_bus_kick_received');
      this.#o.handlers.kick(m.node_id);
    }
  }

  async #refresh(): Promise<void> {
    if (this.#closed || this.#local.size === 0) return;
    try {
      const ids = [...this.#local];
      const ttl = String(this.#o.presenceTtlMs);
      const multi = this.#cmd.multi();
      for (const id of ids) multi.addCommand(['EVAL', REFRESH, '1', this.#key(id), this.#mine(id), ttl]);
      const replies = (await multi.exec()) as unknown[];
      // A value that is not ours: a newer login on another instance (a valid tag: leave it), or
      // written by someone without the cluster secret (put ours back, so the node is reachable again).
      for (const [i, v] of replies.entries()) {
        const id = ids[i] as string;
        if (typeof v !== 'string' || presenceInstance(this.#o.clusterSecret, this.#key(id), v) !== undefined) continue;
        this.#o.counters.inc('hub_bus_forged_presence_replaced');
        await this.#cmd.sendCommand(['EVAL', REPLACE, '1', this.#key(id), v, this.#mine(id), ttl]);
      }
    } catch (err) {
      this.#o.handlers.onError(err as Error);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#refreshTimer) clearInterval(this.#refreshTimer);
    for (const p of this.#pending.values()) p.resolve(false);
    this.#pending.clear();
    // Drop this instance's presence keys so other Hubs report its nodes offline at once.
    const ids = [...this.#local];
    this.#local.clear();
    await Promise.all(ids.map((id) => this.#cmd.sendCommand(['EVAL', RELEASE, '1', this.#key(id), this.#mine(id)]).catch(() => {})));
    await Promise.all([this.#sub, this.#cmd].map((c) => (c.isOpen ? c.close().catch(() => c.destroy()) : undefined)));
  }
}
