#!/usr/bin/env node
// Relay benchmark (see BENCHMARKS.md "## Relay"). Through one relay on loopback: messages/s and
// MB/s forwarded, added latency against a direct secure connection, relay memory per idle
// session with 1,000 sessions open; js-libp2p circuit relay v2 moving the same data, when its
// packages are installed here (`npm ci` in bench/relay).
//   npm run build && node bench/relay/relay.mjs [--sessions 1000] [--skip-libp2p]
import { directPair, idleSessions, latency, relayedPair, startRelay, throughput } from './dpc.mjs';

const arg = (name, d) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const SESSIONS = arg('--sessions', 1000);
const BULK = { count: 2000, size: 16 * 1024 }; // 32 MB
const SMALL = { count: 20_000, size: 100 };
const rows = [];
const fmt = (x, d = 1) => x.toFixed(d);

async function measure(name, pair) {
  await throughput(pair.a, pair.b, { count: 200, size: 1024 }); // warm-up
  const small = await throughput(pair.a, pair.b, SMALL);
  const bulk = await throughput(pair.a, pair.b, BULK);
  const rtt = await latency(pair.a);
  rows.push({ name, smallMsgs: small.msgsPerSec, bulkMB: bulk.mbPerSec, rtt });
  await pair.close();
}

await measure('dpc direct (TLS 1.3 over TCP)', await directPair());
const relay = await startRelay();
await measure('dpc via volunteer relay', await relayedPair(relay.ref));
const mem = await idleSessions(relay, SESSIONS);
await relay.stop();

if (!process.argv.includes('--skip-libp2p')) {
  try {
    const { libp2pPair } = await import('./libp2p.mjs');
    await measure('js-libp2p circuit relay v2 (TCP+noise+yamux)', await libp2pPair());
  } catch (err) {
    console.error(`libp2p part skipped: ${err?.stack ?? err}`);
  }
}

const direct = rows[0];
console.log(`\nnode ${process.version}, ${BULK.count} x ${BULK.size} B bulk, ${SMALL.count} x ${SMALL.size} B small, loopback\n`);
console.log('| path | small msgs/s | bulk MB/s | median RTT ms | added RTT ms |');
console.log('|---|---:|---:|---:|---:|');
for (const r of rows) {
  console.log(`| ${r.name} | ${fmt(r.smallMsgs, 0)} | ${fmt(r.bulkMB)} | ${fmt(r.rtt, 3)} | ${fmt(r.rtt - direct.rtt, 3)} |`);
}
const dpcRelay = rows[1];
console.log(`\nrelayed / direct bulk throughput: ${fmt((100 * dpcRelay.bulkMB) / direct.bulkMB, 0)} %`);
const lp = rows[2];
if (lp) console.log(`dpc relay / libp2p relay bulk throughput: ${fmt(dpcRelay.bulkMB / lp.bulkMB, 2)}x`);
console.log(
  `relay memory with ${mem.sessions} idle sessions: ${fmt(mem.heapPerSessionBytes / 1024, 2)} KiB heap/session, ` +
    `${fmt(mem.rssPerSessionBytes / 1024, 2)} KiB RSS/session (relay RSS ${fmt(mem.relayRssMB)} MB)`,
);
