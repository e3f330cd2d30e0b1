import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import type { DpcConfig } from '@dpc/core';

/** A configured port this node cannot bind: the message names the config key. */
export class PortInUseError extends Error {
  readonly code = 'DPC_PORT_IN_USE';
  override readonly name = 'PortInUseError';
  constructor(
    readonly key: string,
    readonly port: number,
    cause: Error & { code?: string },
  ) {
    super(
      `${key} = ${port}: ${cause.code === 'EADDRINUSE' ? 'the port is already in use (another dpc-node or program holds it)' : cause.message}; choose another port in the config (0 picks a free one)`,
      { cause },
    );
  }
}

/** The host a wildcard config value binds: 'dual' means every address. */
const bindHost = (h: string): string | undefined => (h === 'dual' ? undefined : h);

function tryTcp(host: string | undefined, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen({ port, ...(host !== undefined && { host }), exclusive: true }, () => srv.close(() => resolve()));
  });
}

function tryUdp(host: string | undefined, port: number): Promise<void> {
  const type = host?.includes(':') || host === undefined ? 'udp6' : 'udp4';
  return new Promise((resolve, reject) => {
    const sock = createSocket({ type, ...(type === 'udp6' && host === undefined && { ipv6Only: false }) });
    sock.once('error', (err) => {
      sock.close();
      reject(err);
    });
    sock.bind(port, host ?? '::', () => sock.close(() => resolve()));
  });
}

/** The fixed ports a `start` will bind, with their config keys (port 0 = any free one: nothing to check). */
export function configuredPorts(config: DpcConfig): Array<{ key: string; proto: 'tcp' | 'udp'; host: string | undefined; port: number }> {
  const list = [
    { key: '[p2p] listen_port', proto: 'tcp' as const, host: bindHost(config.p2p.listen_host), port: config.p2p.listen_port },
    { key: '[dht] port', proto: 'udp' as const, host: bindHost(config.dht.host), port: config.dht.port },
    ...(config.api.enabled ? [{ key: '[api] port', proto: 'tcp' as const, host: config.api.host, port: config.api.port }] : []),
    ...(config.relay.volunteer ? [{ key: '[relay] port', proto: 'tcp' as const, host: undefined, port: config.relay.port }] : []),
    ...(config.hub.serve ? [{ key: '[hub] port', proto: 'tcp' as const, host: bindHost(config.hub.host), port: config.hub.port }] : []),
  ];
  return list.filter((p) => p.port !== 0);
}

/**
 * Binds and releases every fixed port of the config, so a taken port fails the start before
 * the node joins the network. Throws PortInUseError naming the key.
 */
export async function checkPorts(config: DpcConfig): Promise<void> {
  for (const p of configuredPorts(config)) {
    try {
      await (p.proto === 'tcp' ? tryTcp(p.host, p.port) : tryUdp(p.host, p.port));
    } catch (err) {
      throw new PortInUseError(p.key, p.port, err as Error);
    }
  }
}
