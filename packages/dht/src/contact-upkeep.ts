import type { Counters } from '@dpc/core';
import * as C from './constants.js';
import type { RequestBody } from './messages.js';
import type { Contact, RoutingTable } from './routing-table.js';
import type { Peer, Reply, RequestOptions, Rpc } from './rpc.js';

export interface ContactUpkeepOptions {
  table: RoutingTable;
  rpc: Rpc;
  k: number;
  shutdown: AbortSignal;
  running: () => boolean;
  counters: Counters;
}

/**
 * Keeps the routing table honest: responders enter it, contacts leave it after timeouts in a row,
 * requesters enter it only after answering our PING, and a full bucket pings its oldest contacts
 * before a newcomer may replace a silent one.
 */
export class ContactUpkeep {
  readonly #o: ContactUpkeepOptions;
  readonly #verifying = new Set<string>();
  readonly #failures = new Map<string, number>();
  #evictions = 0;

  constructor(o: ContactUpkeepOptions) {
    this.#o = o;
  }

  /** A request whose answer puts the responder in the routing table. */
  async request(to: Peer, body: RequestBody, opts: RequestOptions): Promise<Reply> {
    const { table, rpc, k } = this.#o;
    const where = `${to.host}|${to.port}`;
    try {
      const r = await rpc.request(to, body, opts);
      this.#failures.delete(where);
      table.add({ id: r.msg.id, ...r.from });
      return r;
    } catch (err) {
      // A contact leaves the table after MAX_FAILURES timeouts in a row, not at the first one.
      if ((err as { code?: string }).code === 'DPC_DHT_RPC_TIMEOUT') {
        const n = (this.#failures.get(where) ?? 0) + 1;
        this.#failures.set(where, n);
        if (n >= C.MAX_CONTACT_FAILURES) {
          this.#failures.delete(where);
          const gone = table.toArray().find((c) => c.host === to.host && c.port === to.port);
          if (gone) table.remove(gone.id);
        }
        if (this.#failures.size > 4 * k * 128) this.#failures.clear();
      }
      throw err;
    }
  }

  /**
   * A node that sent us a request enters the table only after it answers our PING, and is PINGed
   * only if it could enter (its bucket has room or a stale contact). A known one counts as seen.
   */
  learn(id: Uint8Array, from: Peer): void {
    const { table, rpc, shutdown } = this.#o;
    if (table.get(id)) {
      table.touch(id, from);
      return;
    }
    // Our own request to it is out: its answer (usually a moment behind this request) admits it.
    if (rpc.awaiting(from)) return;
    if (this.#verifying.size >= C.MAX_PENDING_VERIFICATIONS || !this.#o.running()) return;
    if (!table.hasRoomFor(id)) {
      this.#o.counters.inc('contacts.learn_no_room');
      return;
    }
    const key = `${from.host}|${from.port}`;
    if (this.#verifying.has(key)) return;
    this.#verifying.add(key);
    rpc
      .request(from, { t: 'ping' }, { signal: shutdown, retries: 0 })
      .then((r) => {
        if (Buffer.from(r.msg.id).equals(id)) table.add({ id: r.msg.id, ...r.from });
      })
      .catch(() => undefined)
      .finally(() => this.#verifying.delete(key));
  }

  /** The routing table's `onBucketFull`: silent ones among `oldest` leave, then `candidate` may enter. */
  evict(oldest: Contact[], candidate: Contact): void {
    const { table, rpc, shutdown } = this.#o;
    if (this.#evictions >= 8 || !this.#o.running()) return;
    this.#evictions++;
    void Promise.all(
      oldest.map((c) =>
        rpc.request(c, { t: 'ping' }, { signal: shutdown, retries: 0 }).then(
          () => false,
          () => {
            table.remove(c.id);
            return true;
          },
        ),
      ),
    )
      .then((gone) => gone.some(Boolean) && table.add(candidate))
      .finally(() => this.#evictions--);
  }
}
