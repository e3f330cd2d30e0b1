// Defaults of @dpc/dht, mirroring the spec's [dht] INI section (which is in seconds; these are ms).

/** `[dht] port`: UDP port of the DHT. */
export const DEFAULT_DHT_PORT = 8889;
/** `[dht] host`: 'dual' binds IPv6 and IPv4 on one socket (IPv4 only where the host has no IPv6). */
export const DEFAULT_DHT_HOST = 'dual';
/** `[dht] k`: bucket size and replication factor. */
export const DEFAULT_K = 20;
/** `[dht] alpha`: lookup parallelism. */
export const DEFAULT_ALPHA = 3;
/** `[dht] bootstrap_timeout`. */
export const DEFAULT_BOOTSTRAP_TIMEOUT_MS = 10_000;
/** `[dht] lookup_timeout`: deadline of one iterative lookup. */
export const DEFAULT_LOOKUP_TIMEOUT_MS = 10_000;
/** `[dht] bucket_refresh_interval`. */
export const DEFAULT_BUCKET_REFRESH_INTERVAL_MS = 3_600_000;
/** `[dht] announce_interval`: endpoint record and relay offer republish period. */
export const DEFAULT_ANNOUNCE_INTERVAL_MS = 1_800_000;
/** First retry of an endpoint announce that stored its record nowhere; doubles up to the max. */
export const ANNOUNCE_RETRY_MS = 2_000;
export const ANNOUNCE_RETRY_MAX_MS = 60_000;

/** Deadline of one request/response exchange. */
export const DEFAULT_RPC_TIMEOUT_MS = 2_000;
/** Retries of a timed-out RPC outside lookups (PING of seeds, STORE, REGISTER, SIGNAL). */
export const DEFAULT_RPC_RETRIES = 1;
/** Retries of a timed-out RPC inside an iterative lookup (other paths are tried in parallel). */
export const DEFAULT_LOOKUP_RPC_RETRIES = 0;
/** First retry delay; doubles each retry. */
export const DEFAULT_RETRY_BACKOFF_MS = 200;
/** Timeouts in a row after which a contact leaves the routing table. */
export const MAX_CONTACT_FAILURES = 2;
/**
 * A contact that answered us or sent us a request this recently counts as alive: a full bucket of
 * such contacts refuses a newcomer without PINGing anyone (BEP 5's "good" node: 15 min).
 */
export const CONTACT_FRESH_MS = 15 * 60_000;
/**
 * Contacts a joining node wants in each far bucket (those the self-lookup does not reach: farther
 * than its k-th closest contact). One FIND_NODE into the bucket finds candidates, a PING each
 * admits them: far buckets span many nodes, a few live contacts each are enough to route.
 */
export const JOIN_FAR_BUCKET_CONTACTS = 3;
/** Contacts a joining node asks (one after the other) for nodes of one far bucket, until it has enough. */
export const JOIN_FAR_BUCKET_ASK = 3;
/** Unknown requesters being PINGed (to enter the routing table) at once. */
export const MAX_PENDING_VERIFICATIONS = 256;
/** Lifetime of the records this node signs. */
export const DEFAULT_RECORD_TTL_MS = 3_600_000;
/** How often a node behind NAT re-registers with its signal_via nodes (keeps the mapping open). */
export const DEFAULT_KEEPALIVE_INTERVAL_MS = 20_000;
/** How long a forwarder keeps a registration without a keepalive. */
export const DEFAULT_REGISTRATION_TTL_MS = 65_000;
/** Number of DHT nodes a node registers with for signalling (the record allows 4). */
export const DEFAULT_SIGNAL_VIA_COUNT = 2;
/** Expired-record and registration sweep period. */
export const DEFAULT_SWEEP_INTERVAL_MS = 60_000;

/** Longest prefix a protocol sharing the DHT's UDP socket may register. */
export const MAX_PROTOCOL_PREFIX_BYTES = 8;
/** Hard bound of every datagram sent: stays under the path MTU (no IP fragmentation). */
export const MAX_DATAGRAM_BYTES = 1200;
/** Largest signal payload (encoded) a node sends or forwards. */
export const MAX_SIGNAL_PAYLOAD_BYTES = 600;
/** A signal older than this (or this far in the future) is refused as a replay. */
export const SIGNAL_MAX_AGE_MS = 120_000;
/**
 * Memory bound of the signal replay cache (`signalReplayCacheBytes`). It remembers every signal
 * until it turns stale; new signals are rate-limited to capacity / 241 s (entries live ≤ 240 s, plus a
 * one-second burst): at the default 16 384 entries, 68 per second.
 */
export const DEFAULT_SIGNAL_REPLAY_CACHE_BYTES = 2 * 1024 * 1024;
/** Bytes one remembered signal costs (key string, set and expiry-bucket slots), an upper estimate. */
export const SIGNAL_REPLAY_ENTRY_BYTES = 128;
/** Share of the new-signal rate one source (/24 or /64 of the delivering hop) may use. */
export const SIGNAL_SOURCE_SHARE = 0.25;

/** A REGISTER timestamp may be this far from our clock. */
export const REGISTER_MAX_SKEW_MS = 300_000;

/** Records stored by one node, all keys together. */
export const DEFAULT_MAX_RECORDS = 10_000;
/** Records stored on behalf of one source: its /24 (IPv4) or /64 (IPv6), or ip:port when exempt. */
export const DEFAULT_MAX_RECORDS_PER_HOST = 256;
/** Relay offers held under one relay index key. */
export const DEFAULT_MAX_OFFERS_PER_KEY = 64;
/** Records under one key from one source (/24 or /64): 64 fake relay offers from one place hold 4 slots. */
export const DEFAULT_MAX_RECORDS_PER_KEY_PER_SOURCE = 4;
/**
 * Longest a stored record is kept, whatever expiry it claims: the default record TTL plus 10 min
 * of slack (publishers republish every 30 min). An offer "expiring in 9999" is gone after this.
 */
export const DEFAULT_MAX_RECORD_TTL_MS = 3_600_000 + 600_000;
/** Registrations (nodes behind NAT whose mapping we keep) held by one forwarder. */
export const DEFAULT_MAX_REGISTRATIONS = 1024;
/** Signals forwarded per second to one registered node. */
export const DEFAULT_SIGNAL_FORWARD_PER_SEC = 10;

/** Token bucket per source host: sustained datagrams per second. */
export const DEFAULT_RATE_LIMIT_PER_SEC = 50;
/** Token bucket per source host: burst size. */
export const DEFAULT_RATE_LIMIT_BURST = 100;
/** Hosts tracked by the rate limiter (oldest forgotten first). */
export const DEFAULT_MAX_TRACKED_HOSTS = 4096;
/** At most this many contacts from one /24 (IPv4) or /64 (IPv6) per bucket. */
export const MAX_CONTACTS_PER_SUBNET_PER_BUCKET = 2;
/** Write tokens (STORE, REGISTER) rotate this often; the previous one stays valid. */
export const TOKEN_ROTATION_MS = 300_000;
/** Pages of one FIND_VALUE answer fetched from one node (relay index keys). */
export const MAX_VALUE_PAGES = 16;
/** Peers asked by discoverEndpoint(). */
export const DISCOVER_ENDPOINT_PEERS = 3;
/** Prefix hashed into relay index keys: SHA-256("dpc-relay:" + region)[0..16]. */
export const RELAY_INDEX_PREFIX = 'dpc-relay:';
/** Region name of the global relay index key. */
export const GLOBAL_RELAY_REGION = '*';
/** Contacts saved to (and read back from) `dataDir` across restarts. */
export const MAX_PERSISTED_CONTACTS = 256;
/** Addresses of a caller-supplied signal route (`Dht.signal` `via`) tried before a lookup. */
export const MAX_SIGNAL_ROUTE = 4;
