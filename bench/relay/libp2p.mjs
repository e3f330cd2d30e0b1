// js-libp2p circuit relay v2 moving the same data as the dpc relay (bench only).
// js-libp2p 3.x calls Promise.withResolvers, which Node 20 lacks: polyfilled here.
import { fork } from 'node:child_process';
import { EventEmitter, once } from 'node:events';

if (!Promise.withResolvers) {
  Promise.withResolvers = function withResolvers() {
    let resolve;
    let reject;
    const promise = new this((a, b) => {
      resolve = a;
      reject = b;
    });
    return { promise, resolve, reject };
  };
}

const { createLibp2p } = await import('libp2p');
const { tcp } = await import('@libp2p/tcp');
const { noise } = await import('@chainsafe/libp2p-noise');
const { yamux } = await import('@chainsafe/libp2p-yamux');
const { identify } = await import('@libp2p/identify');
const { circuitRelayServer, circuitRelayTransport } = await import('@libp2p/circuit-relay-v2');
const { multiaddr } = await import('@multiformats/multiaddr');

const base = () => ({
  transports: [tcp(), circuitRelayTransport()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  connectionGater: { denyDialMultiaddr: () => false },
});
const opts = { runOnLimitedConnection: true };

async function write(stream, buf) {
  if (!stream.send(buf)) await stream.onDrain();
}

/** A circuit relay v2 server (defaults, except the limits raised below). */
export async function createRelayNode() {
  return createLibp2p({
    ...base(),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    services: {
      identify: identify(),
      // Default limits (2 min, 128 KiB per relayed connection) raised so it carries the test data.
      relay: circuitRelayServer({
        reservations: { applyDefaultLimit: false, defaultDataLimit: 2n ** 40n, defaultDurationLimit: 3_600_000 },
      }),
    },
  });
}

/**
 * A pair (a sends, b receives) over a libp2p stream relayed by a circuit relay v2 on loopback.
 * The relay runs in this process (the default; it then shares the peers' core), or with
 * `ownProcess` in a process of its own (libp2p-relay-child.mjs), as dpc's does. `relay.cpu()` is
 * the relay process's CPU time, µs (0 in this process: it is counted with the peers').
 */
export async function libp2pPair({ ownProcess = false } = {}) {
  let relay;
  let addr;
  if (ownProcess) {
    const child = fork(new URL('./libp2p-relay-child.mjs', import.meta.url).pathname, [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const [info] = await once(child, 'message');
    addr = multiaddr(info.addr);
    relay = {
      cpu: async () => {
        child.send('cpu');
        const [m] = await once(child, 'message');
        return m.cpu.user + m.cpu.system;
      },
      stop: () => {
        child.send('stop');
        return once(child, 'exit');
      },
    };
  } else {
    const node = await createRelayNode();
    addr = node.getMultiaddrs()[0];
    relay = { cpu: async () => 0, stop: () => node.stop() };
  }
  const listener = await createLibp2p({ ...base(), addresses: { listen: ['/p2p-circuit'] }, services: { identify: identify() } });
  const dialer = await createLibp2p({ ...base(), services: { identify: identify() } });
  const b = new EventEmitter();
  await listener.handle(
    '/bench/1',
    (stream) => {
      stream.addEventListener('message', (e) => b.emit('message', e.data.subarray ? e.data.subarray() : e.data));
    },
    opts,
  );
  await listener.handle(
    '/echo/1',
    (stream) => {
      stream.addEventListener('message', (e) => void write(stream, e.data.subarray ? e.data.subarray() : e.data));
    },
    opts,
  );
  await listener.dial(addr);
  const deadline = Date.now() + 10_000;
  let circuit;
  while (!(circuit = listener.getMultiaddrs().find((m) => m.toString().includes('/p2p-circuit')))) {
    if (Date.now() > deadline) throw new Error('libp2p listener got no relay reservation');
    await new Promise((r) => setTimeout(r, 50));
  }
  const conn = await dialer.dial(circuit);
  const stream = await conn.newStream('/bench/1', opts);
  let pong;
  let echo;
  // A fresh echo stream per series of pings (an echo stream left idle between rounds may be closed).
  const openEcho = async () => {
    echo = await conn.newStream('/echo/1', opts);
    echo.addEventListener('message', () => pong?.());
  };
  const a = {
    send: (buf) => write(stream, buf),
    ping: async () => {
      if (echo?.writeStatus !== 'writable') await openEcho();
      const t0 = performance.now();
      const got = new Promise((r) => (pong = r));
      await write(echo, new Uint8Array(8));
      await got;
      return performance.now() - t0;
    },
  };
  return {
    a,
    b,
    relay,
    close: async () => {
      await Promise.all([dialer.stop(), listener.stop()]);
      await relay.stop();
    },
  };
}
