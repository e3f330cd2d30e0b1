import { DpcError, type TierName } from '@dpc/core';

/** What happened to one tier during a connect(). */
export type TierOutcome =
  | {
      tier: TierName;
      result: 'skipped';
      reason: 'disabled' | 'not installed' | 'hub offline' | 'hub connected' | 'not applicable';
      detail?: string;
    }
  | { tier: TierName; result: 'timed out'; afterMs: number }
  | { tier: TierName; result: 'failed'; reason: string; code?: string; afterMs: number }
  | { tier: TierName; result: 'cancelled'; detail: string }
  | { tier: TierName; result: 'connected'; afterMs: number };

export function describeOutcome(o: TierOutcome): string {
  switch (o.result) {
    case 'skipped':
      return `${o.tier}: skipped (${o.reason}${o.detail ? `: ${o.detail}` : ''})`;
    case 'timed out':
      return `${o.tier}: timed out after ${Math.round(o.afterMs)} ms`;
    case 'failed':
      return `${o.tier}: failed (${o.reason})`;
    case 'cancelled':
      return `${o.tier}: cancelled (${o.detail})`;
    case 'connected':
      return `${o.tier}: connected in ${Math.round(o.afterMs)} ms`;
  }
}

/** connect() failed on every tier; `tiers` says what happened to each of the six. */
export class ConnectFailedError extends DpcError {
  readonly peerId: string;
  readonly tiers: TierOutcome[];
  constructor(peerId: string, tiers: TierOutcome[], cause?: unknown) {
    super('DPC_CONNECT_FAILED', `could not reach ${peerId}:\n  ${tiers.map(describeOutcome).join('\n  ')}`, { retryable: true, cause });
    this.peerId = peerId;
    this.tiers = tiers;
  }
}

/** The peer's endpoint record could not be found. */
export class PeerLookupError extends DpcError {
  constructor(peerId: string, cause: unknown) {
    super('DPC_PEER_LOOKUP_FAILED', `cannot find ${peerId}'s endpoint record: ${(cause as Error)?.message ?? cause}`, {
      retryable: true,
      cause,
    });
  }
}

/** The session was closed; its unacknowledged messages were not delivered. */
export class SessionClosedError extends DpcError {
  constructor(message = 'session closed') {
    super('DPC_SESSION_CLOSED', message);
  }
}

/** The orchestrator is stopped or over its session limit. */
export class OrchestratorStateError extends DpcError {
  constructor(message: string) {
    super('DPC_ORCHESTRATOR_STATE', message);
  }
}

/** The session store failed; the message is still sent but would not survive a restart. */
export class SessionStoreError extends DpcError {
  constructor(message: string, cause?: unknown) {
    super('DPC_SESSION_STORE', message, { cause });
  }
}

/** A tier returned a connection to another peer, or tagged with another tier, than it was asked for. */
export class WrongPeerError extends DpcError {
  constructor(message: string) {
    super('DPC_WRONG_PEER', message);
  }
}
