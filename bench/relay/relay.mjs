#!/usr/bin/env node
// Relay benchmark (see BENCHMARKS.md "## Relay"). Through one relay on loopback: messages/s and
// MB/s forwarded, added latency against a direct secure connection, relay memory per idle
// session with 1,000 sessions open; js-libp2p circuit relay v2 moving the same data, when its
// packages are installed here (`npm ci` in bench/relay).
//
// Each system runs in a process of its own (system-child.mjs), driven from here in alternating
// rounds (forward, then backward), so a busy moment on the shared machine hits all paths
// alike, and neither system's heap, timers or warmed-up code paths weigh on the other's figures:
// in one process, a libp2p transfer was measured to double the CPU a dpc byte costs afterwards
// (`--one-process` reproduces that setup). dpc: the direct pair and the relayed pair share one
// process (both peers of each pair in it), the relay has its own. libp2p: both peers and its
// relay in one process (its default; `--libp2p-relay-process` gives the relay its own).
// Every measurement starts from a quiet machine (settleMachine(); DEBUG_SETTLE=1 prints the waits)
// and a quiet process (settle() in dpc.mjs).
//   npm run build && node bench/relay/relay.mjs [--rounds 5] [--sessions 1000] [--skip-libp2p]
//     [--libp2p-relay-process] [--one-process]
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { BULK, openSystem, SMALL } from './system.mjs';

const arg = (name, d) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const flag = (name) => process.argv.includes(name);
const SESSIONS = arg('--sessions', 1000);
const ROUNDS = arg('--rounds', 5);
const ONE_PROCESS = flag('--one-process');
const flags = { libp2pRelayProcess: flag('--libp2p-relay-process') };
const fmt = (x, d = 1) => x.toFixed(d);
// Rounds a path failed (NaN) are left out.
const median = (xs) => {
  const ok = xs.filter(Number.isFinite).sort((x, y) => x - y);
  return ok.length ? ok[Math.floor(ok.length / 2)] : Number.NaN;
};

/** Busy share of the whole machine's CPU time from /proc/stat, over `ms`. */
async function machineBusy(ms) {
  const read = async () => {
    const [cpu] = (await readFile('/proc/stat', 'latin1')).split('\n');
    const xs = cpu.trim().split(/\s+/).slice(1).map(Number);
    const idle = (xs[3] ?? 0) + (xs[4] ?? 0); // idle + iowait
    return { idle, total: xs.reduce((a, b) => a + b, 0) };
  };
  const a = await read();
  await new Promise((r) => setTimeout(r, ms));
  const b = await read();
  return b.total > a.total ? 1 - (b.idle - a.idle) / (b.total - a.total) : 0;
}

/**
 * Waits until the whole machine is quiet (under 15 % busy for two 50 ms intervals in a row, at
 * most 3 s): a system's process, or a relay's, can go on working after its measurement ends
 * (libp2p's does for about a second after a small-message run), and the next measurement, in
 * another process, must not share the cores with it. Each system also settles its own process.
 */
async function settleMachine(maxMs = 3000) {
  if (!existsSync('/proc/stat')) return;
  const t0 = performance.now();
  let quiet = 0;
  const seen = [];
  while (quiet < 2 && performance.now() - t0 < maxMs) {
    const b = await machineBusy(50);
    seen.push(Math.round(b * 100));
    quiet = b < 0.15 ? quiet + 1 : 0;
  }
  if (process.env.DEBUG_SETTLE) console.error(`settle ${Math.round(performance.now() - t0)} ms: ${seen.join(' ')}`);
}

/** A system in a child process, with the same calls as openSystem()'s result. */
async function spawnSystem(kind) {
  const child = fork(new URL('./system-child.mjs', import.meta.url).pathname, [kind, JSON.stringify(flags)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'advanced', // NaN for a failed measurement survives the trip
  });
  const [first] = await Promise.race([once(child, 'message'), once(child, 'exit').then(() => [{ error: `${kind} process exited` }])]);
  if (first.error) throw new Error(first.error);
  let next = 0;
  const call =
    (op) =>
    (...args) =>
      new Promise((resolve, reject) => {
        const id = next++;
        const onMessage = (m) => {
          if (m.id !== id) return;
          child.off('message', onMessage);
          if (m.error) reject(new Error(m.error));
          else resolve(m.value);
        };
        child.on('message', onMessage);
        child.send({ id, op, args });
      });
  return { paths: first.paths, measure: call('measure'), idle: call('idle'), close: call('close') };
}

const open = ONE_PROCESS ? (kind) => openSystem(kind, flags) : spawnSystem;
const systems = [await open('dpc')];
if (!flag('--skip-libp2p')) {
  try {
    systems.push(await open('libp2p'));
  } catch (err) {
    console.error(`libp2p part skipped: ${err?.stack ?? err}`);
  }
}
const paths = systems.flatMap((system) =>
  system.paths.map((name, i) => ({
    name,
    measure: async (what) => {
      await settleMachine();
      return system.measure(i, what);
    },
  })),
);
for (const p of paths) {
  p.small = [];
  p.bulk = [];
  p.rtt = [];
  p.peersCpu = [];
  p.relayCpu = [];
}
const ratios = { relayedDirect: [], dpcLibp2p: [], smallDirectRelayed: [] };
const failures = [];
const value = (r) => {
  if (r.failure) {
    failures.push(r.failure);
    console.error(`${r.failure} (left out)`);
  }
  return r.value;
};
for (let r = 0; r < ROUNDS; r++) {
  // Forward and backward in turns (direct, relayed, libp2p; then libp2p, relayed, direct): the
  // two paths of each ratio are always measured one right after the other, and each path is
  // first as often as last.
  const order = r % 2 === 0 ? paths : [...paths].reverse();
  for (const p of order) {
    const m = await p.measure('bulk');
    p.bulk.push(value(m));
    p.peersCpu.push(m.peersCpu);
    p.relayCpu.push(m.relayCpu);
  }
  for (const p of order) p.small.push(value(await p.measure('small')));
  for (const p of order) p.rtt.push(value(await p.measure('rtt')));
  ratios.relayedDirect.push(paths[1].bulk[r] / paths[0].bulk[r]);
  ratios.smallDirectRelayed.push(paths[0].small[r] / paths[1].small[r]);
  if (paths[2]) ratios.dpcLibp2p.push(paths[1].bulk[r] / paths[2].bulk[r]);
  console.error(
    `round ${r + 1}/${ROUNDS}: bulk MB/s ${paths.map((p) => fmt(p.bulk[r])).join(' / ')}; small msgs/s ${paths.map((p) => fmt(p.small[r], 0)).join(' / ')}`,
  );
}
const mem = await systems[0].idle(SESSIONS);
for (const s of systems) await s.close();
if (failures.length) console.log(`failed measurements (left out): ${failures.join('; ')}`);

const direct = paths[0];
console.log(
  `\nnode ${process.version}, ${BULK.count} x ${BULK.size} B bulk, ${SMALL.count} x ${SMALL.size} B small, loopback, ` +
    `median of ${ROUNDS} alternating rounds, ${ONE_PROCESS ? 'both systems in one process' : 'each system in its own process'}\n`,
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
