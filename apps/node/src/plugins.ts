import type { TierName, TierPlugin } from '@dpc/core';

/**
 * An optional tier package: the tier it brings, its npm name and how to import it. An
 * installed tier package exports its `TierPlugin` as `tierPlugin`.
 */
export interface TierPackage {
  tier: TierName;
  package: string;
  import(): Promise<unknown>;
}

/** The optional tier packages this app knows (filled as tier packages land). */
export const TIER_PACKAGES: readonly TierPackage[] = [
  { tier: 'hub_webrtc', package: '@dpc/webrtc-hub', import: () => import('@dpc/webrtc-hub') },
  { tier: 'udp_hole_punch', package: '@dpc/holepunch', import: () => import('@dpc/holepunch') },
  { tier: 'volunteer_relay', package: '@dpc/relay', import: () => import('@dpc/relay') },
  { tier: 'gossip', package: '@dpc/gossip', import: () => import('@dpc/gossip') },
];

export interface LoadedTiers {
  plugins: TierPlugin[];
  /** Tier packages that are not installed. */
  missing: Array<{ tier: TierName; package: string }>;
  /** Tier packages that are installed but failed to load (a missing dependency, no `tierPlugin`). */
  broken: Array<{ tier: TierName; package: string; error: Error }>;
}

/** Imports every installed tier package and takes its plugin. Never throws. */
export async function loadTierPlugins(packages: readonly TierPackage[] = TIER_PACKAGES): Promise<LoadedTiers> {
  const out: LoadedTiers = { plugins: [], missing: [], broken: [] };
  for (const p of packages) {
    let mod: unknown;
    try {
      mod = await p.import();
    } catch (err) {
      const e = err as Error & { code?: string };
      // Only the package itself being absent is "not installed"; a dependency missing inside it is a broken install.
      if (e.code === 'ERR_MODULE_NOT_FOUND' && e.message.includes(`'${p.package}'`)) out.missing.push({ tier: p.tier, package: p.package });
      else out.broken.push({ tier: p.tier, package: p.package, error: e });
      continue;
    }
    const plugin = (mod as { tierPlugin?: TierPlugin }).tierPlugin;
    if (plugin && plugin.name === p.tier && typeof plugin.start === 'function') out.plugins.push(plugin);
    else
      out.broken.push({
        tier: p.tier,
        package: p.package,
        error: Object.assign(new Error(`${p.package} exports no tierPlugin for ${p.tier}`), { code: 'DPC_TIER_PLUGIN_INVALID' }),
      });
  }
  return out;
}
