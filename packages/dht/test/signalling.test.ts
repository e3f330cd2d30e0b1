import { generateIdentity } from '@dpc/core';
import { describe, expect, it } from 'vitest';
import { createSignalEnvelope, openSignalEnvelope, Registrations, ReplayGuard } from '../src/signalling.js';

describe('signalling state', () => {
  const peer = { host: '203.0.113.7', port: 4000 };

  it('a forwarder accepts a retransmitted REGISTER from the same address, refuses it from another', () => {
    const regs = new Registrations(8);
    const reg = { nodeId: 'n1', peer, ts: 1000, expiresAt: 70_000 };
    expect(regs.put(reg, 1000)).toBe('ok');
    expect(regs.put({ ...reg }, 1400)).toBe('ok'); // our answer was lost, the node sent it again
    expect(regs.put({ ...reg, peer: { host: '198.51.100.9', port: 4000 } }, 1500)).toBe('replay');
    expect(regs.put({ ...reg, ts: 999 }, 1500)).toBe('replay');
    expect(regs.put({ ...reg, ts: 21_000, peer: { host: '198.51.100.9', port: 5000 } }, 21_000)).toBe('ok');
    expect(regs.get('n1', 21_000)?.peer.port).toBe(5000);
  });

  it('a recipient sees a signal once: the same envelope again is a replay', () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const opened = openSignalEnvelope(createSignalEnvelope(alice, bob.kademliaId, { hi: 1 }));
    if (typeof opened === 'string') throw new Error(opened);
    const guard = new ReplayGuard();
    expect(guard.check(opened)).toBeNull();
    expect(guard.check(opened)).toBe('replay');
  });
});
