import {
  createRecord,
  defaultConfig,
  emptyEndpointBody,
  generateIdentity,
  type Strategy,
  TIERS,
  type TierName,
  tierPriority,
} from '@dpc/core';
import { percentile, planTiers, preferConnection } from '@dpc/orchestrator';
import { describe, expect, it } from 'vitest';

const peer = createRecord(generateIdentity(), { kind: 'endpoint', body: emptyEndpointBody() });
const stub = (name: TierName, applicable = true): Strategy => ({
  name,
  priority: tierPriority(name),
  isApplicable: () => (applicable ? { applicable: true } : { applicable: false, reason: 'nothing to dial' }),
  connect: () => Promise.reject(new Error('not used')),
});
const all = TIERS.map((t) => stub(t));
const plan = (cfg = defaultConfig().connection, hubConnected = false, strategies = all) =>
  planTiers(strategies, cfg, peer, { hubConnected });
const names = (p: ReturnType<typeof plan>) => p.eligible.map((s) => s.name);

describe('tier planning (pure)', () => {
  it('without a Hub: 1, 2, 4, 5, 6 in priority order; tier 3 skipped as hub offline', () => {
    const p = plan();
    expect(names(p)).toEqual(['ipv6_direct', 'ipv4_direct', 'udp_hole_punch', 'volunteer_relay', 'gossip']);
    expect(p.skipped).toEqual([{ tier: 'hub_webrtc', result: 'skipped', reason: 'hub offline' }]);
  });

  it('with a Hub: 1, 2, 3, 6; tiers 4 and 5 skipped', () => {
    const p = plan(undefined, true);
    expect(names(p)).toEqual(['ipv6_direct', 'ipv4_direct', 'hub_webrtc', 'gossip']);
    expect(p.skipped.map((s) => `${s.tier}:${s.result === 'skipped' && s.reason}`)).toEqual([
      'udp_hole_punch:hub connected',
      'volunteer_relay:hub connected',
    ]);
  });

  it.each([
    ['enable_ipv6', 'ipv6_direct'],
    ['enable_ipv4', 'ipv4_direct'],
    ['enable_hub_webrtc', 'hub_webrtc'],
    ['enable_hole_punching', 'udp_hole_punch'],
    ['enable_relays', 'volunteer_relay'],
    ['enable_gossip', 'gossip'],
  ] as const)('%s = false skips %s as disabled', (flag, tier) => {
    const cfg = { ...defaultConfig().connection, [flag]: false };
    const p = plan(cfg, tier === 'hub_webrtc');
    expect(names(p)).not.toContain(tier);
    expect(p.skipped).toContainEqual({ tier, result: 'skipped', reason: 'disabled', detail: `${flag} = false` });
  });

  it('an absent tier package is simply not offered', () => {
    const p = plan(undefined, false, [stub('ipv4_direct'), stub('volunteer_relay')]);
    expect(names(p)).toEqual(['ipv4_direct', 'volunteer_relay']);
    expect(p.skipped.filter((s) => s.result === 'skipped' && s.reason === 'not installed').map((s) => s.tier)).toEqual([
      'ipv6_direct',
      'hub_webrtc',
      'udp_hole_punch',
      'gossip',
    ]);
  });

  it('a strategy that does not apply is skipped with its reason', () => {
    const p = plan(undefined, false, [stub('ipv6_direct', false), stub('ipv4_direct')]);
    expect(p.skipped).toContainEqual({ tier: 'ipv6_direct', result: 'skipped', reason: 'not applicable', detail: 'nothing to dial' });
  });

  it('prefers the better tier, then the path dialled by the smaller node id', () => {
    expect(preferConnection({ tier: 'ipv4_direct', initiator: 'b' }, { tier: 'volunteer_relay', initiator: 'a' })).toBe('a');
    expect(preferConnection({ tier: 'volunteer_relay', initiator: 'a' }, { tier: 'ipv6_direct', initiator: 'b' })).toBe('b');
    expect(preferConnection({ tier: 'ipv4_direct', initiator: 'b' }, { tier: 'ipv4_direct', initiator: 'a' })).toBe('b');
  });

  it('percentiles by nearest rank', () => {
    expect(percentile([], 50)).toBeNull();
    expect(percentile([5, 1, 3, 2, 4], 50)).toBe(3);
    expect(
      percentile(
        Array.from({ length: 100 }, (_, i) => i + 1),
        90,
      ),
    ).toBe(90);
    expect(
      percentile(
        Array.from({ length: 100 }, (_, i) => i + 1),
        99,
      ),
    ).toBe(99);
  });
});
