/** Tier 5 deadline for a whole relayed connect (spec: `[connection] relay_timeout = 20`). */
export const DEFAULT_RELAY_TIMEOUT_MS = 20_000;
/** How long relay offers found in the DHT are cached (spec: `[relay] cache_timeout = 300`). */
export const DEFAULT_CACHE_TIMEOUT_MS = 300_000;
/** Relay sessions when volunteering (spec: `[relay] max_peers = 20`). */
export const DEFAULT_MAX_PEERS = 20;
/** Relay bandwidth cap, Mbit/s (spec: `[relay] bandwidth_limit_mbps = 50.0`). */
export const DEFAULT_BANDWIDTH_LIMIT_MBPS = 50;
/** RELAY_MESSAGEs per second per peer (spec: "100 messages/second per peer"). */
export const DEFAULT_MESSAGES_PER_SECOND = 100;
/** Token-bucket burst of the per-peer message limit: one second's worth. */
export const DEFAULT_MESSAGE_BURST = 100;
/** TCP port of the relay listener: `[relay] port` of the config (8888 is the node's, 8889 the DHT's, 8887 the API's). */
export const DEFAULT_RELAY_PORT = 8891;
/** A waiting registration (one side registered, the other not yet) expires after this, ms. */
export const DEFAULT_REGISTRATION_TIMEOUT_MS = 10_000;
/** A session with no RELAY_MESSAGE in either direction for this long is closed, ms. */
export const DEFAULT_IDLE_TIMEOUT_MS = 5 * 60_000;
/** A session lasts at most this long, ms. */
export const DEFAULT_MAX_SESSION_DURATION_MS = 60 * 60_000;
/** A session carries at most this many bytes (both directions). */
export const DEFAULT_MAX_SESSION_BYTES = 1024 * 1024 * 1024;
/** Largest RELAY_MESSAGE payload, bytes. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024;
/** Control connections a relay keeps open at most. */
export const DEFAULT_MAX_CONNECTIONS = 1024;
/** Standing reservations a relay holds at most. */
export const DEFAULT_MAX_RESERVATIONS = 256;
/**
 * Per-source caps of a relay (a source is an IPv4 /24, an IPv6 /64, one loopback address; each
 * loopback ip:port with `allowLoopback`): connections not yet secured, connections in all,
 * standing reservations, and sessions + waiting registrations it initiated.
 */
export const DEFAULT_MAX_PENDING_PER_SOURCE = 8;
export const DEFAULT_MAX_CONNECTIONS_PER_SOURCE = 64;
export const DEFAULT_MAX_RESERVATIONS_PER_SOURCE = 16;
export const DEFAULT_MAX_SESSIONS_PER_SOURCE = 8;
/** Sessions + waiting registrations one identity initiated at a relay, at most. */
export const DEFAULT_MAX_SESSIONS_PER_PEER = 4;
/** Waiting registrations a relay holds at most (all clients), and per client. */
export const DEFAULT_MAX_PENDING = 256;
export const DEFAULT_MAX_PENDING_PER_PEER = 16;
/** A volunteer re-announces its offer at least this often, ms. */
export const DEFAULT_ANNOUNCE_INTERVAL_MS = 10 * 60_000;
/** Load changes are announced at most this often, ms. */
export const DEFAULT_ANNOUNCE_DEBOUNCE_MS = 1_000;
/** Uptime in the offer is the fraction of this window the relay has been up. */
export const UPTIME_WINDOW_MS = 24 * 3_600_000;
/** Relays a client keeps a standing reservation with (the spec's "one or two"). */
export const DEFAULT_RESERVATIONS = 2;
/**
 * Delays between attempts to take reservations again after one is lost (or while fewer than
 * wanted are held), ms; the last one repeats until the reservations are held again.
 */
export const DEFAULT_RESERVE_BACKOFFS_MS: readonly number[] = [1_000, 2_000, 4_000, 8_000, 16_000, 30_000];
/** Each re-reserve delay is spread by ± this fraction (0 disables), so clients of one lost relay do not return in step. */
export const DEFAULT_RESERVE_JITTER = 0.2;
/** Relays whose latency a client remembers (least recently measured forgotten first); option `maxMeasuredRelays`. */
export const MAX_MEASURED_RELAYS = 256;
/** Relays probed in parallel (handshake RTT) before ranking, when their latency is unknown. */
export const DEFAULT_PROBE_COUNT = 3;
/** Latency is normalised over 0–500 ms (spec). */
export const LATENCY_CEILING_MS = 500;
/** Scoring weights (spec). */
export const WEIGHT_UPTIME = 0.5;
export const WEIGHT_CAPACITY = 0.3;
export const WEIGHT_LATENCY = 0.2;
/** Unacknowledged bytes a relayed stream reads ahead before it pauses its control connection. */
export const STREAM_READ_HIGH_WATER_BYTES = 1024 * 1024;
/** Bytes a relayed stream accepts ahead of its control connection before its writer waits. */
export const STREAM_WRITE_WINDOW_BYTES = 256 * 1024;
/** Handshake deadline for control connections, ms. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

/** Reserved links are pinged this often; a link whose ping fails is dropped and re-reserved. */
export const DEFAULT_RESERVATION_KEEPALIVE_MS = 25_000;

/** A spliced session whose two data connections have not both arrived after this is ended, ms. */
export const DEFAULT_DATA_CONNECTION_TIMEOUT_MS = 5_000;
/** A data connection's preamble: magic, the session id (16 ASCII bytes) and the side's token. */
export const DATA_PREAMBLE_MAGIC = 'DPCS';
export const DATA_SESSION_ID_BYTES = 16;
export const DATA_TOKEN_BYTES = 32;
export const DATA_PREAMBLE_BYTES = 4 + DATA_SESSION_ID_BYTES + DATA_TOKEN_BYTES;
/**
 * A data connection that ends before the relay told us why (over the control connection) waits
 * this long for the reason (RELAY_DISCONNECT, or the control connection's loss), ms.
 */
export const SPLICE_CLOSE_GRACE_MS = 2_000;

/** Relays listed in this node's endpoint record at most (the record schema's bound). */
export const MAX_LISTED_RELAYS = 4;
/** Deadline of the first reservation attempt when the node starts, ms. */
export const DEFAULT_RESERVE_TIMEOUT_MS = 30_000;

/** Relay invites (DHT SIGNAL) answered per second from one sender, and its burst (option `invitesPerSenderPerSecond` / `inviteSenderBurst`). */
export const DEFAULT_INVITES_PER_SENDER_PER_SECOND = 1;
export const DEFAULT_INVITE_SENDER_BURST = 4;
/** Relay invites answered per second from all senders, and the burst (option `invitesPerSecond` / `inviteBurst`). */
export const DEFAULT_INVITES_PER_SECOND = 5;
export const DEFAULT_INVITE_BURST = 20;
/** Invites being answered (relay dialled, session awaited) at once, at most (option `maxInvitesInFlight`). */
export const DEFAULT_MAX_INVITES_IN_FLIGHT = 8;
/** Senders whose invite rate is tracked (least recently seen forgotten). */
export const MAX_INVITE_SENDERS_TRACKED = 1024;
/** An invite naming a relay missing from cached offers refreshes them at most this often, ms. */
export const INVITE_DIRECTORY_REFRESH_MS = 30_000;
