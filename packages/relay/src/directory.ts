import type { RelayOfferBody, SignedRecord } from '@dpc/core';

/**
 * Where relay offers live: the DHT (`@dpc/dht` satisfies this structurally). `findRelays`
 * returns offers already verified (signature, expiry, kind 'relay-offer').
 */
export interface RelayDirectory {
  findRelays(opts: { region?: string; signal?: AbortSignal }): Promise<SignedRecord<'relay-offer'>[]>;
  announceRelay(body: RelayOfferBody, opts?: { signal?: AbortSignal }): Promise<unknown>;
}

/** Optional: the DHT's SIGNAL, to tell a node without a reservation that a peer waits at a relay. */
export interface Signaller {
  signal(nodeId: string, payload: Uint8Array | Record<string, unknown>, opts?: { signal?: AbortSignal }): Promise<void>;
  on(event: 'signal', fn: (e: { from: string; payload: unknown }) => void): unknown;
  off?(event: 'signal', fn: (e: { from: string; payload: unknown }) => void): unknown;
}

/** A relay as listed in an endpoint record (`relays`) or taken from an offer. */
export interface RelayRef {
  node_id: string;
  ip: string;
  port: number;
}
