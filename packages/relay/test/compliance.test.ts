// Tier 5 against the shared Strategy compliance suite of @dpc/core: real relay server and clients
// on loopback. The wrong-peer case needs a relay that lies: it pairs a registration for X with Y.
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { Duplex, PassThrough } from 'node:stream';
import {
  type Connection,
  createRecord,
  type EndpointBody,
  emptyEndpointBody,
  generateIdentity,
  type Identity,
  secureAccept,
} from '@dpc/core';
import { strategyCompliance } from '@dpc/core/compliance';
import {
  createRelayClient,
  createRelayServer,
  type RelayMessage,
  type RelayRef,
  relayMessageSchema,
  volunteerRelayStrategy,
} from '@dpc/relay';

const TIMEOUT_MS = 2000;
const record = (who: Identity, body: Partial<EndpointBody>) =>
  createRecord(who, { kind: 'endpoint', body: { ...emptyEndpointBody(), ...body } });

/**
 * A lying relay: it answers every RELAY_REGISTER with a session to `other` (whatever the target),
 * and carries the session's bytes to `other`'s TLS end in this process.
 */
async function lyingRelay(other: Identity): Promise<{ ref: RelayRef; close(): void }> {
  const id = generateIdentity();
  const sockets = new Set<Socket>();
  const conns = new Set<Connection>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    secureAccept(socket, { identity: id, tier: 'ipv4_direct', messageSchema: relayMessageSchema }).then(
      (control) => {
        conns.add(control);
        const toOther = new PassThrough();
        const fromOther = new PassThrough();
        let sessionId: string | undefined;
        control.on('message', (raw: unknown) => {
          const m = raw as RelayMessage;
          if (m.type === 'RELAY_REGISTER') {
            sessionId = `lie-${m.id}`;
            const end = Duplex.from({ readable: toOther, writable: fromOther });
            secureAccept(end, { identity: other, tier: 'volunteer_relay' }).then(
              (c) => conns.add(c),
              () => {},
            );
            fromOther.on('data', (data: Buffer) => {
              control.send({ type: 'RELAY_MESSAGE', session_id: sessionId, data }).catch(() => {});
            });
            control
              .send({
                type: 'RELAY_SESSION',
                id: m.id,
                session_id: sessionId,
                peer: other.nodeId,
                msgs_per_s: 1000,
                msg_burst: 1000,
                max_message_bytes: 64 * 1024,
              })
              .catch(() => {});
          } else if (m.type === 'RELAY_MESSAGE' && m.session_id === sessionId) {
            toOther.write(Buffer.from(m.data));
          }
        });
      },
      () => socket.destroy(),
    );
  }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    ref: { node_id: id.nodeId, ip: '127.0.0.1', port: (server.address() as { port: number }).port },
    close() {
      for (const c of conns) void c.close().catch(() => {});
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** A TCP server that accepts and never speaks: the relay's control handshake stalls. */
async function silentRelay(): Promise<{ ref: RelayRef; close(): void }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
  }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    ref: { node_id: generateIdentity().nodeId, ip: '127.0.0.1', port: (server.address() as { port: number }).port },
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

strategyCompliance('volunteer_relay', async () => {
  const [alice, bob, carol, dave] = [generateIdentity(), generateIdentity(), generateIdentity(), generateIdentity()];
  const relayId = generateIdentity();
  const relay = createRelayServer({ identity: relayId, host: '127.0.0.1', port: 0 });
  await relay.start();
  const ref: RelayRef = { node_id: relayId.nodeId, ip: '127.0.0.1', port: relay.port };
  // Bob holds a reservation at the honest relay and accepts what comes in.
  const bobClient = createRelayClient({ identity: bob });
  bobClient.on('incoming', () => {});
  await bobClient.reserve({ relays: [ref] });
  const liar = await lyingRelay(carol);
  const silent = await silentRelay();
  const client = createRelayClient({ identity: alice, relayTimeoutMs: TIMEOUT_MS });
  return {
    strategy: volunteerRelayStrategy({ client, canDiscover: false }),
    timeoutMs: TIMEOUT_MS,
    reachable: record(bob, { relays: [ref] }),
    // Bob's own record, but the relay it lists pairs alice with carol.
    misdirected: record(bob, { relays: [liar.ref] }),
    silent: record(dave, { relays: [silent.ref] }),
    notApplicable: record(bob, {}),
    async close() {
      await client.stop();
      await bobClient.stop();
      liar.close();
      silent.close();
      await relay.stop();
    },
  };
});
