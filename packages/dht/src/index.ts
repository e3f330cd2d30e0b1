/**
 * @dpc/dht — a Kademlia DHT over one UDP socket that stores and serves only signed records (peer
 * endpoint records and relay offers from @dpc/core), echoes reflexive addresses, and forwards
 * signed signals to nodes behind NAT through the DHT nodes that keep their mappings open.
 *
 * @example
 * ```ts
 * import { generateIdentity } from '@dpc/core';
 * import { createDht } from '@dpc/dht';
 *
 * const seed = createDht({ identity: generateIdentity(), host: '127.0.0.1', port: 0, allowLoopback: true });
 * await seed.start();
 * const alice = createDht({ identity: generateIdentity(), host: '127.0.0.1', port: 0, allowLoopback: true, seeds: [seed.address!] });
 * const bob = createDht({ identity: generateIdentity(), host: '127.0.0.1', port: 0, allowLoopback: true, seeds: [seed.address!] });
 * await alice.start();
 * await bob.start();
 * bob.on('signal', ({ from, payload }) => console.log(`${from} says`, payload));
 * await bob.announceFull();
 * const record = await alice.findPeer(bob.nodeId); // verified SignedRecord<'endpoint'>
 * await alice.signal(bob.nodeId, { hello: 'bob' });
 * await Promise.all([alice.stop(), bob.stop(), seed.stop()]);
 * ```
 */

import { createDht as create } from './dht.js';
import type { Dht, DhtOptions } from './types.js';

export { hostKey, isLoopback, isPrivate, normalizeIp, subnetKey } from './address.js';
export { dhtOptionsFromConfig, parseSeed } from './config.js';
export * as constants from './constants.js';
export { commonPrefixLength, compareDistance, xorDistance } from './distance.js';
export { type EndpointSample, majorityVote, type VoteResult } from './endpoint-vote.js';
export {
  AddressFamilyError,
  BootstrapError,
  DatagramTooLargeError,
  DhtNotRunningError,
  EndpointDiscoveryError,
  PeerNotFoundError,
  ProtocolPrefixError,
  RpcRemoteError,
  RpcTimeoutError,
  SignalDeliveryError,
} from './errors.js';
export { RateLimiter, type RateLimiterOptions } from './rate-limit.js';
export { relayIndexKey, relayIndexKeys } from './relay-index.js';
export { exceedsSubnetLimit } from './routing-table.js';
export { RecordStore, type RecordStoreOptions, type StoreRejection, type StoreResult } from './storage.js';
export type {
  AnnounceResult,
  Dht,
  DhtEvents,
  DhtOptions,
  DhtPeer,
  DhtProgressEvent,
  DhtStats,
  DiscoveredEndpoint,
  FindPeerOptions,
  OpOptions,
  RelayOfferInput,
  SignalEvent,
  SignalOptions,
  UdpProtocol,
  UdpProtocolOptions,
} from './types.js';
export { isDhtFirstByte } from './udp-mux.js';

/** Creates a DHT node; call `start()` to bind and bootstrap. */
export function createDht(options: DhtOptions): Dht {
  return create(options);
}
