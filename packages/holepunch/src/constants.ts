// Defaults of @dpc/holepunch. The spec's INI defaults are in @dpc/core's config schema
// (`hole_punch_timeout` 15 s, `punch_attempts` 3, `stun_timeout` 5 s, `udp_punch_port` 8890).

/** First bytes of the punch protocol's datagrams on the DHT socket (never a DHT byte 0x80–0x8f, 0xde, 0xdf). */
export const PUNCH_PREFIX = Buffer.from([0xd7, 0x50]);
/** UDX datagrams start with its magic byte 0xff and version 1: they are carried unchanged. */
export const UDX_PREFIX = Buffer.from([0xff, 0x01]);

/** Distinct DHT peers whose DISCOVER_ENDPOINT answers the NAT type is decided from. */
export const NAT_SAMPLE_PEERS = 4;
/** Discovery rounds when the samples do not decide (hyperdht resamples up to 3 times). */
export const NAT_DISCOVERY_ROUNDS = 3;
/** How long a measured NAT type and reflexive endpoint are reused, ms. */
export const NAT_CACHE_MS = 60_000;
/** How often the NAT type is measured again while the node runs, ms. */
export const NAT_REFRESH_MS = 5 * 60_000;

/** Probes per round to each candidate address. */
export const PROBES_PER_ROUND = 2;
/** Pause between punch rounds, ms. */
export const PUNCH_ROUND_INTERVAL_MS = 200;
/**
 * After its punch succeeded, a side repeats PROBE_ACK to the peer this often until the peer's
 * first UDX datagram shows that it has won too (a lost ACK otherwise leaves a birthday punch's
 * cone side probing random ports while the other side waits in the TLS handshake), ms.
 */
export const CONFIRM_INTERVAL_MS = 250;
/** A punched path sends a keepalive this often (NAT UDP mappings often expire after 30 s), ms. */
export const KEEPALIVE_MS = 5_000;
/** Nothing heard from the peer for this long: the path is lost, ms. */
export const PATH_LOST_MS = 20_000;
/**
 * The initiator sends its offer again (without `via`) this long after the first, then after the
 * second wait, while no answer came, ms. The responder may first measure its NAT (up to
 * `stun_timeout` per round), so a copy is not a failure: it answers each copy again.
 */
export const OFFER_RESEND_MS = [2_000, 4_000, 8_000] as const;
/**
 * A peer's endpoint record that says it does not accept punching, issued less than this long ago
 * (by its own clock), may be the one from before its NAT verdict (a node publishes its record on
 * joining, and again with `accepts_punch` once the NAT is measured, up to ~20 s later): tier 4
 * looks the peer up once more before giving up, ms.
 */
export const YOUNG_RECORD_MS = 30_000;
/** Pause before looking such a young record up again (the newer one is being stored), ms. */
export const RECORD_RECHECK_MS = 3_000;
/** Copies of `go` sent (the responder acts on the first). */
export const GO_COPIES = 2;
/** Upper bound of the start offset derived from the signalling round trip, ms. */
export const MAX_START_OFFSET_MS = 2_000;
/** At most this many punches (both roles) run at once. */
export const MAX_CONCURRENT_PUNCHES = 16;
/** At most this many punched paths are kept. */
export const MAX_PATHS = 256;

/** Birthday punch: sockets opened on the symmetric side. */
export const BIRTHDAY_SOCKETS = 256;
/** Birthday punch: TTL of the symmetric side's mapping-opening packets (dies before the peer's NAT). */
export const BIRTHDAY_TTL = 5;
/**
 * Birthday punch: the cone side's probes to random ports, and their spacing, ms. hyperdht sends
 * 1,750 × 20 ms; at 20 ms a 15 s `hole_punch_timeout` leaves room for ~700 probes, 94 % odds
 * against 256 mappings in 64k ports, so we send them 10 ms apart (100 probes/s, 19 bytes each):
 * ~1,400 within 15 s (99.6 %), all 1,750 within 17.5 s (99.9 %).
 */
export const BIRTHDAY_PROBES = 1_750;
export const BIRTHDAY_PROBE_INTERVAL_MS = 10;
/** Birthday punch: at most this many random-port probes back to back when the timer fired late. */
export const BIRTHDAY_PROBE_BURST = 5;
/**
 * `[hole_punch] birthday_timeout` default: a birthday punch's deadline, ms (used when longer than
 * `hole_punch_timeout`). Random probing misses 256 mappings in 64k ports with odds
 * (1 − 256/65,536)^probes: ~6 % for 700 probes, ~0.4 % for 1,400 (15 s at our pace, less what
 * signalling, a loaded machine and lost probes take), far below for 3,000 (30 s).
 */
export const BIRTHDAY_TIMEOUT_MS = 30_000;
/** Birthday punch: the symmetric side sends its low-TTL packets again this often (mappings expire), ms. */
export const BIRTHDAY_REOPEN_MS = 10_000;
