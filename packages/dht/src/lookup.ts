import { toAbortError } from '@dpc/core';
import { onAbort as subscribe } from './abort-fanout.js';
import { compareDistance } from './distance.js';
import type { WireContact } from './messages.js';

/** What one queried node told an iterative lookup. */
export interface LookupReply<V> {
  contacts: readonly WireContact[];
  values?: readonly V[];
  token?: Uint8Array;
  /** Extra RPCs the query made (pages of a value). */
  extraRpcs?: number;
}

export interface LookupOptions<V> {
  target: Uint8Array;
  localId: Uint8Array;
  k: number;
  alpha: number;
  start: readonly WireContact[];
  query: (peer: WireContact, signal: AbortSignal) => Promise<LookupReply<V>>;
  /**
   * Finish as soon as one value was returned (FIND_VALUE of an endpoint record), or as soon as
   * this says the values so far are enough.
   */
  stopWhenFound?: boolean | ((values: readonly V[]) => boolean);
  signal: AbortSignal;
  onQuery?: (peer: WireContact) => void;
}

export interface LookupResult<V> {
  /** The k closest nodes that answered, closest first, with the write token each gave. */
  closest: Array<{ peer: WireContact; token: Uint8Array | undefined }>;
  values: V[];
  rpcs: number;
  responded: number;
}

interface Candidate<V> {
  peer: WireContact;
  state: 'new' | 'pending' | 'ok' | 'failed';
  reply?: LookupReply<V>;
}

/**
 * Iterative Kademlia lookup: keeps `alpha` queries in flight to the closest not yet queried
 * nodes, and ends when the `k` closest nodes that did not fail have all answered. Queries still
 * in flight when it ends are aborted.
 */
export function iterativeLookup<V>(o: LookupOptions<V>): Promise<LookupResult<V>> {
  return new Promise((resolve, reject) => {
    const inner = new AbortController();
    const seen = new Set<string>();
    const list: Candidate<V>[] = [];
    const values: V[] = [];
    let inflight = 0;
    let rpcs = 0;
    let responded = 0;
    let finished = false;
    const localHex = Buffer.from(o.localId).toString('hex');

    const add = (peer: WireContact) => {
      const hex = Buffer.from(peer.id).toString('hex');
      if (hex === localHex || seen.has(hex)) return;
      seen.add(hex);
      let lo = 0;
      let hi = list.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (compareDistance((list[mid] as Candidate<V>).peer.id, peer.id, o.target) < 0) lo = mid + 1;
        else hi = mid;
      }
      list.splice(lo, 0, { peer, state: 'new' });
    };
    const finish = (err?: Error) => {
      if (finished) return;
      finished = true;
      off();
      inner.abort();
      if (err) return reject(err);
      const closest = list
        .filter((c) => c.state === 'ok')
        .slice(0, o.k)
        .map((c) => ({ peer: c.peer, token: c.reply?.token }));
      resolve({ closest, values, rpcs, responded });
    };
    const onAbort = () => finish(toAbortError(o.signal));
    let off = () => {};
    const pump = () => {
      if (finished) return;
      if (values.length > 0 && (o.stopWhenFound === true || (typeof o.stopWhenFound === 'function' && o.stopWhenFound(values))))
        return finish();
      let alive = 0;
      for (const c of list) {
        if (inflight >= o.alpha || alive >= o.k) break;
        if (c.state === 'failed') continue;
        alive++;
        if (c.state !== 'new') continue;
        c.state = 'pending';
        inflight++;
        rpcs++;
        o.onQuery?.(c.peer);
        o.query(c.peer, inner.signal)
          .then(
            (reply) => {
              c.state = 'ok';
              c.reply = reply;
              responded++;
              rpcs += reply.extraRpcs ?? 0;
              for (const p of reply.contacts) add(p);
              if (reply.values) values.push(...reply.values);
            },
            () => {
              c.state = 'failed';
            },
          )
          .finally(() => {
            inflight--;
            pump();
          });
      }
      if (inflight === 0) finish();
    };

    if (o.signal.aborted) return onAbort();
    off = subscribe(o.signal, onAbort);
    for (const p of o.start) add(p);
    pump();
  });
}
