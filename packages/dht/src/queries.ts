import { randomBytes } from 'node:crypto';
import { type SignedRecord, verifyRecord } from '@dpc/core';
import { deadline } from './abort-fanout.js';
import * as C from './constants.js';
import { randomIdInBucket } from './distance.js';
import { iterativeLookup, type LookupReply, type LookupResult } from './lookup.js';
import type { RequestBody, WireContact } from './messages.js';
import type { NodeContext } from './node-context.js';
import { bucketsToRefresh, farBuckets } from './routing-table.js';
import type { Peer } from './rpc.js';
import { keyMatchesRecord } from './storage.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const fromWire = (c: WireContact): WireContact => ({ id: c.id, host: c.host, port: c.port });

/** Iterative lookups over the network (FIND_NODE, FIND_VALUE), STORE at the closest, bucket refresh. */
export class Queries {
  readonly #c: NodeContext;

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

  /** FIND_VALUE lookup: verified records under `key` (every page of each answer unless `stopWhenFound`). */
  lookupValues(key: Uint8Array, stopWhenFound: boolean, signal: AbortSignal): Promise<LookupResult<SignedRecord>> {
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
      } while (offset !== undefined && !stopWhenFound && pages < C.MAX_VALUE_PAGES);
      return { contacts, values, token, extraRpcs: pages - 1 };
    });
  }

  async #lookup<V>(
    target: Uint8Array,
    kind: 'node' | 'value',
    stopWhenFound: boolean,
    signal: AbortSignal,
    k: number,
    query: (peer: WireContact, s: AbortSignal) => Promise<LookupReply<V>>,
  ): Promise<LookupResult<V>> {
    const c = this.#c;
    const t0 = performance.now();
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

  /** The newest endpoint record of `nodeId` (ours if we hold one), and its address if we know it. */
  async findPeer(nodeId: string, key: Buffer, signal: AbortSignal): Promise<{ record?: SignedRecord<'endpoint'>; direct?: Peer }> {
    const c = this.#c;
    const known = c.table.get(key);
    const local = c.store.get(key)[0] as SignedRecord<'endpoint'> | undefined;
    if (local) return { record: local, ...(known ? { direct: known } : {}) };
    let res = await this.lookupValues(key, true, signal);
    // A miss is retried once: the first lookup taught the nodes on the path about each other.
    if (res.values.length === 0) res = await this.lookupValues(key, true, signal);
    let record: SignedRecord<'endpoint'> | undefined;
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
   * Lookups of a random id in each bucket farther than our closest neighbour. At join
   * (`afterJoin`) only the far buckets the self-lookup left short of contacts get one, and it only
   * needs a few live contacts there: it ends when the `alpha` closest have answered.
   */
  async refreshBuckets(signal = this.#c.shutdown, afterJoin = false): Promise<void> {
    const c = this.#c;
    const contacts = c.table.toArray();
    const buckets = afterJoin
      ? bucketsToRefresh(c.kademliaId, contacts, c.k, { onlySparse: true, maxBuckets: farBuckets(c.kademliaId, contacts, c.k) })
      : bucketsToRefresh(c.kademliaId, contacts, c.k);
    const targets = [...(afterJoin ? [] : [c.kademliaId]), ...buckets.map((i) => randomIdInBucket(c.kademliaId, i, randomBytes(16)))];
    for (const target of targets) {
      if (signal.aborted) return;
      const t = deadline(c.o.lookupTimeoutMs ?? C.DEFAULT_LOOKUP_TIMEOUT_MS, 'bucket refresh', signal);
      await this.lookupNodes(target, t.signal, afterJoin ? c.alpha : c.k).catch(() => undefined);
      t.clear();
    }
  }

  #lookupRetries(): number {
    return this.#c.o.lookupRpcRetries ?? C.DEFAULT_LOOKUP_RPC_RETRIES;
  }
}
