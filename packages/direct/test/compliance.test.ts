// Tiers 1 and 2 against the shared Strategy compliance suite of @dpc/core, over real TCP on loopback.
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { createRecord, type EndpointBody, emptyEndpointBody, generateIdentity, type Identity } from '@dpc/core';
import { strategyCompliance } from '@dpc/core/compliance';
import { createDirectListener, ipv4DirectStrategy, ipv6DirectStrategy } from '@dpc/direct';

const TIMEOUT_MS = 1000;
const record = (who: Identity, body: Partial<EndpointBody>) =>
  createRecord(who, { kind: 'endpoint', body: { ...emptyEndpointBody(), ...body } });

/** A TCP server that accepts and never speaks: the handshake stalls. */
async function blackhole(host: string): Promise<{ port: number; close(): void }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
  }).listen(0, host);
  await once(server, 'listening');
  return {
    port: (server.address() as { port: number }).port,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

for (const [tier, host] of [
  ['ipv4_direct', '127.0.0.1'],
  ['ipv6_direct', '::1'],
] as const) {
  strategyCompliance(tier, async () => {
    const [alice, bob, carol, dave] = [generateIdentity(), generateIdentity(), generateIdentity(), generateIdentity()];
    const listen = async (identity: Identity) => {
      const l = createDirectListener({ identity, host, port: 0, handshakeTimeoutMs: 5000 });
      await l.start();
      return l;
    };
    const bobL = await listen(bob);
    const carolL = await listen(carol);
    const hole = await blackhole(host);
    const at = (port: number): Partial<EndpointBody> =>
      tier === 'ipv4_direct' ? { ipv4_external: [{ ip: host, port }] } : { ipv6: [{ ip: host, port }] };
    const opts = { identity: alice, allowLoopback: true, timeoutMs: TIMEOUT_MS, handshakeTimeoutMs: 10 * TIMEOUT_MS };
    return {
      strategy: tier === 'ipv4_direct' ? ipv4DirectStrategy(opts) : ipv6DirectStrategy(opts),
      timeoutMs: TIMEOUT_MS,
      reachable: record(bob, at(bobL.port)),
      // Signed by bob, but the address is carol's listener.
      misdirected: record(bob, at(carolL.port)),
      silent: record(dave, at(hole.port)),
      notApplicable: record(bob, {}),
      async close() {
        hole.close();
        await Promise.all([bobL.stop(), carolL.stop()]);
      },
    };
  });
}
