import { type Infer, isNodeId, type Schema, SchemaError, s } from '@dpc/core';

/**
 * Why a relay refuses a request or ends a session. Stable strings, sent on the wire.
 * - `full`: max_peers sessions open (or too many waiting registrations / reservations)
 * - `rate_limited`: more RELAY_MESSAGEs per second than the per-peer limit
 * - `bandwidth`: the relay is at its bandwidth cap; try another relay
 * - `expired`: a waiting registration saw no matching registration in time
 * - `not_registered`: RELAY_MESSAGE or RELAY_DISCONNECT for an unknown session
 * - `identity`: a client tried to speak as another node id, or into a session not its own
 * - `too_large`: a RELAY_MESSAGE larger than the relay accepts
 * - `replaced`: a newer registration for the same pair replaced this one
 * - `bad_request`: e.g. a registration for oneself
 * - `stopping`: the relay is shutting down
 * - `data_timeout`: a spliced session's data connections did not both arrive in time
 */
export const REFUSAL_CODES = [
  'full',
  'rate_limited',
  'bandwidth',
  'expired',
  'not_registered',
  'identity',
  'too_large',
  'replaced',
  'bad_request',
  'stopping',
  'data_timeout',
] as const;
export type RefusalCode = (typeof REFUSAL_CODES)[number];

/**
 * Why a session ended: a refusal code, or `end` (a peer closed it), `idle`, `duration`,
 * `bytes` (the session's caps), `peer_lost` (the other peer's control connection dropped).
 */
export const DISCONNECT_REASONS = [...REFUSAL_CODES, 'end', 'idle', 'duration', 'bytes', 'peer_lost'] as const;
export type DisconnectReason = (typeof DISCONNECT_REASONS)[number];

const nodeId: Schema<string> = (v, p = '') => {
  if (!isNodeId(v)) throw new SchemaError(p, 'expected a node id');
  return v;
};
const reqId = s.int({ min: 0, max: 2 ** 31 });
const sessionId = s.string({ min: 1, max: 64 });
/** RELAY_MESSAGE payloads are checked against the relay's limit by the relay, with a typed answer. */
const MAX_WIRE_DATA_BYTES = 1024 * 1024 - 256;

/** Control messages between a client and a relay (both directions), inside the control Connection. */
export const relayMessageSchema = s.union('type', {
  /** client → relay: keep a standing registration; the relay sends RELAY_INCOMING when someone wants me. */
  RELAY_RESERVE: s.object({ type: s.literal('RELAY_RESERVE'), id: reqId }),
  /** relay → client: reservation held for `ttl_ms` (renewed by the open connection). */
  RELAY_RESERVED: s.object({ type: s.literal('RELAY_RESERVED'), id: reqId, ttl_ms: s.int({ min: 0 }) }),
  /**
   * client → relay: I want a session with `target`. `from`, when present, must be the sender's
   * own (TLS-proven) node id; anything else is refused with `identity`.
   */
  RELAY_REGISTER: s.object({
    type: s.literal('RELAY_REGISTER'),
    id: reqId,
    target: nodeId,
    from: s.optional(nodeId),
    session_id: s.optional(sessionId),
    /** The client can carry the session over a separate plain TCP data connection (spliced). */
    splice: s.optional(s.boolean()),
  }),
  /** relay → client: registered, waiting for the target; `notified` when the target holds a reservation here. */
  RELAY_WAITING: s.object({ type: s.literal('RELAY_WAITING'), id: reqId, notified: s.boolean(), timeout_ms: s.int({ min: 0 }) }),
  /** relay → reserved client: `from` registered for you here. */
  RELAY_INCOMING: s.object({ type: s.literal('RELAY_INCOMING'), from: nodeId }),
  /** relay → both clients: the session exists; the limits the relay enforces on it. */
  RELAY_SESSION: s.object({
    type: s.literal('RELAY_SESSION'),
    id: reqId,
    session_id: sessionId,
    peer: nodeId,
    msgs_per_s: s.number({ min: 0 }),
    msg_burst: s.number({ min: 0 }),
    max_message_bytes: s.int({ min: 1 }),
    /**
     * Spliced session (both clients asked for it): open a plain TCP connection to the relay's
     * `data_port` and send the preamble with this one-time token; the session's bytes flow
     * there, not in RELAY_MESSAGEs.
     */
    data_token: s.optional(s.bytes({ length: 32 })),
    data_port: s.optional(s.int({ min: 1, max: 65535 })),
  }),
  /** either way: opaque bytes of a session (the peers' own TLS records). */
  RELAY_MESSAGE: s.object({ type: s.literal('RELAY_MESSAGE'), session_id: sessionId, data: s.bytes({ max: MAX_WIRE_DATA_BYTES }) }),
  /** either way: the session is over. */
  RELAY_DISCONNECT: s.object({ type: s.literal('RELAY_DISCONNECT'), session_id: sessionId, reason: s.oneOf(DISCONNECT_REASONS) }),
  /** relay → client: a typed refusal of request `id` or of a message on `session_id`. */
  RELAY_REFUSED: s.object({
    type: s.literal('RELAY_REFUSED'),
    code: s.oneOf(REFUSAL_CODES),
    reason: s.string({ max: 200 }),
    id: s.optional(reqId),
    session_id: s.optional(sessionId),
  }),
});
export type RelayMessage = Infer<typeof relayMessageSchema>;
export type RelayMessageOf<T extends RelayMessage['type']> = Extract<RelayMessage, { type: T }>;

/** Payload of a DHT SIGNAL telling a node that a peer waits for it at a relay. */
export const relayInviteSchema = s.object({
  type: s.literal('relay-invite'),
  relay: s.object({ node_id: nodeId, ip: s.string({ max: 64 }), port: s.int({ min: 1, max: 65535 }) }),
});
export type RelayInvite = Infer<typeof relayInviteSchema>;

type OptionalUndefined<T> = { [K in keyof T as undefined extends T[K] ? K : never]?: T[K] } & {
  [K in keyof T as undefined extends T[K] ? never : K]: T[K];
};
/** A control message as written by a sender (optional fields may be left out). */
export type RelayMessageOut = RelayMessage extends infer M ? (M extends unknown ? OptionalUndefined<M> : never) : never;
