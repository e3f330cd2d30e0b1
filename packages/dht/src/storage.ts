import { isDpcError, kademliaIdOf, type RecordKind, recordLiveUntil, type SignedRecord, verifyRecord } from '@dpc/core';
import {
  DEFAULT_MAX_OFFERS_PER_KEY,
  DEFAULT_MAX_RECORD_TTL_MS,
  DEFAULT_MAX_RECORDS,
  DEFAULT_MAX_RECORDS_PER_HOST,
  DEFAULT_MAX_RECORDS_PER_KEY_PER_SOURCE,
} from './constants.js';
import { relayIndexKeys } from './relay-index.js';

/** Why a STORE was refused (also the reject counter names). */
export type StoreRejection = 'bad_record' | 'wrong_key' | 'stale' | 'host_quota' | 'source_key_quota' | 'storage_full' | 'key_full';
export type StoreResult =
  | {
      ok: true;
      replaced: boolean;
      /** The record's own expiry was later than the cap of its kind: it is kept until the cap only. */
      capped?: boolean;
      /** A record of the most represented source was evicted to make room (a full key or a full store). */
      evicted?: 'key' | 'storage';
    }
  | { ok: false; reason: StoreRejection; detail?: string };

export interface RecordStoreOptions {
  /** Records held in total. Default 10 000. */
  maxRecords?: number;
  /** Records held for one source (its /24 or /64, see address.subnetKey). Default 256. */
  maxRecordsPerHost?: number;
  /** Records (relay offers) under one key. Default 64. */
  maxOffersPerKey?: number;
  /** Records under one key from one source. Default 4. */
  maxRecordsPerKeyPerSource?: number;
  /** Longest a record is kept after it is stored, per kind, whatever expiry it claims. Default 70 min each. */
  maxTtlMs?: Partial<Record<RecordKind, number>>;
  /** Largest encoded record accepted (core default 1000 bytes). */
  maxRecordBytes?: number;
  now?: () => number;
}

interface Entry {
  key: string;
  record: SignedRecord;
  source: string;
  /** Our clock: the record's lifetime from when it arrived (core's recordLiveUntil), capped per kind. */
  expiresAt: number;
  /** When this publisher's record first arrived under this key (kept across newer seqs). */
  since: number;
}

/** True when a verified record may live under `key`: its subject's id, or its relay index keys. */
export function keyMatchesRecord(key: Uint8Array, record: SignedRecord): boolean {
  if (record.kind === 'endpoint') return kademliaIdOf(record.nodeId).equals(key);
  const region = (record as SignedRecord<'relay-offer'>).body.region;
  return relayIndexKeys(region).some((k) => k.equals(key));
}

/**
 * The entry to evict for a newcomer from `source`: the oldest of the most represented source,
 * when that source holds at least 2 more than the newcomer's (so an eviction never makes the
 * shares less even). Incumbents with a fair share are never pushed out; expiry plays no part.
 */
function fairVictim(groups: Map<string, Entry[] | Set<Entry>>, source: string): Entry | undefined {
  const sizeOf = (g: Entry[] | Set<Entry>) => (Array.isArray(g) ? g.length : g.size);
  let heaviest: Entry[] | Set<Entry> | undefined;
  for (const g of groups.values()) if (!heaviest || sizeOf(g) > sizeOf(heaviest)) heaviest = g;
  const mine = groups.get(source);
  if (!heaviest || sizeOf(heaviest) <= (mine ? sizeOf(mine) : 0) + 1) return undefined;
  let oldest: Entry | undefined;
  for (const e of heaviest) if (!oldest || e.since < oldest.since) oldest = e;
  return oldest;
}

/**
 * Signed records held by this node, bounded against squatting: records in total, per source
 * (/24 or /64), per key, per source per key, one per publisher per key, bytes per record, and a
 * cap on how long any record is kept (its claimed expiry is not trusted beyond the cap of its
 * kind). A full key or store evicts fairly from the most represented source, never by expiry.
 * Only verified records are stored; a newer seq replaces an older one; expired ones are swept.
 */
export class RecordStore {
  readonly #byKey = new Map<string, Map<string, Entry>>();
  /** Entries per source, oldest stored first. */
  readonly #bySource = new Map<string, Set<Entry>>();
  readonly #maxRecords: number;
  readonly #maxPerSource: number;
  readonly #maxPerKey: number;
  readonly #maxPerKeyPerSource: number;
  readonly #maxTtl: Record<RecordKind, number>;
  readonly #maxBytes: number | undefined;
  readonly #now: () => number;
  #count = 0;

  constructor(opts: RecordStoreOptions = {}) {
    this.#maxRecords = opts.maxRecords ?? DEFAULT_MAX_RECORDS;
    this.#maxPerSource = opts.maxRecordsPerHost ?? DEFAULT_MAX_RECORDS_PER_HOST;
    this.#maxPerKey = opts.maxOffersPerKey ?? DEFAULT_MAX_OFFERS_PER_KEY;
    this.#maxPerKeyPerSource = opts.maxRecordsPerKeyPerSource ?? DEFAULT_MAX_RECORDS_PER_KEY_PER_SOURCE;
    this.#maxTtl = {
      endpoint: opts.maxTtlMs?.endpoint ?? DEFAULT_MAX_RECORD_TTL_MS,
      'relay-offer': opts.maxTtlMs?.['relay-offer'] ?? DEFAULT_MAX_RECORD_TTL_MS,
    };
    this.#maxBytes = opts.maxRecordBytes;
    this.#now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.#count;
  }

  /** Verifies and stores `bytes` under `key` on behalf of `source` (address.subnetKey of the sender). */
  put(key: Uint8Array, bytes: Uint8Array, source: string): StoreResult {
    const now = this.#now();
    let record: SignedRecord;
    try {
      record = verifyRecord(bytes, { now, ...(this.#maxBytes === undefined ? {} : { maxBytes: this.#maxBytes }) });
    } catch (err) {
      return { ok: false, reason: 'bad_record', detail: isDpcError(err) ? err.code : String(err) };
    }
    if (!keyMatchesRecord(key, record)) return { ok: false, reason: 'wrong_key' };
    const k = Buffer.from(key).toString('hex');
    const old = this.#byKey.get(k)?.get(record.nodeId);
    if (old) {
      if (record.seq < old.record.seq || (record.seq === old.record.seq && !record.encoded.equals(old.record.encoded))) {
        return { ok: false, reason: 'stale' };
      }
      if (record.seq === old.record.seq) return { ok: true, replaced: false };
    }
    let evicted: 'key' | 'storage' | undefined;
    if (!old) {
      if ((this.#bySource.get(source)?.size ?? 0) >= this.#maxPerSource) return { ok: false, reason: 'host_quota' };
      if (this.#count >= this.#maxRecords) this.sweep();
      const slot = this.#byKey.get(k);
      const inSlot = slot ? groupBySource(slot.values()) : new Map<string, Entry[]>();
      if ((inSlot.get(source)?.length ?? 0) >= this.#maxPerKeyPerSource) return { ok: false, reason: 'source_key_quota' };
      let victim: Entry | undefined;
      if (slot && slot.size >= this.#maxPerKey) {
        victim = fairVictim(inSlot, source);
        if (!victim) return { ok: false, reason: 'key_full' };
        evicted = 'key';
      } else if (this.#count >= this.#maxRecords) {
        victim = fairVictim(this.#bySource, source);
        if (!victim) return { ok: false, reason: 'storage_full' };
        evicted = 'storage';
      }
      if (victim) this.#delete(victim);
    }
    const cap = now + this.#maxTtl[record.kind];
    const entry: Entry = { key: k, record, source, expiresAt: Math.min(recordLiveUntil(record, now), cap), since: old?.since ?? now };
    if (old) this.#delete(old);
    let slot = this.#byKey.get(k);
    if (!slot) {
      slot = new Map();
      this.#byKey.set(k, slot);
    }
    slot.set(record.nodeId, entry);
    let set = this.#bySource.get(source);
    if (!set) {
      set = new Set();
      this.#bySource.set(source, set);
    }
    set.add(entry);
    this.#count++;
    return {
      ok: true,
      replaced: old !== undefined,
      ...(record.expiresAt > cap ? { capped: true } : {}),
      ...(evicted ? { evicted } : {}),
    };
  }

  /**
   * Unexpired records under `key` in a fair order: one record of each source in turn (sources by
   * how long they have held records here, each source's newest first), so no source can push the
   * others' records to later pages of a FIND_VALUE answer.
   */
  get(key: Uint8Array): SignedRecord[] {
    const slot = this.#byKey.get(Buffer.from(key).toString('hex'));
    if (!slot) return [];
    const now = this.#now();
    const groups = [...groupBySource([...slot.values()].filter((e) => e.expiresAt > now)).values()]
      .map((list) => list.sort((a, b) => b.record.issuedAt - a.record.issuedAt))
      .sort((a, b) => Math.min(...a.map((e) => e.since)) - Math.min(...b.map((e) => e.since)));
    const out: SignedRecord[] = [];
    for (let round = 0; out.length < slot.size; round++) {
      let any = false;
      for (const g of groups) {
        const e = g[round];
        if (e) {
          out.push(e.record);
          any = true;
        }
      }
      if (!any) break;
    }
    return out;
  }

  /** Records held for `source` (tests, stats). */
  countFrom(source: string): number {
    return this.#bySource.get(source)?.size ?? 0;
  }

  /** Drops expired records (by their capped expiry); returns how many. */
  sweep(): number {
    const now = this.#now();
    let n = 0;
    for (const slot of this.#byKey.values()) {
      for (const e of slot.values()) {
        if (e.expiresAt <= now) {
          this.#delete(e);
          n++;
        }
      }
    }
    return n;
  }

  #delete(e: Entry): void {
    const slot = this.#byKey.get(e.key);
    if (slot?.get(e.record.nodeId) !== e) return;
    slot.delete(e.record.nodeId);
    if (slot.size === 0) this.#byKey.delete(e.key);
    const set = this.#bySource.get(e.source);
    set?.delete(e);
    if (set?.size === 0) this.#bySource.delete(e.source);
    this.#count--;
  }
}

function groupBySource(entries: Iterable<Entry>): Map<string, Entry[]> {
  const out = new Map<string, Entry[]>();
  for (const e of entries) {
    const list = out.get(e.source);
    if (list) list.push(e);
    else out.set(e.source, [e]);
  }
  return out;
}
