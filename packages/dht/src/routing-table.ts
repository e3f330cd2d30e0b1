import KBucket from 'k-bucket';
import { type AddressPolicy, subnetKey } from './address.js';
import { MAX_CONTACTS_PER_SUBNET_PER_BUCKET } from './constants.js';
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
}

interface Leaf {
  contacts: Contact[] | null;
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
 * as common-prefix lengths with `localId`, farthest first, capped at `maxBuckets`. With
 * `onlySparse`, full buckets (k contacts) are skipped: after joining, only the buckets the
 * self-lookup left short of contacts need a lookup of their own.
 */
export function bucketsToRefresh(
  localId: Uint8Array,
  contacts: ReadonlyArray<{ id: Uint8Array }>,
  k: number,
  opts: { onlySparse?: boolean; maxBuckets?: number } = {},
): number[] {
  const counts: number[] = [];
  let closest = 0;
  for (const c of contacts) {
    const cpl = commonPrefixLength(c.id, localId);
    counts[cpl] = (counts[cpl] ?? 0) + 1;
    closest = Math.max(closest, cpl);
  }
  const out: number[] = [];
  for (let cpl = 0; cpl < Math.min(closest, opts.maxBuckets ?? 16); cpl++) {
    if (!opts.onlySparse || (counts[cpl] ?? 0) < k) out.push(cpl);
  }
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

export type AddResult = 'added' | 'updated' | 'subnet-limit' | 'bucket-full';

export interface RoutingTableOptions {
  localId: Uint8Array;
  k: number;
  policy: AddressPolicy;
  maxPerSubnet?: number;
  /** Called when a bucket is full: ping `oldest`, remove the silent ones, then offer `candidate` again. */
  onBucketFull: (oldest: Contact[], candidate: Contact) => void;
}

/** The Kademlia routing table: `k-bucket` plus the /24 (/64) diversity rule per bucket. */
export class RoutingTable {
  readonly #kb: KBucket<Contact>;
  readonly #policy: AddressPolicy;
  readonly #maxPerSubnet: number;
  #clock = 0;

  constructor(opts: RoutingTableOptions) {
    this.#kb = new KBucket<Contact>({ localNodeId: opts.localId, numberOfNodesPerKBucket: opts.k, numberOfNodesToPing: 3 });
    this.#policy = opts.policy;
    this.#maxPerSubnet = opts.maxPerSubnet ?? MAX_CONTACTS_PER_SUBNET_PER_BUCKET;
    this.#kb.on('ping', (oldest: Contact[], candidate: Contact) => {
      const last = this.#lastAdd;
      if (last && last.id === candidate.id) last.result = 'bucket-full';
      opts.onBucketFull(oldest, candidate);
    });
  }

  #lastAdd: { id: Uint8Array; result: AddResult } | undefined;

  get size(): number {
    return this.#kb.count();
  }

  /** Adds or refreshes a node that just answered us. */
  add(node: { id: Uint8Array; host: string; port: number }): AddResult {
    const candidate: Contact = {
      id: node.id,
      host: node.host,
      port: node.port,
      vectorClock: ++this.#clock,
      subnet: subnetKey(node.host, node.port, this.#policy),
    };
    const existing = this.#kb.get(node.id);
    if (existing && (existing.host !== node.host || existing.port !== node.port)) {
      // Same id from another address: keep the one we know until it stops answering.
      return 'updated';
    }
    if (!existing && exceedsSubnetLimit(this.#leafOf(node.id), candidate, this.#maxPerSubnet)) return 'subnet-limit';
    this.#lastAdd = { id: candidate.id, result: existing ? 'updated' : 'added' };
    this.#kb.add(candidate);
    const result = this.#lastAdd.result;
    this.#lastAdd = undefined;
    return result;
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

  /** The contacts of the bucket `id` falls in. */
  #leafOf(id: Uint8Array): Contact[] {
    let node = this.#kb.root as unknown as Leaf;
    let bit = 0;
    while (node.contacts === null) {
      const byte = id[bit >> 3] ?? 0;
      node = byte & (0x80 >> (bit & 7)) ? node.right : node.left;
      bit++;
    }
    return node.contacts;
  }
}
