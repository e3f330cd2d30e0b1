import { createRecord, type EndpointBody, encodeCanonical, endpointBodySchema, nodeIdOfKademliaId } from '@dpc/core';
import * as C from './constants.js';
import type { WireContact } from './messages.js';
import type { NodeContext } from './node-context.js';
import type { Queries } from './queries.js';
import { relayIndexKeys } from './relay-index.js';
import type { Peer } from './rpc.js';
import { registerPayload } from './signalling.js';
import type { AnnounceResult, RelayOfferInput } from './types.js';

type Via = { id: Uint8Array; peer: Peer; token: Uint8Array };

/**
 * What this node publishes: its endpoint record (with the signal_via nodes it registered with)
 * and its relay offer, republished periodically; and the NAT keepalive (re-REGISTER) with the
 * signal_via nodes, which re-announces when one of them is lost.
 */
export class Announcer {
  readonly #c: NodeContext;
  readonly #q: Queries;
  #body: EndpointBody;
  #via: Via[] = [];
  #seq = 0;
  #announced = false;
  #relayOffer: RelayOfferInput | undefined;
  #republishing: Promise<unknown> | undefined;
  /** A republish asked for while one runs: it runs once more after it (coalesced). */
  #republishAgain: Promise<unknown> | undefined;
  /** The next try of an endpoint announce that reached no other node (or failed), and its delay. */
  #retry: NodeJS.Timeout | undefined;
  #retryMs = 0;

  constructor(ctx: NodeContext, queries: Queries, body: EndpointBody) {
    this.#c = ctx;
    this.#q = queries;
    this.#body = endpointBodySchema(body, 'endpoint');
    ctx.shutdown.addEventListener('abort', () => clearTimeout(this.#retry), { once: true });
  }

  /**
   * After an endpoint announce: one that stored its record at no other node (every STORE lost,
   * the closest nodes gone, a lookup that failed) is tried again soon, backing off from
   * ANNOUNCE_RETRY_MS to ANNOUNCE_RETRY_MAX_MS, not only at the next period (30 min): until then
   * the node cannot be found. A stored one ends the retries. Not for a node that knows nobody and
   * has no seeds.
   */
  #afterEndpointAnnounce(storedAt: number): void {
    if (storedAt > 0 || !this.#c.running()) {
      clearTimeout(this.#retry);
      this.#retry = undefined;
      this.#retryMs = 0;
      return;
    }
    this.#c.counters.inc('announce.unstored');
    // A node that knows nobody and has no seeds (the first node of a network) has nowhere to
    // store: it announces when someone joins it (dpc-node does), not every minute meanwhile.
    if (this.#retry || (this.#c.table.size === 0 && (this.#c.o.seeds?.length ?? 0) === 0)) return;
    this.#retryMs = Math.min(C.ANNOUNCE_RETRY_MAX_MS, this.#retryMs > 0 ? this.#retryMs * 2 : C.ANNOUNCE_RETRY_MS);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      void this.republish();
    }, this.#retryMs);
    this.#retry.unref?.();
  }

  /** Registers with the closest nodes for signalling, then stores the endpoint record at the k closest. */
  async announceFull(signal: AbortSignal): Promise<AnnounceResult<'endpoint'>> {
    this.#announced = true;
    let storedAt = 0;
    try {
      const done = await this.#announceFull(signal);
      storedAt = done.storedAt;
      return done;
    } finally {
      this.#afterEndpointAnnounce(storedAt);
    }
  }

  async #announceFull(signal: AbortSignal): Promise<AnnounceResult<'endpoint'>> {
    const c = this.#c;
    const res = await this.#q.lookupNodes(c.kademliaId, signal);
    const count = Math.max(1, Math.min(4, c.o.signalViaCount ?? C.DEFAULT_SIGNAL_VIA_COUNT));
    const candidates = res.closest.filter((x) => x.token !== undefined).slice(0, count + 2);
    const registered = await Promise.all(candidates.map((x) => this.#register(x.peer, x.token as Uint8Array, signal)));
    this.#via = registered.filter((v): v is Via => v !== null).slice(0, count);
    const record = createRecord(c.identity, {
      kind: 'endpoint',
      body: { ...this.#body, signal_via: this.#viaBody() },
      seq: this.#nextSeq(),
      ttlMs: c.o.recordTtlMs ?? C.DEFAULT_RECORD_TTL_MS,
      now: this.#now(),
    });
    const storedAt = await this.#q.storeAt(c.kademliaId, record, res, signal);
    c.progress({
      type: 'announce:done',
      kind: 'endpoint',
      storedAt,
      closest: res.closest.length,
      signalVia: this.#via.length,
      seq: record.seq,
      issuedAt: record.issuedAt,
    });
    return { record, storedAt, closest: res.closest.length, signalVia: this.#viaBody() };
  }

  /** Stores the relay offer under its region key and the global key. */
  async announceRelay(offer: RelayOfferInput, signal: AbortSignal): Promise<AnnounceResult<'relay-offer'>> {
    const c = this.#c;
    const record = createRecord(c.identity, {
      kind: 'relay-offer',
      body: { ...offer, node_id: c.nodeId },
      seq: this.#nextSeq(),
      ttlMs: c.o.recordTtlMs ?? C.DEFAULT_RECORD_TTL_MS,
      now: this.#now(),
    });
    this.#relayOffer = offer;
    let storedAt = 0;
    let closest = 0;
    for (const key of relayIndexKeys(offer.region)) {
      const res = await this.#q.lookupNodes(key, signal);
      closest += res.closest.length;
      storedAt += await this.#q.storeAt(key, record, res, signal);
    }
    c.progress({ type: 'announce:done', kind: 'relay-offer', storedAt, closest, signalVia: 0, seq: record.seq, issuedAt: record.issuedAt });
    return { record, storedAt, closest, signalVia: [] };
  }

  setEndpointBody(body: EndpointBody): void {
    const next = endpointBodySchema({ ...body, signal_via: [] }, 'endpoint');
    const same = encodeCanonical(next).equals(encodeCanonical({ ...this.#body, signal_via: [] }));
    this.#body = next;
    if (!same && this.#announced && this.#c.running()) void this.republish();
  }

  endpointBody(): EndpointBody {
    return { ...this.#body, signal_via: this.#viaBody() };
  }

  /** Republishes what was announced; one run at a time, failures become `warning` events. */
  republish(): Promise<unknown> {
    const c = this.#c;
    if (!c.running()) return this.#republishing ?? Promise.resolve();
    if (this.#republishing) {
      // The running one may have signed its record before the change that asked for this one
      // (a new NAT verdict arriving while the STOREs are in flight): run once more after it.
      this.#republishAgain ??= this.#republishing.then(() => {
        this.#republishAgain = undefined;
        return this.republish();
      });
      return this.#republishAgain;
    }
    const run = async () => {
      if (this.#announced) await c.withTimeout({}, 'announceFull', (s) => this.announceFull(s));
      const offer = this.#relayOffer;
      if (offer) await c.withTimeout({}, 'announceRelay', (s) => this.announceRelay(offer, s));
    };
    this.#republishing = run()
      .catch((err: Error) => {
        c.counters.inc('errors.republish');
        if (c.running()) c.warn(err);
      })
      .finally(() => {
        this.#republishing = undefined;
      });
    return this.#republishing;
  }

  /** Re-REGISTERs with the signal_via nodes (keeps the NAT mapping open); re-announces if one is lost. */
  async keepalive(): Promise<void> {
    if (this.#via.length === 0) return;
    const signal = this.#c.shutdown;
    const kept = await Promise.all(this.#via.map((v) => this.#register({ id: v.id, ...v.peer }, v.token, signal)));
    this.#via = kept.filter((v): v is Via => v !== null);
    if (this.#via.length < kept.length) await this.republish();
  }

  async #register(peer: WireContact, token: Uint8Array, signal: AbortSignal): Promise<Via | null> {
    const c = this.#c;
    const ts = Date.now();
    const sig = c.identity.sign(registerPayload(peer.id, ts));
    try {
      const r = await c.request(peer, { t: 'register', pk: c.identity.publicKey, ts, sig, tk: token }, { signal });
      return { id: peer.id, peer: { host: peer.host, port: peer.port }, token: (r.msg.t === 'ok' && r.msg.tk) || token };
    } catch {
      return null;
    }
  }

  #viaBody(): EndpointBody['signal_via'] {
    return this.#via.map((v) => ({ node_id: nodeIdOfKademliaId(v.id), ip: v.peer.host, port: v.peer.port }));
  }

  #nextSeq(): number {
    this.#seq = Math.max(this.#c.o.sequence?.() ?? this.#now(), this.#seq + 1);
    return this.#seq;
  }

  /** The clock records are signed with (`DhtOptions.recordClock`). */
  #now(): number {
    return this.#c.o.recordClock?.() ?? Date.now();
  }
}
