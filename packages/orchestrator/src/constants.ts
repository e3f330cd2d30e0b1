/** Racing mode: delay between tier starts (`[connection] race_stagger`). */
export const DEFAULT_RACE_STAGGER_MS = 250;
/** Racing mode: how long a better tier may still win after a worse one succeeded (`race_grace`). */
export const DEFAULT_RACE_GRACE_MS = 300;
/** Deadline of a whole connect() (`[connection] total_timeout`). */
export const DEFAULT_TOTAL_TIMEOUT_MS = 90_000;
/** Period of background attempts to move a relay/gossip session to a better tier. */
export const DEFAULT_UPGRADE_INTERVAL_MS = 30_000;
/** Unacknowledged messages a PeerSession keeps; send() waits for room beyond this. */
export const DEFAULT_MAX_UNACKED = 1024;
/** Out-of-order messages a receiver buffers per peer. */
export const MAX_REORDER = 1024;
/** Time a replaced path stays open to drain messages in flight. */
export const PATH_LINGER_MS = 1000;
/** Reconnect backoff after a path is lost: first delay, cap. */
export const RECONNECT_BACKOFF_MS = [250, 10_000] as const;
/** Time-to-connect samples kept per tier for percentiles. */
export const TTC_SAMPLES = 1000;
/** Sessions kept at most. */
export const DEFAULT_MAX_SESSIONS = 4096;
