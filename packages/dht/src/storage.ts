import { isDpcError, kademliaIdOf, recordLiveUntil, type SignedRecord, verifyRecord } from '@dpc/core';
import { DEFAULT_MAX_OFFERS_PER_KEY, DEFAULT_MAX_RECORDS, DEFAULT_MAX_RECORDS_PER_HOST } from './constants.js';
import { relayIndexKeys } from './relay-index.js';

/** Why a STORE was refused (also the reject counter names). */
export type StoreRejection = 'bad_record' | 'wrong_key' | 'stale' | 'host_quota' | 'storage_full' | 'key_full';
export type StoreResult = { ok: true; replaced: boolean } | { ok: false; reason: StoreRejection; detail?: string };

export interface RecordStoreOptions {
  maxRecords?: number;
  maxRecordsPerHost?: number;
  maxOffersPerKey?: number;
  /** Largest encoded record accepted (core default 1000 bytes). */
  maxRecordBytes?: number;
  now?: () => number;
}

interface Entry {
  record: SignedRecord;
  host: string;
  /** Our clock: the record's lifetime counted from when we got it (see recordLiveUntil in core). */
  liveUntil: number;
}

/** True when a verified record may live under `key`: its subject's id, or its relay index keys. */
export function keyMatchesRecord(key: Uint8Array, record: SignedRecord): boolean {
  if (record.kind === 'endpoint') return kademliaIdOf(record.nodeId).equals(key);
  const region = (record as SignedRecord<'relay-offer'>).body.region;
  return relayIndexKeys(region).some((k) => k.equals(key));
}

/**
 * Signed records held by this node, bounded: records in total, records per source host, offers
 * per key, bytes per record. Only verified records are stored; a newer seq replaces an older
 * one; expired ones are never returned and are swept. Expiry is judged on our clock: a record
 * lives its signed lifetime from when it arrived, never past expiresAt plus the tolerated clock
 * skew (core's recordLiveUntil), so an issuer whose clock is behind is not refused.
 */
export class RecordStore {
  readonly #byKey = new Map<string, Map<string, Entry>>();
  readonly #perHost = new Map<string, number>();
  readonly #maxRecords: number;
  readonly #maxPerHost: number;
  readonly #maxPerKey: number;
  readonly #maxBytes: number | undefined;
  readonly #now: () => number;
  #count = 0;

  constructor(opts: RecordStoreOptions = {}) {
    this.#maxRecords = opts.maxRecords ?? DEFAULT_MAX_RECORDS;
    this.#maxPerHost = opts.maxRecordsPerHost ?? DEFAULT_MAX_RECORDS_PER_HOST;
    this.#maxPerKey = opts.maxOffersPerKey ?? DEFAULT_MAX_OFFERS_PER_KEY;
    this.#maxBytes = opts.maxRecordBytes;
    this.#now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.#count;
  }

  /** Verifies and stores `bytes` under `key` on behalf of `host` (see address.hostKey). */
  put(key: Uint8Array, bytes: Uint8Array, host: string): StoreResult {
    let record: SignedRecord;
    const now = this.#now();
    try {
      record = verifyRecord(bytes, { now, ...(this.#maxBytes === undefined ? {} : { maxBytes: this.#maxBytes }) });
    } catch (err) {
      return { ok: false, reason: 'bad_record', detail: isDpcError(err) ? err.code : String(err) };
    }
    if (!keyMatchesRecord(key, record)) return { ok: false, reason: 'wrong_key' };
    const k = Buffer.from(key).toString('hex');
    let slot = this.#byKey.get(k);
    const old = slot?.get(record.nodeId);
    if (old) {
      if (record.seq < old.record.seq || (record.seq === old.record.seq && !record.encoded.equals(old.record.encoded))) {
        return { ok: false, reason: 'stale' };
      }
      if (record.seq === old.record.seq) return { ok: true, replaced: false };
    }
    const liveUntil = recordLiveUntil(record, now);
    if (!old && (this.#perHost.get(host) ?? 0) >= this.#maxPerHost) return { ok: false, reason: 'host_quota' };
    if (!old && this.#count >= this.#maxRecords) {
      this.sweep();
      if (this.#count >= this.#maxRecords) return { ok: false, reason: 'storage_full' };
    }
    if (!slot) {
      slot = new Map();
      this.#byKey.set(k, slot);
    }
    if (!old && slot.size >= this.#maxPerKey) {
      // Make room by dropping the offer that expires first, if the new one outlives it.
      let victim: [string, Entry] | undefined;
      for (const e of slot) if (!victim || e[1].liveUntil < victim[1].liveUntil) victim = e;
      if (!victim || victim[1].liveUntil >= liveUntil) return { ok: false, reason: 'key_full' };
      this.#delete(k, slot, victim[0], victim[1]);
    }
    if (old) this.#delete(k, slot, record.nodeId, old);
    slot.set(record.nodeId, { record, host, liveUntil });
    this.#perHost.set(host, (this.#perHost.get(host) ?? 0) + 1);
    this.#count++;
    if (slot.size > 0 && !this.#byKey.has(k)) this.#byKey.set(k, slot);
    return { ok: true, replaced: old !== undefined };
  }

  /** Unexpired records under `key`, newest first. */
  get(key: Uint8Array): SignedRecord[] {
    const slot = this.#byKey.get(Buffer.from(key).toString('hex'));
    if (!slot) return [];
    const now = this.#now();
    const out: SignedRecord[] = [];
    for (const e of slot.values()) if (e.liveUntil > now) out.push(e.record);
    return out.sort((a, b) => b.issuedAt - a.issuedAt);
  }

  /** Drops expired records; returns how many. */
  sweep(): number {
    const now = this.#now();
    let n = 0;
    for (const [k, slot] of this.#byKey) {
      for (const [id, e] of slot) {
        if (e.liveUntil <= now) {
          this.#delete(k, slot, id, e);
          n++;
        }
      }
    }
    return n;
  }

  #delete(key: string, slot: Map<string, Entry>, id: string, e: Entry): void {
    slot.delete(id);
    this.#count--;
    const h = (this.#perHost.get(e.host) ?? 1) - 1;
    if (h <= 0) this.#perHost.delete(e.host);
    else this.#perHost.set(e.host, h);
    if (slot.size === 0) this.#byKey.delete(key);
  }
}
