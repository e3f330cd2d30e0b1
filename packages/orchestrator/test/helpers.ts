import { connect as tcpConnect } from 'node:net';
import {
  type Connection,
  createRecord,
  type DpcConfig,
  defaultConfig,
  emptyEndpointBody,
  generateIdentity,
  type Identity,
  type SignedRecord,
  type Strategy,
  secureConnect,
  sleep,
  type TierName,
  tierPriority,
} from '@dpc/core';
import { createDirectListener, type DirectListener, ipv4DirectStrategy } from '@dpc/direct';
import { type ConnectionOrchestrator, createOrchestrator, type PeerDirectory } from '@dpc/orchestrator';

/**
 * An in-process directory of real signed records. It stands in for @dpc/dht in these
 * loopback tests of the orchestrator's own logic (the DHT has its own network tests).
 */
export class RecordDirectory implements PeerDirectory {
  readonly records = new Map<string, SignedRecord<'endpoint'>>();
  lookups = 0;
  async findPeer(nodeId: string): Promise<SignedRecord<'endpoint'>> {
    this.lookups++;
    const r = this.records.get(nodeId);
    if (!r) throw Object.assign(new Error(`no record for ${nodeId}`), { code: 'DPC_PEER_NOT_FOUND' });
    return r;
  }
}

export interface TestNode {
  identity: Identity;
  listener: DirectListener;
  orchestrator: ConnectionOrchestrator;
  config: DpcConfig;
  strategies: Strategy[];
  stop(): Promise<void>;
}

/**
 * A strategy for any tier that reaches the peer over real loopback TCP + TLS, tagged with that
 * tier, with a scripted behaviour: connect after `delayMs`, fail, or stall until cancelled.
 * Tiers 3, 4 and 6 have no package yet; this exercises the orchestrator's handling of them.
 */
export function scriptedTier(
  tier: TierName,
  identity: Identity,
  behaviour: { delayMs?: number; fail?: string; stall?: boolean } = {},
): Strategy & { calls: number; cancelled: number; behaviour: typeof behaviour } {
  const s = {
    name: tier,
    priority: tierPriority(tier),
    calls: 0,
    cancelled: 0,
    behaviour,
    isApplicable: () => ({ applicable: true as const }),
    async connect(peer: SignedRecord<'endpoint'>, opts: { signal: AbortSignal }): Promise<Connection> {
      s.calls++;
      opts.signal.addEventListener('abort', () => s.cancelled++, { once: true });
      const b = s.behaviour;
      if (b.stall) await sleep(3_600_000, opts.signal);
      if (b.delayMs) await sleep(b.delayMs, opts.signal);
      if (b.fail) throw Object.assign(new Error(b.fail), { code: 'DPC_TEST_FAILURE' });
      const ep = peer.body.ipv4_local[0] as { ip: string; port: number };
      const socket = tcpConnect(ep.port, ep.ip);
      socket.on('error', () => {});
      return secureConnect(socket, { identity, tier, expectedNodeId: peer.nodeId, signal: opts.signal });
    },
  };
  return s;
}

/** How a test node differs from the default: its tiers, config, Hub state, upgrade period. */
export interface NodeOptions {
  strategies?: (id: Identity) => Strategy[];
  config?: (c: DpcConfig) => void;
  hub?: () => boolean;
  upgradeIntervalMs?: number;
}

export async function makeNode(directory: RecordDirectory, opts: NodeOptions = {}): Promise<TestNode> {
  const identity = generateIdentity();
  const config = defaultConfig();
  config.connection.race_stagger = 0.05;
  config.connection.race_grace = 0.2;
  opts.config?.(config);
  const listener = createDirectListener({ identity, host: '127.0.0.1', port: 0 });
  await listener.start();
  directory.records.set(
    identity.nodeId,
    createRecord(identity, { kind: 'endpoint', body: { ...emptyEndpointBody(), ...listener.endpointBody({ allowLoopback: true }) } }),
  );
  const strategies = opts.strategies?.(identity) ?? [ipv4DirectStrategy({ identity, allowLoopback: true })];
  const orchestrator = createOrchestrator({
    localNodeId: identity.nodeId,
    directory,
    config,
    strategies,
    network: () => ({ hubConnected: opts.hub?.() ?? false }),
    ...(opts.upgradeIntervalMs !== undefined && { upgradeIntervalMs: opts.upgradeIntervalMs }),
  });
  listener.on('connection', (c) => orchestrator.accept(c));
  return {
    identity,
    listener,
    orchestrator,
    config,
    strategies,
    async stop() {
      await orchestrator.stop();
      await listener.stop();
    },
  };
}
