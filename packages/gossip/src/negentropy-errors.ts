import { DpcError, type DpcErrorOptions } from '@dpc/core';

/**
 * Errors of the Negentropy set reconciliation (NIP-77, protocol version 1). Every malformed or
 * hostile message ends in one of these; check them by `code`, not `instanceof`.
 */

/** The message's first byte is not a Negentropy protocol byte we can speak (0x61). */
export class NegentropyVersionError extends DpcError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_NEGENTROPY_VERSION', message, options);
  }
}

/** The message ends inside a varint, a bound, a fingerprint or an id list (or is empty). */
export class NegentropyTruncatedError extends DpcError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_NEGENTROPY_TRUNCATED', message, options);
  }
}

/** A varint is longer than 8 bytes or its value (or a summed timestamp) exceeds 2^53 - 1. */
export class NegentropyVarintError extends DpcError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_NEGENTROPY_VARINT', message, options);
  }
}

/** A range bound is not strictly above the previous one, or its id prefix is longer than 32 bytes. */
export class NegentropyBoundError extends DpcError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_NEGENTROPY_BOUND', message, options);
  }
}

/** A range has a mode other than Skip (0), Fingerprint (1) or IdList (2). */
export class NegentropyModeError extends DpcError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_NEGENTROPY_MODE', message, options);
  }
}

/** An id list announces more ids than the message has bytes for. */
export class NegentropyCountError extends DpcError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_NEGENTROPY_COUNT', message, options);
  }
}

/** A received message is larger than `maxMessageBytes`. */
export class NegentropyTooLargeError extends DpcError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_NEGENTROPY_TOO_LARGE', message, options);
  }
}

/** The API was used out of order (reconcile before initiate, unsealed storage, bad item or option). */
export class NegentropyUsageError extends DpcError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_NEGENTROPY_USAGE', message, options);
  }
}

/** The peer did not let the reconciliation end within `maxRounds` round trips. */
export class NegentropyRoundsError extends DpcError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_NEGENTROPY_ROUNDS', message, options);
  }
}
