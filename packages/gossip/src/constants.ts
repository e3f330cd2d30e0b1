/** Defaults of @dpc/gossip, mirroring the spec's `[gossip]` INI defaults where it has them. */

/** Wire version of the gossip envelope. */
export const GOSSIP_VERSION = 1;
/** Largest encoded gossip message accepted or created, bytes. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024;
/** Largest `max_hops` a message may carry (the config key's own bound). */
export const MAX_HOPS_LIMIT = 64;
/** Entries kept in `already_forwarded` (the newest forwarders). */
export const MAX_ALREADY_FORWARDED = 32;
/** Longest lifetime a message may claim, seconds (7 days). */
export const MAX_TTL_SECONDS = 7 * 86_400;
/** How far a message's `created_at` may lie in the future (sender clock skew), ms. */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 10 * 60_000;
/** Ids remembered by the in-memory seen-set. */
export const DEFAULT_SEEN_SET_SIZE = 65_536;
/** Store bounds. */
export const DEFAULT_MAX_STORE_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_STORE_COUNT = 100_000;
export const DEFAULT_MAX_ORIGIN_BYTES = 4 * 1024 * 1024;
export const DEFAULT_MAX_ORIGIN_COUNT = 2_000;
/** This node's own receipts kept at most (and at most a quarter of the store's count). */
export const DEFAULT_MAX_OWN_RECEIPTS = 10_000;
/** Messages for this node its application has not taken yet, kept at most (and at most a quarter of the store's count). */
export const DEFAULT_MAX_FOR_ME = 10_000;
/** Tombstones (ids delivered or receipted, kept until they expire) bound. */
export const DEFAULT_MAX_TOMBSTONES = 200_000;
/** Ids in one receipt. */
export const MAX_RECEIPT_IDS = 256;
/** Period of re-offering stored, not yet receipted messages to the local application, ms. */
export const DEFAULT_REDELIVER_INTERVAL_MS = 15_000;
/** Reconnect backoff of a gossip link to a seed, ms. */
export const DEFAULT_LINK_RETRY_MS = 2_000;
export const DEFAULT_LINK_RETRY_MAX_MS = 30_000;
/** Gossip links kept at most (inbound plus outbound). */
export const DEFAULT_MAX_LINKS = 64;
/** Inbound handshakes under way from one remote address (IPv4 address or IPv6 /64) at most. */
export const DEFAULT_MAX_PENDING_PER_IP = 4;
/** Established inbound links from one remote address at most. */
export const DEFAULT_MAX_INBOUND_PER_IP = 8;
/** Link slots kept for links this node dials, at most (and at most a quarter of maxLinks). */
export const DEFAULT_RESERVED_OUTBOUND = 16;
/** Deadline of one hop's acknowledgement, ms. */
export const DEFAULT_HOP_ACK_TIMEOUT_MS = 10_000;
/** Scoped mode: messages passed on (cut-through) and waiting for the next hop's ack, at most. */
export const MAX_RELAYS_IN_FLIGHT = 4096;
/** Largest link frame, bytes. */
export const MAX_LINK_FRAME_BYTES = 256 * 1024;
/** Priority ranks, higher is kept longer. */
export const PRIORITY_RANK = { low: 0, normal: 1, high: 2 } as const;
/** Largest anti-entropy (Negentropy) message either side produces, bytes. */
export const SYNC_FRAME_BYTES = 64 * 1024;
/** Messages sent to one peer per minute in answer to its anti-entropy wants. */
export const SYNC_WANTS_PER_MINUTE = 10_000;
/** Gossip links kept to this node's own DHT keyspace neighbours (refreshed every NEIGHBOUR_REFRESH_MS). */
export const DEFAULT_NEIGHBOUR_LINKS = 8;
/** Links made per refresh to the nodes closest to a random key (the bounded peer exchange). */
export const DEFAULT_RANDOM_LINKS = 2;
/** Period of the neighbour refresh, ms (the first ones run at start and 5 s later). */
export const NEIGHBOUR_REFRESH_MS = 60_000;
/** A destination's neighbourhood is looked up at most once in this long, ms. */
export const ROUTE_LOOKUP_MIN_MS = 10_000;
/** DHT lookups of destinations' neighbourhoods (the 'route' event) running at once at most. */
export const ROUTE_LOOKUPS_AT_ONCE = 4;
/**
 * A peer that links again within this long gets only what is addressed to it (from an index), not
 * a walk of the whole store; the same bound holds for replacing the copies a departed peer held, ms.
 */
export const CATCH_UP_MIN_INTERVAL_MS = 60_000;
/** Whole-store walks (catch-ups of new links, holder replacements) in a burst, at most... */
export const CATCH_UP_BURST = 64;
/** ...and one more per this many ms. */
export const CATCH_UP_REFILL_MS = 1_000;
