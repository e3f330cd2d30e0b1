import type { EventEmitter } from 'node:events';

/**
 * One item handed to a deferred path: a PeerSession frame with a stable id (`<epoch>:<seq>`),
 * so a receipt names exactly the items it confirms.
 */
export interface DeferredItem {
  id: string;
  body: unknown;
}

/** Who a deferred item is for: its node id and raw 32-byte Ed25519 key (to seal to). */
export interface DeferredRecipient {
  nodeId: string;
  publicKey: Buffer;
}

/**
 * A path that is not a live pipe (tier 6, store-and-forward): it cannot return a Connection to
 * a peer that is offline, so it is not a `Strategy`. It durably accepts items for a recipient
 * and later reports items that arrived from others and receipts for items that arrived.
 *
 * The receiving PeerSession calls `receipt()` once it has durably taken an item; the sender's
 * session resolves exactly the items a `receipt` event names (selective acknowledgement).
 */
export interface DeferredDelivery extends EventEmitter {
  readonly tier: 'gossip';
  /** Resolves once the item is durably accepted for delivery (not when it is delivered). */
  submit(recipient: DeferredRecipient, item: DeferredItem, opts?: { signal?: AbortSignal }): Promise<void>;
  /** Confirms to `recipient` (the original sender) that these items were taken. */
  receipt(recipient: DeferredRecipient, ids: readonly string[], opts?: { signal?: AbortSignal }): Promise<void>;
  on(event: 'message', listener: (e: { from: string; publicKey: Buffer; item: DeferredItem }) => void): this;
  on(event: 'receipt', listener: (e: { from: string; ids: string[] }) => void): this;
}
