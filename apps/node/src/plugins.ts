import type { Strategy } from '@dpc/core';
import type { Logger } from './log.js';
import type { DpcNode } from './node.js';

/**
 * A tier package the app wires in when it is installed. Tier packages are optional: an absent
 * one is simply not offered to the orchestrator.
 */
export interface TierPlugin {
  name: string;
  start(ctx: { node: DpcNode; log: Logger }): Promise<{ strategy?: Strategy; stop(): Promise<void>; info?: Record<string, unknown> }>;
}

/** Loads every installed optional tier package. */
export async function loadTierPlugins(log: Logger): Promise<TierPlugin[]> {
  const plugins: TierPlugin[] = [];
  for (const load of OPTIONAL_TIERS) {
    try {
      const p = await load();
      if (p) plugins.push(p);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ERR_MODULE_NOT_FOUND') log.debug('optional tier not installed', { error: err });
      else log.warn('optional tier failed to load', { error: err });
    }
  }
  return plugins;
}

/** Loaders of the optional tier packages (filled as tier packages land). */
export const OPTIONAL_TIERS: Array<() => Promise<TierPlugin | undefined>> = [
  async () => {
    await import('@dpc/relay'); // throws ERR_MODULE_NOT_FOUND when the tier is not installed
    return (await import('./relay-plugin.js')).relayPlugin;
  },
];
