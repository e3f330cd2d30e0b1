import { isIPv4 } from 'node:net';
import { secondsToMs } from '@dpc/core';
import { localAddresses } from '@dpc/direct';
import type { TierPlugin } from './plugins.js';

/**
 * Tier 5 when @dpc/relay is installed: the client (strategy, standing reservations listed in our
 * endpoint record, inbound relayed connections) and, with `[relay] volunteer = true`, the relay
 * server announcing its offer in the DHT.
 */
export const relayPlugin: TierPlugin = {
  name: 'volunteer_relay',
  async start({ node, log }) {
    const relay = await import('@dpc/relay');
    const config = node.opts.config;
    const allowLoopback = node.opts.allowLoopback ?? false;
    const external = node.dht.endpointBody().ipv4_external[0]?.ip;
    const local = localAddresses().ipv4.find((a) => isIPv4(a.ip) && (allowLoopback || !a.ip.startsWith('127.')))?.ip;
    const publicIp = config.relay.public_ip || external || (allowLoopback ? '127.0.0.1' : local);
    const parts = relay.relayFromConfig(config, node.identity, {
      directory: node.dht,
      signaller: node.dht,
      counters: node.counters,
      port: config.relay.port,
      reservationKeepaliveMs: secondsToMs(config.relay.keepalive),
      ...(publicIp && { publicIp }),
      allowLoopback,
    });
    // A relay offer is read by nodes anywhere: a private, CGNAT, link-local or loopback address in
    // it leads them nowhere. The server refuses such an address (RelayPublicAddressError); then
    // this node does not volunteer, says why, and keeps the rest of tier 5 (the client).
    let server = parts.server;
    const problem = !server
      ? undefined
      : publicIp
        ? relay.publicAddressProblem(publicIp, { allowLoopback })
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
      server.on('session', (e) => node.emit('relay', { kind: 'session', session_id: e.session_id, peers: e.peers }));
      server.on('session-end', (e) =>
        node.emit('relay', { kind: 'session-end', session_id: e.session_id, peers: e.peers, reason: e.reason }),
      );
      server.on('refused', (e) => node.emit('relay', { kind: 'refused', code: e.code, nodeId: e.nodeId }));
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
      client.on('incoming', (conn) => node.acceptConnection(conn));
      client.on('reservations', (relays) => {
        node.dht.setEndpointBody({ ...node.dht.endpointBody(), relays: relays.slice(0, 4) });
        log.info('relay reservations', { relays: relays.map((r) => `${r.ip}:${r.port}`) });
      });
      const behindNat = external !== undefined && !localAddresses().ipv4.some((a) => a.ip === external);
      const mode = config.relay.reserve;
      if (mode === 'always' || (mode === 'auto' && behindNat)) {
        client.reserve({ signal: AbortSignal.timeout(30_000) }).catch((err: Error) => log.warn('no relay reservation yet', { error: err }));
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
