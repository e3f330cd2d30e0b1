// dpc side of the relay benchmark: direct secure connection vs the same through one relay.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { generateIdentity, secureAccept, secureConnect } from '@dpc/core';
import { createRelayClient } from '@dpc/relay';

const here = new URL('.', import.meta.url).pathname;

/**
 * Sends `count` messages of `size` bytes from `a` to `b`; resolves with msgs/s and MB/s. Rejects
 * when no byte arrives for `stallMs` (a libp2p stream was seen to stop for good now and then).
 */
export async function throughput(a, b, { count, size }, stallMs = 20_000) {
  const payload = Buffer.alloc(size, 7);
  // Counted in bytes, so a byte stream (libp2p) and a message connection (dpc) compare alike.
  const total = count * size;
  let bytes = 0;
  let seen = 0;
  let watch;
  const stalled = new Promise((_, reject) => {
    watch = setInterval(() => {
      if (bytes === seen) reject(new Error(`stalled at ${bytes} of ${total} bytes`));
      seen = bytes;
    }, stallMs);
  });
  const done = new Promise((resolve) => {
    b.on('message', (m) => {
      bytes += m.length;
      if (bytes >= total) resolve();
    });
  });
  const t0 = performance.now();
  try {
    await Promise.race([
      stalled,
      (async () => {
        for (let i = 0; i < count; i++) await a.send(payload);
        await done;
      })(),
    ]);
  } finally {
    clearInterval(watch);
    b.removeAllListeners('message');
  }
  const s = (performance.now() - t0) / 1000;
  return { msgsPerSec: count / s, mbPerSec: bytes / s / 1e6 };
}

/**
 * Waits until this process is quiet (under 10 % of a core for two 50 ms intervals in a row, at
 * most `maxMs`): a connection can go on working after its last message is counted (libp2p's
 * small run keeps this process busy for about a second afterwards), and the path measured next
 * must not pay for it. Returns the ms waited.
 */
export async function settle(maxMs = 3000) {
  const t0 = performance.now();
  let quiet = 0;
  while (quiet < 2 && performance.now() - t0 < maxMs) {
    const cpu = process.cpuUsage();
    const t = performance.now();
    await new Promise((r) => setTimeout(r, 50));
    const used = process.cpuUsage(cpu);
    quiet = (used.user + used.system) / 1000 < 0.1 * (performance.now() - t) ? quiet + 1 : 0;
  }
  return performance.now() - t0;
}

/** Median round trip of a framed ping, ms. */
export async function latency(conn, n = 300) {
  const xs = [];
  for (let i = 0; i < n; i++) xs.push(await conn.ping());
  xs.sort((x, y) => x - y);
  return xs[Math.floor(xs.length / 2)];
}

export async function directPair() {
  const [ia, ib] = [generateIdentity(), generateIdentity()];
  let resolveB;
  const bP = new Promise((r) => (resolveB = r));
  // noDelay as the direct tier's dialer and listener set it (packages/direct): no Nagle.
  const server = createServer({ noDelay: true }, (s) => secureAccept(s, { identity: ib, tier: 'ipv4_direct' }).then(resolveB)).listen(
    0,
    '127.0.0.1',
  );
  await once(server, 'listening');
  const sock = connect({ port: server.address().port, host: '127.0.0.1', noDelay: true });
  await once(sock, 'connect');
  const a = await secureConnect(sock, { identity: ia, tier: 'ipv4_direct', expectedNodeId: ib.nodeId });
  const b = await bP;
  return {
    a,
    b,
    close: async () => {
      await a.close();
      server.close();
    },
  };
}

export async function startRelay() {
  const child = fork(`${here}relay-child.mjs`, [], {
    execArgv: ['--expose-gc', ...(process.env.DPC_RELAY_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.DPC_RELAY_PROF}`] : [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [info] = await once(child, 'message');
  const ask = async () => {
    child.send('mem');
    const [m] = await once(child, 'message');
    return m;
  };
  /** The relay process's CPU time so far, µs (user + system). */
  const cpu = async () => {
    child.send('cpu');
    const [m] = await once(child, 'message');
    return m.cpu.user + m.cpu.system;
  };
  /** Writes a heap snapshot of the relay process to `file`. */
  const snapshot = async (file) => {
    child.send({ snapshot: file });
    const [m] = await once(child, 'message');
    return m.snapshot;
  };
  return {
    ref: { node_id: info.nodeId, ip: '127.0.0.1', port: info.port },
    ask,
    cpu,
    snapshot,
    stop: () => {
      child.send('stop');
      return once(child, 'exit');
    },
  };
}

export async function relayedPair(ref) {
  const [ia, ib] = [generateIdentity(), generateIdentity()];
  const alice = createRelayClient({ identity: ia });
  const bob = createRelayClient({ identity: ib });
  await bob.reserve({ relays: [ref] });
  const inbound = once(bob, 'incoming');
  const a = await alice.connect(ib.nodeId, { relays: [ref] });
  const [b] = await inbound;
  return {
    a,
    b,
    alice,
    bob,
    close: async () => {
      await alice.stop();
      await bob.stop();
    },
  };
}

/** Opens `n` relayed sessions (each its own end-to-end TLS channel), returns the relay's memory per session. */
export async function idleSessions(relay, n) {
  const before = await relay.ask();
  const bobs = [];
  const clients = [];
  const conns = [];
  const pairs = 20;
  for (let p = 0; p < pairs; p++) {
    const ib = generateIdentity();
    const bob = createRelayClient({ identity: ib });
    await bob.reserve({ relays: [relay.ref] });
    bob.on('incoming', (c) => conns.push(c));
    bobs.push(ib);
    clients.push(bob);
  }
  await Promise.all(
    bobs.map(async (ib) => {
      const alice = createRelayClient({ identity: generateIdentity() });
      clients.push(alice);
      for (let i = 0; i < n / pairs; i++) conns.push(await alice.connect(ib.nodeId, { relays: [relay.ref] }));
    }),
  );
  const after = await relay.ask();
  const result = {
    sessions: after.stats.open_sessions,
    heapPerSessionBytes: (after.mem.heapUsed - before.mem.heapUsed) / n,
    rssPerSessionBytes: (after.mem.rss - before.mem.rss) / n,
    relayRssMB: after.mem.rss / 1e6,
  };
  await Promise.all(clients.map((c) => c.stop()));
  return result;
}
