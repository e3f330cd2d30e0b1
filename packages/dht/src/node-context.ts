import type { Counters, Identity } from '@dpc/core';
import type { AddressPolicy } from './address.js';
import type { RequestBody } from './messages.js';
import type { RoutingTable } from './routing-table.js';
import type { Peer, Reply, RequestOptions, Rpc } from './rpc.js';
import type { Registrations } from './signalling.js';
import type { RecordStore } from './storage.js';
import type { DhtOptions, DhtProgressEvent, SignalEvent } from './types.js';

/** What the parts of a DHT node (queries, announcer, request handler, contact upkeep) share. */
export interface NodeContext {
  readonly o: DhtOptions;
  readonly identity: Identity;
  readonly nodeId: string;
  readonly kademliaId: Buffer;
  readonly k: number;
  readonly alpha: number;
  readonly counters: Counters;
  readonly policy: AddressPolicy;
  readonly store: RecordStore;
  readonly table: RoutingTable;
  readonly rpc: Rpc;
  readonly registrations: Registrations;
  /** Aborted by `stop()`. */
  readonly shutdown: AbortSignal;
  running(): boolean;
  /** A request whose answer puts the responder in the routing table. */
  request(to: Peer, body: RequestBody, opts: RequestOptions): Promise<Reply>;
  /** Runs `fn` with the caller's signal, `stop()` and the default deadline combined. */
  withTimeout<T>(opts: { signal?: AbortSignal }, what: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T>;
  progress(e: DhtProgressEvent): void;
  hasProgressListeners(): boolean;
  emitSignal(e: SignalEvent): void;
  warn(err: Error): void;
}
