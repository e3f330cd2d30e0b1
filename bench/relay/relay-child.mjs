// The relay under test, in its own process so its memory can be measured alone.
import { generateIdentity } from '@dpc/core';
import { createRelayServer } from '@dpc/relay';

const identity = generateIdentity();
const server = createRelayServer({
  identity,
  host: '127.0.0.1',
  port: 0,
  maxPeers: 100_000,
  maxPending: 100_000,
  maxConnections: 100_000,
  // Every client of the benchmarks is on 127.0.0.1: one source, so the per-source and per-peer caps go too.
  maxPendingPerSource: 100_000,
  maxConnectionsPerSource: 100_000,
  maxReservationsPerSource: 100_000,
  maxSessionsPerSource: 100_000,
  maxSessionsPerPeer: 100_000,
  messagesPerSecond: 1_000_000,
  messageBurst: 1_000_000,
  bandwidthLimitMbps: 1_000_000,
  maxSessionBytes: 2 ** 50,
});
await server.start();
process.send({ ready: true, nodeId: identity.nodeId, port: server.port });
process.on('message', async (m) => {
  if (m === 'mem') {
    globalThis.gc?.();
    await new Promise((r) => setTimeout(r, 50));
    globalThis.gc?.();
    const u = process.memoryUsage();
    process.send({ mem: { heapUsed: u.heapUsed, rss: u.rss, external: u.external, arrayBuffers: u.arrayBuffers }, stats: server.stats() });
  } else if (typeof m === 'object' && m.snapshot) {
    // A heap snapshot to a file (for looking into memory per session by hand).
    globalThis.gc?.();
    const { writeHeapSnapshot } = await import('node:v8');
    process.send({ snapshot: writeHeapSnapshot(m.snapshot) });
  } else if (m === 'cpu') {
    process.send({ cpu: process.cpuUsage() });
  } else if (m === 'stop') {
    await server.stop();
    process.exit(0);
  }
});
