/** Racing mode: delay between tier starts (`[connection] race_stagger`). */
export const DEFAULT_RACE_STAGGER_MS = 250;
/** Racing mode: how long a better tier may still win after a worse one succeeded (`race_grace`). */
export const DEFAULT_RACE_GRACE_MS = 300;
/** Deadline of a whole connect() (`[connection] total_timeout`). */
export const DEFAULT_TOTAL_TIMEOUT_MS = 90_000;
/** Sessions on a tier of this priority or worse keep trying better tiers in the background. */
export const DEFAULT_UPGRADE_FROM_PRIORITY = 3;
/** Period of background attempts to move a session to a better tier. */
export const DEFAULT_UPGRADE_INTERVAL_MS = 30_000;
/** Unacknowledged messages a PeerSession keeps; send() waits for room beyond this. */
export const DEFAULT_MAX_UNACKED = 1024;
/** Out-of-order messages a receiver stores per peer epoch. */
export const MAX_REORDER = 1024;
/** Bytes of out-of-order messages a receiver stores per session. */
export const DEFAULT_MAX_REORDER_BYTES = 8 * 1024 * 1024;
/** Bytes of out-of-order messages a receiver stores across all sessions. */
export const DEFAULT_MAX_REORDER_TOTAL_BYTES = 64 * 1024 * 1024;
/** Numbers named in one selective acknowledgement at most. */
export const MAX_ACK_SELECTIVE = 256;
/** Epochs (sender incarnations) of one peer the receiver remembers. */
export const RX_EPOCHS_KEPT = 4;
/** Sessions whose outbox is resumed after a restart, at most. */
export const MAX_RESUMED_SESSIONS = 4096;
/** Time a replaced path stays open to drain messages in flight. */
export const PATH_LINGER_MS = 1000;
/** Reconnect backoff after a path is lost: first delay, cap. */
export const RECONNECT_BACKOFF_MS = [250, 10_000] as const;
/** Time-to-connect samples kept per tier for percentiles. */
export const TTC_SAMPLES = 1000;
/**
 * How long an awaited connect() holds the process beyond its total_timeout deadline at most (a
 * ref'd timer, cleared when it settles): the deadline ends it well within this.
 */
export const CONNECT_HOLD_GRACE_MS = 5_000;
/** How long an awaited stop() holds the process at most (paths get 2 s to say goodbye). */
export const STOP_HOLD_MS = 10_000;
/** Sessions kept at most. */
export const DEFAULT_MAX_SESSIONS = 4096;
