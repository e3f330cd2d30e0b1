/** Delay between starting two candidates of one tier (Happy Eyeballs, RFC 8305 suggests 250 ms). */
export const DEFAULT_STAGGER_MS = 250;
/** Tier 1 deadline (spec: `[connection] ipv6_timeout = 10`). */
export const DEFAULT_IPV6_TIMEOUT_MS = 10_000;
/** Tier 2 deadline (spec: `[connection] ipv4_timeout = 10`). */
export const DEFAULT_IPV4_TIMEOUT_MS = 10_000;
/** Spec: `[p2p] listen_port = 8888`. */
export const DEFAULT_LISTEN_PORT = 8888;
/** Inbound connections still in their handshake, at most; more are closed at once. */
export const DEFAULT_MAX_PENDING_HANDSHAKES = 64;
/**
 * Inbound connections in their handshake from one source (an IPv4 /24, an IPv6 /64, one
 * loopback address), at most: one place cannot take every pending slot.
 */
export const DEFAULT_MAX_PENDING_HANDSHAKES_PER_SOURCE = 8;
/** Established inbound connections, at most. */
export const DEFAULT_MAX_INBOUND_CONNECTIONS = 1024;
/** Candidates of one tier tried per connect, at most. */
export const MAX_CANDIDATES = 8;
