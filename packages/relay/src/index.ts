/**
 * @dpc/relay — tier 5 of dpc: volunteer relays found in the DHT, scored as the spec says
 * (uptime 50 %, free capacity 30 %, latency 20 %), limited (sessions, messages/s, bandwidth,
 * idle time, duration, bytes), and seeing only ciphertext: the two peers run their own TLS 1.3
 * channel through the relay session.
 *
 * @example
 * ```ts
 * import { generateIdentity } from '@dpc/core';
 * import { createRelayClient, createRelayServer } from '@dpc/relay';
 *
 * const relayId = generateIdentity();
 * const relay = createRelayServer({ identity: relayId, host: '127.0.0.1', port: 0 });
 * await relay.start();
 * const ref = { node_id: relayId.nodeId, ip: '127.0.0.1', port: relay.port };
 *
 * // Bob is behind NAT: he keeps a reservation with the relay (and lists it in his endpoint record).
 * const bobId = generateIdentity();
 * const bob = createRelayClient({ identity: bobId });
 * bob.on('incoming', (conn) => conn.on('message', (m) => console.log('bob got', m)));
 * await bob.reserve({ relays: [ref] });
 *
 * // Alice reaches Bob through the relay; the relay forwards TLS records it cannot read.
 * const alice = createRelayClient({ identity: generateIdentity() });
 * const conn = await alice.connect(bobId.nodeId, { relays: [ref], signal: AbortSignal.timeout(5000) });
 * console.log(conn.tier); // 'volunteer_relay'
 * await conn.send({ text: 'hello through a volunteer relay' });
 * await new Promise((r) => setTimeout(r, 100));
 * await Promise.all([alice.stop(), bob.stop()]);
 * await relay.stop();
 * ```
 */

export * from './constants.js';
export type { RelayDirectory, RelayRef, Signaller } from './directory.js';
export { NoRelayError, RelayConfigError, RelayPathClosedError, RelayPublicAddressError, RelayRefusedError } from './errors.js';
export { relayFromConfig } from './from-config.js';
export { INVITE_REFUSAL_CODES, type InviteRefusalCode, inviteAddressProblem } from './invite-policy.js';
export {
  DISCONNECT_REASONS,
  type DisconnectReason,
  REFUSAL_CODES,
  type RefusalCode,
  type RelayInvite,
  type RelayMessage,
  relayInviteSchema,
  relayMessageSchema,
} from './messages.js';
export { relayTier, tierPlugin } from './plugin.js';
export { isPublicAddress, type PublicAddressPolicy, publicAddressProblem } from './public-address.js';
export { createRelayClient, type RelayClient, type RelayClientOptions } from './relay-client.js';
export { type RankOptions, rankRelays, type ScoreInput, scoreRelay } from './relay-score.js';
export { createRelayServer } from './relay-server.js';
export type { RelayServer, RelayServerOptions, RelaySessionInfo } from './relay-server-options.js';
export { type RelayStrategyOptions, volunteerRelayStrategy } from './strategy.js';
export { TokenBucket } from './token-bucket.js';
