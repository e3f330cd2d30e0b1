import { createHash } from 'node:crypto';
import { Negentropy, type NegentropyItem, type NegentropyOptions, NegentropyStorage } from '@dpc/gossip';

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
export const hexSet = (ids: Iterable<Uint8Array>): string[] => [...ids].map(hex).sort();

/** Deterministic 32-byte id from a number (distinct numbers give distinct ids). */
export function idOf(n: number): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`id-${n}`).digest());
}

export interface SyncOutcome {
  have: Uint8Array[];
  need: Uint8Array[];
  /** Round trips: initiator message + responder reply. */
  rounds: number;
  bytesSent: number;
  bytesReceived: number;
  /** Size of every message, both directions, in order. */
  sizes: number[];
}

/** Runs a whole reconciliation between two in-memory sides, failing after `maxRounds`. */
export function syncLocal(
  a: NegentropyStorage,
  b: NegentropyStorage,
  opts: { initiator?: NegentropyOptions; responder?: NegentropyOptions; maxRounds?: number } = {},
): SyncOutcome {
  const ini = new Negentropy(a, opts.initiator);
  const resp = new Negentropy(b, opts.responder);
  const out: SyncOutcome = { have: [], need: [], rounds: 0, bytesSent: 0, bytesReceived: 0, sizes: [] };
  let msg: Uint8Array | null = ini.initiate();
  const maxRounds = opts.maxRounds ?? 1000;
  while (msg) {
    if (out.rounds >= maxRounds) throw new Error(`no convergence after ${maxRounds} rounds`);
    out.bytesSent += msg.length;
    out.sizes.push(msg.length);
    const reply = resp.respond(msg);
    out.bytesReceived += reply.length;
    out.sizes.push(reply.length);
    out.rounds++;
    const r = ini.reconcile(reply);
    out.have.push(...r.have);
    out.need.push(...r.need);
    msg = r.output;
  }
  return out;
}

/** Two sets with the given shared and side-only items. */
export function sides(shared: NegentropyItem[], onlyA: NegentropyItem[], onlyB: NegentropyItem[]) {
  return {
    a: NegentropyStorage.from([...shared, ...onlyA]),
    b: NegentropyStorage.from([...shared, ...onlyB]),
  };
}
