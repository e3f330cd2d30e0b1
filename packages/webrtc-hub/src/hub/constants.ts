// Defaults of the Hub and its client. Units are in the names.

/** `[hub] port`: the Hub's WebSocket port. */
export const DEFAULT_HUB_PORT = 8886;
/** Largest WebSocket message the Hub reads; a bigger frame closes the connection (1009). */
export const DEFAULT_HUB_MAX_FRAME_BYTES = 64 * 1024;
/** Largest signalling payload (its JSON encoding) the Hub routes; bigger ones are refused, the connection stays. */
export const DEFAULT_HUB_MAX_PAYLOAD_BYTES = 16 * 1024;
/** Deepest nesting of arrays and objects in a payload (JSON.stringify recurses: deeper would overflow the stack). */
export const HUB_MAX_PAYLOAD_DEPTH = 32;
/** Connections the Hub holds at once (logged in or not). */
export const DEFAULT_HUB_MAX_CONNECTIONS = 10_000;
/** Connections from one source (IPv4 /24, IPv6 /64, one loopback address). */
export const DEFAULT_HUB_MAX_CONNECTIONS_PER_SOURCE = 32;
/** Signalling messages a node may send per second (token bucket refill). */
export const DEFAULT_HUB_RATE_PER_S = 50;
/** Burst of the per-node token bucket. */
export const DEFAULT_HUB_RATE_BURST = 100;
/** Refusals for rate or size in a row after which the Hub closes the connection (1008). */
export const DEFAULT_HUB_MAX_STRIKES = 200;
/** How long a login challenge is valid, ms; a connection that has not logged in by then is closed. */
export const DEFAULT_HUB_LOGIN_TIMEOUT_MS = 10_000;
/** The Hub pings each connection this often, ms, and closes one that did not answer the previous ping. */
export const DEFAULT_HUB_PING_INTERVAL_MS = 5_000;
/** Lifetime of the TURN credentials the Hub hands out, seconds (coturn REST: `<expiry>:<node id>`). */
export const DEFAULT_TURN_CREDENTIAL_TTL_S = 600;
/** Presence keys in Redis live this long, ms, refreshed every third of it. */
export const DEFAULT_HUB_PRESENCE_TTL_MS = 30_000;
/** How long a Hub waits for another Hub to confirm a routed message, ms. */
export const DEFAULT_HUB_ROUTE_TIMEOUT_MS = 5_000;
/** Messages routed through Redis still waiting for the other Hub's answer, at most. */
export const DEFAULT_HUB_MAX_PENDING_ROUTES = 10_000;
/** `start()` gives up on Redis after this, ms. */
export const DEFAULT_HUB_REDIS_CONNECT_TIMEOUT_MS = 10_000;
/** A message between Hubs whose sender clock is further than this from ours is refused (replay window), ms. */
export const DEFAULT_HUB_BUS_MAX_SKEW_MS = 30_000;
/** Prefix of every Redis key and channel the Hub uses. */
export const DEFAULT_HUB_REDIS_PREFIX = 'dpc-hub:';

/** The client sends an application ping this often, ms. */
export const DEFAULT_HUB_CLIENT_HEARTBEAT_MS = 2_000;
/** No message from the Hub for this long, ms: the connection is taken as dead and closed. */
export const DEFAULT_HUB_CLIENT_DEAD_AFTER_MS = 5_000;
/** Deadline of connect + login, ms. */
export const DEFAULT_HUB_CLIENT_LOGIN_TIMEOUT_MS = 10_000;
/** Deadline of one `send()` (until the Hub confirms delivery to the peer's connection), ms. */
export const DEFAULT_HUB_CLIENT_SEND_TIMEOUT_MS = 10_000;
/** Reconnect backoff: first delay, ms. */
export const DEFAULT_HUB_CLIENT_BACKOFF_MIN_MS = 250;
/** Reconnect backoff: largest delay, ms. */
export const DEFAULT_HUB_CLIENT_BACKOFF_MAX_MS = 15_000;
/** Reconnect backoff: each delay is multiplied by a random factor in [1 − jitter, 1 + jitter]. */
export const DEFAULT_HUB_CLIENT_BACKOFF_JITTER = 0.2;
/** Requests (sends, ICE server queries) waiting for the Hub's answer, at most. */
export const DEFAULT_HUB_CLIENT_MAX_PENDING = 1_000;

/** Domain separation of the login signature. */
export const HUB_LOGIN_CONTEXT = 'dpc-hub-login-v1';
/** WebSocket subprotocol of the Hub. */
export const HUB_PROTOCOL = 'dpc-hub.v1';
