import { DpcError } from '@dpc/core';
import type { DisconnectReason, RefusalCode } from './messages.js';

/** Refusals worth trying another relay for. */
const RETRYABLE: ReadonlySet<string> = new Set(['full', 'bandwidth', 'rate_limited', 'expired', 'stopping', 'replaced', 'data_timeout']);

/** A relay refused a request with a typed answer (`refusal` is the wire code). */
export class RelayRefusedError extends DpcError {
  readonly refusal: RefusalCode;
  readonly relayNodeId: string | undefined;
  constructor(refusal: RefusalCode, reason: string, relayNodeId?: string) {
    super('DPC_RELAY_REFUSED', `relay ${relayNodeId ?? ''} refused (${refusal}): ${reason}`.replace('  ', ' '), {
      retryable: RETRYABLE.has(refusal),
    });
    this.refusal = refusal;
    this.relayNodeId = relayNodeId;
  }
}

/** No relay could be found (none in the directory, none listed by the peer). */
export class NoRelayError extends DpcError {
  constructor(message = 'no relay available') {
    super('DPC_RELAY_NONE', message, { retryable: true });
  }
}

/**
 * A relayed path closed: the relay ended the session (`reason` from RELAY_DISCONNECT) or the
 * control connection to the relay was lost (`relay_lost`). A session layer moves elsewhere.
 */
export class RelayPathClosedError extends DpcError {
  readonly reason: DisconnectReason | 'relay_lost';
  constructor(reason: DisconnectReason | 'relay_lost', options?: { cause?: unknown }) {
    super('DPC_RELAY_PATH_CLOSED', `relayed path closed: ${reason}`, { retryable: true, ...options });
    this.reason = reason;
  }
}

/** A relay server option or state that cannot work (e.g. nothing to announce as its address). */
export class RelayConfigError extends DpcError {
  constructor(message: string) {
    super('DPC_RELAY_CONFIG', message);
  }
}

/**
 * A volunteer relay was asked to announce an address that nobody on the internet can reach
 * (private, loopback, link-local, CGNAT, multicast, unspecified): it does not volunteer.
 * `ip` is the refused address, `reason` says which range it is in.
 */
export class RelayPublicAddressError extends DpcError {
  readonly ip: string;
  readonly reason: string;
  constructor(ip: string, reason: string) {
    super(
      'DPC_RELAY_PUBLIC_ADDRESS',
      `relay will not announce ${ip} as its public address: ${reason}; set [relay] public_ip to an address reachable from the internet`,
    );
    this.ip = ip;
    this.reason = reason;
  }
}
