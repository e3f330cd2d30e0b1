/**
 * @dpc/direct — tiers 1 and 2 of dpc: a dual-stack TCP listener, and strategies that dial a
 * peer's global IPv6 addresses (tier 1) or its local (behind our NAT, on a shared subnet) and
 * external IPv4 addresses (tier 2), several candidates raced with a short stagger, each secured with TLS 1.3.
 *
 * @example
 * ```ts
 * import { createRecord, emptyEndpointBody, generateIdentity } from '@dpc/core';
 * import { createDirectListener, ipv4DirectStrategy } from '@dpc/direct';
 *
 * const bob = generateIdentity();
 * const listener = createDirectListener({ identity: bob, host: '127.0.0.1', port: 0 });
 * listener.on('connection', (conn) => conn.on('message', (m) => console.log('bob got', m)));
 * await listener.start();
 * const record = createRecord(bob, {
 *   kind: 'endpoint',
 *   body: { ...emptyEndpointBody(), ...listener.endpointBody({ allowLoopback: true }) },
 * });
 *
 * const alice = generateIdentity();
 * const tier2 = ipv4DirectStrategy({ identity: alice, allowLoopback: true });
 * const conn = await tier2.connect(record, { signal: AbortSignal.timeout(5000) });
 * await conn.send('hello over tier 2');
 * await conn.close();
 * await listener.stop();
 * ```
 */
import { type DpcConfig, type Identity, secondsToMs } from '@dpc/core';
import { createDirectListener, type DirectListener, type DirectListenerOptions } from './listener.js';
import { type DirectStrategyOptions, ipv4DirectStrategy, ipv6DirectStrategy } from './strategy.js';

export {
  acceptsExternal,
  type BoundSocket,
  type Candidate,
  type Ipv4CandidateOptions,
  ipv4Candidates,
  ipv6Candidates,
  isGlobalIPv6,
  isLoopback,
  type LocalAddresses,
  listenedAddresses,
  listensOn,
  localAddresses,
  localEndpointBody,
  sameExternalIPv4,
  sameSubnet,
} from './address.js';
export * from './constants.js';
export { createDirectListener, type DirectListener, type DirectListenerOptions, ListenError } from './listener.js';
export { type DirectStrategyOptions, ipv4DirectStrategy, ipv6DirectStrategy } from './strategy.js';

/**
 * Tier 1 and 2 strategies (honouring `enable_ipv6`/`enable_ipv4` and their timeouts) and the
 * listener (`[p2p] listen_host`, `listen_port`) from a loaded config.
 */
export function directFromConfig(
  config: DpcConfig,
  identity: Identity,
  extra: Partial<DirectStrategyOptions> & Partial<DirectListenerOptions> = {},
): { listener: DirectListener; strategies: ReturnType<typeof ipv6DirectStrategy>[] } {
  const c = config.connection;
  const strategies = [];
  if (c.enable_ipv6) strategies.push(ipv6DirectStrategy({ ...extra, identity, timeoutMs: secondsToMs(c.ipv6_timeout) }));
  if (c.enable_ipv4) strategies.push(ipv4DirectStrategy({ ...extra, identity, timeoutMs: secondsToMs(c.ipv4_timeout) }));
  const listener = createDirectListener({ ...extra, identity, host: config.p2p.listen_host, port: config.p2p.listen_port });
  return { listener, strategies };
}
