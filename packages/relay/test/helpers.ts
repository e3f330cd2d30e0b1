// Test helpers. `MemoryDirectory` and `MemorySignaller` stand in for @dpc/dht in these loopback
// tests of the relay's own logic (dpc-node wires the real DHT; the lab tests use it): they store and return REAL signed relay-offer records (createRecord /
// verifyRecord from @dpc/core), exactly what the DHT's findRelays/announceRelay exchange.
import { EventEmitter, once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import {
  type Connection,
  createRecord,
  generateIdentity,
  type Identity,
  type RelayOfferBody,
  type SecureConnection,
  type SignedRecord,
  secureAccept,
  secureConnect,
  verifyRecord,
} from '@dpc/core';
import {
  createRelayClient,
  createRelayServer,
  type RelayClient,
  type RelayClientOptions,
  type RelayDirectory,
  type RelayMessage,
  type RelayRef,
  type RelayServer,
  type RelayServerOptions,
  relayMessageSchema,
  type Signaller,
} from '@dpc/relay';

export class MemoryDirectory {
  readonly #records = new Map<string, Buffer>();
  announces = 0;

  /** The directory as seen by one node: announcing signs with that node's key. */
  forNode(identity: Identity): RelayDirectory {
    return {
      findRelays: async () =>
        [...this.#records.values()].map((b) => verifyRecord(b, { kind: 'relay-offer' }) as SignedRecord<'relay-offer'>),
      announceRelay: async (body: RelayOfferBody) => {
        this.announces++;
        this.put(identity, body);
      },
    };
  }

  put(identity: Identity, body: RelayOfferBody): void {
    this.#records.set(identity.nodeId, createRecord(identity, { kind: 'relay-offer', body }).encoded);
  }

  get(nodeId: string): RelayOfferBody | undefined {
    const b = this.#records.get(nodeId);
    return b ? (verifyRecord(b, { kind: 'relay-offer' }).body as RelayOfferBody) : undefined;
  }
}

export class MemorySignaller {
  readonly #nodes = new Map<string, EventEmitter>();
  sent = 0;

  forNode(identity: Identity): Signaller {
    const ee = new EventEmitter();
    this.#nodes.set(identity.nodeId, ee);
    return {
      signal: async (nodeId, payload) => {
        this.sent++;
        const to = this.#nodes.get(nodeId);
        if (!to) throw new Error(`no route to ${nodeId}`);
        setImmediate(() => to.emit('signal', { from: identity.nodeId, payload }));
      },
      on: (event, fn) => ee.on(event, fn),
      off: (event, fn) => ee.off(event, fn),
    };
  }
}

/** A control connection to a relay without the client library: speaks the wire protocol directly. */
export async function rawClient(identity: Identity, relay: Identity, port: number): Promise<SecureConnection> {
  const socket = connect({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  return secureConnect(socket, { identity, tier: 'ipv4_direct', expectedNodeId: relay.nodeId, messageSchema: relayMessageSchema });
}

/** Next control message of a type (others are skipped). */
export function nextOf<T extends RelayMessage['type']>(conn: Connection, type: T, ms = 5000): Promise<Extract<RelayMessage, { type: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      conn.off('message', on);
      reject(new Error(`no ${type} within ${ms} ms`));
    }, ms);
    const on = (raw: unknown) => {
      const m = raw as RelayMessage;
      if (m.type !== type) return;
      clearTimeout(timer);
      conn.off('message', on);
      resolve(m as Extract<RelayMessage, { type: T }>);
    };
    conn.on('message', on);
  });
}

/** A listener whose raw sockets the test holds (to kill them) and whose decrypted messages it sees. */
export async function tappedListener(
  identity: Identity,
  onConn: (conn: SecureConnection) => void,
): Promise<{ port: number; sockets: Set<Socket>; server: Server }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    secureAccept(s, { identity, tier: 'ipv4_direct' }).then(onConn, () => s.destroy());
  }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as { port: number }).port, sockets, server };
}

/** The error a connection closes with (events.once would reject on the 'error' event instead). */
export const closeError = (conn: Connection): Promise<Error | undefined> =>
  conn.closed ? Promise.resolve(undefined) : new Promise((resolve) => conn.once('close', resolve));
export const nextMessage = (conn: Connection): Promise<unknown> => once(conn, 'message').then(([m]) => m);

/**
 * A TCP proxy in front of a relay port that records every byte crossing it, both ways, and
 * holds the sockets (to kill them). `target()` is read per connection.
 */
export async function tapProxy(target: () => number): Promise<{ port: number; seen: Buffer[]; sockets: Set<Socket>; server: Server }> {
  const seen: Buffer[] = [];
  const sockets = new Set<Socket>();
  const hold = (s: Socket) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  };
  const server = createServer((down) => {
    const up = connect({ host: '127.0.0.1', port: target() });
    hold(down);
    hold(up);
    down.on('data', (d: Buffer) => seen.push(Buffer.from(d)));
    up.on('data', (d: Buffer) => seen.push(Buffer.from(d)));
    down.pipe(up);
    up.pipe(down);
    down.on('close', () => up.destroy());
    up.on('close', () => down.destroy());
  }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as { port: number }).port, seen, sockets, server };
}

/** A raw data connection to a relay: the preamble (magic, session id, token), then whatever the test writes. */
export async function rawData(port: number, sessionId: string, token: Uint8Array, magic = 'DPCS'): Promise<Socket> {
  const s = connect({ host: '127.0.0.1', port });
  s.on('error', () => {});
  await once(s, 'connect');
  s.write(Buffer.concat([Buffer.from(magic, 'latin1'), Buffer.from(sessionId, 'latin1'), token]));
  return s;
}

/** Things to undo after each test, newest first: `afterEach(runCleanups)` in each test file. */
export const cleanups: Array<() => Promise<unknown> | unknown> = [];
export async function runCleanups(): Promise<void> {
  for (const c of cleanups.splice(0).reverse()) await c();
}

/** A relay server on loopback (so it may announce 127.0.0.1), stopped after the test. */
export async function relay(opts: Partial<RelayServerOptions> = {}): Promise<{ server: RelayServer; id: Identity; ref: RelayRef }> {
  const id = opts.identity ?? generateIdentity();
  const server = createRelayServer({ host: '127.0.0.1', port: 0, allowLoopback: true, ...opts, identity: id });
  await server.start();
  cleanups.push(() => server.stop());
  return { server, id, ref: { node_id: id.nodeId, ip: '127.0.0.1', port: server.port } };
}

/** A relay client with its own identity (following invites to loopback relays), stopped after the test. */
export function client(opts: Partial<RelayClientOptions> = {}): RelayClient & { id: Identity } {
  const id = opts.identity ?? generateIdentity();
  const c = createRelayClient({ relayTimeoutMs: 10_000, allowLoopback: true, ...opts, identity: id });
  cleanups.push(() => c.stop());
  return Object.assign(c, { id });
}

/** Alice reaches Bob, who holds a reservation at the relay; both ends of the relayed path. */
export async function pair(ref: RelayRef, a = client(), b = client()): Promise<{ alice: Connection; bob: Connection }> {
  await b.reserve({ relays: [ref] });
  const inbound = once(b, 'incoming') as Promise<[Connection]>;
  const alice = await a.connect(b.id.nodeId, { relays: [ref], signal: AbortSignal.timeout(10_000) });
  const [bob] = await inbound;
  return { alice, bob };
}

/**
 * Two raw clients (wire protocol by hand) registered for each other at a fresh relay; resolves
 * with both RELAY_SESSION grants. `ids` are the two RELAY_REGISTER request ids.
 */
export async function rawPair(opts: Partial<RelayServerOptions> = {}, how: { splice?: boolean; ids?: [number, number] } = {}) {
  const r = await relay(opts);
  const [ia, ib] = [generateIdentity(), generateIdentity()];
  const a = await rawClient(ia, r.id, r.server.port);
  const b = await rawClient(ib, r.id, r.server.port);
  cleanups.push(() => Promise.all([a.close(), b.close()]));
  const sa = nextOf(a, 'RELAY_SESSION');
  const sb = nextOf(b, 'RELAY_SESSION');
  const [idA, idB] = how.ids ?? [1, 2];
  const splice = how.splice ? { splice: true } : {};
  await a.send({ type: 'RELAY_REGISTER', id: idA, target: ib.nodeId, ...splice });
  await nextOf(a, 'RELAY_WAITING');
  await b.send({ type: 'RELAY_REGISTER', id: idB, target: ia.nodeId, ...splice });
  const [ga, gb] = await Promise.all([sa, sb]);
  return { ...r, a, b, ia, ib, ga, gb };
}
