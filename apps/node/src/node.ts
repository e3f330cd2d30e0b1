import { EventEmitter } from 'node:events';
import { isIPv4 } from 'node:net';
import { join } from 'node:path';
import {
  abortable,
  type Connection,
  Counters,
  type DeferredDelivery,
  type DpcConfig,
  EndpointParts,
  emptyEndpointBody,
  hostPort,
  type Identity,
  type KvStore,
  loadOrCreateIdentity,
  type NetworkState,
  openSequenceStore,
  parseExternalAddress,
  type Strategy,
  type TierContext,
  type TierDht,
  type TierName,
  type TierPlugin,
  timeoutSignal,
} from '@dpc/core';
import { createDht, type Dht, dhtOptionsFromConfig } from '@dpc/dht';
import { createDirectListener, type DirectListener, directFromConfig, localAddresses } from '@dpc/direct';
import {
  type ConnectionOrchestrator,
  type ConnectProgress,
  createOrchestrator,
  type PeerSession,
  type TierOutcome,
} from '@dpc/orchestrator';
import { openStore } from '@dpc/store';
import type { HubServer } from '@dpc/webrtc-hub';
import { watchAddresses } from './address-watch.js';
import type { Logger } from './log.js';
import { type LoadedTiers, loadTierPlugins, type TierPackage } from './plugins.js';
import { dhtBindHost } from './ports.js';

/** What the app sends as an application message. */
export interface ChatMessage {
  type: 'chat';
  text: string;
  sent_at: number;
}

export interface NodeEvents {
  listening: [{ nodeId: string; tcp: string[]; dht: string | null; hub?: string }];
  connected: [{ peerId: string; tier: TierName; ms: number; outcomes: TierOutcome[] }];
  /** A peer connected to this node: a new session from an inbound connection (the CLI's `connected`, `inbound: true`). */
  accepted: [{ peerId: string; tier: TierName }];
  message: [{ from: string; text: string; tier: TierName }];
  /** Messages found in the outbox at start, resent to these peers. */
  resumed: [{ peers: string[] }];
  upgraded: [{ peerId: string; from: TierName | undefined; to: TierName }];
  'path-lost': [{ peerId: string; tier: TierName; error?: Error }];
  /** The peer closed the session's path cleanly (it said goodbye: its node stopped, a sender exited). */
  disconnected: [{ peerId: string; tier: TierName; reason?: string }];
  /** An event a tier plugin reports for the user (e.g. tier 5's `relay`: session, session-end, refused). */
  'tier-event': [{ tier: TierName; event: string; fields: Record<string, unknown> }];
  /** An optional tier package is not installed: the node runs without that tier. */
  'tier-not-installed': [{ tier: TierName; package: string }];
  /** A tier reported a change of what the node knows about its network (merged state). */
  network: [NetworkState];
  error: [{ error: Error; context: string }];
  /** A message sent with `send` was acknowledged by the peer `ms` after it was queued (ack round trip). */
  acked: [{ peerId: string; tier: TierName | undefined; ms: number }];
}

export interface DpcNodeOptions {
  dataDir: string;
  config: DpcConfig;
  logger: Logger;
  /** Allow loopback addresses in records and dials (local demos and tests). */
  allowLoopback?: boolean;
  /**
   * DHT bind address ('dual' or an IP address). Default `[dht] host` of the config; when that is
   * 'dual' and `[p2p] listen_host` is a loopback address, that address (loopback only).
   */
  dhtHost?: string;
  /** Only these tier plugins (tests, demo). Default: every installed one of `tierPackages`. */
  plugins?: TierPlugin[];
  /** The optional tier packages to look for. Default TIER_PACKAGES. */
  tierPackages?: readonly TierPackage[];
  /** Quiet time before a changed endpoint record is re-signed and re-announced, ms. Default 200. */
  endpointDebounceMs?: number;
  /** How often a session on a worse tier (relay) tries the better ones, ms. Default: the orchestrator's (30 000). */
  upgradeIntervalMs?: number;
  /**
   * Poll period of the local interface addresses, ms; when they change the endpoint record is
   * re-read, the external IPv4 re-learnt, and the record re-signed and re-announced. 0: never.
   * Default 2000.
   */
  addressPollMs?: number;
  /**
   * Offset of this node's clock from the system clock, ms (−3 600 000: an hour behind). Used for
   * the records it signs and for its sequence store only, to test a node whose clock is wrong
   * (network namespaces share the kernel clock). Default 0.
   */
  clockOffsetMs?: number;
}

/** `host:port`, with an IPv6 host in brackets (`[::]:8889`). */
export { hostPort };

/** 127.0.0.0/8, ::1 or an IPv4-mapped loopback address. */
function isLoopbackIp(ip: string): boolean {
  return ip.startsWith('127.') || ip === '::1' || ip.startsWith('::ffff:127.');
}

/** Inbound connections a tier may hand over before the orchestrator exists (during start). */
const MAX_EARLY_INBOUND = 64;
/** A bootstrap node (nobody known at start) checks this often for its first contact, to announce to it, ms. */
const BOOTSTRAP_ANNOUNCE_CHECK_MS = 1_000;

/** A dpc node: identity, DHT, direct listener, installed tiers and the orchestrator. */
export class DpcNode extends EventEmitter<NodeEvents> {
  readonly opts: DpcNodeOptions;
  readonly counters = new Counters();
  identity!: Identity;
  dht!: Dht;
  listener!: DirectListener;
  orchestrator!: ConnectionOrchestrator;
  /** `<data-dir>/store`: session outboxes and receiver state (LevelDB; held by one process). */
  store: KvStore | undefined;
  strategies: Strategy[] = [];
  plugins: Array<{ name: TierName; stop(): Promise<void>; info?: Record<string, unknown> }> = [];
  /** The Hub this node serves (`[hub] serve = true`). */
  hub: HubServer | undefined;
  /** Optional tier packages found absent at start. */
  missingTiers: LoadedTiers['missing'] = [];
  readonly #shutdown = new AbortController();
  /** What tiers report about the network; the orchestrator's applicability checks read it. */
  readonly #network: NetworkState = { hubConnected: false };
  #parts: EndpointParts | undefined;
  #early: Connection[] = [];

  constructor(opts: DpcNodeOptions) {
    super();
    this.opts = opts;
  }

  get nodeId(): string {
    return this.identity.nodeId;
  }

  /** Starts every part; if one fails, what was started is stopped again and the error thrown. */
  async start(opts: { signal?: AbortSignal } = {}): Promise<void> {
    try {
      await this.#start(opts);
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  async #start(opts: { signal?: AbortSignal }): Promise<void> {
    const { config, logger } = this.opts;
    const allowLoopback = this.opts.allowLoopback ?? false;
    this.identity = await loadOrCreateIdentity(this.opts.dataDir);
    // First, so a second process on the same data directory fails before binding anything.
    this.store = await openStore(join(this.opts.dataDir, 'store'));
    const log = logger.child({ node: this.identity.nodeId.slice(9, 17) });
    // Tier 2 dials a peer's LAN address only when our external IPv4 (learned below) equals the peer's.
    const externalIPv4 = () => (this.#parts?.body() ?? this.dht?.endpointBody())?.ipv4_external.map((e) => e.ip);
    const direct = directFromConfig(config, this.identity, { allowLoopback, counters: this.counters, externalIPv4 });
    this.listener = direct.listener;
    this.strategies = [...direct.strategies];
    await this.listener.start(opts);
    // A node asked to listen on loopback only keeps its DHT there too (unless [dht] host says otherwise).
    const dhtHost = this.opts.dhtHost ?? dhtBindHost(config);
    this.dht = createDht({
      ...dhtOptionsFromConfig(config, this.identity),
      ...(dhtHost !== undefined && { host: dhtHost }), // else [dht] host
      dataDir: this.opts.dataDir, // dht-contacts.json: a fallback when the same seeds are down (never another network)
      sequence: openSequenceStore(this.opts.dataDir, { now: this.#clock }).next, // record seq survives restarts and a clock set back
      ...(this.opts.clockOffsetMs && { recordClock: this.#clock }),
      allowLoopback,
      allowPrivate: allowLoopback,
      counters: this.counters,
    });
    // Slow steps are shown at info level (joining the DHT, lookups); the rest at debug.
    this.dht.on('progress', (e) => {
      if (e.type === 'bootstrap:done') log.info('joined the DHT', { seeds_answered: e.answeredSeeds, known_nodes: e.routingTableSize });
      else if (e.type === 'lookup:done' && e.kind === 'value')
        log.info(e.found ? 'record found in the DHT' : 'record not found in the DHT', { rpcs: e.rpcs, ms: Math.round(e.ms) });
      else if (e.type === 'announce:done')
        log.info(`announced ${e.kind} record`, { stored_at: e.storedAt, seq: e.seq, issued_at: e.issuedAt });
      else if (e.type === 'bootstrap:saved' && e.action === 'tried')
        log.info('no seed answered yet: trying the contacts saved by an earlier run', { contacts: e.contacts });
      else if (e.type === 'bootstrap:saved')
        log.info('saved DHT contacts ignored: they were saved under other seeds, or this is a bootstrap node', {
          contacts: e.contacts,
          reason: e.reason,
        });
      else if (e.type === 'bootstrap:seed' && !e.ok)
        log.info(`seed ${hostPort(e.seed.host, e.seed.port)} did not answer`, { error: e.error });
      else log.debug('dht', { ...e });
    });
    this.dht.on('warning', (err) => log.warn('dht warning', { error: err }));
    // Each part of the endpoint record has one owner: the node its direct addresses, the DHT
    // signal_via, each tier plugin what it sets through its context.
    const parts = new EndpointParts({
      initial: { ...emptyEndpointBody(), ...this.listener.endpointBody({ allowLoopback }) },
      onChange: (body) => this.dht.setEndpointBody(body), // the DHT re-signs and re-announces a changed body
      ...(this.opts.endpointDebounceMs !== undefined && { debounceMs: this.opts.endpointDebounceMs }),
    });
    this.#parts = parts;
    parts.claim('node', 'ipv6', 'ipv4_local', 'ipv4_external');
    parts.claim('dht', 'signal_via');
    this.dht.setEndpointBody(parts.body());
    if (config.dht.seed_nodes.length > 0) log.info('joining the DHT', { seeds: config.dht.seed_nodes });
    else log.info('no [dht] seed_nodes: running as a bootstrap node (others list this node as their seed)');
    await this.dht.start(opts);
    await this.#learnExternalAddress(log);
    parts.flush();
    if (this.opts.addressPollMs !== 0) {
      watchAddresses({
        signal: this.#shutdown.signal,
        ...(this.opts.addressPollMs !== undefined && { intervalMs: this.opts.addressPollMs }),
        onChange: (change) => this.#onAddressChange(change, log),
        onError: (err) => log.warn('re-announcing after an address change failed', { error: err }),
      });
    }

    if (config.hub.serve) await this.#startHub(log, opts);

    const loaded: LoadedTiers = this.opts.plugins
      ? { plugins: this.opts.plugins, missing: [], broken: [] }
      : await loadTierPlugins(this.opts.tierPackages);
    for (const m of loaded.missing) {
      log.info(`tier ${m.tier} not installed (${m.package}): running without it`);
      this.emit('tier-not-installed', m);
    }
    this.missingTiers = loaded.missing;
    for (const b of loaded.broken) log.warn(`tier ${b.tier} failed to load (${b.package}): running without it`, { error: b.error });
    let deferred: DeferredDelivery | undefined;
    for (const p of loaded.plugins) {
      const started = await p.start(this.#tierContext(p.name, log.child({ tier: p.name })));
      if (started.strategy) this.strategies.push(started.strategy);
      if (started.deferred) {
        if (deferred) log.warn(`tier ${p.name} offers a second deferred path: ignored`);
        else deferred = started.deferred;
      }
      this.plugins.push({ name: p.name, stop: started.stop, ...(started.info && { info: started.info }) });
      log.info(`tier ${p.name} ready`, started.info ?? {});
    }
    parts.flush();

    this.orchestrator = createOrchestrator({
      localNodeId: this.identity.nodeId,
      directory: this.dht,
      config,
      strategies: this.strategies,
      network: () => ({ ...this.#network }),
      counters: this.counters,
      store: this.store,
      ...(deferred && { deferred }),
      ...(this.opts.upgradeIntervalMs !== undefined && { upgradeIntervalMs: this.opts.upgradeIntervalMs }),
    });
    this.listener.on('connection', (c) => this.acceptConnection(c));
    for (const c of this.#early.splice(0)) this.acceptConnection(c);
    this.orchestrator.on('connect', (e) => this.emit('connected', e));
    this.orchestrator.on('upgrade', (e) => this.emit('upgraded', e));
    this.orchestrator.on('path-lost', (e) => this.emit('path-lost', e));
    this.orchestrator.on('path-closed', (e) => this.emit('disconnected', e));
    // The receiving side of a new session (the CLI reports it as `connected`, inbound).
    this.orchestrator.on('session', (s) => {
      if (s.tier) this.emit('accepted', { peerId: s.peerId, tier: s.tier });
    });
    this.orchestrator.on('message', (e) => {
      const m = e.body as Partial<ChatMessage>;
      if (m && m.type === 'chat' && typeof m.text === 'string') this.emit('message', { from: e.peerId, text: m.text, tier: e.tier });
    });
    // Always announced: with nobody known yet (a bootstrap node) the record is at least stored
    // here, so a lookup that reaches this node finds it; it is announced again once a peer joins.
    const alone = config.dht.seed_nodes.length === 0 && this.dht.contacts().length === 0;
    await this.dht.announceFull(opts).catch((err: Error) => log.warn('announce failed; will retry on the next interval', { error: err }));
    if (alone) this.#announceOnFirstContact(log);
    const resumed = await this.orchestrator.resume(opts);
    if (resumed.length > 0) {
      log.info('resending unacknowledged messages from the outbox', { peers: resumed.length });
      this.emit('resumed', { peers: resumed });
    }
    this.emit('listening', {
      nodeId: this.identity.nodeId,
      tcp: this.listener.addresses(),
      dht: this.dht.address ? hostPort(this.dht.address.host, this.dht.address.port) : null,
      ...(this.hub && { hub: this.hub.url }),
    });
  }

  /** `[hub] serve = true`: runs a Hub (from @dpc/webrtc-hub) in this process, before the tiers (tier 3 may use it). */
  async #startHub(log: Logger, opts: { signal?: AbortSignal }): Promise<void> {
    const { hubServerFromConfig } = await import('@dpc/webrtc-hub');
    const hub = hubServerFromConfig(this.opts.config, { counters: this.counters });
    await hub.start(opts);
    this.hub = hub;
    log.info('serving a Hub', { url: hub.url, port: hub.port, redis: this.opts.config.hub.redis_url !== '' });
  }

  /** Issue 10 §9: a bootstrap node announces its record to the network once its first contact joins. */
  #announceOnFirstContact(log: Logger): void {
    const timer = setInterval(() => {
      if (this.dht.contacts().length === 0) return;
      clearInterval(timer);
      this.dht.announceFull().catch((err: Error) => log.warn('announce failed; will retry on the next interval', { error: err }));
    }, BOOTSTRAP_ANNOUNCE_CHECK_MS);
    timer.unref();
    this.#shutdown.signal.addEventListener('abort', () => clearInterval(timer), { once: true });
  }

  /** Hands an inbound connection of any tier to the orchestrator. */
  acceptConnection(conn: Connection): void {
    if (this.orchestrator) this.orchestrator.accept(conn);
    else if (this.#early.length < MAX_EARLY_INBOUND && !this.#shutdown.signal.aborted) this.#early.push(conn);
    else void conn.close('node not ready');
  }

  /** What tiers reported about the network (NAT type, Hub connection, addresses), a copy. */
  get network(): NetworkState {
    return { ...this.#network };
  }

  /** Tiers this node runs: the built-in direct ones and every started plugin. */
  installedTiers(): TierName[] {
    return [...new Set<TierName>([...this.strategies.map((s) => s.name), ...this.plugins.map((p) => p.name)])];
  }

  /** What tier plugin `name` sees of this node. */
  #tierContext(name: TierName, log: Logger): TierContext {
    const dht = this.dht;
    const parts = this.#parts as EndpointParts;
    const directory: TierDht = {
      findPeer: (nodeId, o) => dht.findPeer(nodeId, o),
      findRelays: (o) => dht.findRelays(o),
      announceRelay: (offer, o) => dht.announceRelay(offer, o),
      signal: (nodeId, payload, o) => dht.signal(nodeId, payload, o),
      on: (event, fn) => dht.on(event, fn),
      off: (event, fn) => dht.off(event, fn),
      discoverEndpoint: (o) => dht.discoverEndpoint(o),
      closestPeers: (key, o) => dht.closestPeers(key, o),
      localPort: () => dht.address?.port,
      endpointBody: () => dht.endpointBody(),
      registerProtocol: (o) => dht.registerProtocol(o),
    };
    return {
      name,
      identity: this.identity,
      config: this.opts.config,
      dht: directory,
      counters: this.counters,
      ...(this.store && { store: this.store }),
      log,
      allowLoopback: this.opts.allowLoopback ?? false,
      signal: this.#shutdown.signal,
      accept: (conn) => this.acceptConnection(conn),
      setEndpointPart: (part, value) => void parts.set(name, part, value),
      reportNetwork: (partial) => {
        Object.assign(this.#network, partial);
        this.emit('network', { ...this.#network });
      },
      emit: (event, fields) => this.emit('tier-event', { tier: name, event, fields }),
    };
  }

  /** This node's clock (the system clock plus `clockOffsetMs`), for the records it signs. */
  readonly #clock = (): number => Date.now() + (this.opts.clockOffsetMs ?? 0);

  /**
   * A local address appeared or disappeared (another network, a new prefix): the node's parts
   * of the endpoint record are read again, the external IPv4 re-learnt (the NAT in front may be
   * another one), and the record re-signed and re-announced at once.
   */
  async #onAddressChange(change: { added: string[]; removed: string[] }, log: Logger): Promise<void> {
    const t0 = performance.now();
    log.info('local addresses changed: re-announcing the endpoint record', { added: change.added, removed: change.removed });
    const parts = this.#parts as EndpointParts;
    const local = this.listener.endpointBody({ allowLoopback: this.opts.allowLoopback ?? false });
    parts.set('node', 'ipv6', this.#withConfiguredIPv6(local.ipv6));
    parts.set('node', 'ipv4_local', local.ipv4_local);
    await this.#learnExternalAddress(log, { clear: true });
    parts.flush();
    // A timer-held deadline (on Node 20 an AbortSignal.timeout inside AbortSignal.any can be
    // garbage-collected before it fires).
    const deadline = timeoutSignal(10_000, 're-announcing the endpoint record', this.#shutdown.signal);
    await this.dht.announceFull({ signal: deadline.signal }).finally(deadline.clear);
    log.info('endpoint record re-announced after the address change', { ms: Math.round(performance.now() - t0) });
  }

  /** The IPv6 part with `[p2p] external_address` first when it is an IPv6 address. */
  #withConfiguredIPv6(ipv6: Array<{ ip: string; port: number }>): Array<{ ip: string; port: number }> {
    const ext = parseExternalAddress(this.opts.config.p2p.external_address);
    if (ext?.family !== 6) return ipv6;
    // Never announce an address the listener cannot be reached on (an IPv4-only listen_host).
    if (!this.listener.addresses().some((a) => a.startsWith('['))) return ipv6;
    return [{ ip: ext.ip, port: ext.port ?? this.listener.port }, ...ipv6.filter((a) => a.ip !== ext.ip)].slice(0, 8);
  }

  /**
   * Learns this node's external IPv4 from DHT peers (DISCOVER_ENDPOINT, majority of 3) and
   * announces it with the listen port for tier 2: a public address (it is one of ours) or a
   * NAT's address, which works when the router forwards the port. `[p2p] external_address`
   * overrides it.
   */
  async #learnExternalAddress(log: Logger, opts: { clear?: boolean } = {}): Promise<void> {
    const configured = parseExternalAddress(this.opts.config.p2p.external_address);
    let ip: string | undefined;
    let port = this.listener.port;
    if (configured?.family === 6) {
      // An IPv6 address is announced for tier 1 (first in the ipv6 part); IPv4 is still learnt.
      const parts = this.#parts as EndpointParts;
      parts.set('node', 'ipv6', this.#withConfiguredIPv6(parts.body().ipv6));
    }
    if (configured?.family === 4) {
      ip = configured.ip;
      if (configured.port) port = configured.port;
    } else if (this.dht.contacts().length > 0) {
      try {
        const ep = await this.dht.discoverEndpoint({ signal: AbortSignal.timeout(5000) });
        if (isIPv4(ep.ip) && (this.opts.allowLoopback || !ep.ip.startsWith('127.'))) ip = ep.ip;
        const local = localAddresses().ipv4.some((a) => a.ip === ep.ip);
        log.info(
          isLoopbackIp(ep.ip)
            ? 'DHT nodes see this node on a loopback address (all on this machine)'
            : local
              ? 'this node has a public IPv4 address'
              : 'this node is behind NAT',
          { external: ep.ip, votes: ep.votes },
        );
      } catch (err) {
        log.debug('external address discovery failed', { error: err });
      }
    }
    if (ip && !this.listener.acceptsExternal(ip)) {
      log.warn('not announcing the external address: the listener cannot be reached through it', {
        external: ip,
        listening: this.listener.addresses(),
      });
      ip = undefined;
    }
    if (ip) this.#parts?.set('node', 'ipv4_external', [{ ip, port }]);
    else if (opts.clear) this.#parts?.set('node', 'ipv4_external', []); // the old NAT's address is not ours any more
  }

  /**
   * Connects (best tier) and sends one chat message. It is written to the outbox in the data
   * directory before `onAccepted` is called (it survives a crash from then on); the promise
   * resolves when the peer acknowledged it, unless `wait` is 'accepted'.
   */
  async send(
    peerId: string,
    text: string,
    opts: {
      signal?: AbortSignal;
      tiers?: TierName[];
      wait?: 'accepted' | 'delivered';
      onAccepted?: (seq: number) => void;
      /** What the connect is doing: lookup, each tier tried, deferred delivery (see ConnectProgress). */
      onProgress?: (e: ConnectProgress) => void;
    } = {},
  ): Promise<{ tier: TierName; connectMs: number; deliveredMs?: number; seq: number; remoteAddress?: string }> {
    const t0 = performance.now();
    // A peer with a session already (connected or not) gets the message queued at once: the
    // session reconnects by itself. A new peer is reached first, so a wrong id fails clearly.
    const existing = opts.tiers ? undefined : this.orchestrator.session(peerId);
    const session: PeerSession =
      existing && !existing.closed
        ? existing
        : await this.orchestrator.connect(peerId, {
            ...(opts.signal && { signal: opts.signal }),
            ...(opts.tiers && { tiers: opts.tiers }),
            ...(opts.onProgress && { onProgress: opts.onProgress }),
          });
    const connectMs = performance.now() - t0;
    const msg: ChatMessage = { type: 'chat', text, sent_at: Date.now() };
    const q = await session.queue(msg, opts.signal ? { signal: opts.signal } : {});
    const queuedAt = performance.now();
    opts.onAccepted?.(q.seq);
    q.delivered.then(
      () => this.emit('acked', { peerId, tier: session.tier, ms: performance.now() - queuedAt }),
      () => {},
    );
    if (opts.wait !== 'accepted') await abortable(q.delivered, opts.signal);
    const remoteAddress = session.remoteAddress;
    return {
      tier: session.tier as TierName,
      connectMs,
      seq: q.seq,
      ...(opts.wait !== 'accepted' && { deliveredMs: performance.now() - t0 }),
      ...(remoteAddress && { remoteAddress }),
    };
  }

  async stop(): Promise<void> {
    this.#shutdown.abort();
    await this.orchestrator?.stop().catch(() => {});
    for (const p of this.plugins.splice(0).reverse()) await p.stop().catch(() => {});
    await this.hub?.stop().catch(() => {});
    this.hub = undefined;
    this.#parts?.close();
    for (const c of this.#early.splice(0)) await c.close('node stopping').catch(() => {});
    await this.listener?.stop().catch(() => {});
    await this.dht?.stop().catch(() => {});
    await this.store?.close().catch(() => {});
    this.store = undefined;
  }
}

export { createDirectListener };
