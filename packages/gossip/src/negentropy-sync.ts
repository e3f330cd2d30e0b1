import { Buffer } from 'node:buffer';
import { abortable, throwIfAborted, timeoutSignal } from '@dpc/core';
import { Negentropy, type NegentropyOptions } from './negentropy.js';
import { NegentropyRoundsError, NegentropyUsageError } from './negentropy-errors.js';
import type { NegentropyStorage } from './negentropy-storage.js';

/** Default bound on round trips of one sync (a sync without frame limit needs about log16(n) + 2). */
export const DEFAULT_NEGENTROPY_MAX_ROUNDS = 64;
/** Default deadline of a whole sync: 30 s. */
export const DEFAULT_NEGENTROPY_SYNC_TIMEOUT_MS = 30_000;

export interface NegentropySyncOptions extends NegentropyOptions {
  /**
   * Most round trips before giving up with `DPC_NEGENTROPY_ROUNDS` (default 64). A peer that
   * never lets the exchange end is stopped here; with a small `frameSizeLimit` (on either side)
   * a large difference legitimately needs about (differences × 32 bytes) / frameSizeLimit rounds.
   */
  maxRounds?: number;
  /** Deadline of the whole sync in ms (default 30 000); then `DPC_TIMEOUT`. */
  timeoutMs?: number;
  /** Aborts the sync (`DPC_ABORTED`, or the signal's typed reason). */
  signal?: AbortSignal;
}

export interface NegentropySyncResult {
  /** Ids only this side holds (each once). */
  have: Uint8Array[];
  /** Ids only the peer holds (each once). */
  need: Uint8Array[];
  /** Round trips made. */
  rounds: number;
  bytesSent: number;
  bytesReceived: number;
}

/** Sends one message to the responder and resolves with its reply. Should honour `signal`. */
export type NegentropyExchange = (msg: Uint8Array, signal: AbortSignal) => Promise<Uint8Array>;

/**
 * Runs the initiator side of a whole reconciliation over any request/response transport, with a
 * round limit, a deadline and an AbortSignal. The responder side is `new Negentropy(storage)
 * .respond(msg)` on each received message.
 */
export async function negentropySync(
  storage: NegentropyStorage,
  exchange: NegentropyExchange,
  options: NegentropySyncOptions = {},
): Promise<NegentropySyncResult> {
  const maxRounds = options.maxRounds ?? DEFAULT_NEGENTROPY_MAX_ROUNDS;
  const timeoutMs = options.timeoutMs ?? DEFAULT_NEGENTROPY_SYNC_TIMEOUT_MS;
  if (!Number.isSafeInteger(maxRounds) || maxRounds < 1)
    throw new NegentropyUsageError(`maxRounds must be a positive integer, got ${maxRounds}`);
  if (!(timeoutMs > 0)) throw new NegentropyUsageError(`timeoutMs must be positive, got ${timeoutMs}`);
  throwIfAborted(options.signal);
  const { signal, clear } = timeoutSignal(timeoutMs, 'negentropy sync', options.signal);
  try {
    const neg = new Negentropy(storage, options);
    const result: NegentropySyncResult = { have: [], need: [], rounds: 0, bytesSent: 0, bytesReceived: 0 };
    const seenHave = new Set<string>();
    const seenNeed = new Set<string>();
    const collect = (ids: Uint8Array[], seen: Set<string>, into: Uint8Array[]) => {
      for (const id of ids) {
        const key = Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('latin1');
        if (seen.has(key)) continue;
        seen.add(key);
        into.push(id);
      }
    };
    let msg: Uint8Array | null = neg.initiate();
    while (msg) {
      if (result.rounds >= maxRounds) throw new NegentropyRoundsError(`no agreement after ${maxRounds} round trips`);
      throwIfAborted(signal);
      result.bytesSent += msg.length;
      const reply: Uint8Array = await abortable(exchange(msg, signal), signal);
      result.rounds++;
      result.bytesReceived += reply.length;
      const r = neg.reconcile(reply);
      collect(r.have, seenHave, result.have);
      collect(r.need, seenNeed, result.need);
      msg = r.output;
    }
    return result;
  } finally {
    clear();
  }
}
