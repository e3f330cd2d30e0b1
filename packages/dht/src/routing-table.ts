import KBucket from 'k-bucket';
import { type AddressPolicy, subnetKey } from './address.js';
import { CONTACT_FRESH_MS, MAX_CONTACTS_PER_SUBNET_PER_BUCKET } from './constants.js';
import { commonPrefixLength } from './distance.js';

/** A node in the routing table: only nodes that answered one of our requests get here. */
export interface Contact {
  id: Uint8Array;
  host: string;
  port: number;
  /** k-bucket's arbiter keeps the contact with the larger clock: a counter of sightings. */
  vectorClock: number;
  /** Subnet key for the diversity rule. */
  subnet: string;
  /** When it last answered us or sent us a request (ms, the table's clock). */
  seenAt: number;
}

interface Leaf {
  contacts: Contact[] | null;
  dontSplit: boolean;
  left: Leaf;
  right: Leaf;
}

/**
 * The bucket-diversity rule as a pure function: true when adding `candidate` to `bucket` would
 * put more than `max` contacts of one subnet in it (an existing contact of the same id is
 * an update and never counts).
 */
export function exceedsSubnetLimit(
  bucket: ReadonlyArray<{ id: Uint8Array; subnet: string }>,
  candidate: { id: Uint8Array; subnet: string },
  max = MAX_CONTACTS_PER_SUBNET_PER_BUCKET,
): boolean {
  let same = 0;
  for (const c of bucket) {
    if (Buffer.from(c.id).equals(candidate.id)) return false;
    if (c.subnet === candidate.subnet) same++;
  }
  return same >= max;
}

/**
 * The buckets a node refreshes (Kademlia: every bucket farther away than its closest neighbour),
 * as common-prefix lengths with `localId`, farthest first, capped at `maxBuckets`.
 */
export function bucketsToRefresh(
  localId: Uint8Array,
  contacts: ReadonlyArray<{ id: Uint8Array }>,
  opts: { maxBuckets?: number } = {},
): number[] {
  let closest = 0;
  for (const c of contacts) closest = Math.max(closest, commonPrefixLength(c.id, localId));
  const out: number[] = [];
  for (let cpl = 0; cpl < Math.min(closest, opts.maxBuckets ?? 16); cpl++) out.push(cpl);
  return out;
}

/**
 * The far buckets a joining node fills (`fillFarBuckets`): those below `far` (see `farBuckets`)
 * holding fewer than `want` contacts, given the contacts per bucket (`RoutingTable.bucketCounts`).
 */
export function farBucketsToFill(counts: readonly number[], far: number, want: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < far; i++) if ((counts[i] ?? 0) < want) out.push(i);
  return out;
}

/**
 * The number of far buckets: the common-prefix length of our k-th closest contact. Buckets below
 * it span more of the network than our neighbourhood (each holds about N / 2^(i+1) nodes, at
 * least k), which the self-lookup does not cover; the ones above are naturally sparse.
 */
export function farBuckets(localId: Uint8Array, contacts: ReadonlyArray<{ id: Uint8Array }>, k: number): number {
  const cpls = contacts.map((c) => commonPrefixLength(c.id, localId)).sort((a, b) => b - a);
  return cpls[Math.min(k, cpls.length) - 1] ?? 0;
}

/**
 * A decoded id is a view into the whole datagram it came in (a 700-byte FIND_NODE answer): a contact
 * keeps its own 16 bytes instead. Not from Buffer's shared pool either, where one long-lived id
 * would pin an 8 KiB slab.
 */
function ownCopy(id: Uint8Array): Buffer {
  const out = Buffer.alloc(id.length);
  out.set(id);
  return out;
}

export type AddResult = 'added' | 'updated' | 'subnet-limit' | 'bucket-full';

export interface RoutingTableOptions {
  localId: Uint8Array;
  k: number;
  policy: AddressPolicy;
  maxPerSubnet?: number;
  /**
   * Called when a bucket is full and some of its contacts are stale (not seen for `freshMs`): ping
   * `oldest` (the stale ones, oldest first, at most 3), remove the silent ones, then offer
   * `candidate` again. A full bucket of fresh contacts refuses the candidate without a PING.
   */
  onBucketFull: (oldest: Contact[], candidate: Contact) => void;
  /** A contact seen this recently counts as alive without a PING. Default 15 min (BEP 5's "good" node). */
  freshMs?: number;
  /** Clock (ms). Default `Date.now`. */
  now?: () => number;
}

/** The Kademlia routing table: `k-bucket` plus the /24 (/64) diversity rule per bucket. */
export class RoutingTable {
  readonly #kb: KBucket<Contact>;
  readonly #policy: AddressPolicy;
  readonly #maxPerSubnet: number;
  readonly #k: number;
  readonly #localId: Uint8Array;
  readonly #freshMs: number;
  readonly #now: () => number;
  #clock = 0;

  constructor(opts: RoutingTableOptions) {
    this.#kb = new KBucket<Contact>({ localNodeId: opts.localId, numberOfNodesPerKBucket: opts.k, numberOfNodesToPing: 3 });
    this.#policy = opts.policy;
    this.#maxPerSubnet = opts.maxPerSubnet ?? MAX_CONTACTS_PER_SUBNET_PER_BUCKET;
    this.#k = opts.k;
    this.#localId = opts.localId;
    this.#freshMs = opts.freshMs ?? CONTACT_FRESH_MS;
    this.#now = opts.now ?? Date.now;
    this.#kb.on('ping', (_first: Contact[], candidate: Contact) => {
      const last = this.#lastAdd;
      if (last && last.id === candidate.id) last.result = 'bucket-full';
      const stale = this.#stale(this.#leafOf(candidate.id).contacts ?? []);
      if (stale.length > 0) opts.onBucketFull(stale.slice(0, 3), candidate);
    });
  }

  /** The contacts of `bucket` not seen for `freshMs`, oldest first. */
  #stale(bucket: Contact[]): Contact[] {
    const since = this.#now() - this.#freshMs;
    return bucket.filter((c) => c.seenAt < since).sort((a, b) => a.seenAt - b.seenAt);
  }

  #lastAdd: { id: Uint8Array; result: AddResult } | undefined;

  get size(): number {
    return this.#kb.count();
  }

  /** Adds or refreshes a node that just answered us. */
  add(node: { id: Uint8Array; host: string; port: number }): AddResult {
    const candidate: Contact = {
      id: ownCopy(node.id),
      host: node.host,
      port: node.port,
      vectorClock: ++this.#clock,
      subnet: subnetKey(node.host, node.port, this.#policy),
      seenAt: this.#now(),
    };
    const existing = this.#kb.get(node.id);
    if (existing && (existing.host !== node.host || existing.port !== node.port)) {
      // Same id from another address: keep the one we know until it stops answering.
      return 'updated';
    }
    if (!existing && exceedsSubnetLimit(this.#leafOf(node.id).contacts ?? [], candidate, this.#maxPerSubnet)) return 'subnet-limit';
    this.#lastAdd = { id: candidate.id, result: existing ? 'updated' : 'added' };
    this.#kb.add(candidate);
    const result = this.#lastAdd.result;
    this.#lastAdd = undefined;
    return result;
  }

  /** A known contact sent us a request from its known address: it counts as seen now. */
  touch(id: Uint8Array, from: { host: string; port: number }): void {
    const c = this.#kb.get(id);
    if (c && c.host === from.host && c.port === from.port) c.seenAt = this.#now();
  }

  /**
   * Whether a node with this id could enter the table now: its bucket has room, may split (it
   * holds our own id), or holds a stale contact a PING may show dead. A node that sent us a
   * request is PINGed (to enter) only then.
   */
  hasRoomFor(id: Uint8Array): boolean {
    const leaf = this.#leafOf(id);
    const bucket = leaf.contacts ?? [];
    return bucket.length < this.#k || !leaf.dontSplit || this.#stale(bucket).length > 0;
  }

  /** Contacts per bucket: index = common-prefix length with our id. */
  bucketCounts(): number[] {
    const counts: number[] = [];
    for (const c of this.#kb.toArray()) {
      const cpl = commonPrefixLength(c.id, this.#localId);
      counts[cpl] = (counts[cpl] ?? 0) + 1;
    }
    return Array.from(counts, (x) => x ?? 0);
  }

  remove(id: Uint8Array): void {
    this.#kb.remove(id);
  }

  get(id: Uint8Array): Contact | null {
    return this.#kb.get(id);
  }

  closest(id: Uint8Array, n: number): Contact[] {
    return n > 0 ? this.#kb.closest(id, n) : [];
  }

  toArray(): Contact[] {
    return this.#kb.toArray();
  }

  /** The k-bucket leaf `id` falls in. */
  #leafOf(id: Uint8Array): Leaf {
    let node = this.#kb.root as unknown as Leaf;
    let bit = 0;
    while (node.contacts === null) {
      const byte = id[bit >> 3] ?? 0;
      node = byte & (0x80 >> (bit & 7)) ? node.right : node.left;
      bit++;
    }
    return node;
  }
}
