import { EventEmitter } from 'node:events';
import { connect as tcpConnect } from 'node:net';
import {
  type Connection,
  createRecord,
  type DeferredDelivery,
  type DeferredItem,
  type DeferredRecipient,
  type DpcConfig,
  defaultConfig,
  emptyEndpointBody,
  generateIdentity,
  type Identity,
  type KvStore,
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
  /** Same identity again (a restarted node). */
  identity?: Identity;
  /** Listen on this port (a restarted node keeps its record valid). */
  port?: number;
  store?: KvStore;
  deferred?: DeferredDelivery;
  maxSessions?: number;
  maxReorderBytes?: number;
}

export async function makeNode(directory: RecordDirectory, opts: NodeOptions = {}): Promise<TestNode> {
  const identity = opts.identity ?? generateIdentity();
  const config = defaultConfig();
  config.connection.race_stagger = 0.05;
  config.connection.race_grace = 0.2;
  opts.config?.(config);
  const listener = createDirectListener({ identity, host: '127.0.0.1', port: opts.port ?? 0 });
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
    ...(opts.store && { store: opts.store }),
    ...(opts.deferred && { deferred: opts.deferred }),
    ...(opts.maxSessions !== undefined && { maxSessions: opts.maxSessions }),
    ...(opts.maxReorderBytes !== undefined && { maxReorderBytes: opts.maxReorderBytes }),
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

/**
 * A scripted deferred path (tier 6 stand-in until @dpc/gossip lands): an in-memory mailbox
 * per node id. Items wait until the recipient's endpoint is online; receipts flow back the
 * same way. `submit` resolves at once (the mailbox is "durable" for the test's lifetime).
 */
export class MemoryMailbox {
  readonly #boxes = new Map<
    string,
    Array<{ kind: 'message' | 'receipt'; from: string; publicKey: Buffer; item?: DeferredItem; ids?: string[] }>
  >();
  readonly #online = new Map<string, MailboxEndpoint>();
  submitted = 0;
  receipts = 0;
  /** Every item submitted, in order (what a capture of tier 6 would show). */
  readonly items: Array<{ from: string; to: string; item: DeferredItem }> = [];

  endpoint(identity: Identity): MailboxEndpoint {
    return new MailboxEndpoint(this, identity);
  }

  /** @internal */
  post(
    to: DeferredRecipient,
    entry: { kind: 'message' | 'receipt'; from: string; publicKey: Buffer; item?: DeferredItem; ids?: string[] },
  ): void {
    let box = this.#boxes.get(to.nodeId);
    if (!box) {
      box = [];
      this.#boxes.set(to.nodeId, box);
    }
    box.push(entry);
    this.flush(to.nodeId);
  }

  /** @internal */
  setOnline(nodeId: string, ep: MailboxEndpoint | undefined): void {
    if (ep) this.#online.set(nodeId, ep);
    else this.#online.delete(nodeId);
    this.flush(nodeId);
  }

  flush(nodeId: string): void {
    const ep = this.#online.get(nodeId);
    const box = this.#boxes.get(nodeId);
    if (!ep || !box) return;
    this.#boxes.delete(nodeId);
    setImmediate(() => {
      for (const e of box) {
        if (e.kind === 'message') ep.emit('message', { from: e.from, publicKey: e.publicKey, item: e.item });
        else ep.emit('receipt', { from: e.from, ids: e.ids });
      }
    });
  }

  waiting(nodeId: string): number {
    return this.#boxes.get(nodeId)?.length ?? 0;
  }
}

export class MailboxEndpoint extends EventEmitter implements DeferredDelivery {
  readonly tier = 'gossip' as const;
  readonly #mailbox: MailboxEndpoint['mailbox'];
  readonly #identity: Identity;
  constructor(
    readonly mailbox: MemoryMailbox,
    identity: Identity,
  ) {
    super();
    this.#mailbox = mailbox;
    this.#identity = identity;
  }
  online(on: boolean): void {
    this.#mailbox.setOnline(this.#identity.nodeId, on ? this : undefined);
  }
  async submit(recipient: DeferredRecipient, item: DeferredItem): Promise<void> {
    this.#mailbox.submitted++;
    this.#mailbox.items.push({ from: this.#identity.nodeId, to: recipient.nodeId, item });
    this.#mailbox.post(recipient, { kind: 'message', from: this.#identity.nodeId, publicKey: this.#identity.publicKey, item });
  }
  async receipt(recipient: DeferredRecipient, ids: readonly string[]): Promise<void> {
    this.#mailbox.receipts++;
    this.#mailbox.post(recipient, { kind: 'receipt', from: this.#identity.nodeId, publicKey: this.#identity.publicKey, ids: [...ids] });
  }
}
