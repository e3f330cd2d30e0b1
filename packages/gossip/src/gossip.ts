import { EventEmitter } from 'node:events';
import {
  Counters,
  type DeferredDelivery,
  type DeferredItem,
  type DeferredRecipient,
  decodeUntrusted,
  encodeCanonical,
  type Identity,
  type KvStore,
  kademliaIdOf,
  throwIfAborted,
} from '@dpc/core';
import {
  CATCH_UP_BURST,
  CATCH_UP_MIN_INTERVAL_MS,
  CATCH_UP_REFILL_MS,
  DEFAULT_HOP_ACK_TIMEOUT_MS,
  DEFAULT_REDELIVER_INTERVAL_MS,
  DEFAULT_SEEN_SET_SIZE,
  MAX_RECEIPT_IDS,
  MAX_RELAYS_IN_FLIGHT,
  SYNC_FRAME_BYTES,
  SYNC_WANTS_PER_MINUTE,
} from './constants.js';
import { GossipMalformedError, type GossipMessageError, GossipReplayedError, GossipStoppedError } from './errors.js';
import { chooseForwardPeers, xorDistanceCompare } from './forward-choice.js';
import {
  createMessage,
  expiresAt,
  forwardedCopy,
  type GossipMessage,
  type GossipPriority,
  type LinkFrame,
  msgPlaintextSchema,
  payloadAad,
  receiptPlaintextSchema,
  verifyMessage,
} from './messages.js';
import { Negentropy, NegentropyStorage, negentropySync } from './negentropy.js';
import { open, x25519PublicOf, x25519SecretOf } from './seal.js';
import { SeenSet } from './seen-set.js';
import { GossipStore, type GossipStoreOptions } from './store.js';

/** A link to one gossip peer (a secure-channel connection, or a simulated link). */
export interface GossipLink {
  readonly nodeId: string;
  send(frame: LinkFrame): Promise<void>;
}

export interface GossipOptions {
  identity: Identity;
  /** Where messages live (`@dpc/store` in the node, memoryKvStore in tests). */
  store: KvStore;
  counters?: Counters;
  /** `[gossip] max_hops`, default 5. */
  maxHops?: number;
  /** `[gossip] fanout`, default 3. */
  fanout?: number;
  /**
   * Keyspace-scoped copies (0, the default: the spec's epidemic forwarding). With k > 0 a node holds
   * a copy only while it is among the k nodes closest to the destination in its view (its links and
   * itself, XOR of Kademlia ids), or is the source or the destination. Others hand the message to
   * the closest linked peer (one copy per hop) and drop theirs when that peer acknowledges it; the
   * responsible nodes copy it among themselves and to the destination when it links; a hop ack from
   * the destination (durable there) drops a holder's copy; anti-entropy covers only what the peer
   * should hold. `[gossip] replicas`.
   */
  replicas?: number;
  /** `[gossip] ttl_seconds`, default 86,400. */
  ttlSeconds?: number;
  /** `[gossip] priority` of this node's messages, default 'normal'. */
  priority?: GossipPriority;
  /** `[gossip] sync_interval`, ms, default 300,000 (0: no timer): anti-entropy with a random linked peer. */
  syncIntervalMs?: number;
  /** `[gossip] cleanup_interval`, ms, default 600,000 (0: no timer; call `sweep()`). */
  cleanupIntervalMs?: number;
  /** Re-offers stored, not yet receipted messages to the application this often, ms. Default 15,000. */
  redeliverIntervalMs?: number;
  /**
   * The source sends its own messages (and receipts) again this often until the destination's
   * signed receipt arrives, doubling the wait each time (at most 64×), ms. A hop acknowledgement
   * is only a forwarder's word: one that acknowledges and drops a copy cannot lose a message.
   * Each round goes first to linked peers not tried before. Default 60,000 (0: never).
   */
  resendIntervalMs?: number;
  /** Store bounds. */
  limits?: Omit<GossipStoreOptions, 'localNodeId' | 'now'>;
  seenSetSize?: number;
  now?: () => number;
  random?: () => number;
}

/** The gossip service of one node: a `DeferredDelivery` plus the link side. */
export interface Gossip extends DeferredDelivery {
  readonly nodeId: string;
  readonly store: GossipStore;
  readonly counters: Counters;
  /** Per-origin counters seen (the spec's vector clock). */
  vectorClock(): Record<string, number>;
  /** A peer is linked: messages for it and messages short of `fanout` copies go to it. */
  addLink(link: GossipLink): void;
  removeLink(nodeId: string): void;
  links(): string[];
  /** A frame from a linked peer. */
  onFrame(from: GossipLink, frame: LinkFrame): Promise<void>;
  /** Takes a message (bytes) from `from` (a link or anti-entropy): verified, stored, delivered or forwarded. Throws the refusal. */
  /**
   * 'relayed' (scoped mode only): this node is not among those that should hold it, so it passed it
   * to the next hop and returned once that hop acknowledged a durable copy; nothing stored here.
   */
  receive(bytes: Uint8Array, from?: GossipLink): Promise<'stored' | 'duplicate' | 'relayed'>;
  sweep(): Promise<number>;
  /**
   * Sends again this node's own messages and receipts that are due (`resendIntervalMs` since the
   * last try, doubling) and have no receipt from their destination. Runs on its own timer; returns
   * how many went out again.
   */
  resend(): Promise<number>;
  /**
   * Anti-entropy with one linked peer (a random one by default): Negentropy range-based set
   * reconciliation of the stored message ids, then each side sends what the other lacks.
   */
  sync(
    peer?: string,
    opts?: { signal?: AbortSignal },
  ): Promise<{ peer: string; have: number; need: number; rounds: number; bytes: number } | undefined>;
  stop(): Promise<void>;
  on(event: 'message', listener: (e: { from: string; publicKey: Buffer; item: DeferredItem }) => void): this;
  on(event: 'receipt', listener: (e: { from: string; ids: string[] }) => void): this;
  on(event: 'refused', listener: (e: { reason: string; from?: string; error: Error }) => void): this;
  on(event: 'delivered-copy', listener: (e: { id: string; hops: number }) => void): this;
  /**
   * This node originated (or sends again) a message for `destination` and is not linked to it:
   * the node may link to the destination's keyspace neighbours, where the copies should land.
   */
  on(event: 'route', listener: (e: { destination: string }) => void): this;
}

export async function createGossip(o: GossipOptions): Promise<Gossip> {
  const { store, dropped } = await GossipStore.open(o.store, {
    localNodeId: o.identity.nodeId,
    ...o.limits,
    ...(o.now && { now: o.now }),
  });
  const g = new GossipService(o, store);
  if (dropped > 0) g.counters.inc('gossip_store_dropped_on_open', dropped);
  g.start();
  return g;
}

class GossipService extends EventEmitter implements Gossip {
  readonly tier = 'gossip' as const;
  readonly store: GossipStore;
  readonly counters: Counters;
  readonly #o: GossipOptions;
  readonly #id: Identity;
  readonly #secret: Uint8Array;
  readonly #publicX: Uint8Array;
  readonly #seen: SeenSet;
  readonly #links = new Map<string, { link: GossipLink; kademliaId: Buffer }>();
  /** Peers that acknowledged a copy of each stored message (hex → node ids). */
  readonly #copies = new Map<string, Set<string>>();
  /** Messages for this node, opened: hex → the sender and item id (to answer receipt()). */
  readonly #forMe = new Map<string, { from: string; publicKey: Buffer; item: DeferredItem }>();
  readonly #clock = new Map<string, number>();
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #shutdown = new AbortController();
  /** Anti-entropy exchanges this side started and waits on: session → resolve. */
  readonly #syncWaits = new Map<number, { peer: string; resolve: (b: Uint8Array) => void }>();
  #syncSeq = 0;
  /** Messages sent to each peer on its 'w' (want) frames in the current minute. */
  readonly #wants = new Map<string, { since: number; served: number }>();
  #stopped = false;
  readonly #kid: Buffer;
  /** Kademlia ids of destinations (bounded cache). */
  readonly #kids = new Map<string, Buffer>();
  /** Relayed messages waiting for the next hop's ack: `peer:hex` → settle. */
  readonly #ackWaits = new Map<string, (err: string | undefined) => void>();
  /** Own messages without a receipt: peers already tried (previous rounds) and the next re-send. */
  readonly #resend = new Map<string, { tried: Set<string>; at: number; rounds: number }>();
  /** Copies being dropped after a hop acknowledgement (the store write is under way). */
  readonly #dropping = new Set<string>();
  /** Changes when a link comes or goes (scoped sync sets depend on the links). */
  #linksVersion = 0;
  /** Last whole-store walk for each peer (catch-up, holder replacement): peer → time (bounded). */
  readonly #walked = new Map<string, number>();
  /** Whole-store walks allowed now (a token bucket: CATCH_UP_BURST, one more every CATCH_UP_REFILL_MS). */
  #walkTokens = CATCH_UP_BURST;
  #walkRefilled = 0;
  /** Negentropy sets by peer, valid while the store and the links are unchanged. */
  readonly #syncCache = new Map<string, { store: number; links: number; storage: NegentropyStorage }>();

  constructor(o: GossipOptions, store: GossipStore) {
    super();
    this.#o = o;
    this.#id = o.identity;
    this.store = store;
    this.counters = o.counters ?? new Counters();
    this.#secret = x25519SecretOf(o.identity);
    this.#publicX = x25519PublicOf(o.identity.publicKey);
    this.#seen = new SeenSet(o.seenSetSize ?? DEFAULT_SEEN_SET_SIZE);
    this.#kid = kademliaIdOf(o.identity.nodeId);
  }

  get #replicas(): number {
    return Math.max(0, Math.floor(this.#o.replicas ?? 0));
  }

  #kidOf(nodeId: string): Buffer {
    let k = this.#kids.get(nodeId);
    if (!k) {
      k = kademliaIdOf(nodeId);
      if (this.#kids.size >= 4096) this.#kids.delete(this.#kids.keys().next().value as string);
      this.#kids.set(nodeId, k);
    }
    return k;
  }

  /**
   * How many of this node's linked peers other than `except` (the message's source) are closer to
   * `dest` than `than` (a Kademlia id), counted up to `cap`.
   */
  #closerCount(dest: Buffer, than: Buffer, cap: number, except: string): number {
    let n = 0;
    for (const l of this.#links.values()) {
      if (l.link.nodeId !== except && xorDistanceCompare(l.kademliaId, than, dest) < 0 && ++n >= cap) return n;
    }
    return n;
  }

  /**
   * Scoped mode: this node should hold a copy of `e` (it is the source, the destination, or among
   * the k closest it knows). The source does not take one of the k places: it holds its copy
   * anyway, and it is the one that leaves (k copies are wanted when it has gone).
   */
  #responsible(e: { source: string; destination: string }): boolean {
    if (e.destination === this.nodeId || e.source === this.nodeId) return true;
    const k = this.#replicas;
    return this.#closerCount(this.#kidOf(e.destination), this.#kid, k, e.source) < k;
  }

  /** Scoped mode: in this node's view, linked `peer` should hold `e` (it is the destination, or among the k closest, the source not counted). */
  #peerResponsible(e: { source: string; destination: string }, peer: string): boolean {
    if (e.destination === peer) return true;
    const l = this.#links.get(peer);
    if (!l || peer === e.source) return false;
    const k = this.#replicas;
    const dest = this.#kidOf(e.destination);
    const meCloser = this.nodeId !== e.source && xorDistanceCompare(this.#kid, l.kademliaId, dest) < 0 ? 1 : 0;
    return this.#closerCount(dest, l.kademliaId, k, e.source) + meCloser < k;
  }

  get nodeId(): string {
    return this.#id.nodeId;
  }
  get #now(): number {
    return (this.#o.now ?? Date.now)();
  }
  get #fanout(): number {
    return this.#o.fanout ?? 3;
  }
  get #resendMs(): number {
    return this.#o.resendIntervalMs ?? 60_000;
  }

  start(): void {
    const cleanup = this.#o.cleanupIntervalMs ?? 600_000;
    if (cleanup > 0) this.#every(cleanup, () => this.sweep());
    const syncMs = this.#o.syncIntervalMs ?? 300_000;
    if (syncMs > 0) this.#every(syncMs, () => this.sync(undefined, { signal: this.#shutdown.signal }));
    const redeliver = this.#o.redeliverIntervalMs ?? DEFAULT_REDELIVER_INTERVAL_MS;
    if (redeliver > 0) this.#every(redeliver, () => this.#offerStored());
    const resend = this.#resendMs;
    if (resend > 0) this.#every(Math.max(1, Math.floor(resend / 4)), () => this.resend());
    // Stored messages for us are offered as soon as someone listens (the orchestrator subscribes after start).
    this.on('newListener', (event) => {
      if (event === 'message') setImmediate(() => void this.#offerStored());
    });
  }

  #every(ms: number, fn: () => Promise<unknown>): void {
    const t = setInterval(() => {
      fn().catch(() => this.counters.inc('gossip_timer_errors'));
    }, ms);
    t.unref();
    this.#timers.push(t);
  }

  vectorClock(): Record<string, number> {
    return Object.fromEntries(this.#clock);
  }

  links(): string[] {
    return [...this.#links.keys()];
  }

  addLink(link: GossipLink): void {
    if (this.#stopped || link.nodeId === this.nodeId) return;
    this.#links.set(link.nodeId, { link, kademliaId: kademliaIdOf(link.nodeId) });
    this.#linksVersion++;
    this.counters.inc('gossip_links_up');
    void this.#catchUp(link).catch(() => this.counters.inc('gossip_send_errors'));
  }

  removeLink(nodeId: string): void {
    if (this.#links.delete(nodeId)) {
      this.#linksVersion++;
      this.counters.inc('gossip_links_down');
      if (this.#replicas > 0 && !this.#stopped) void this.#replaceHolder(nodeId).catch(() => this.counters.inc('gossip_send_errors'));
    }
  }

  /**
   * A walk of the whole store on behalf of `peer` (`kind`: 'c' catch-up, 'r' holder replacement)
   * may run: at most once per CATCH_UP_MIN_INTERVAL_MS per peer, and within a global token bucket,
   * so a peer (or many throwaway ones) linking and leaving in a loop cannot make this node walk
   * and resend its store without bound.
   */
  #mayWalk(kind: 'c' | 'r', peer: string): boolean {
    const now = this.#now;
    const key = `${kind}:${peer}`;
    const last = this.#walked.get(key);
    if (last !== undefined && now - last >= 0 && now - last < CATCH_UP_MIN_INTERVAL_MS) return false;
    if (this.#walkRefilled === 0) this.#walkRefilled = now;
    const refill = Math.floor((now - this.#walkRefilled) / CATCH_UP_REFILL_MS);
    if (refill > 0) {
      this.#walkTokens = Math.min(CATCH_UP_BURST, this.#walkTokens + refill);
      this.#walkRefilled += refill * CATCH_UP_REFILL_MS;
    } else if (refill < 0) this.#walkRefilled = now; // the clock went back
    if (this.#walkTokens < 1) return false;
    this.#walkTokens--;
    this.#walked.delete(key);
    this.#walked.set(key, now);
    if (this.#walked.size > 4096) this.#walked.delete(this.#walked.keys().next().value as string);
    return true;
  }

  /** The link is still the one `link` (not gone, not replaced by a reconnect). */
  #current(link: GossipLink): boolean {
    return !this.#stopped && this.#links.get(link.nodeId)?.link === link;
  }

  /**
   * A new link: what is for that peer, and what has fewer than `fanout` copies (scoped: what it
   * should hold), goes to it. A peer that linked less than CATCH_UP_MIN_INTERVAL_MS ago (or when
   * the walk budget is spent) gets only what is addressed to it; the rest reaches it through
   * anti-entropy and the sources' re-sends.
   */
  async #catchUp(link: GossipLink): Promise<void> {
    if (!this.#mayWalk('c', link.nodeId)) {
      this.counters.inc('gossip_catchups_limited');
      for (const e of this.store.entriesFor(link.nodeId)) {
        if (!this.#current(link)) return;
        if (this.#copies.get(e.hex)?.has(link.nodeId)) continue;
        const m = await this.store.get(e.hex);
        if (m) await this.#sendCopy(link, m);
      }
      return;
    }
    this.counters.inc('gossip_catchups');
    if (this.#replicas > 0) return this.#catchUpScoped(link);
    for (const e of [...this.store.entries()]) {
      if (!this.#current(link)) return;
      const copies = this.#copies.get(e.hex);
      if (copies?.has(link.nodeId) || e.source === link.nodeId) continue;
      const forPeer = e.destination === link.nodeId;
      if (!forPeer && (e.destination === this.nodeId || (copies?.size ?? 0) >= this.#fanout)) continue;
      const m = await this.store.get(e.hex);
      if (!m || (!forPeer && (m.hops >= m.max_hops || m.already_forwarded.includes(link.nodeId)))) continue;
      await this.#sendCopy(link, m);
    }
  }

  /** Scoped: this node (when responsible) plus the linked peers it considers responsible that acknowledged a copy. */
  #knownHolders(e: { hex: string; source: string; destination: string }): number {
    let n = this.#responsible(e) ? 1 : 0;
    for (const p of this.#copies.get(e.hex) ?? []) if (p !== e.source && this.#links.has(p) && this.#peerResponsible(e, p)) n++;
    return n;
  }

  /**
   * Scoped: a peer that held copies went away (offline, or the link broke). For what this node is
   * responsible for and now knows fewer than k linked holders of, the next peers it considers
   * responsible get a copy, so k copies stay reachable near the destination under churn (a
   * destination online only briefly finds one). Copies at the source are its own re-sends' job.
   */
  async #replaceHolder(gone: string): Promise<void> {
    if (!this.#mayWalk('r', gone)) {
      this.counters.inc('gossip_holder_replacements_skipped');
      return;
    }
    for (const [hex, copies] of [...this.#copies]) {
      if (this.#stopped) return;
      if (!copies.has(gone)) continue;
      const e = this.store.entry(hex);
      if (!e || e.destination === this.nodeId || e.source === this.nodeId || e.destination === gone) continue;
      if (!this.#responsible(e) || this.#knownHolders(e) >= this.#replicas) continue;
      const m = await this.store.get(hex);
      if (!m) continue;
      if ((await this.#forwardScoped(m, undefined)) > 0) this.counters.inc('gossip_holders_replaced');
    }
  }

  /** Scoped: to a new link go what is for it and what it should hold in this node's view and lacks. */
  async #catchUpScoped(link: GossipLink): Promise<void> {
    for (const e of [...this.store.entries()]) {
      if (!this.#current(link)) return;
      if (this.#copies.get(e.hex)?.has(link.nodeId) || e.source === link.nodeId) continue;
      const forPeer = e.destination === link.nodeId;
      if (!forPeer && (e.destination === this.nodeId || !this.#peerResponsible(e, link.nodeId))) continue;
      // A responsible holder adds a copy only while fewer than k holders it knows are linked (churn).
      if (!forPeer && e.source !== this.nodeId && this.#responsible(e) && this.#knownHolders(e) >= this.#replicas) continue;
      const m = await this.store.get(e.hex);
      if (!m || (!forPeer && (m.hops >= m.max_hops || m.already_forwarded.includes(link.nodeId)))) continue;
      this.counters.inc('gossip_handoffs');
      await this.#sendCopy(link, m);
    }
  }

  /**
   * This node's own receipt was acknowledged by its destination itself (over a direct link): that
   * node holds it durably, and no signed receipt of a receipt ever comes, so the copy goes
   * (tombstoned) instead of being re-sent for its whole lifetime. An own message is kept until
   * the destination's signed receipt (its application took it), whoever acknowledged it.
   */
  async #ownReceiptHeld(hex: string): Promise<void> {
    if (this.#dropping.has(hex)) return;
    await this.#drop(hex, true, 'gossip_receipts_delivered');
  }

  /**
   * Removes this node's copy once (`#dropping` keeps a second drop of the same copy out while the
   * store works), tombstoned when it is delivered, and counts why.
   */
  async #drop(hex: string, tombstone: boolean, counter: string): Promise<void> {
    this.#dropping.add(hex);
    try {
      await this.store.remove([hex], tombstone);
    } finally {
      this.#dropping.delete(hex);
    }
    this.#forget(hex);
    this.counters.inc(counter);
  }

  /**
   * Scoped: a peer acknowledged a copy. The destination holds it durably, so this node's copy goes
   * (tombstoned: it is delivered); a non-responsible holder drops its copy once a peer it would hand
   * it to (one it considers responsible, or one closer to the destination) holds it.
   */
  async #afterHopAck(hex: string, peer: string): Promise<void> {
    const e = this.store.entry(hex);
    // One drop per copy, also when acknowledgements of two sends of it arrive together.
    if (!e || e.source === this.nodeId || e.destination === this.nodeId || this.#dropping.has(hex)) return;
    if (peer === e.destination) {
      await this.#drop(hex, true, 'gossip_dropped_at_destination');
      return;
    }
    if (this.#responsible(e)) return;
    const l = this.#links.get(peer);
    const dest = this.#kidOf(e.destination);
    if (this.#peerResponsible(e, peer) || (l && xorDistanceCompare(l.kademliaId, this.#kid, dest) < 0)) {
      await this.#drop(hex, false, 'gossip_handed_off');
    }
  }

  async #sendCopy(link: GossipLink, m: GossipMessage): Promise<void> {
    let copy = m.source === this.nodeId && m.hops === 0 ? m : forwardedCopy(m, this.nodeId);
    // The last step to the destination itself goes as stored (as anti-entropy sends it), not one hop over.
    if (copy.hops > copy.max_hops && link.nodeId === m.destination) copy = m;
    if (copy.hops > copy.max_hops) return;
    this.counters.inc('gossip_copies_sent');
    await link.send({ t: 'm', b: copy.encoded });
  }

  async onFrame(from: GossipLink, frame: LinkFrame): Promise<void> {
    if (this.#stopped) return;
    if (frame.t === 'm') {
      let id: Buffer | undefined;
      try {
        await this.receive(frame.b, from);
        id = this.#idOf(frame.b);
        if (id) await from.send({ t: 'a', id });
      } catch (err) {
        id ??= this.#idOf(frame.b);
        const reason = (err as GossipMessageError).reason ?? (err as { code?: string }).code ?? 'error';
        if (id) await from.send({ t: 'a', id, err: String(reason).slice(0, 64) }).catch(() => {});
      }
    } else if (frame.t === 'a') {
      const hex = Buffer.from(frame.id).toString('hex');
      this.#ackWaits.get(`${from.nodeId}:${hex}`)?.(frame.err);
      if (frame.err === undefined || frame.err === 'replayed') {
        // The peer holds it (or had it already delivered): one copy more.
        if (this.store.has(hex)) this.#copiesOf(hex).add(from.nodeId);
        this.counters.inc('gossip_hop_acks');
        const e = this.store.entry(hex);
        if (e?.kind === 'receipt' && e.source === this.nodeId && e.destination === from.nodeId) await this.#ownReceiptHeld(hex);
        else if (this.#replicas > 0 && this.store.has(hex)) await this.#afterHopAck(hex, from.nodeId);
      } else this.counters.inc('gossip_hop_refusals');
    } else if (frame.t === 'n') {
      if (frame.q === 1) {
        let reply: Uint8Array;
        try {
          reply = new Negentropy(this.#syncStorage(from.nodeId), { counters: this.counters, frameSizeLimit: SYNC_FRAME_BYTES }).respond(
            frame.b,
          );
        } catch {
          this.counters.inc('gossip_sync_refused');
          return;
        }
        await from.send({ t: 'n', q: 0, s: frame.s, b: reply });
      } else {
        const w = this.#syncWaits.get(frame.s);
        if (w && w.peer === from.nodeId) w.resolve(frame.b);
      }
    } else if (frame.t === 'w') {
      // Bounded per peer and minute: a peer cannot make this node resend its whole store in a loop.
      const now = this.#now;
      let q = this.#wants.get(from.nodeId);
      if (!q || now - q.since > 60_000) {
        q = { since: now, served: 0 };
        this.#wants.set(from.nodeId, q);
        if (this.#wants.size > 1024) this.#wants.delete(this.#wants.keys().next().value as string);
      }
      const allowed = Math.max(0, SYNC_WANTS_PER_MINUTE - q.served);
      if (frame.ids.length > allowed) this.counters.inc('gossip_sync_wants_dropped', frame.ids.length - allowed);
      q.served += Math.min(allowed, frame.ids.length);
      for (const id of frame.ids.slice(0, allowed)) {
        const hex = Buffer.from(id).toString('hex');
        const e = this.store.entry(hex);
        // Scoped: only what the asking peer should hold (it cannot pull copies it would only drop).
        if (!e || (this.#replicas > 0 && !this.#peerResponsible(e, from.nodeId))) {
          if (e) this.counters.inc('gossip_sync_wants_out_of_scope');
          continue;
        }
        const m = await this.store.get(hex);
        if (m) {
          this.counters.inc('gossip_sync_sent');
          await from.send({ t: 'm', b: m.encoded });
        }
      }
    }
  }

  /**
   * The stored message ids as a Negentropy set: (creation second, id). Scoped mode: only those this
   * node is responsible for or thinks `peer` should hold (both sides hold the shared replicas' items,
   * so they cancel out; the rest is the difference).
   */
  #syncStorage(peer: string): NegentropyStorage {
    const scoped = this.#replicas > 0;
    // Built once per sync (and per peer in scoped mode), not for every round or responder message.
    const key = scoped ? peer : '';
    const cached = this.#syncCache.get(key);
    if (cached && cached.store === this.store.version && cached.links === this.#linksVersion) {
      this.counters.inc('gossip_sync_storage_reused');
      return cached.storage;
    }
    const storage = NegentropyStorage.from(
      [...this.store.entries()]
        .filter((e) => !scoped || this.#responsible(e) || this.#peerResponsible(e, peer))
        .map((e) => ({ timestamp: Math.floor(e.createdAt / 1000), id: e.id })),
    );
    this.counters.inc('gossip_sync_storage_built');
    this.#syncCache.delete(key);
    if (this.#syncCache.size >= 16) this.#syncCache.delete(this.#syncCache.keys().next().value as string);
    this.#syncCache.set(key, { store: this.store.version, links: this.#linksVersion, storage });
    return storage;
  }

  async sync(peer?: string, opts: { signal?: AbortSignal } = {}) {
    const ids = this.links();
    const target = peer ?? ids[Math.floor((this.#o.random ?? Math.random)() * ids.length)];
    const l = target === undefined ? undefined : this.#links.get(target);
    if (!l || target === undefined) return undefined;
    const link = l.link;
    const signal = AbortSignal.any([this.#shutdown.signal, ...(opts.signal ? [opts.signal] : [])]);
    const r = await negentropySync(
      this.#syncStorage(target),
      (msg, sig) =>
        new Promise<Uint8Array>((resolve, reject) => {
          const s = ++this.#syncSeq;
          const done = () => {
            this.#syncWaits.delete(s);
            sig.removeEventListener('abort', onAbort);
          };
          const onAbort = () => {
            done();
            reject(sig.reason);
          };
          sig.addEventListener('abort', onAbort, { once: true });
          this.#syncWaits.set(s, {
            peer: target,
            resolve: (b) => {
              done();
              resolve(b);
            },
          });
          link.send({ t: 'n', q: 1, s, b: msg }).catch((err) => {
            done();
            reject(err);
          });
        }),
      { signal, counters: this.counters, frameSizeLimit: SYNC_FRAME_BYTES },
    );
    // What only we hold goes to the peer; what only it holds, we ask for.
    for (const id of r.have) {
      const hex = Buffer.from(id).toString('hex');
      const e = this.store.entry(hex);
      if (!e || (this.#replicas > 0 && !this.#peerResponsible(e, target))) continue;
      const m = await this.store.get(hex);
      if (m) {
        this.counters.inc('gossip_sync_sent');
        await link.send({ t: 'm', b: m.encoded });
      }
    }
    for (let i = 0; i < r.need.length; i += 1024) await link.send({ t: 'w', ids: r.need.slice(i, i + 1024) });
    this.counters.inc('gossip_syncs');
    this.counters.inc('gossip_sync_bytes', r.bytesSent + r.bytesReceived);
    return { peer: target, have: r.have.length, need: r.need.length, rounds: r.rounds, bytes: r.bytesSent + r.bytesReceived };
  }

  #idOf(bytes: Uint8Array): Buffer | undefined {
    try {
      const env = decodeUntrusted(bytes);
      return Array.isArray(env) && env[2] instanceof Uint8Array && env[2].length === 32 ? Buffer.from(env[2]) : undefined;
    } catch {
      return undefined;
    }
  }

  #copiesOf(hex: string): Set<string> {
    let s = this.#copies.get(hex);
    if (!s) {
      s = new Set();
      this.#copies.set(hex, s);
    }
    return s;
  }

  #refuse(err: unknown, from: string | undefined): never {
    const reason = (err as GossipMessageError).reason ?? 'error';
    this.counters.inc(`gossip_refused_${reason}`);
    this.emit('refused', { reason, ...(from && { from }), error: err as Error });
    throw err;
  }

  async receive(bytes: Uint8Array, from?: GossipLink): Promise<'stored' | 'duplicate' | 'relayed'> {
    if (this.#stopped) throw new GossipStoppedError();
    let m: GossipMessage;
    try {
      m = verifyMessage(bytes, { now: this.#now });
    } catch (err) {
      this.#refuse(err, from?.nodeId);
    }
    const hex = m.id.toString('hex');
    if (this.store.isTombstoned(hex)) {
      this.#refuse(new GossipReplayedError(`message ${hex.slice(0, 16)} was already delivered or confirmed`), from?.nodeId);
    }
    if (this.store.has(hex) || !this.#seen.add(hex)) {
      if (from && this.store.has(hex)) this.#copiesOf(hex).add(from.nodeId);
      this.counters.inc('gossip_duplicates');
      return 'duplicate';
    }
    // Scoped: a node that should not hold it passes it on first (cut-through) and answers the
    // previous hop only after the next one holds it; if that fails, it stores it as usual.
    if (from && this.#replicas > 0 && m.destination !== this.nodeId && !this.#responsible(m)) {
      const next = this.#relayTarget(m, from.nodeId);
      if (next && (await this.#relay(next, m))) {
        this.counters.inc('gossip_relayed');
        return 'relayed';
      }
    }
    try {
      if (m.kind === 'receipt' && m.destination !== this.nodeId) {
        const dropped = await this.store.applyReceipt(m);
        if (dropped.length > 0) this.counters.inc('gossip_dropped_by_receipt', dropped.length);
      }
      await this.#put(m); // durable before the hop is acknowledged
    } catch (err) {
      this.#seen.delete(hex);
      if ((err as { code?: string }).code === 'DPC_GOSSIP_REPLAYED') this.#refuse(err, from?.nodeId);
      this.counters.inc('gossip_store_refused');
      throw err;
    }
    this.counters.inc('gossip_stored');
    if (from) this.#copiesOf(hex).add(from.nodeId);
    this.#observeClock(m);
    if (m.destination === this.nodeId) await this.#arrived(m);
    else void this.#forward(m, from?.nodeId).catch(() => this.counters.inc('gossip_send_errors'));
    return 'stored';
  }

  /** Scoped: the next hop of a message this node passes on (the destination, or the closest linked peer nearer to it). */
  #relayTarget(m: GossipMessage, previous: string): GossipLink | undefined {
    const d = this.#links.get(m.destination);
    if (d) return d.link;
    if (m.hops >= m.max_hops) return undefined;
    const dest = this.#kidOf(m.destination);
    const exclude = new Set([...m.already_forwarded, m.source, previous]);
    let best: { link: GossipLink; kademliaId: Buffer } | undefined;
    for (const l of this.#links.values()) {
      if (exclude.has(l.link.nodeId) || xorDistanceCompare(l.kademliaId, this.#kid, dest) >= 0) continue;
      if (!best || xorDistanceCompare(l.kademliaId, best.kademliaId, dest) < 0) best = l;
    }
    return best?.link;
  }

  /** Sends `m` one hop on and waits for that hop's acknowledgement: true when it holds it (or delivered it). */
  async #relay(next: GossipLink, m: GossipMessage): Promise<boolean> {
    const key = `${next.nodeId}:${m.id.toString('hex')}`;
    if (this.#ackWaits.has(key) || this.#ackWaits.size >= MAX_RELAYS_IN_FLIGHT) return false;
    const copy = forwardedCopy(m, this.nodeId);
    if (copy.hops > copy.max_hops) return false;
    return new Promise<boolean>((resolve) => {
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        this.#ackWaits.delete(key);
        resolve(ok);
      };
      const timer = setTimeout(() => finish(false), DEFAULT_HOP_ACK_TIMEOUT_MS);
      timer.unref?.();
      this.#ackWaits.set(key, (err) => finish(err === undefined || err === 'replayed'));
      this.counters.inc('gossip_copies_sent');
      next.send({ t: 'm', b: copy.encoded }).catch(() => finish(false));
    });
  }

  #observeClock(m: GossipMessage): void {
    const n = m.vector_clock[m.source];
    if (n === undefined) return;
    if ((this.#clock.get(m.source) ?? 0) < n) {
      this.#clock.delete(m.source);
      this.#clock.set(m.source, n);
      if (this.#clock.size > 10_000) {
        const oldest = this.#clock.keys().next().value;
        if (oldest !== undefined) this.#clock.delete(oldest);
      }
    }
  }

  /** Sends copies on; `avoid`: peers not to use (a re-send's earlier tries). Returns how many were picked. */
  async #forward(m: GossipMessage, previous: string | undefined, avoid?: ReadonlySet<string>): Promise<number> {
    if (this.#replicas > 0) return this.#forwardScoped(m, previous, avoid);
    if (m.hops >= m.max_hops) return 0;
    const copies = this.#copiesOf(m.id.toString('hex'));
    const exclude = new Set([...m.already_forwarded, ...copies, ...(avoid ?? []), m.source, this.nodeId, ...(previous ? [previous] : [])]);
    const candidates = [...this.#links.values()].map((l) => ({ nodeId: l.link.nodeId, kademliaId: l.kademliaId, link: l.link }));
    const want = Math.max(0, this.#fanout - copies.size);
    const dest = { nodeId: m.destination, kademliaId: kademliaIdOf(m.destination) };
    const picks = chooseForwardPeers(
      candidates,
      dest,
      exclude,
      want || (candidates.some((c) => c.nodeId === m.destination) ? 1 : 0),
      this.#o.random,
    );
    await Promise.all(picks.map((p) => this.#sendCopy(p.link, m).catch(() => this.counters.inc('gossip_send_errors'))));
    return picks.length;
  }

  /**
   * Scoped forwarding: to the destination alone when linked; else a responsible node copies it to the
   * peers it considers responsible that lack it, and any other node to the one closest linked peer
   * nearer the destination than itself (one copy per hop, at most max_hops).
   */
  async #forwardScoped(m: GossipMessage, previous: string | undefined, avoid?: ReadonlySet<string>): Promise<number> {
    const hex = m.id.toString('hex');
    const copies = this.#copiesOf(hex);
    const destLink = this.#links.get(m.destination);
    if (destLink) {
      if (copies.has(m.destination)) return 0;
      await this.#sendCopy(destLink.link, m).catch(() => this.counters.inc('gossip_send_errors'));
      return 1;
    }
    if (m.hops >= m.max_hops) return 0;
    const dest = this.#kidOf(m.destination);
    const exclude = new Set([...m.already_forwarded, ...copies, ...(avoid ?? []), m.source, this.nodeId, ...(previous ? [previous] : [])]);
    const ranked = [...this.#links.values()].sort((a, b) => xorDistanceCompare(a.kademliaId, b.kademliaId, dest));
    const closer = ranked.filter((l) => xorDistanceCompare(l.kademliaId, this.#kid, dest) < 0);
    let picks: GossipLink[];
    if (closer.length < this.#replicas) {
      // Among the k closest this node knows: copy it to the other ones it knows that lack it, up to k holders.
      const short = Math.max(0, this.#replicas - this.#knownHolders({ hex, source: m.source, destination: m.destination }));
      picks = ranked
        .filter((l) => !exclude.has(l.link.nodeId) && this.#peerResponsible(m, l.link.nodeId))
        .slice(0, m.source === this.nodeId ? this.#replicas : short)
        .map((l) => l.link);
    } else if (closer.some((l) => copies.has(l.link.nodeId))) {
      picks = []; // a peer nearer the destination holds it already: handed off
    } else {
      // Hand it on to the closest peer nearer the destination (one copy).
      const first = closer.find((l) => !exclude.has(l.link.nodeId));
      picks = first ? [first.link] : [];
    }
    if (picks.length === 0 && avoid && avoid.size > 0) {
      // A re-send whose usual peers were all tried: the closest untried link, whatever its distance.
      const other = ranked.find((l) => !exclude.has(l.link.nodeId));
      if (other) picks = [other.link];
    }
    await Promise.all(picks.map((p) => this.#sendCopy(p, m).catch(() => this.counters.inc('gossip_send_errors'))));
    return picks.length;
  }

  /**
   * The source's re-send of its own messages and receipts that no signed receipt confirmed yet
   * (forwarders' acknowledgements prove nothing): to the destination when linked, else first to
   * peers not tried in earlier rounds; when all were tried, to the usual ones again. The wait
   * doubles each round (at most 64 × `resendIntervalMs`); the message expires with its TTL.
   */
  async resend(): Promise<number> {
    const base = this.#resendMs;
    if (base <= 0) return 0;
    const now = this.#now;
    let n = 0;
    for (const e of [...this.store.entries()]) {
      if (this.#stopped) return n;
      if (e.source !== this.nodeId) continue;
      let r = this.#resend.get(e.hex);
      if (!r) {
        r = { tried: new Set(), at: e.createdAt + base, rounds: 0 };
        this.#resend.set(e.hex, r);
      }
      if (now < r.at) continue;
      r.rounds++;
      r.at = now + base * 2 ** Math.min(r.rounds, 6);
      const m = await this.store.get(e.hex);
      if (!m) continue;
      this.counters.inc('gossip_resent');
      n++;
      if (!this.#links.has(e.destination)) this.emit('route', { destination: e.destination });
      // Who acknowledged it before is "tried"; their acknowledgement does not count as a copy now.
      const copies = this.#copiesOf(e.hex);
      for (const p of copies) r.tried.add(p);
      copies.clear();
      r.tried.delete(e.destination);
      if (r.tried.size > 256) r.tried.clear();
      const sent = await this.#forward(m, undefined, r.tried).catch(() => 0);
      if (sent === 0 && r.tried.size > 0) {
        r.tried.clear();
        await this.#forward(m, undefined).catch(() => 0);
      }
    }
    for (const hex of this.#resend.keys()) if (!this.store.has(hex)) this.#resend.delete(hex);
    return n;
  }

  /** A message for this node: open it and hand it to the application, or take the receipt. */
  async #arrived(m: GossipMessage): Promise<void> {
    const hex = m.id.toString('hex');
    let plain: unknown;
    try {
      plain = decodeUntrusted(open(this.#secret, this.#publicX, m.payload, payloadAad(m.source, m.destination, m.kind)));
    } catch (err) {
      await this.store.remove([hex], true);
      this.#refuse(err, m.source);
    }
    if (m.kind === 'receipt') {
      let ids: string[];
      try {
        ids = receiptPlaintextSchema(plain).ids;
      } catch (err) {
        await this.store.remove([hex], true);
        this.#refuse(new GossipMalformedError('receipt payload is malformed', { cause: err }), m.source);
      }
      // Our own copies of what it confirms go, and the receipt itself is consumed.
      const dropped = await this.store.applyReceipt(m);
      for (const d of dropped) this.#forget(d);
      await this.store.remove([hex], true);
      this.#forget(hex);
      this.counters.inc('gossip_receipts_received');
      this.emit('receipt', { from: m.source, ids });
      return;
    }
    let item: DeferredItem;
    try {
      item = msgPlaintextSchema(plain) as DeferredItem;
    } catch (err) {
      await this.store.remove([hex], true);
      this.#refuse(new GossipMalformedError('message payload is malformed', { cause: err }), m.source);
    }
    this.#forMe.set(hex, { from: m.source, publicKey: m.sourceKey, item });
    this.counters.inc('gossip_delivered');
    this.emit('delivered-copy', { id: hex, hops: m.hops });
    this.emit('message', { from: m.source, publicKey: m.sourceKey, item });
  }

  /** Offers again what is stored for us and not yet receipted (after a restart, or when the application refused it). */
  async #offerStored(): Promise<void> {
    if (this.listenerCount('message') === 0) return;
    for (const e of [...this.store.entries()]) {
      if (e.destination !== this.nodeId || e.kind !== 'msg') continue;
      const known = this.#forMe.get(e.hex);
      if (known) {
        this.emit('message', { from: known.from, publicKey: known.publicKey, item: known.item });
        continue;
      }
      const m = await this.store.get(e.hex);
      if (m) await this.#arrived(m).catch(() => {});
    }
  }

  /** Stores `m`; what it evicted is forgotten and counted (own receipts also as `gossip_own_receipts_evicted`). */
  async #put(m: GossipMessage): Promise<void> {
    const evicted: string[] = [];
    const ownBefore = this.store.ownReceiptsEvicted;
    await this.store.put(m, evicted);
    for (const e of evicted) this.#forget(e);
    if (evicted.length > 0) this.counters.inc('gossip_evicted', evicted.length);
    const own = this.store.ownReceiptsEvicted - ownBefore;
    if (own > 0) this.counters.inc('gossip_own_receipts_evicted', own);
  }

  #forget(hex: string): void {
    this.#copies.delete(hex);
    this.#forMe.delete(hex);
    this.#resend.delete(hex);
  }

  async submit(recipient: DeferredRecipient, item: DeferredItem, opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#stopped) throw new GossipStoppedError();
    throwIfAborted(opts.signal);
    const plaintext = encodeCanonical({ id: item.id, body: item.body });
    await this.#originate('msg', recipient, plaintext, []);
    this.counters.inc('gossip_submitted');
  }

  async receipt(recipient: DeferredRecipient, ids: readonly string[], opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#stopped) throw new GossipStoppedError();
    throwIfAborted(opts.signal);
    const wanted = new Set(ids);
    const acks: Buffer[] = [];
    for (const [hex, f] of this.#forMe) if (f.from === recipient.nodeId && wanted.has(f.item.id)) acks.push(Buffer.from(hex, 'hex'));
    for (let i = 0; i < Math.max(ids.length, 1); i += MAX_RECEIPT_IDS) {
      const part = ids.slice(i, i + MAX_RECEIPT_IDS);
      const partAcks = acks.slice(0, MAX_RECEIPT_IDS);
      acks.splice(0, partAcks.length);
      await this.#originate('receipt', recipient, encodeCanonical({ ids: part }), partAcks);
    }
    // Taken by the application: our copies go, and their ids are refused from now on.
    const hexes = [...this.#forMe].filter(([, f]) => f.from === recipient.nodeId && wanted.has(f.item.id)).map(([h]) => h);
    await this.store.remove(hexes, true);
    for (const h of hexes) this.#forget(h);
    this.counters.inc('gossip_receipts_sent');
  }

  async #originate(kind: 'msg' | 'receipt', to: DeferredRecipient, plaintext: Uint8Array, acks: Uint8Array[]): Promise<void> {
    const n = await this.store.nextClock();
    const m = createMessage(this.#id, {
      kind,
      destination: to.nodeId,
      destinationKey: to.publicKey,
      plaintext,
      maxHops: this.#o.maxHops ?? 5,
      ttlSeconds: this.#o.ttlSeconds ?? 86_400,
      priority: this.#o.priority ?? 'normal',
      vectorClock: { [this.nodeId]: n },
      acks,
      now: this.#now,
    });
    const hex = m.id.toString('hex');
    this.#seen.add(hex);
    await this.#put(m); // durable before submit() resolves
    this.#observeClock(m);
    if (!this.#links.has(to.nodeId)) this.emit('route', { destination: to.nodeId });
    void this.#forward(m, undefined).catch(() => this.counters.inc('gossip_send_errors'));
  }

  async sweep(): Promise<number> {
    const n = await this.store.sweep();
    for (const hex of [...this.#copies.keys()]) if (!this.store.has(hex)) this.#copies.delete(hex);
    for (const hex of [...this.#forMe.keys()]) if (!this.store.has(hex)) this.#forMe.delete(hex);
    if (n > 0) this.counters.inc('gossip_expired', n);
    return n;
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#shutdown.abort();
    for (const t of this.#timers) clearInterval(t);
    this.#links.clear();
  }
}

export { expiresAt };
