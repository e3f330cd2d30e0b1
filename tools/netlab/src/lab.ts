import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { destroyRunSync, type LabState, namespaceName, newRunId, registerTeardown, unregisterTeardown, writeState } from './cleanup.js';
import { DEFAULT_EXEC_TIMEOUT_MS, KILL_GRACE_MS } from './constants.js';
import { startForwarder } from './delay.js';
import { TopologyError, UnknownHostError } from './errors.js';
import {
  addNamespace,
  addVethPair,
  disableBridgeNetfilter,
  disableOffloads,
  flushConntrack,
  ipIn,
  loadNftables,
  setSysctls,
} from './namespaces.js';
import { checkPrerequisites } from './prerequisites.js';
import { lossRuleset, type RouterRules, routerRuleset, sinkRuleset } from './router.js';
import { type AddressPlan, type LinkShape, type PlannedHost, planAddresses, type RouterKind, type Topology } from './topology.js';

/** A host (or router) of a live lab. */
export interface LabHost {
  name: string;
  /** `public` host on the internet, `lan` host behind a router, the `router` itself, or a double NAT's `carrier`. */
  role: 'public' | 'lan' | 'router' | 'carrier';
  /** Network namespace it lives in (`dl<runid>-<name>`). */
  namespace: string;
  /** The router a LAN host is behind. */
  router?: string;
  /** Every address, first one primary. */
  ipv4: string[];
  ipv6: string[];
}

export interface LabRouter {
  name: string;
  kind: RouterKind;
  namespace: string;
  /** Namespace of the carrier-grade NAT in front (double-nat only). */
  carrierNamespace?: string;
  /** The public address LAN hosts are seen from. */
  externalIpv4: string;
  /** Global IPv6 /64 of the LAN, when routed. */
  lanIpv6Prefix?: string;
  lanIpv4Subnet?: string;
}

export interface ExecOptions {
  /** Kill the command after this many ms (SIGKILL). Default 60 000. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Written to stdin, which is then closed. */
  input?: string;
  /** Extra environment variables (on top of this process's). */
  env?: Record<string, string>;
}

export interface ExecResult {
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when the timeout (not the command) ended it. */
  timedOut: boolean;
}

export interface LabOptions {
  /** Run id (namespace names are `dl<id>-<name>`). Default: random. */
  id?: string;
  /** Keep the lab after this process exits (`dpc-netlab up`); only `down`/`gc --all` remove it. Default false. */
  persistent?: boolean;
}

/** A topology made real. Destroy it (or `await using`) when done. */
export interface Lab {
  readonly id: string;
  readonly topology: Topology;
  readonly plan: AddressPlan;
  /** Every host, router and carrier NAT by name. */
  readonly hosts: Readonly<Record<string, LabHost>>;
  readonly routers: Readonly<Record<string, LabRouter>>;
  /** Runs a command in a host's namespace and collects its output (never rejects on a non-zero exit). */
  exec(host: string, cmd: string, args?: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Starts a long-running process in a host's namespace; the lab kills it on destroy. */
  spawn(host: string, cmd: string, args?: string[], opts?: SpawnOptions): ChildProcess;
  /** Empties the conntrack table of every router (fresh NAT mappings between scenarios). */
  flushConntrack(): Promise<void>;
  /**
   * Moves a LAN host to another router's LAN, as a laptop that changes networks: its link is
   * removed (its addresses and routes with it) and a new one attached to `router`'s LAN, with a
   * new IPv4 address (and IPv6 when that LAN has a prefix) from `.200` up. Processes in the host
   * keep running. Not for hosts with a delayed link. Returns the host with its new addresses.
   */
  moveHost(host: string, router: string): Promise<LabHost>;
  /** Kills every process in the lab and deletes its namespaces. Idempotent. */
  destroy(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const INTERNET = 'inet';
const BRIDGE = 'br0';
const LAN_BRIDGE = 'lan0';

class NetLab implements Lab {
  readonly hosts: Record<string, LabHost> = {};
  readonly routers: Record<string, LabRouter> = {};
  readonly plan: AddressPlan;
  private readonly namespaces: string[] = [];
  private readonly children = new Set<ChildProcess>();
  private moves = 0;
  private destroyed?: Promise<void>;

  constructor(
    readonly id: string,
    readonly topology: Topology,
    private readonly opts: LabOptions,
  ) {
    this.plan = planAddresses(topology);
  }

  private ns(name: string): string {
    return namespaceName(this.id, name);
  }

  private host(name: string): LabHost {
    const h = this.hosts[name];
    if (!h) throw new UnknownHostError(name, Object.keys(this.hosts));
    return h;
  }

  private recordState(): void {
    const state: LabState = {
      id: this.id,
      ownerPid: process.pid,
      persistent: !!this.opts.persistent,
      createdAt: new Date().toISOString(),
      namespaces: this.namespaces,
      hosts: Object.fromEntries(
        Object.values(this.hosts).map((h) => [
          h.name,
          { namespace: h.namespace, ipv4: h.ipv4, ipv6: h.ipv6, role: h.role, ...(h.router ? { router: h.router } : {}) },
        ]),
      ),
    };
    writeState(state);
  }

  async build(): Promise<void> {
    const plan = this.plan;
    const routerOf = new Map(plan.routers.map((r) => [r.name, r]));
    for (const h of plan.hosts) {
      this.hosts[h.name] = {
        name: h.name,
        role: h.role,
        namespace: this.ns(h.name),
        ...(h.router ? { router: h.router } : {}),
        ipv4: h.ipv4,
        ipv6: h.ipv6,
      };
    }
    for (const r of plan.routers) {
      this.routers[r.name] = {
        name: r.name,
        kind: r.kind,
        namespace: this.ns(r.name),
        ...(r.carrier ? { carrierNamespace: this.ns(`${r.name}cg`) } : {}),
        externalIpv4: r.externalIpv4 ?? '',
        ...(r.lanIpv6Prefix ? { lanIpv6Prefix: r.lanIpv6Prefix } : {}),
        ...(r.lanIpv4Subnet ? { lanIpv4Subnet: r.lanIpv4Subnet } : {}),
      };
    }
    // Record the namespaces before creating them, so a crash half-way leaves gc a full list.
    const delayed = plan.hosts.filter((h) => (h.link?.delayMs ?? 0) > 0);
    this.namespaces.push(this.ns(INTERNET), ...plan.hosts.map((h) => this.ns(h.name)), ...delayed.map((h) => this.ns(`${h.name}-dly`)));
    this.recordState();

    // 1. Namespaces, with DAD off (addresses usable at once) and forwarding on routers.
    const forwarding = new Set(plan.hosts.filter((h) => h.role === 'router' || h.role === 'carrier').map((h) => h.name));
    await Promise.all(
      this.namespaces.map(async (ns) => {
        await addNamespace(ns);
        const common = {
          'net.ipv6.conf.all.accept_dad': 0,
          'net.ipv6.conf.default.accept_dad': 0,
          'net.ipv6.conf.all.accept_ra': 0,
          'net.ipv6.conf.default.accept_ra': 0,
        };
        const name = ns.slice(this.ns('').length);
        // Bridges here must switch frames, not hand them to nftables (br_netfilter may be loaded).
        await disableBridgeNetfilter(ns);
        if (name.endsWith('-dly')) await setSysctls(ns, { 'net.ipv6.conf.all.disable_ipv6': 1, 'net.ipv6.conf.default.disable_ipv6': 1 });
        else if (forwarding.has(name)) await setSysctls(ns, { ...common, 'net.ipv4.ip_forward': 1, 'net.ipv6.conf.all.forwarding': 1 });
        else await setSysctls(ns, common);
      }),
    );

    // 2. Segments: the internet bridge with its sink address, and each router's LAN bridge.
    const inet = this.ns(INTERNET);
    await ipIn(inet, 'link', 'add', BRIDGE, 'type', 'bridge');
    await ipIn(inet, 'link', 'set', BRIDGE, 'up');
    await ipIn(inet, 'addr', 'add', `${plan.sinkIpv4}/24`, 'dev', BRIDGE);
    await ipIn(inet, 'addr', 'add', `${plan.sinkIpv6}/64`, 'dev', BRIDGE, 'nodad');
    await loadNftables(inet, sinkRuleset(BRIDGE));
    await Promise.all(
      plan.hosts
        .filter((h) => h.role === 'router' || h.role === 'carrier')
        .map(async (h) => {
          const ns = this.ns(h.name);
          await ipIn(ns, 'link', 'add', LAN_BRIDGE, 'type', 'bridge');
          await ipIn(ns, 'link', 'set', LAN_BRIDGE, 'up');
        }),
    );

    // 3. Links: each host to its segment, through a delay forwarder when asked.
    let port = 0;
    const lanPorts = new Map<string, number>();
    const attachments = plan.hosts.map((h) => {
      let segment: string;
      let bridge: string;
      let portName: string;
      if (h.role === 'lan' || (h.role === 'router' && routerOf.get(h.name)?.carrier)) {
        // A LAN host hangs off its router; a home router behind a CGNAT hangs off the carrier.
        const owner = h.role === 'lan' ? h.router! : `${h.name}cg`;
        const j = lanPorts.get(owner) ?? 0;
        lanPorts.set(owner, j + 1);
        segment = this.ns(owner);
        bridge = LAN_BRIDGE;
        portName = `h${j}`;
      } else {
        segment = inet;
        bridge = BRIDGE;
        portName = `p${port++}`;
      }
      const ifname = h.role === 'router' || h.role === 'carrier' ? 'wan0' : 'eth0';
      return { h, segment, bridge, portName, ifname };
    });
    await Promise.all(attachments.map((a) => this.attach(a.h, a.ifname, a.segment, a.bridge, a.portName)));

    // 4. Addresses and routes.
    const v6Lans = plan.routers.filter((r) => r.lanIpv6Prefix && r.wanIpv6);
    await Promise.all(
      attachments.map(async ({ h, ifname }) => {
        const ns = this.ns(h.name);
        for (const a of h.ipv4) await ipIn(ns, 'addr', 'add', `${a}/24`, 'dev', ifname);
        for (const a of h.ipv6) await ipIn(ns, 'addr', 'add', `${a}/64`, 'dev', ifname, 'nodad');
        if (h.gateway4) await ipIn(ns, 'route', 'add', 'default', 'via', h.gateway4);
        if (h.gateway6) await ipIn(ns, '-6', 'route', 'add', 'default', 'via', h.gateway6);
        if (h.role === 'public' || h.role === 'router') {
          if (h.ipv6.length === 0) return;
          for (const r of v6Lans) {
            if (r.name === h.name) continue;
            await ipIn(ns, '-6', 'route', 'add', r.lanIpv6Prefix!, 'via', r.wanIpv6!);
          }
        }
      }),
    );

    // 5. Routers: LAN addresses and the nftables ruleset of their kind.
    await Promise.all(
      plan.routers.map(async (r) => {
        const ns = this.ns(r.name);
        if (r.lanIpv4Gateway) await ipIn(ns, 'addr', 'add', `${r.lanIpv4Gateway}/24`, 'dev', LAN_BRIDGE);
        if (r.lanIpv6Gateway) await ipIn(ns, 'addr', 'add', `${r.lanIpv6Gateway}/64`, 'dev', LAN_BRIDGE, 'nodad');
        const lanHost = (name: string) => plan.hosts.find((h) => h.name === name)?.ipv4[0] ?? '';
        const rules: RouterRules = {
          wan: 'wan0',
          lan: LAN_BRIDGE,
          nat: r.kind === 'ipv6-only' ? 'none' : r.kind === 'symmetric' ? 'symmetric' : 'cone',
          blockUdp: r.kind === 'udp-blocked',
          openInboundIpv6: !!r.spec.ipv6 && !r.spec.ipv6Firewall,
          portForwards: (r.spec.portForwards ?? []).map((f) => ({
            protocol: f.protocol,
            port: f.port,
            toIpv4: lanHost(f.host),
            toPort: f.hostPort ?? f.port,
          })),
        };
        await loadNftables(ns, routerRuleset(rules));
        if (r.carrier) {
          const cg = this.ns(`${r.name}cg`);
          await ipIn(cg, 'addr', 'add', `${r.carrier.insideIpv4}/24`, 'dev', LAN_BRIDGE);
          await loadNftables(cg, routerRuleset({ wan: 'wan0', lan: LAN_BRIDGE, nat: r.spec.cgnat ?? 'cone' }));
        }
      }),
    );
  }

  private async attach(h: PlannedHost, ifname: string, segment: string, bridge: string, portName: string): Promise<void> {
    const ns = this.ns(h.name);
    const link: LinkShape = h.link ?? {};
    if ((link.delayMs ?? 0) > 0) {
      const mid = this.ns(`${h.name}-dly`);
      await addVethPair(ns, ifname, mid, 'fwd0');
      await addVethPair(mid, 'fwd1', segment, portName);
      await Promise.all([
        disableOffloads(ns, ifname),
        disableOffloads(mid, 'fwd0'),
        disableOffloads(mid, 'fwd1'),
        disableOffloads(segment, portName),
      ]);
      for (const i of ['fwd0', 'fwd1']) await ipIn(mid, 'link', 'set', i, 'promisc', 'on', 'up');
      const child = await startForwarder({
        namespace: mid,
        ifA: 'fwd0',
        ifB: 'fwd1',
        delayMs: link.delayMs ?? 0,
        jitterMs: link.jitterMs ?? 0,
        detached: !!this.opts.persistent,
      });
      if (!this.opts.persistent) this.track(child);
    } else {
      await addVethPair(ns, ifname, segment, portName);
    }
    await ipIn(segment, 'link', 'set', portName, 'master', bridge, 'up');
    await ipIn(ns, 'link', 'set', ifname, 'up');
    if ((link.lossPercent ?? 0) > 0) {
      await loadNftables(ns, lossRuleset(ifname, link.lossPercent!));
      await loadNftables(segment, lossRuleset(portName, link.lossPercent!));
    }
  }

  private track(child: ChildProcess): void {
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
  }

  spawn(host: string, cmd: string, args: string[] = [], opts: SpawnOptions = {}): ChildProcess {
    const h = this.host(host);
    const child = spawn('ip', ['netns', 'exec', h.namespace, cmd, ...args], { ...opts, detached: false });
    this.track(child);
    return child;
  }

  exec(host: string, cmd: string, args: string[] = [], opts: ExecOptions = {}): Promise<ExecResult> {
    const child = this.spawn(host, cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}),
    });
    return new Promise((resolve) => {
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      child.stdout?.on('data', (d: Buffer) => {
        stdout += d.toString();
      });
      child.stderr?.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, opts.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS);
      const onAbort = () => child.kill('SIGKILL');
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      child.on('error', (err) => {
        stderr += String(err);
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
        resolve({ code, signal, stdout, stderr, timedOut });
      });
      child.stdin?.on('error', () => {});
      child.stdin?.end(opts.input ?? '');
    });
  }

  async moveHost(host: string, router: string): Promise<LabHost> {
    const h = this.host(host);
    const planned = this.plan.hosts.find((x) => x.name === host);
    const r = this.plan.routers.find((x) => x.name === router);
    if (h.role !== 'lan' || !planned) throw new TopologyError(`moveHost: ${host} is not a LAN host`);
    if ((planned.link?.delayMs ?? 0) > 0) throw new TopologyError(`moveHost: ${host} has a delayed link (not supported)`);
    if (!r) throw new UnknownHostError(router, Object.keys(this.routers));
    const n = 200 + this.moves++;
    const ipv4 = r.lanIpv4Gateway ? [r.lanIpv4Gateway.replace(/\.\d+$/, `.${n}`)] : [];
    const ipv6 = r.lanIpv6Gateway ? [r.lanIpv6Gateway.replace(/::1$/, `::${n.toString(16)}`)] : [];
    const ns = h.namespace;
    await ipIn(ns, 'link', 'del', 'eth0'); // the veth pair goes, and the old addresses and routes with it
    const portName = `m${n}`;
    await addVethPair(ns, 'eth0', this.ns(router), portName);
    await ipIn(this.ns(router), 'link', 'set', portName, 'master', LAN_BRIDGE, 'up');
    await ipIn(ns, 'link', 'set', 'eth0', 'up');
    for (const a of ipv4) await ipIn(ns, 'addr', 'add', `${a}/24`, 'dev', 'eth0');
    for (const a of ipv6) await ipIn(ns, 'addr', 'add', `${a}/64`, 'dev', 'eth0', 'nodad');
    if (r.lanIpv4Gateway) await ipIn(ns, 'route', 'add', 'default', 'via', r.lanIpv4Gateway);
    if (r.lanIpv6Gateway) await ipIn(ns, '-6', 'route', 'add', 'default', 'via', r.lanIpv6Gateway);
    const moved: LabHost = { ...h, router, ipv4, ipv6 };
    this.hosts[host] = moved;
    this.recordState();
    return moved;
  }

  async flushConntrack(): Promise<void> {
    const names = this.plan.hosts.filter((h) => h.role === 'router' || h.role === 'carrier').map((h) => this.ns(h.name));
    await Promise.all(names.map((ns) => flushConntrack(ns)));
  }

  private killAllSync(): void {
    for (const c of this.children) c.kill('SIGKILL');
    this.children.clear();
    destroyRunSync(this.id, this.namespaces);
  }

  destroy(): Promise<void> {
    this.destroyed ??= (async () => {
      const waits = [...this.children].map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const t = setTimeout(() => {
              c.kill('SIGKILL');
              resolve();
            }, KILL_GRACE_MS);
            c.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            c.kill('SIGTERM');
          }),
      );
      await Promise.all(waits);
      this.killAllSync();
      unregisterTeardown(this.id);
    })();
    return this.destroyed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.destroy();
  }

  /** Teardown used on exit/signals. */
  syncTeardown = (): void => this.killAllSync();
}

/**
 * Builds a topology with network namespaces and returns the live lab. On failure everything
 * created so far is removed before the error is thrown. Needs root, `ip`, `nft` (and
 * `ethtool` + python3 for delayed links).
 */
export async function createLab(topology: Topology, opts: LabOptions = {}): Promise<Lab> {
  const prereq = checkPrerequisites();
  if (!prereq.ok) throw prereq.error;
  const lab = new NetLab(opts.id ?? newRunId(), topology, opts);
  if (!opts.persistent) registerTeardown(lab.id, lab.syncTeardown);
  try {
    await lab.build();
  } catch (err) {
    await lab.destroy();
    throw err;
  }
  return lab;
}
