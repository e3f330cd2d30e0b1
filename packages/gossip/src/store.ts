import { decodeUntrusted, encodeCanonical, type KvOp, type KvStore, s } from '@dpc/core';
import {
  DEFAULT_MAX_FOR_ME,
  DEFAULT_MAX_ORIGIN_BYTES,
  DEFAULT_MAX_ORIGIN_COUNT,
  DEFAULT_MAX_OWN_RECEIPTS,
  DEFAULT_MAX_STORE_BYTES,
  DEFAULT_MAX_STORE_COUNT,
  DEFAULT_MAX_TOMBSTONES,
  PRIORITY_RANK,
} from './constants.js';
import { GossipReplayedError, GossipStoreFullError } from './errors.js';
import { expiresAt, type GossipMessage, verifyMessage } from './messages.js';

const P = 'gossip/';
const K = {
  msg: (hex: string) => `${P}m/${hex}`,
  tomb: (hex: string) => `${P}t/${hex}`,
  clock: `${P}clock`,
};

/** What the store keeps in memory about a stored message (the bytes stay on disk). */
export interface StoredEntry {
  hex: string;
  id: Buffer;
  kind: GossipMessage['kind'];
  source: string;
  destination: string;
  priority: GossipMessage['priority'];
  createdAt: number;
  expiresAt: number;
  bytes: number;
  /** Receipts: ids they confirm (hex). */
  acks: string[];
}

export interface GossipStoreOptions {
  /** This node: its own messages and messages for it are never evicted for others'. */
  localNodeId: string;
  /** Default 64 MiB. */
  maxBytes?: number;
  /** Default 100,000. */
  maxCount?: number;
  /** Per origin (source node), default 4 MiB. */
  maxOriginBytes?: number;
  /** Per origin, default 2,000. */
  maxOriginCount?: number;
  /** Tombstones kept (ids delivered or confirmed, until they expire). Default 200,000. */
  maxTombstones?: number;
  /**
   * This node's own receipts kept at most; beyond it the oldest go (also to make room for this
   * node's own messages and messages for it). Receipts go to whoever sent this node a message,
   * throwaway identities included, which may never come to take them. Default min(10,000, maxCount / 4).
   */
  maxOwnReceipts?: number;
  /**
   * Messages for this node (from others) stored at most: those its application has not taken
   * (receipted) yet. Beyond it a new one is refused (GossipStoreFullError: not acknowledged, so the
   * previous hop keeps it), never evicted: messages from throwaway senders the application does
   * not take cannot fill the store. Default min(10,000, maxCount / 4).
   */
  maxForMe?: number;
  now?: () => number;
}

const entryValue = s.array(s.unknown(), { max: 2 });

/**
 * The durable message store of one node on a KvStore: every accepted message is written (and
 * synced) before `put` resolves; bounded in bytes and count, per origin and in total, evicting
 * lower priority first, then the oldest; tombstones refuse replays of delivered or confirmed
 * messages until they expire.
 */
export class GossipStore {
  readonly #kv: KvStore;
  readonly #o: Required<Omit<GossipStoreOptions, 'now'>> & { now: () => number };
  readonly #entries = new Map<string, StoredEntry>();
  readonly #tombs = new Map<string, number>();
  readonly #origins = new Map<string, { bytes: number; count: number }>();
  /** Stored messages by destination (hex ids): what is for one peer, without a walk of the store. */
  readonly #byDest = new Map<string, Set<string>>();
  /** This node's own receipts (hex ids), oldest first. */
  readonly #ownReceipts = new Set<string>();
  #ownReceiptsEvicted = 0;
  /** Stored messages for this node from others. */
  #forMe = 0;
  #bytes = 0;
  #clock = 0;
  #version = 0;

  private constructor(kv: KvStore, o: GossipStoreOptions) {
    this.#kv = kv;
    this.#o = {
      localNodeId: o.localNodeId,
      maxBytes: o.maxBytes ?? DEFAULT_MAX_STORE_BYTES,
      maxCount: o.maxCount ?? DEFAULT_MAX_STORE_COUNT,
      maxOriginBytes: o.maxOriginBytes ?? DEFAULT_MAX_ORIGIN_BYTES,
      maxOriginCount: o.maxOriginCount ?? DEFAULT_MAX_ORIGIN_COUNT,
      maxTombstones: o.maxTombstones ?? DEFAULT_MAX_TOMBSTONES,
      maxForMe: Math.max(1, o.maxForMe ?? Math.min(DEFAULT_MAX_FOR_ME, Math.floor((o.maxCount ?? DEFAULT_MAX_STORE_COUNT) / 4))),
      maxOwnReceipts: Math.max(
        1,
        o.maxOwnReceipts ?? Math.min(DEFAULT_MAX_OWN_RECEIPTS, Math.floor((o.maxCount ?? DEFAULT_MAX_STORE_COUNT) / 4)),
      ),
      now: o.now ?? Date.now,
    };
  }

  /** Opens the store, loading its index; entries that no longer verify are dropped (counted in `dropped`). */
  static async open(kv: KvStore, o: GossipStoreOptions): Promise<{ store: GossipStore; dropped: number }> {
    const st = new GossipStore(kv, o);
    const now = st.#o.now();
    const drop: KvOp[] = [];
    for await (const [key, value] of kv.entries(`${P}m/`)) {
      try {
        const [bytes] = entryValue(decodeUntrusted(value)) as [Uint8Array];
        // Expired or no longer valid: dropped.
        const m = verifyMessage(bytes, { now });
        st.#index(m);
      } catch {
        drop.push({ type: 'del', key });
      }
    }
    for await (const [key, value] of kv.entries(`${P}t/`)) {
      const exp = value.length === 8 ? Number(Buffer.from(value).readBigUInt64BE()) : 0;
      if (exp > now) st.#tombs.set(key.slice(`${P}t/`.length), exp);
      else drop.push({ type: 'del', key });
    }
    const c = await kv.get(K.clock);
    if (c?.length === 8) st.#clock = Number(Buffer.from(c).readBigUInt64BE());
    if (drop.length > 0) await kv.batch(drop);
    return { store: st, dropped: drop.length };
  }

  /** Changes whenever the set of stored messages changes (cache key for derived views). */
  get version(): number {
    return this.#version;
  }

  get size(): number {
    return this.#entries.size;
  }
  get bytes(): number {
    return this.#bytes;
  }
  get tombstones(): number {
    return this.#tombs.size;
  }
  /** This node's own receipts stored (bounded by `maxOwnReceipts`). */
  get ownReceipts(): number {
    return this.#ownReceipts.size;
  }
  /** Messages for this node from others stored (bounded by `maxForMe`). */
  get forMe(): number {
    return this.#forMe;
  }
  /** Own receipts evicted since the store was opened (for the cap or to make room for pinned messages). */
  get ownReceiptsEvicted(): number {
    return this.#ownReceiptsEvicted;
  }

  has(hex: string): boolean {
    return this.#entries.has(hex);
  }
  isTombstoned(hex: string): boolean {
    const exp = this.#tombs.get(hex);
    return exp !== undefined && exp > this.#o.now();
  }
  entry(hex: string): StoredEntry | undefined {
    return this.#entries.get(hex);
  }
  entries(): IterableIterator<StoredEntry> {
    return this.#entries.values();
  }
  /** The stored messages for `destination` (oldest first), from an index. */
  entriesFor(destination: string): StoredEntry[] {
    const out: StoredEntry[] = [];
    for (const hex of this.#byDest.get(destination) ?? []) {
      const e = this.#entries.get(hex);
      if (e) out.push(e);
    }
    return out;
  }

  /** The stored message (as last stored: with its hop fields), or undefined. */
  async get(hex: string): Promise<GossipMessage | undefined> {
    if (!this.#entries.has(hex)) return undefined;
    const v = await this.#kv.get(K.msg(hex));
    if (!v) return undefined;
    const [bytes] = entryValue(decodeUntrusted(v)) as [Uint8Array];
    try {
      return verifyMessage(bytes, { now: this.#o.now() });
    } catch {
      return undefined;
    }
  }

  /** Next value of this node's own vector-clock entry, durably counted. */
  async nextClock(): Promise<number> {
    this.#clock++;
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(this.#clock));
    await this.#kv.batch([{ type: 'put', key: K.clock, value: b }]);
    return this.#clock;
  }

  /**
   * Stores `m` durably. Returns false when it is stored already. Throws GossipReplayedError
   * (tombstoned) or GossipStoreFullError (no room even after evicting lower-priority or older
   * messages of others); evicted messages are listed in `evicted`.
   */
  async put(m: GossipMessage, evicted: string[] = []): Promise<boolean> {
    const hex = m.id.toString('hex');
    if (this.isTombstoned(hex)) throw new GossipReplayedError(`message ${hex.slice(0, 16)} was already delivered or confirmed`);
    if (this.#entries.has(hex)) return false;
    const size = m.encoded.length;
    const victims = this.#makeRoom(m, size);
    const ops: KvOp[] = victims.map((v) => ({ type: 'del', key: K.msg(v.hex) }));
    ops.push({ type: 'put', key: K.msg(hex), value: encodeCanonical([m.encoded, this.#o.now()]) });
    await this.#kv.batch(ops);
    for (const v of victims) {
      if (this.#isOwnReceipt(v)) this.#ownReceiptsEvicted++;
      this.#unindex(v);
      evicted.push(v.hex);
    }
    if (!this.#entries.has(hex)) this.#index(m);
    return true;
  }

  /** Replaces the stored bytes of a message (its hop fields) without changing the index. */
  async update(m: GossipMessage): Promise<void> {
    const hex = m.id.toString('hex');
    if (!this.#entries.has(hex)) return;
    await this.#kv.batch([{ type: 'put', key: K.msg(hex), value: encodeCanonical([m.encoded, this.#o.now()]) }]);
  }

  /** Removes messages; with `tombstone`, their ids are refused until they expire. */
  async remove(hexes: readonly string[], tombstone: boolean, expiry?: number): Promise<string[]> {
    const ops: KvOp[] = [];
    const gone: StoredEntry[] = [];
    const tombs: Array<[string, number]> = [];
    for (const hex of hexes) {
      const e = this.#entries.get(hex);
      if (e) {
        gone.push(e);
        ops.push({ type: 'del', key: K.msg(hex) });
      }
      const exp = e?.expiresAt ?? expiry;
      if (tombstone && exp !== undefined && exp > this.#o.now() && !this.#tombs.has(hex)) {
        const b = Buffer.alloc(8);
        b.writeBigUInt64BE(BigInt(exp));
        ops.push({ type: 'put', key: K.tomb(hex), value: b });
        tombs.push([hex, exp]);
      }
    }
    if (ops.length === 0) return [];
    for (const [hex] of tombs) if (this.#tombs.size + 1 > this.#o.maxTombstones) this.#dropOldestTomb(ops, hex);
    await this.#kv.batch(ops);
    for (const e of gone) this.#unindex(e);
    for (const [hex, exp] of tombs) this.#tombs.set(hex, exp);
    return gone.map((e) => e.hex);
  }

  /**
   * Drops the messages a verified receipt confirms: only those from the receipt's destination to
   * its source (nobody else can cancel a message). Returns the ids removed.
   */
  async applyReceipt(receipt: Pick<GossipMessage, 'source' | 'destination' | 'acks' | 'created_at' | 'ttl'>): Promise<string[]> {
    const hexes: string[] = [];
    for (const a of receipt.acks) {
      const hex = a.toString('hex');
      const e = this.#entries.get(hex);
      if (e ? e.destination === receipt.source && e.source === receipt.destination : false) hexes.push(hex);
    }
    return this.remove(hexes, true);
  }

  /** Removes expired messages and tombstones; returns how many messages went. */
  async sweep(): Promise<number> {
    const now = this.#o.now();
    const expired = [...this.#entries.values()].filter((e) => e.expiresAt <= now);
    const ops: KvOp[] = expired.map((e) => ({ type: 'del', key: K.msg(e.hex) }));
    const tombs = [...this.#tombs].filter(([, exp]) => exp <= now);
    for (const [hex] of tombs) ops.push({ type: 'del', key: K.tomb(hex) });
    if (ops.length > 0) await this.#kv.batch(ops);
    for (const e of expired) this.#unindex(e);
    for (const [hex] of tombs) this.#tombs.delete(hex);
    return expired.length;
  }

  #dropOldestTomb(ops: KvOp[], except: string): void {
    for (const hex of this.#tombs.keys()) {
      if (hex === except) continue;
      this.#tombs.delete(hex);
      ops.push({ type: 'del', key: K.tomb(hex) });
      return;
    }
  }

  #isOwnReceipt(e: Pick<StoredEntry, 'source' | 'kind'>): boolean {
    return e.kind === 'receipt' && e.source === this.#o.localNodeId;
  }

  #isForMe(e: Pick<StoredEntry, 'source' | 'destination'>): boolean {
    return e.destination === this.#o.localNodeId && e.source !== this.#o.localNodeId;
  }

  #pinned(e: Pick<StoredEntry, 'source' | 'destination'>): boolean {
    return e.source === this.#o.localNodeId || e.destination === this.#o.localNodeId;
  }

  /** Entries to evict so `m` fits; throws GossipStoreFullError when it cannot. */
  #makeRoom(m: GossipMessage, size: number): StoredEntry[] {
    const rank = PRIORITY_RANK[m.priority];
    const pinned = this.#pinned(m);
    // Lower priority first, then the oldest; never pinned ones, never higher priority than m.
    const evictable = (e: StoredEntry) => !this.#pinned(e) && (pinned || PRIORITY_RANK[e.priority] <= rank);
    const order = (a: StoredEntry, b: StoredEntry) => PRIORITY_RANK[a.priority] - PRIORITY_RANK[b.priority] || a.createdAt - b.createdAt;
    if (this.#isForMe(m) && this.#forMe + 1 > this.#o.maxForMe) {
      throw new GossipStoreFullError(`${this.#forMe} messages for this node are waiting for the application (the limit)`);
    }
    const victims = new Set<StoredEntry>();
    // This node's own receipts: at most maxOwnReceipts, the oldest go first. Never an own message.
    const ownReceiptsOldest = function* (this: GossipStore) {
      for (const hex of this.#ownReceipts) {
        const e = this.#entries.get(hex);
        if (e && !victims.has(e)) yield e;
      }
    }.bind(this);
    if (this.#isOwnReceipt(m)) {
      let n = this.#ownReceipts.size + 1;
      for (const e of ownReceiptsOldest()) {
        if (n <= this.#o.maxOwnReceipts) break;
        victims.add(e);
        n--;
      }
    }
    const origin = this.#origins.get(m.source) ?? { bytes: 0, count: 0 };
    let oBytes = origin.bytes + size;
    let oCount = origin.count + 1;
    if (!pinned && (oBytes > this.#o.maxOriginBytes || oCount > this.#o.maxOriginCount)) {
      const pool = [...this.#entries.values()].filter((e) => e.source === m.source && evictable(e)).sort(order);
      for (const e of pool) {
        if (oBytes <= this.#o.maxOriginBytes && oCount <= this.#o.maxOriginCount) break;
        victims.add(e);
        oBytes -= e.bytes;
        oCount--;
      }
      if (oBytes > this.#o.maxOriginBytes || oCount > this.#o.maxOriginCount) {
        throw new GossipStoreFullError(`origin ${m.source} is over its share of the store`);
      }
    }
    let bytes = this.#bytes + size;
    let count = this.#entries.size + 1;
    for (const v of victims) {
      bytes -= v.bytes;
      count--;
    }
    if (bytes > this.#o.maxBytes || count > this.#o.maxCount) {
      const pool = [...this.#entries.values()].filter((e) => !victims.has(e) && evictable(e)).sort(order);
      for (const e of pool) {
        if (bytes <= this.#o.maxBytes && count <= this.#o.maxCount) break;
        victims.add(e);
        bytes -= e.bytes;
        count--;
      }
      // This node's own messages and messages for it may take the place of its own oldest receipts.
      if (pinned) {
        for (const e of ownReceiptsOldest()) {
          if (bytes <= this.#o.maxBytes && count <= this.#o.maxCount) break;
          victims.add(e);
          bytes -= e.bytes;
          count--;
        }
      }
      if (bytes > this.#o.maxBytes || count > this.#o.maxCount) throw new GossipStoreFullError('the gossip store is full');
    }
    return [...victims];
  }

  #index(m: GossipMessage): void {
    const hex = m.id.toString('hex');
    const e: StoredEntry = {
      hex,
      id: m.id,
      kind: m.kind,
      source: m.source,
      destination: m.destination,
      priority: m.priority,
      createdAt: m.created_at,
      expiresAt: expiresAt(m),
      bytes: m.encoded.length,
      acks: m.acks.map((a) => a.toString('hex')),
    };
    this.#entries.set(hex, e);
    this.#version++;
    this.#bytes += e.bytes;
    const o = this.#origins.get(e.source) ?? { bytes: 0, count: 0 };
    o.bytes += e.bytes;
    o.count++;
    this.#origins.set(e.source, o);
    let d = this.#byDest.get(e.destination);
    if (!d) {
      d = new Set();
      this.#byDest.set(e.destination, d);
    }
    d.add(hex);
    if (this.#isOwnReceipt(e)) this.#ownReceipts.add(hex);
    if (this.#isForMe(e)) this.#forMe++;
  }

  #unindex(e: StoredEntry): void {
    if (!this.#entries.delete(e.hex)) return;
    this.#version++;
    this.#bytes -= e.bytes;
    const o = this.#origins.get(e.source);
    if (o) {
      o.bytes -= e.bytes;
      o.count--;
      if (o.count <= 0) this.#origins.delete(e.source);
    }
    this.#ownReceipts.delete(e.hex);
    if (this.#isForMe(e)) this.#forMe--;
    const d = this.#byDest.get(e.destination);
    if (d) {
      d.delete(e.hex);
      if (d.size === 0) this.#byDest.delete(e.destination);
    }
  }
}
