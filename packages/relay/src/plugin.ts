import { isIPv4 } from 'node:net';
import { networkInterfaces } from 'node:os';
import { hostPort, secondsToMs, type TierContext, type TierPlugin, timeoutSignal } from '@dpc/core';
import { DEFAULT_RESERVE_TIMEOUT_MS, MAX_LISTED_RELAYS } from './constants.js';
import { relayFromConfig } from './from-config.js';
import { publicAddressProblem } from './public-address.js';

/** This host's IPv4 addresses, loopback included. */
function hostIPv4(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .flatMap((a) => (a && isIPv4(a.address) ? [a.address] : []));
}

/**
 * Tier 5 as a node plugin, through its `TierContext` only: the client (strategy, standing
 * reservations listed in the endpoint record's `relays` part, inbound relayed connections
 * handed to `ctx.accept`) and, with `[relay] volunteer = true`, the relay server announcing
 * its offer in the DHT, unless the address it would announce is not public (then it logs
 * "relay offer withheld: …" and runs the client only). Events for the user: `relay` with `kind` session, session-end, refused.
 */
export function relayTier(): TierPlugin {
  return {
    name: 'volunteer_relay',
    async start(ctx: TierContext) {
      const { config, log, allowLoopback } = ctx;
      const external = ctx.dht.endpointBody().ipv4_external[0]?.ip;
      const local = hostIPv4().find((ip) => allowLoopback || !ip.startsWith('127.'));
      const publicIp = config.relay.public_ip || external || (allowLoopback ? '127.0.0.1' : local);
      const parts = relayFromConfig(config, ctx.identity, {
        directory: ctx.dht,
        signaller: ctx.dht,
        counters: ctx.counters,
        port: config.relay.port,
        reservationKeepaliveMs: secondsToMs(config.relay.keepalive),
        ...(publicIp && { publicIp }),
        allowLoopback,
        // invites may name relays on the LAN only where the DHT accepts such contacts too
        allowPrivate: allowLoopback,
      });
      // A relay offer is read by nodes anywhere: a private, CGNAT, link-local or loopback address in
      // it leads them nowhere. The server refuses such an address (RelayPublicAddressError); then
      // this node does not volunteer, says why, and keeps the rest of tier 5 (the client).
      let server = parts.server;
      const problem = !server
        ? undefined
        : publicIp
          ? publicAddressProblem(publicIp, { allowLoopback })
          : 'no external address learned from the DHT, no local IPv4 address and no [relay] public_ip';
      if (problem) {
        log.warn('relay offer withheld: no public address to announce', {
          ip: publicIp,
          reason: problem,
          hint: 'set [relay] public_ip to an address reachable from the internet, or volunteer from a host that has one',
        });
        server = undefined;
      }
      if (server) {
        server.on('session', (e) => ctx.emit('relay', { kind: 'session', session_id: e.session_id, peers: e.peers }));
        server.on('session-end', (e) =>
          ctx.emit('relay', { kind: 'session-end', session_id: e.session_id, peers: e.peers, reason: e.reason }),
        );
        server.on('refused', (e) => ctx.emit('relay', { kind: 'refused', code: e.code, nodeId: e.nodeId }));
        server.on('error', (err) => log.warn('relay server error', { error: err }));
        await server.start();
        log.info('volunteering as a relay', {
          ip: publicIp,
          port: server.port,
          max_peers: config.relay.max_peers,
          region: config.relay.region,
        });
      }
      const client = parts.client;
      if (client) {
        client.on('incoming', (conn) => ctx.accept(conn));
        client.on('reservations', (relays) => {
          try {
            ctx.setEndpointPart('relays', relays.slice(0, MAX_LISTED_RELAYS));
            log.info('relay reservations', { relays: relays.map((r) => hostPort(r.ip, r.port)) });
          } catch (err) {
            log.warn('relay reservations not listed in the endpoint record', { error: err });
          }
        });
        const behindNat = external !== undefined && !hostIPv4().includes(external);
        const mode = config.relay.reserve;
        if (mode === 'always' || (mode === 'auto' && behindNat)) {
          // A timer-held deadline (on Node 20 an AbortSignal.timeout inside AbortSignal.any can be
          // garbage-collected before it fires).
          const deadline = timeoutSignal(DEFAULT_RESERVE_TIMEOUT_MS, 'relay reservation', ctx.signal);
          client
            .reserve({ signal: deadline.signal })
            .catch((err: Error) => log.warn('no relay reservation yet', { error: err }))
            .finally(deadline.clear);
        }
      }
      return {
        ...(parts.strategy && { strategy: parts.strategy }),
        info: { client: client !== undefined, server: server !== undefined },
        async stop() {
          await client?.stop();
          await server?.stop();
        },
      };
    },
  };
}

/** The plugin the node app loads when @dpc/relay is installed. */
export const tierPlugin: TierPlugin = relayTier();
