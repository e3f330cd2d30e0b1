import { DpcError, type DpcErrorOptions } from '@dpc/core';

/** Codes the Hub sends in its `error` messages; the client turns each into the class below. */
export const HUB_ERROR_CODES = [
  'DPC_HUB_PEER_OFFLINE',
  'DPC_HUB_RATE_LIMITED',
  'DPC_HUB_MESSAGE_TOO_LARGE',
  'DPC_HUB_LOGIN_REFUSED',
  'DPC_HUB_BUSY',
  'DPC_HUB_PROTOCOL',
  'DPC_HUB_REPLACED',
  'DPC_HUB_UNAVAILABLE',
] as const;
export type HubErrorCode = (typeof HUB_ERROR_CODES)[number];

/** The target node is not logged in to any Hub sharing this one's Redis. */
export class HubPeerOfflineError extends DpcError {
  readonly nodeId: string;
  constructor(nodeId: string, options?: DpcErrorOptions) {
    super('DPC_HUB_PEER_OFFLINE', `${nodeId} is not connected to the Hub`, { retryable: true, ...options });
    this.nodeId = nodeId;
  }
}
/** This node sent more than its rate; the message was dropped (the connection stays). */
export class HubRateLimitedError extends DpcError {
  constructor(message = 'the Hub refused the message: rate limit', options?: DpcErrorOptions) {
    super('DPC_HUB_RATE_LIMITED', message, { retryable: true, ...options });
  }
}
/** A message or payload over the Hub's size limit. */
export class HubMessageTooLargeError extends DpcError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_HUB_MESSAGE_TOO_LARGE', message, options);
  }
}
/** The Hub refused the login: bad or replayed signature, expired challenge, malformed login. */
export class HubLoginRefusedError extends DpcError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_HUB_LOGIN_REFUSED', message, options);
  }
}
/** The Hub holds as many connections as it may (in total or from this source). */
export class HubBusyError extends DpcError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_HUB_BUSY', message, { retryable: true, ...options });
  }
}
/** A message that does not follow the Hub protocol. */
export class HubProtocolError extends DpcError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_HUB_PROTOCOL', message, options);
  }
}
/** The same node logged in again (here or on another Hub): this older connection was closed. */
export class HubReplacedError extends DpcError {
  constructor(message = 'this node logged in to the Hub again from elsewhere', options?: DpcErrorOptions) {
    super('DPC_HUB_REPLACED', message, { retryable: true, ...options });
  }
}
/** The Hub could not route the message (its Redis is down, the other Hub did not answer). */
export class HubUnavailableError extends DpcError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_HUB_UNAVAILABLE', message, { retryable: true, ...options });
  }
}
/** The client has no logged-in Hub connection right now. */
export class HubNotConnectedError extends DpcError {
  constructor(message = 'not connected to the Hub', options?: DpcErrorOptions) {
    super('DPC_HUB_NOT_CONNECTED', message, { retryable: true, ...options });
  }
}
/**
 * The TLS handshake with a `wss://` Hub failed: its certificate does not chain to a trusted CA
 * (`[hub] ca` or the system's), names another host, or has expired. Not retried any faster than
 * other failures: the client keeps its backoff.
 */
export class HubTlsError extends DpcError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_HUB_TLS', message, options);
  }
}
/** Bad Hub options or config. */
export class HubConfigError extends DpcError {
  constructor(message: string, options?: DpcErrorOptions) {
    super('DPC_HUB_CONFIG', message, options);
  }
}

/** The typed error for a code (and message) the Hub sent. */
export function hubErrorFromWire(code: string, message: string, to?: string): DpcError {
  switch (code) {
    case 'DPC_HUB_PEER_OFFLINE':
      return new HubPeerOfflineError(to ?? 'the peer');
    case 'DPC_HUB_RATE_LIMITED':
      return new HubRateLimitedError(message);
    case 'DPC_HUB_MESSAGE_TOO_LARGE':
      return new HubMessageTooLargeError(message);
    case 'DPC_HUB_LOGIN_REFUSED':
      return new HubLoginRefusedError(message);
    case 'DPC_HUB_BUSY':
      return new HubBusyError(message);
    case 'DPC_HUB_REPLACED':
      return new HubReplacedError(message);
    case 'DPC_HUB_UNAVAILABLE':
      return new HubUnavailableError(message);
    default:
      return new HubProtocolError(`${code}: ${message}`);
  }
}
