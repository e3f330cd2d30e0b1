/**
 * @dpc/orchestrator — reaches a peer through the best of the installed tiers. Sequential mode
 * follows the spec (priority 1→6, per-tier timeouts, Hub connected: skip 4–5, Hub absent: skip 3);
 * racing mode (default) starts tiers with a short stagger, prefers a better tier that answers
 * within a grace window, and moves relay/gossip sessions up when a better tier works later.
 * A PeerSession numbers messages and keeps them until acknowledged, so a path change loses none.
 *
 * @example
 * ```ts
 * import { defaultConfig, generateIdentity } from '@dpc/core';
 * import { createDirectListener, ipv4DirectStrategy } from '@dpc/direct';
 * import { createOrchestrator } from '@dpc/orchestrator';
 *
 * const me = generateIdentity();
 * const config = defaultConfig();
 * const orchestrator = createOrchestrator({
 *   localNodeId: me.nodeId,
 *   config,
 *   directory: dht, // anything with findPeer(nodeId, { signal }) → verified endpoint record
 *   strategies: [ipv4DirectStrategy({ identity: me })],
 * });
 * const session = await orchestrator.connect('dpc-node-…', { signal: AbortSignal.timeout(30_000) });
 * await session.send({ text: 'hello' }); // resolves when acknowledged
 * console.log(orchestrator.stats().strategy_usage);
 * ```
 */
export * from './constants.js';
export {
  ConnectFailedError,
  describeOutcome,
  OrchestratorStateError,
  PeerLookupError,
  SessionClosedError,
  SessionStoreError,
  type TierOutcome,
  WrongPeerError,
} from './errors.js';
export { type SessionFrame, sessionFrameSchema } from './messages.js';
export {
  type ConnectEvent,
  type ConnectionOrchestrator,
  type ConnectProgress,
  createOrchestrator,
  type OrchestratorOptions,
  type PeerDirectory,
} from './orchestrator.js';
export { planTiers, TIER_ENABLE_KEY, TIER_TIMEOUT_KEY, type TierPlan, tierEnabled, tierTimeoutMs } from './plan.js';
export { type DeferredPort, PATH_RANK, type PeerSession, preferConnection, type Queued } from './session.js';
export { type OrchestratorStats, percentile, type TierStats } from './stats.js';
