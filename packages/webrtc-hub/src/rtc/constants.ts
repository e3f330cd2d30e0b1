/** Defaults of tier 3 (the spec's INI defaults, with units in the names). */

/** `webrtc_timeout`: the whole attempt (signalling, ICE, DTLS, data channel, dpc TLS). */
export const DEFAULT_WEBRTC_TIMEOUT_MS = 30_000;
/**
 * Each step of an attempt (create offer, gather, wait for the answer, apply it, ICE + DTLS +
 * data channel open, secure handshake) has its own deadline too: werift has been seen hanging in
 * `setLocalDescription` (TURN allocation with wrong credentials) for more than 20 s.
 */
export const DEFAULT_STEP_TIMEOUT_MS = 10_000;
/** After TURN stalled gathering, how long attempts leave TURN out, ms. */
export const TURN_UNUSABLE_MS = 60_000;
/** How long a signed fingerprint binding stays valid, ms. */
export const BINDING_TTL_MS = 60_000;
/** Clock skew tolerated on a binding's expiry, ms. */
export const BINDING_MAX_SKEW_MS = 30_000;
/** Largest SDP accepted from the signaller, characters. */
export const MAX_SDP_CHARS = 16_384;
/** Largest ICE candidate line, characters. */
export const MAX_CANDIDATE_CHARS = 512;
/** Trickled candidates accepted per session. */
export const MAX_CANDIDATES_PER_SESSION = 64;
/** Answered offers remembered against replay (each until its binding expires). */
export const MAX_SEEN_OFFERS = 4096;
/** Sessions being set up at once (each direction). */
export const MAX_PENDING_SESSIONS = 32;
/** Largest data-channel message the byte stream writes (node ↔ node only: werift and libdatachannel accept 64 KiB; a TLS record of 16 KiB + overhead fits whole). */
export const DC_CHUNK_BYTES = 64 * 1024;
/** bufferedAmount above which the stream stops taking writes. */
export const DC_HIGH_WATER_BYTES = 1024 * 1024;
/** bufferedAmount at which writing resumes. */
export const DC_LOW_WATER_BYTES = 256 * 1024;
/** Received bytes held unread before the stream gives up on the peer (no receive backpressure in SCTP here). */
export const DC_MAX_UNREAD_BYTES = 16 * 1024 * 1024;
/** Data-channel label of dpc sessions. */
export const DC_LABEL = 'dpc';
