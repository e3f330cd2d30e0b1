/**
 * @dpc/gossip — tier 6: sealed, signed, durable store-and-forward with receipts. A message for a
 * peer that is offline is sealed to its key, signed by the sender, stored by every node on the
 * way (before it is acknowledged to the previous hop) and handed on epidemically until the
 * destination takes it; the destination's signed receipt comes back the same way, marks the
 * message delivered at the sender and lets forwarders drop their copies.
 *
 * @example
 * ```ts
 * import { generateIdentity, memoryKvStore } from '@dpc/core';
 * import { createGossip, type GossipLink, type LinkFrame } from '@dpc/gossip';
 *
 * const [alice, bob] = [generateIdentity(), generateIdentity()];
 * const a = await createGossip({ identity: alice, store: memoryKvStore() });
 * const b = await createGossip({ identity: bob, store: memoryKvStore() });
 * // two in-process links (dpc-node uses TLS links: startGossipLinks)
 * const aToB: GossipLink = { nodeId: bob.nodeId, send: async (f: LinkFrame) => void setImmediate(() => b.onFrame(bToA, f)) };
 * const bToA: GossipLink = { nodeId: alice.nodeId, send: async (f: LinkFrame) => void setImmediate(() => a.onFrame(aToB, f)) };
 * a.addLink(aToB);
 * b.addLink(bToA);
 * b.on('message', ({ from, publicKey, item }) => void b.receipt({ nodeId: from, publicKey }, [item.id]));
 * a.on('receipt', ({ from, ids }) => console.log('delivered to', from, ids));
 * await a.submit({ nodeId: bob.nodeId, publicKey: bob.publicKey }, { id: 'e1:1', body: { text: 'hi bob' } });
 * ```
 */
export { dialProblem } from './address.js';
export { DEFAULT_MAX_MESSAGE_BYTES, MAX_ALREADY_FORWARDED, MAX_HOPS_LIMIT, MAX_TTL_SECONDS } from './constants.js';
export * from './errors.js';
export { chooseForwardPeers, type ForwardCandidate, xorDistanceCompare } from './forward-choice.js';
export { createGossip, type Gossip, type GossipLink, type GossipOptions } from './gossip.js';
export { type GossipLinks, type GossipLinksOptions, parseHostPort, remoteAddressKey, startGossipLinks } from './links.js';
export {
  type CreateMessageOptions,
  createMessage,
  expiresAt,
  forwardedCopy,
  type GossipKind,
  type GossipMessage,
  type GossipPriority,
  type LinkFrame,
  linkFrameSchema,
  payloadAad,
  type VerifyMessageOptions,
  verifyMessage,
} from './messages.js';
export * from './negentropy.js';
export { gossipTier, tierPlugin } from './plugin.js';
export { open, SEAL_OVERHEAD_BYTES, seal, x25519PublicOf, x25519SecretOf } from './seal.js';
export { SeenSet } from './seen-set.js';
export { GossipStore, type GossipStoreOptions, type StoredEntry } from './store.js';
