import { DpcError } from '@dpc/core';

/** Every punch round went out and no probe came back before the deadline (or the peer gave up). */
export class PunchFailedError extends DpcError {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super('DPC_PUNCH_FAILED', message, { retryable: true, ...(opts.cause !== undefined && { cause: opts.cause }) });
  }
}

/** The peer answered the punch request with a refusal (its tier 4 is off, busy or cannot punch this pair). */
export class PunchRefusedError extends DpcError {
  readonly reason: string;
  constructor(reason: string) {
    super('DPC_PUNCH_REFUSED', `peer refused the hole punch: ${reason}`, { retryable: true });
    this.reason = reason;
  }
}

/** A punched path went silent: nothing heard from the peer for `silentMs`. */
export class PathLostError extends DpcError {
  constructor(silentMs: number) {
    super('DPC_PATH_LOST', `punched UDP path lost: nothing heard from the peer for ${silentMs} ms`, { retryable: true });
  }
}

/** No DHT peer answered DISCOVER_ENDPOINT: the NAT type could not be measured. */
export class NatDiscoveryError extends DpcError {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super('DPC_NAT_DISCOVERY_FAILED', message, { retryable: true, ...(opts.cause !== undefined && { cause: opts.cause }) });
  }
}

/** A signalling payload or datagram of this protocol that does not parse (counted, dropped). */
export class PunchMessageError extends DpcError {
  constructor(message: string) {
    super('DPC_PUNCH_MESSAGE_MALFORMED', message);
  }
}
