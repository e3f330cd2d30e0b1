/**
 * Typed errors with stable codes. Check errors by `code` (or `name`), never by `instanceof`:
 * two copies of a package may be installed side by side.
 */

export interface DpcErrorOptions {
  cause?: unknown;
  retryable?: boolean;
}

/** Base class of every error this stack throws. `code` is stable across versions. */
export class DpcError extends Error {
  readonly code: string;
  readonly retryable: boolean;

  constructor(code: string, message: string, options: DpcErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.name = new.target.name;
    this.retryable = options.retryable ?? false;
  }
}

/** A class whose constructor makes DpcErrors (DpcError itself or a subclass with its constructor). */
export type DpcErrorBase<I extends DpcError = DpcError> = new (code: string, message: string, options?: DpcErrorOptions) => I;

/** What `errorClass` returns: a constructor taking `Args`, whose instances carry the fixed `code`. */
export type DpcErrorClass<Code extends string, Args extends unknown[], I extends DpcError = DpcError> = new (
  ...args: Args
) => I & { readonly code: Code };

/**
 * The base of an error class with a fixed `code`, to extend with an empty body: the subclass's
 * own name is the error's `name`, `instanceof` works as for any class, and the instances are
 * DpcErrors (of `base`, when given). Without `message` the constructor takes
 * `(message, options?)`; with it, `message`'s arguments (the message is built from them).
 *
 * @example
 * ```ts
 * import { errorClass } from '@dpc/core';
 *
 * // The store has no room for the item.
 * export class StoreFullError extends errorClass('DPC_X_STORE_FULL', { retryable: true }) {}
 * // The item is larger than the limit.
 * export class TooLargeError extends errorClass('DPC_X_TOO_LARGE', {
 *   message: (size: number, max: number) => `item is ${size} bytes, the limit is ${max}`,
 * }) {}
 *
 * throw new StoreFullError('the store is full'); // name 'StoreFullError', code 'DPC_X_STORE_FULL'
 * ```
 */
export function errorClass<const Code extends string, I extends DpcError = DpcError>(
  code: Code,
  opts?: { base?: DpcErrorBase<I>; retryable?: boolean },
): DpcErrorClass<Code, [message: string, options?: DpcErrorOptions], I>;
export function errorClass<const Code extends string, Args extends unknown[], I extends DpcError = DpcError>(
  code: Code,
  opts: { base?: DpcErrorBase<I>; retryable?: boolean; message: (...args: Args) => string },
): DpcErrorClass<Code, Args, I>;
export function errorClass(
  code: string,
  opts: { base?: DpcErrorBase; retryable?: boolean; message?: (...args: unknown[]) => string } = {},
): DpcErrorClass<string, unknown[]> {
  const Base = opts.base ?? DpcError;
  const retryable = opts.retryable ?? false;
  const build = opts.message;
  return class extends Base {
    constructor(...args: unknown[]) {
      if (build) super(code, build(...args), { retryable });
      else super(code, args[0] as string, { retryable, ...(args[1] as DpcErrorOptions | undefined) });
    }
  };
}

/** True when `err` is a dpc error with the given code (works across package copies). */
export function isDpcError(err: unknown, code?: string): err is DpcError {
  if (typeof err !== 'object' || err === null) return false;
  const c = (err as { code?: unknown }).code;
  if (typeof c !== 'string' || !c.startsWith('DPC_')) return false;
  return code === undefined || c === code;
}

// ---- cancellation and time ----
export class AbortedError extends DpcError {
  constructor(message = 'operation aborted', options?: DpcErrorOptions) {
    super('DPC_ABORTED', message, options);
  }
}
export class TimeoutError extends DpcError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_TIMEOUT', message, { retryable: true, ...options });
  }
}

// ---- identity ----
export class IdentityError extends DpcError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_IDENTITY', message, options);
  }
}

// ---- signed records ----
export class RecordMalformedError extends DpcError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_RECORD_MALFORMED', message, options);
  }
}
export class RecordTooLargeError extends DpcError {
  constructor(size: number, max: number) {
    super('DPC_RECORD_TOO_LARGE', `record is ${size} bytes, the limit is ${max}`);
  }
}
export class RecordSignatureError extends DpcError {
  constructor(message = 'record signature does not verify') {
    super('DPC_RECORD_BAD_SIGNATURE', message);
  }
}
export class RecordNodeIdMismatchError extends DpcError {
  constructor(claimed: string, derived: string) {
    super('DPC_RECORD_NODE_ID_MISMATCH', `record claims node id ${claimed} but its key hashes to ${derived}`);
  }
}
export class RecordWrongKeyError extends DpcError {
  constructor(expected: string, got: string) {
    super('DPC_RECORD_WRONG_KEY', `record is signed by ${got}, expected ${expected}`);
  }
}
export class RecordExpiredError extends DpcError {
  constructor(expiresAt: number, now: number) {
    super('DPC_RECORD_EXPIRED', `record expired at ${new Date(expiresAt).toISOString()} (now ${new Date(now).toISOString()})`);
  }
}

// ---- frames ----
export class FrameTooLargeError extends DpcError {
  constructor(size: number, max: number) {
    super('DPC_FRAME_TOO_LARGE', `frame of ${size} bytes exceeds the limit of ${max}`);
  }
}
export class FrameMalformedError extends DpcError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_FRAME_MALFORMED', message, options);
  }
}
/** Which bound of an untrusted decode was hit (see `DecodeLimits`). */
export type DecodeLimit = 'length' | 'depth' | 'elements';
/**
 * Untrusted MessagePack refused before decoding: a declared length beyond the bytes left
 * (`length`), nesting deeper than `maxDepth` (`depth`), more than `maxElements` values (`elements`).
 */
export class DecodeLimitError extends DpcError {
  readonly limit: DecodeLimit;
  constructor(limit: DecodeLimit, message: string) {
    super('DPC_DECODE_LIMIT', `MessagePack refused (${limit}): ${message}`);
    this.limit = limit;
  }
}
export class FrameTruncatedError extends DpcError {
  constructor(buffered: number) {
    super('DPC_FRAME_TRUNCATED', `stream ended inside a frame (${buffered} bytes buffered)`);
  }
}
export class SchemaError extends DpcError {
  readonly path: string;
  constructor(path: string, message: string) {
    super('DPC_SCHEMA', `${path || 'value'}: ${message}`);
    this.path = path;
  }
}

// ---- secure channel ----
export class PeerIdentityMismatchError extends DpcError {
  readonly expected: string;
  readonly actual: string;
  constructor(expected: string, actual: string) {
    super('DPC_PEER_IDENTITY_MISMATCH', `peer presented node id ${actual}, expected ${expected}`);
    this.expected = expected;
    this.actual = actual;
  }
}
export class HandshakeTimeoutError extends DpcError {
  constructor(ms: number) {
    super('DPC_HANDSHAKE_TIMEOUT', `secure handshake did not complete within ${ms} ms`, { retryable: true });
  }
}
/** The peer speaks TLS, but only 1.2 or older (its hello offered no 1.3, or it said protocol_version). */
export class TlsDowngradeError extends DpcError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_TLS_DOWNGRADE', message, options);
  }
}
/** The peer's first bytes are not a TLS handshake at all (random bytes, HTTP, junk records). */
export class NotTlsError extends DpcError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_HANDSHAKE_NOT_TLS', message, options);
  }
}
export class HandshakeError extends DpcError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_HANDSHAKE_FAILED', message, { retryable: true, ...options });
  }
}
export class PeerRejectedError extends DpcError {
  readonly reason: string;
  constructor(reason: string) {
    super('DPC_PEER_REJECTED', `peer rejected the connection: ${reason}`);
    this.reason = reason;
  }
}
export class ConnectionClosedError extends DpcError {
  constructor(message = 'connection is closed', options?: DpcErrorOptions) {
    super('DPC_CONNECTION_CLOSED', message, { retryable: true, ...options });
  }
}

// ---- config ----
export class ConfigError extends DpcError {
  readonly file: string | undefined;
  readonly section: string | undefined;
  readonly key: string | undefined;
  readonly value: string | undefined;
  readonly expected: string | undefined;
  constructor(detail: { file?: string; section?: string; key?: string; value?: string; expected?: string }, message?: string) {
    const where = [detail.file ?? '<env/defaults>', detail.section ? `[${detail.section}]` : undefined, detail.key]
      .filter(Boolean)
      .join(' ');
    const text =
      message ?? `${where}: invalid value ${JSON.stringify(detail.value)}${detail.expected ? `, expected ${detail.expected}` : ''}`;
    super('DPC_CONFIG', text);
    this.file = detail.file;
    this.section = detail.section;
    this.key = detail.key;
    this.value = detail.value;
    this.expected = detail.expected;
  }
}

// ---- tiers ----
/** A strategy that cannot be used for this peer (says so without waiting). */
export class TierNotApplicableError extends DpcError {
  constructor(tier: string, reason: string) {
    super('DPC_TIER_NOT_APPLICABLE', `${tier}: ${reason}`);
  }
}
/** Every candidate of a tier failed. `causes` holds the per-candidate errors. */
export class DialError extends DpcError {
  readonly causes: unknown[];
  constructor(message: string, causes: unknown[]) {
    super('DPC_DIAL_FAILED', message, { retryable: true, cause: causes[0] });
    this.causes = causes;
  }
}
