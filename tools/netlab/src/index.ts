/**
 * @dpc/netlab — real network topologies on one Linux machine for dpc's end-to-end tests and
 * benchmarks: network namespaces on a TEST-NET "internet", routers doing real NAT with
 * nftables (cone, symmetric, double, UDP-blocked, IPv6), latency, jitter and loss per link.
 * Needs root, iproute2 and nftables (plus ethtool and python3 for delay, coturn for the self-check).
 *
 * @example
 * ```ts
 * import { createLab } from '@dpc/netlab';
 *
 * await using lab = await createLab({
 *   publicHosts: [{ name: 'server' }],
 *   routers: [{ name: 'home', kind: 'cone', lan: [{ name: 'alice', link: { delayMs: 25 } }] }],
 * });
 * const r = await lab.exec('alice', 'ping', ['-c', '1', lab.hosts.server!.ipv4[0]!]);
 * console.log(r.stdout);
 * ```
 */

export {
  collectGarbage,
  destroyRunSync,
  type LabState,
  listStates,
  namespaceName,
  readState,
  runIdOf,
} from './cleanup.js';
export * from './constants.js';
export { type Coturn, type CoturnOptions, startCoturn } from './coturn.js';
export { FORWARDER_SOURCE, findPython } from './delay.js';
export { DPC_NODE, type Event as NodeEvent, LabNode, labIni, labSend, type SendResult, workdir } from './dpc-node.js';
export { LabCommandError, LabUnavailableError, NetlabError, TopologyError, UnknownHostError } from './errors.js';
export { createLab, type ExecOptions, type ExecResult, type Lab, type LabHost, type LabOptions, type LabRouter } from './lab.js';
export { listNamespaces } from './namespaces.js';
export { checkPrerequisites, type Prerequisites, TOOLS, type Tool } from './prerequisites.js';
export { PROBE_SCRIPT } from './probe.js';
export { lossRuleset, type RouterRules, routerRuleset, sinkRuleset } from './router.js';
export {
  natDiscovery,
  natDiscoveryVerdict,
  runSelfCheck,
  SELFCHECK_TOPOLOGY,
  type SelfCheckReport,
  type SelfCheckResult,
  startStunServer,
  udpMapping,
} from './selfcheck.js';
export {
  type AddressPlan,
  type HostSpec,
  type LinkShape,
  type PlannedHost,
  type PlannedRouter,
  type PortForward,
  type PublicHostSpec,
  planAddresses,
  ROUTER_KINDS,
  type RouterKind,
  type RouterSpec,
  type Topology,
  validateTopology,
} from './topology.js';
