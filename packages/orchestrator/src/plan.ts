import { type DpcConfig, type NetworkState, type SignedRecord, type Strategy, secondsToMs, TIERS, type TierName } from '@dpc/core';
import type { TierOutcome } from './errors.js';

/** The `[connection]` flag that enables each tier. */
export const TIER_ENABLE_KEY: Record<TierName, keyof DpcConfig['connection']> = {
  ipv6_direct: 'enable_ipv6',
  ipv4_direct: 'enable_ipv4',
  hub_webrtc: 'enable_hub_webrtc',
  udp_hole_punch: 'enable_hole_punching',
  volunteer_relay: 'enable_relays',
  gossip: 'enable_gossip',
};
/** The `[connection]` key holding each tier's timeout (seconds). */
export const TIER_TIMEOUT_KEY: Record<TierName, keyof DpcConfig['connection']> = {
  ipv6_direct: 'ipv6_timeout',
  ipv4_direct: 'ipv4_timeout',
  hub_webrtc: 'webrtc_timeout',
  udp_hole_punch: 'hole_punch_timeout',
  volunteer_relay: 'relay_timeout',
  gossip: 'gossip_timeout',
};

/** The tier's deadline from `[connection] <tier>_timeout`, in ms. */
export function tierTimeoutMs(config: DpcConfig['connection'], tier: TierName): number {
  return secondsToMs(config[TIER_TIMEOUT_KEY[tier]] as number);
}

export interface TierPlan {
  /** Strategies to try, best first. */
  eligible: Strategy[];
  /** Tiers not tried, and why. */
  skipped: TierOutcome[];
}

/**
 * Decides which tiers to try for a peer, in priority order (pure): each tier's `enable_*` flag,
 * whether it is installed, the hybrid rules (Hub connected: tiers 4–5 skipped because WebRTC
 * covers NAT traversal, except for a background `upgrade` from tier 3; Hub absent: tier 3
 * skipped) and the strategy's own applicability.
 */
export function planTiers(
  strategies: readonly Strategy[],
  config: DpcConfig['connection'],
  peer: SignedRecord<'endpoint'>,
  network: NetworkState,
  only?: ReadonlySet<TierName>,
  deferredInstalled = false,
  upgrade = false,
): TierPlan {
  const byTier = new Map(strategies.map((s) => [s.name, s]));
  const eligible: Strategy[] = [];
  const skipped: TierOutcome[] = [];
  for (const tier of TIERS) {
    if (only && !only.has(tier)) continue;
    if (!tierEnabled(config, tier)) {
      skipped.push({ tier, result: 'skipped', reason: 'disabled', detail: `${TIER_ENABLE_KEY[tier]} = false` });
      continue;
    }
    // Tier 6 is a deferred path, not a Strategy: the orchestrator hands it what a live tier cannot.
    if (tier === 'gossip' && deferredInstalled) continue;
    const s = byTier.get(tier);
    if (!s) {
      skipped.push({ tier, result: 'skipped', reason: 'not installed' });
      continue;
    }
    if (tier === 'hub_webrtc' && !network.hubConnected) {
      skipped.push({ tier, result: 'skipped', reason: 'hub offline' });
      continue;
    }
    // Not for a background upgrade (a session on tier 3 trying tier 4): that is why it runs.
    if ((tier === 'udp_hole_punch' || tier === 'volunteer_relay') && network.hubConnected && !upgrade) {
      skipped.push({ tier, result: 'skipped', reason: 'hub connected', detail: 'WebRTC via the Hub covers NAT traversal' });
      continue;
    }
    const a = s.isApplicable(peer, network);
    if (!a.applicable) {
      skipped.push({ tier, result: 'skipped', reason: 'not applicable', detail: a.reason });
      continue;
    }
    eligible.push(s);
  }
  return { eligible, skipped };
}

/** Whether `[connection] enable_*` allows the tier. */
export function tierEnabled(config: DpcConfig['connection'], tier: TierName): boolean {
  return config[TIER_ENABLE_KEY[tier]] === true;
}
