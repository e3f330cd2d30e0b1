#!/usr/bin/env node
// Relay memory per idle spliced session (see BENCHMARKS.md "## Relay"). For each N: a fresh relay
// in its own process; 20 answering clients reserve at it and 20 dialing clients connect to them
// (every session its own end-to-end TLS channel over two spliced data connections), all in this
// process; the relay's heap and RSS are read (after GC) once the clients' control connections are
// up and again with the N sessions open and idle: the difference over N is the cost of a session.
//   npx turbo run build && node bench/relay/idle.mjs [N ...]     (default 1000 5000)
import { generateIdentity } from '@dpc/core';
import { createRelayClient } from '@dpc/relay';
import { startRelay } from './dpc.mjs';

const ns = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n > 0);
const PAIRS = 20;

async function measure(n) {
  const relay = await startRelay();
  const ref = relay.ref;
  const answerers = [];
  const dialers = [];
  const conns = [];
  for (let p = 0; p < PAIRS; p++) {
    const ib = generateIdentity();
    const bob = createRelayClient({ identity: ib });
    await bob.reserve({ relays: [ref] });
    bob.on('incoming', (c) => conns.push(c));
    answerers.push({ ib, bob });
    const alice = createRelayClient({ identity: generateIdentity() });
    dialers.push(alice);
  }
  // One session per pair first, so every dialer's control connection is up before the baseline.
  await Promise.all(dialers.map(async (alice, i) => conns.push(await alice.connect(answerers[i].ib.nodeId, { relays: [ref] }))));
  const before = await relay.ask();
  const t0 = performance.now();
  const per = Math.ceil(n / PAIRS);
  await Promise.all(
    dialers.map(async (alice, i) => {
      for (let k = 0; k < per; k++) conns.push(await alice.connect(answerers[i].ib.nodeId, { relays: [ref] }));
    }),
  );
  const openMs = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 500)); // the last handshakes' bytes settle
  const after = await relay.ask();
  const opened = after.stats.open_sessions - before.stats.open_sessions;
  const result = {
    n: opened,
    heapKiB: (after.mem.heapUsed - before.mem.heapUsed) / opened / 1024,
    rssKiB: (after.mem.rss - before.mem.rss) / opened / 1024,
    externalKiB: (after.mem.external - before.mem.external) / opened / 1024,
    relayRssMB: after.mem.rss / 1e6,
    openMs,
  };
  await Promise.all([...dialers, ...answerers.map((a) => a.bob)].map((c) => c.stop()));
  await relay.stop();
  return result;
}

console.log(`node ${process.version}; relay in its own process, ${PAIRS} answering + ${PAIRS} dialing clients in this one`);
console.log('| idle sessions | relay heap KiB/session | relay RSS KiB/session | external KiB/session | relay RSS MB | open s |');
console.log('|---:|---:|---:|---:|---:|---:|');
for (const n of ns.length ? ns : [1000, 5000]) {
  const r = await measure(n);
  console.log(
    `| ${r.n} | ${r.heapKiB.toFixed(2)} | ${r.rssKiB.toFixed(2)} | ${r.externalKiB.toFixed(2)} | ${r.relayRssMB.toFixed(1)} | ${(r.openMs / 1000).toFixed(1)} |`,
  );
}
