#!/usr/bin/env node
// Relay benchmark (see BENCHMARKS.md "## Relay"). Through one relay on loopback (dpc's in its own
// process, libp2p's in this one unless --libp2p-relay-process; the two peers of every path share
// this process): messages/s and
// MB/s forwarded, added latency against a direct secure connection, relay memory per idle
// session with 1,000 sessions open; js-libp2p circuit relay v2 moving the same data, when its
// packages are installed here (`npm ci` in bench/relay). Every measurement starts from a quiet
// process (settle() in dpc.mjs), so no path pays for the previous one's leftover work.
//   npm run build && node bench/relay/relay.mjs [--rounds 5] [--sessions 1000] [--skip-libp2p] [--libp2p-relay-process]
import { directPair, idleSessions, latency, relayedPair, settle, startRelay, throughput } from './dpc.mjs';

const arg = (name, d) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const SESSIONS = arg('--sessions', 1000);
const ROUNDS = arg('--rounds', 5);
const BULK = { count: 2000, size: 16 * 1024 }; // 32 MB
const SMALL = { count: 20_000, size: 100 };
const fmt = (x, d = 1) => x.toFixed(d);
// Rounds a path failed (NaN, see attempt()) are left out.
const median = (xs) => {
  const ok = xs.filter(Number.isFinite).sort((x, y) => x - y);
  return ok.length ? ok[Math.floor(ok.length / 2)] : Number.NaN;
};

// Every path is open at once and measured in alternating rounds (the order rotates each round),
// so a busy moment on the shared machine hits all of them alike; medians over the rounds.
const paths = [{ name: 'dpc direct (TLS 1.3 over TCP)', pair: await directPair() }];
const relay = await startRelay();
paths.push({ name: 'dpc via volunteer relay', pair: await relayedPair(relay.ref), relayCpuUs: relay.cpu });
if (!process.argv.includes('--skip-libp2p')) {
  try {
    const { libp2pPair } = await import('./libp2p.mjs');
    const open = () => libp2pPair({ ownProcess: process.argv.includes('--libp2p-relay-process') });
    const pair = await open();
    paths.push({ name: 'js-libp2p circuit relay v2 (TCP+noise+yamux)', pair, relayCpuUs: pair.relay.cpu, reopen: open });
  } catch (err) {
    console.error(`libp2p part skipped: ${err?.stack ?? err}`);
  }
}
for (const p of paths) {
  p.small = [];
  p.bulk = [];
  p.rtt = [];
  await throughput(p.pair.a, p.pair.b, BULK); // warm-up, both kinds, so no path's first round runs cold
  await throughput(p.pair.a, p.pair.b, SMALL);
}
const ratios = { relayedDirect: [], dpcLibp2p: [], smallDirectRelayed: [] };
// A measurement that fails (a libp2p stream was seen to stall for good now and then) counts as
// NaN for that round, reported; the path's pair is opened afresh when it can be.
const failures = [];
async function attempt(p, what, measure) {
  try {
    return await Promise.race([
      measure(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 60 s')), 60_000).unref()),
    ]);
  } catch (err) {
    failures.push(`${p.name}: ${what}: ${err?.message ?? err}`);
    console.error(`${p.name}: ${what} failed: ${err?.message ?? err}`);
    if (p.reopen) {
      p.pair.close().catch(() => {});
      p.pair = await p.reopen();
      if (p.pair.relay) p.relayCpuUs = p.pair.relay.cpu;
    }
    return Number.NaN;
  }
}
// Each measurement starts from a quiet process (see settle()).
const quiet = async (p, what, measure) => {
  await settle();
  return attempt(p, what, measure);
};
// CPU time per MB of a bulk run: this process (both peers of every path) and the relay process.
const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const MB = (BULK.count * BULK.size) / 1e6;
for (const p of paths) {
  p.peersCpu = [];
  p.relayCpu = [];
}
for (let r = 0; r < ROUNDS; r++) {
  const order = paths.map((_, i) => paths[(i + r) % paths.length]);
  for (const p of order) {
    await settle();
    const relayCpu = p.relayCpuUs ?? (async () => 0);
    const [c0, r0] = [cpuUs(), await relayCpu()];
    p.bulk.push(await attempt(p, 'bulk', async () => (await throughput(p.pair.a, p.pair.b, BULK)).mbPerSec));
    const [c1, r1] = [cpuUs(), await relayCpu()];
    p.peersCpu.push((c1 - c0) / 1000 / MB);
    p.relayCpu.push((r1 - r0) / 1000 / MB);
  }
  for (const p of order) p.small.push(await quiet(p, 'small', async () => (await throughput(p.pair.a, p.pair.b, SMALL)).msgsPerSec));
  for (const p of order) p.rtt.push(await quiet(p, 'rtt', () => latency(p.pair.a, 100)));
  ratios.relayedDirect.push(paths[1].bulk[r] / paths[0].bulk[r]);
  ratios.smallDirectRelayed.push(paths[0].small[r] / paths[1].small[r]);
  if (paths[2]) ratios.dpcLibp2p.push(paths[1].bulk[r] / paths[2].bulk[r]);
  console.error(
    `round ${r + 1}/${ROUNDS}: bulk MB/s ${paths.map((p) => fmt(p.bulk[r])).join(' / ')}; small msgs/s ${paths.map((p) => fmt(p.small[r], 0)).join(' / ')}`,
  );
}
for (const p of paths) await p.pair.close();
if (failures.length) console.log(`failed measurements (left out): ${failures.join('; ')}`);
const mem = await idleSessions(relay, SESSIONS);
await relay.stop();

const direct = paths[0];
console.log(
  `\nnode ${process.version}, ${BULK.count} x ${BULK.size} B bulk, ${SMALL.count} x ${SMALL.size} B small, loopback, ` +
    `median of ${ROUNDS} alternating rounds\n`,
);
console.log('| path | small msgs/s | bulk MB/s | median RTT ms | added RTT ms | bulk CPU ms/MB: peers | relay |');
console.log('|---|---:|---:|---:|---:|---:|---:|');
for (const p of paths) {
  const rtt = median(p.rtt);
  console.log(
    `| ${p.name} | ${fmt(median(p.small), 0)} | ${fmt(median(p.bulk))} | ${fmt(rtt, 3)} | ${fmt(rtt - median(direct.rtt), 3)} | ` +
      `${fmt(median(p.peersCpu), 2)} | ${p === paths[0] ? '—' : fmt(median(p.relayCpu), 2)} |`,
  );
}
const pct = (xs) => xs.map((x) => fmt(100 * x, 0)).join(', ');
console.log(
  `\nrelayed / direct bulk throughput: median ${fmt(100 * median(ratios.relayedDirect), 0)} % (rounds: ${pct(ratios.relayedDirect)} %)`,
);
console.log(
  `direct / relayed small messages: median ${fmt(median(ratios.smallDirectRelayed), 2)}x (rounds: ${ratios.smallDirectRelayed.map((x) => fmt(x, 2)).join(', ')})`,
);
if (ratios.dpcLibp2p.length) {
  console.log(
    `dpc relay / libp2p relay bulk throughput: median ${fmt(median(ratios.dpcLibp2p), 2)}x (rounds: ${ratios.dpcLibp2p.map((x) => fmt(x, 2)).join(', ')})`,
  );
}
console.log(
  `relay memory with ${mem.sessions} idle sessions: ${fmt(mem.heapPerSessionBytes / 1024, 2)} KiB heap/session, ` +
    `${fmt(mem.rssPerSessionBytes / 1024, 2)} KiB RSS/session (relay RSS ${fmt(mem.relayRssMB)} MB)`,
);
