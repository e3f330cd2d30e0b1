import { randomBytes } from 'node:crypto';
import { type SignedRecord, verifyRecord } from '@dpc/core';
import { deadline } from './abort-fanout.js';
import * as C from './constants.js';
import { commonPrefixLength, compareDistance, randomIdInBucket } from './distance.js';
import { iterativeLookup, type LookupReply, type LookupResult } from './lookup.js';
import type { RequestBody, WireContact } from './messages.js';
import type { NodeContext } from './node-context.js';
import { bucketsToRefresh, farBuckets, farBucketsToFill } from './routing-table.js';
import type { Peer } from './rpc.js';
import { keyMatchesRecord } from './storage.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const fromWire = (c: WireContact): WireContact => ({ id: c.id, host: c.host, port: c.port });

/** Iterative lookups over the network (FIND_NODE, FIND_VALUE), STORE at the closest, bucket refresh. */
export class Queries {
  readonly #c: NodeContext;
  /** When a lookup last went into each bucket (index: common-prefix length of target and our id). */
  readonly #lookedAt = new Map<number, number>();

  constructor(ctx: NodeContext) {
    this.#c = ctx;
  }

  /** FIND_NODE lookup of the `k` closest nodes (default: the bucket size). */
  lookupNodes(target: Uint8Array, signal: AbortSignal, k = this.#c.k): Promise<LookupResult<never>> {
    return this.#lookup<never>(target, 'node', false, signal, k, async (peer, s) => {
      const r = await this.#c.request(peer, { t: 'find_node', k: Buffer.from(target) }, { signal: s, retries: this.#lookupRetries() });
      return r.msg.t === 'nodes' ? { contacts: r.msg.n.map(fromWire), token: r.msg.tk } : { contacts: [] };
    });
  }

  /**
   * FIND_VALUE lookup: verified records under `key` (every page of each answer unless
   * `stopWhenFound`, which is true or decides from the values so far).
   */
  lookupValues(
    key: Uint8Array,
    stopWhenFound: boolean | ((values: readonly SignedRecord[]) => boolean),
    signal: AbortSignal,
  ): Promise<LookupResult<SignedRecord>> {
    const c = this.#c;
    return this.#lookup<SignedRecord>(key, 'value', stopWhenFound, signal, c.k, async (peer, s) => {
      const values: SignedRecord[] = [];
      let contacts: WireContact[] = [];
      let token: Uint8Array | undefined;
      let offset: number | undefined;
      let pages = 0;
      do {
        const body: RequestBody = { t: 'find_value', k: Buffer.from(key), ...(offset ? { o: offset } : {}) };
        const r = await c.request(peer, body, { signal: s, retries: this.#lookupRetries() });
        if (r.msg.t !== 'nodes') break;
        if (pages === 0) contacts = r.msg.n.map(fromWire);
        token = r.msg.tk;
        for (const bytes of r.msg.r ?? []) {
          try {
            const rec = verifyRecord(bytes);
            if (keyMatchesRecord(key, rec)) values.push(rec);
            else c.counters.inc('rejects.served_wrong_key');
          } catch {
            c.counters.inc('rejects.served_bad_record');
          }
        }
        offset = r.msg.nx;
        pages++;
      } while (offset !== undefined && stopWhenFound === false && pages < C.MAX_VALUE_PAGES);
      return { contacts, values, token, extraRpcs: pages - 1 };
    });
  }

  async #lookup<V>(
    target: Uint8Array,
    kind: 'node' | 'value',
    stopWhenFound: boolean | ((values: readonly V[]) => boolean),
    signal: AbortSignal,
    k: number,
    query: (peer: WireContact, s: AbortSignal) => Promise<LookupReply<V>>,
  ): Promise<LookupResult<V>> {
    const c = this.#c;
    const t0 = performance.now();
    this.#lookedAt.set(commonPrefixLength(target, c.kademliaId), Date.now());
    const targetHex = hex(target);
    const res = await iterativeLookup<V>({
      target,
      localId: c.kademliaId,
      k,
      alpha: c.alpha,
      start: c.table.closest(target, c.k),
      query,
      stopWhenFound,
      signal,
      ...(c.hasProgressListeners()
        ? { onQuery: (p: WireContact) => c.progress({ type: 'lookup:query', target: targetHex, peer: { host: p.host, port: p.port } }) }
        : {}),
    });
    c.counters.inc(`lookups.${kind}`);
    c.counters.inc('lookups.rpcs', res.rpcs);
    c.progress({
      type: 'lookup:done',
      target: targetHex,
      kind,
      rpcs: res.rpcs,
      responded: res.responded,
      found: res.values.length > 0,
      ms: performance.now() - t0,
    });
    return res;
  }

  /**
   * The newest endpoint record of `nodeId` (ours if we hold one), and its address if we know it.
   * The lookup ends at the first answer carrying a record, or with `newerThan`, at the first one
   * carrying a record of a higher seq (else it runs to its end); the highest seq seen is returned.
   */
  async findPeer(
    nodeId: string,
    key: Buffer,
    signal: AbortSignal,
    newerThan?: number,
  ): Promise<{ record?: SignedRecord<'endpoint'>; direct?: Peer }> {
    const c = this.#c;
    const known = c.table.get(key);
    const local = c.store.get(key)[0] as SignedRecord<'endpoint'> | undefined;
    if (local && (newerThan === undefined || local.seq > newerThan)) return { record: local, ...(known ? { direct: known } : {}) };
    const enough =
      newerThan === undefined
        ? true
        : (values: readonly SignedRecord[]) => values.some((v) => v.kind === 'endpoint' && v.nodeId === nodeId && v.seq > newerThan);
    let res = await this.lookupValues(key, enough, signal);
    // A miss is retried once: the first lookup taught the nodes on the path about each other.
    if (res.values.length === 0) res = await this.lookupValues(key, enough, signal);
    let record: SignedRecord<'endpoint'> | undefined = local;
    for (const r of res.values)
      if (r.kind === 'endpoint' && r.nodeId === nodeId && (!record || r.seq > record.seq)) record = r as SignedRecord<'endpoint'>;
    const direct = known ?? res.closest.find((x) => Buffer.from(x.peer.id).equals(key))?.peer;
    return { ...(record ? { record } : {}), ...(direct ? { direct: { host: direct.host, port: direct.port } } : {}) };
  }

  /** Stores `record` here and at the closest nodes `res` found (with their tokens); returns how many took it. */
  async storeAt(key: Uint8Array, record: SignedRecord, res: LookupResult<unknown>, signal: AbortSignal): Promise<number> {
    const c = this.#c;
    c.store.put(key, record.encoded, 'self');
    const oks = await Promise.all(
      res.closest.map((x) =>
        x.token === undefined
          ? false
          : c.request(x.peer, { t: 'store', k: Buffer.from(key), r: record.encoded, tk: x.token }, { signal }).then(
              () => true,
              () => false,
            ),
      ),
    );
    return oks.filter(Boolean).length;
  }

  /**
   * Bucket refresh (Kademlia): a lookup of a random id in each bucket farther than our closest
   * neighbour, and of our own id, skipping the buckets a lookup went into within `staleMs` (any
   * lookup refreshes the bucket its target falls in). Sequential: one lookup at a time.
   */
  async refreshBuckets(staleMs: number, signal = this.#c.shutdown): Promise<number> {
    const c = this.#c;
    const since = Date.now() - staleMs;
    const buckets = [...bucketsToRefresh(c.kademliaId, c.table.toArray()), 128].filter((i) => (this.#lookedAt.get(i) ?? 0) < since);
    for (const i of buckets) {
      if (signal.aborted) break;
      const target = i === 128 ? c.kademliaId : randomIdInBucket(c.kademliaId, i, randomBytes(16));
      const t = deadline(c.o.lookupTimeoutMs ?? C.DEFAULT_LOOKUP_TIMEOUT_MS, 'bucket refresh', signal);
      await this.lookupNodes(target, t.signal).catch(() => undefined);
      t.clear();
    }
    return buckets.length;
  }

  /**
   * The join's far buckets. The self-lookup fills the buckets near our id; the farther ones (each
   * spanning about N / 2^(i+1) nodes) it leaves nearly empty, and a node that knows nobody in a
   * far bucket cannot route toward keys there. Each far bucket with fewer than
   * `JOIN_FAR_BUCKET_CONTACTS` contacts gets one FIND_NODE of a random id in it (to the contact
   * closest to that id), and the nodes of that bucket in the answer a PING each until it has
   * enough: 1 + a few RPCs per bucket, all buckets at once, instead of a lookup per bucket. The
   * nodes PINGed learn us too. Returns the RPCs sent.
   */
  async fillFarBuckets(signal: AbortSignal): Promise<number> {
    const c = this.#c;
    const want = Math.min(C.JOIN_FAR_BUCKET_CONTACTS, c.k);
    const far = farBuckets(c.kademliaId, c.table.toArray(), c.k);
    const sent = await Promise.all(
      farBucketsToFill(c.table.bucketCounts(), far, want).map(async (i) => {
        const target = randomIdInBucket(c.kademliaId, i, randomBytes(16));
        const lacking = () => want - (c.table.bucketCounts()[i] ?? 0);
        const opts = { signal, retries: this.#lookupRetries() };
        this.#lookedAt.set(i, Date.now());
        let rpcs = 0;
        // The next closest contact to the target is asked only if the first answer did not bring enough.
        for (const via of c.table.closest(target, C.JOIN_FAR_BUCKET_ASK)) {
          if (signal.aborted || lacking() <= 0) break;
          rpcs++;
          const r = await c.request(via, { t: 'find_node', k: Buffer.from(target) }, opts).catch(() => null);
          if (r?.msg.t !== 'nodes') continue;
          const candidates = r.msg.n
            .filter((n) => commonPrefixLength(n.id, c.kademliaId) === i && !c.table.get(n.id))
            .sort((a, b) => compareDistance(a.id, b.id, target));
          // PINGs in rounds: as many at once as the bucket still lacks, the next candidates if some fail.
          while (candidates.length > 0 && !signal.aborted && lacking() > 0) {
            const round = candidates.splice(0, lacking());
            rpcs += round.length;
            await Promise.all(round.map((p) => c.request(fromWire(p), { t: 'ping' }, opts).catch(() => undefined)));
          }
        }
        return rpcs;
      }),
    );
    return sent.reduce((a, b) => a + b, 0);
  }

  #lookupRetries(): number {
    return this.#c.o.lookupRpcRetries ?? C.DEFAULT_LOOKUP_RPC_RETRIES;
  }
}
