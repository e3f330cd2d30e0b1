/**
 * @dpc/core — what every dpc tier shares: the node identity, signed records, the frame codec,
 * the TLS 1.3 secure channel over any Duplex, the Connection and Strategy interfaces, typed
 * errors and the INI config.
 *
 * @example
 * ```ts
 * import { createServer, connect } from 'node:net';
 * import { generateIdentity, secureAccept, secureConnect } from '@dpc/core';
 *
 * const alice = generateIdentity();
 * const bob = generateIdentity();
 * const server = createServer(async (socket) => {
 *   const conn = await secureAccept(socket, { identity: bob, tier: 'ipv4_direct' });
 *   conn.on('message', (m) => console.log(`${conn.remoteNodeId} says`, m));
 * }).listen(0, '127.0.0.1');
 * await new Promise((r) => server.once('listening', r));
 * const { port } = server.address() as { port: number };
 * const socket = connect(port, '127.0.0.1');
 * const conn = await secureConnect(socket, { identity: alice, tier: 'ipv4_direct', expectedNodeId: bob.nodeId });
 * await conn.send({ text: 'hello' });
 * ```
 */

export { remoteAddressProblem } from './address-policy.js';
export {
  checkMessagePack,
  DEFAULT_DECODE_MAX_DEPTH,
  DEFAULT_DECODE_MAX_ELEMENTS,
  type DecodeLimits,
  decode,
  decodeUntrusted,
} from './bounded-decode.js';
export { createSelfSignedCertificate } from './certificate.js';
export { canonicalize, encode, encodeCanonical } from './codec.js';
export {
  CONFIG_SCHEMA,
  type ConfigSection,
  configFromObject,
  type DpcConfig,
  defaultConfig,
  type ExternalAddress,
  hostPort,
  type LoadConfigOptions,
  type LoadedConfig,
  loadConfig,
  parseConfig,
  parseExternalAddress,
  secondsToMs,
} from './config.js';
export { SecureConnection } from './connection.js';
export { Counters } from './counters.js';
export type { DeferredDelivery, DeferredItem, DeferredRecipient } from './deferred.js';
export { defineStrategy, type StrategyDefinition } from './define-strategy.js';
export * from './errors.js';
export { DEFAULT_MAX_FRAME_BYTES, encodeFrame, FrameDecoder, type FrameDecoderOptions } from './frames.js';
export {
  defaultDataDir,
  generateIdentity,
  type Identity,
  identityFromPem,
  isNodeId,
  kademliaIdOf,
  loadOrCreateIdentity,
  NODE_ID_PREFIX,
  nodeIdFromPublicKey,
  nodeIdOfKademliaId,
  publicKeyFromRaw,
  rawPublicKey,
  verifySignature,
} from './identity.js';
export { DEFAULT_HELD_MAX, type HeldOverflow, InboundMessages, type InboundMessagesInit } from './inbound.js';
export { KvBatcher, type KvOp, type KvStore, memoryKvStore } from './kv-store.js';
export {
  type CreateRecordOptions,
  createRecord,
  DEFAULT_MAX_CLOCK_SKEW_MS,
  DEFAULT_MAX_RECORD_BYTES,
  DEFAULT_MAX_RECORD_TTL_MS,
  type Endpoint,
  type EndpointBody,
  emptyEndpointBody,
  endpointBodySchema,
  endpointSchema,
  isRecordExpired,
  type RecordBody,
  type RecordKind,
  type RelayOfferBody,
  recordBodySchemas,
  recordLiveUntil,
  relayOfferBodySchema,
  type SignedRecord,
  type VerifyRecordOptions,
  verifyRecord,
} from './records.js';
export { type Infer, type Schema, s } from './schema.js';
export {
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  type PathHop,
  type SecureChannelOptions,
  secureAccept,
  secureConnect,
  type TlsVersion,
} from './secure-channel.js';
export {
  nextSequence,
  openSequenceStore,
  SEQUENCE_FILE,
  type SequenceStore,
  SequenceStoreError,
  type SequenceStoreOptions,
} from './sequence.js';
export { abortable, holdProcess, raceStaggered, sleep, throwIfAborted, timeoutSignal, toAbortError } from './signal.js';
export { SourceCounts, type SourceKeyPolicy, sourceKey } from './source-key.js';
export {
  type EndpointPart,
  EndpointPartOwnedError,
  EndpointParts,
  type EndpointPartsOptions,
  type StartedTier,
  type TierContext,
  type TierDht,
  type TierLogger,
  type TierPlugin,
  type TierUdpProtocol,
} from './tier-context.js';
export {
  type Applicability,
  type Connection,
  type NetworkState,
  type Strategy,
  TIERS,
  type TierName,
  tierPriority,
} from './tiers.js';
