import { EventEmitter } from 'node:events';
import {
  type Connection,
  createRecord,
  defineStrategy,
  emptyEndpointBody,
  generateIdentity,
  isDpcError,
  type NetworkState,
} from '@dpc/core';
import { describe, expect, it } from 'vitest';

const peer = createRecord(generateIdentity(), { kind: 'endpoint', body: emptyEndpointBody() });
const conn = new EventEmitter() as unknown as Connection;

describe('defineStrategy', () => {
  it('takes its priority from the tier name and connects when the rule applies, with the network it was given', async () => {
    const seen: NetworkState[] = [];
    const st = defineStrategy({
      name: 'udp_hole_punch',
      isApplicable: (_peer, network) => (network.natType === 'cone' ? { applicable: true } : { applicable: false, reason: 'no cone' }),
      connect: async (_peer, { network }) => {
        seen.push(network);
        return conn;
      },
    });
    expect(st.name).toBe('udp_hole_punch');
    expect(st.priority).toBe(4);
    const network: NetworkState = { hubConnected: false, natType: 'cone' };
    await expect(st.connect(peer, { signal: new AbortController().signal, network })).resolves.toBe(conn);
    expect(seen).toEqual([network]);
  });

  it('passes a per-peer deadline through when the tier names one, and has none otherwise', () => {
    const network: NetworkState = { hubConnected: false, natType: 'cone' };
    const own = defineStrategy({
      name: 'udp_hole_punch',
      isApplicable: () => ({ applicable: true }),
      connect: async () => conn,
      deadlineMs: (p, n) => (p === peer && n.natType === 'cone' ? 30_000 : undefined),
    });
    expect(own.deadlineMs?.(peer, network)).toBe(30_000);
    expect(own.deadlineMs?.(peer, { hubConnected: false })).toBeUndefined();
    const plain = defineStrategy({ name: 'volunteer_relay', isApplicable: () => ({ applicable: true }), connect: async () => conn });
    expect(plain.deadlineMs).toBeUndefined();
  });

  it('refuses with DPC_TIER_NOT_APPLICABLE and the rule’s reason without dialing', async () => {
    let dialed = 0;
    const st = defineStrategy({
      name: 'volunteer_relay',
      isApplicable: () => ({ applicable: false, reason: 'peer lists no relay' }),
      connect: async () => {
        dialed++;
        return conn;
      },
    });
    const err = await st.connect(peer, { signal: new AbortController().signal }).catch((e: unknown) => e);
    expect(isDpcError(err, 'DPC_TIER_NOT_APPLICABLE')).toBe(true);
    expect((err as Error).message).toBe('volunteer_relay: peer lists no relay');
    expect(dialed).toBe(0);
  });

  it('rejects at once with the typed abort error when the signal is already aborted', async () => {
    let dialed = 0;
    const st = defineStrategy({
      name: 'ipv4_direct',
      isApplicable: () => ({ applicable: true }),
      connect: async () => {
        dialed++;
        return conn;
      },
    });
    const ctrl = new AbortController();
    ctrl.abort();
    const err = await st.connect(peer, { signal: ctrl.signal }).catch((e: unknown) => e);
    expect(isDpcError(err, 'DPC_ABORTED')).toBe(true);
    expect(dialed).toBe(0);
  });

  it('assumes defaultNetwork (else no Hub) when connect is given no network', async () => {
    const seen: NetworkState[] = [];
    const rule = (_p: unknown, network: NetworkState) => {
      seen.push(network);
      return network.hubConnected ? ({ applicable: true } as const) : ({ applicable: false, reason: 'no Hub' } as const);
    };
    const withHub = defineStrategy({
      name: 'hub_webrtc',
      isApplicable: rule,
      connect: async () => conn,
      defaultNetwork: { hubConnected: true },
    });
    await expect(withHub.connect(peer, { signal: new AbortController().signal })).resolves.toBe(conn);
    const plain = defineStrategy({ name: 'hub_webrtc', isApplicable: rule, connect: async () => conn });
    const err = await plain.connect(peer, { signal: new AbortController().signal }).catch((e: unknown) => e);
    expect(isDpcError(err, 'DPC_TIER_NOT_APPLICABLE')).toBe(true);
    expect(seen).toEqual([{ hubConnected: true }, { hubConnected: false }]);
  });
});
