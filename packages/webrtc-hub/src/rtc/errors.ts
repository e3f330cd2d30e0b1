import { DpcError, type DpcErrorOptions } from '@dpc/core';

/**
 * The peer's signed binding (node key over DTLS fingerprint, session, from, to, expiry) is
 * missing, badly signed, expired, for another session or node, or signed by a node other than
 * the one wanted. The signaller (Hub) or someone on the way forged or replayed it.
 */
export class RtcBindingError extends DpcError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_RTC_BINDING', message, options);
  }
}

/** The SDP's DTLS fingerprint is not the one the peer signed (the SDP was swapped on the way). */
export class RtcFingerprintMismatchError extends DpcError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_RTC_FINGERPRINT_MISMATCH', message, options);
  }
}

/** A signalling message of tier 3 that does not parse or breaks a bound. */
export class RtcSignalMalformedError extends DpcError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_RTC_SIGNAL_MALFORMED', message, options);
  }
}

/** The WebRTC session failed (ICE failed, data channel closed, werift error). */
export class RtcSessionError extends DpcError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_RTC_SESSION', message, { retryable: true, ...options });
  }
}

/** The peer ended the session setup (refused, busy, or failed on its side). */
export class RtcPeerEndedError extends DpcError {
  readonly reason: string;
  constructor(reason: string) {
    super('DPC_RTC_PEER_ENDED', `peer ended the WebRTC session: ${reason}`, { retryable: true });
    this.reason = reason;
  }
}

/** Too many sessions being set up at once. */
export class RtcBusyError extends DpcError {
  constructor(message: string) {
    super('DPC_RTC_BUSY', message, { retryable: true });
  }
}

/** More unread data arrived on a data channel than the stream holds. */
export class RtcOverflowError extends DpcError {
  constructor(bytes: number) {
    super('DPC_RTC_OVERFLOW', `peer sent ${bytes} bytes nobody read`);
  }
}

/**
 * werift did not finish gathering candidates within the step deadline with TURN configured (a
 * TURN server that refuses the credentials or never answers stalls it). The caller retries once
 * without TURN.
 */
export class RtcTurnUnusableError extends DpcError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_RTC_TURN_UNUSABLE', message, { retryable: true, ...options });
  }
}
