import { DpcError } from '@dpc/core';
import {
  GossipExpiredError,
  GossipForgedError,
  GossipMalformedError,
  GossipMessageError,
  GossipOverHopError,
  GossipOversizedError,
  GossipReplayedError,
  GossipStoppedError,
  GossipStoreFullError,
  GossipTamperedError,
  GossipUndecryptableError,
} from '@dpc/gossip';
import { describe, expect, it } from 'vitest';

describe('gossip errors', () => {
  it('each refusal is a GossipMessageError whose reason names its counter', () => {
    const cases: Array<[GossipMessageError, string, string, string]> = [
      [new GossipForgedError('x'), 'GossipForgedError', 'DPC_GOSSIP_FORGED', 'forged'],
      [new GossipTamperedError('x'), 'GossipTamperedError', 'DPC_GOSSIP_TAMPERED', 'tampered'],
      [new GossipReplayedError('x'), 'GossipReplayedError', 'DPC_GOSSIP_REPLAYED', 'replayed'],
      [new GossipExpiredError('x'), 'GossipExpiredError', 'DPC_GOSSIP_EXPIRED', 'expired'],
      [new GossipOverHopError('x'), 'GossipOverHopError', 'DPC_GOSSIP_OVER_HOP', 'over_hop'],
      [new GossipOversizedError(70_000, 65_536), 'GossipOversizedError', 'DPC_GOSSIP_OVERSIZED', 'oversized'],
      [new GossipMalformedError('x'), 'GossipMalformedError', 'DPC_GOSSIP_MALFORMED', 'malformed'],
      [new GossipUndecryptableError('x'), 'GossipUndecryptableError', 'DPC_GOSSIP_UNDECRYPTABLE', 'undecryptable'],
    ];
    for (const [err, name, code, reason] of cases) {
      expect(err).toBeInstanceOf(GossipMessageError);
      expect(err).toBeInstanceOf(DpcError);
      expect({ name: err.name, code: err.code, reason: err.reason }).toEqual({ name, code, reason });
    }
    expect(new GossipOversizedError(70_000, 65_536).message).toBe('gossip message is 70000 bytes, the limit is 65536');
  });

  it('store full is retryable, stopped is not, and neither is a message refusal', () => {
    const full = new GossipStoreFullError('the gossip store is full');
    expect(full.retryable).toBe(true);
    expect(full.name).toBe('GossipStoreFullError');
    expect(full).not.toBeInstanceOf(GossipMessageError);
    const stopped = new GossipStoppedError();
    expect(stopped.message).toBe('gossip is stopped');
    expect(stopped.code).toBe('DPC_GOSSIP_STOPPED');
    expect(stopped.retryable).toBe(false);
  });
});
