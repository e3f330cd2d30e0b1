#!/usr/bin/env node
// DHT benchmark: @dpc/dht vs bittorrent-dht, same N, same lookups, same run, all on 127.0.0.1.
//   cd bench && npm ci && (cd .. && npx turbo run build) && node --expose-gc dht.mjs [N ...]
// For each N: start N nodes bootstrapped through one seed, publish L records from random nodes
// (dpc: endpoint record via announceFull; bittorrent-dht: BEP44 immutable put), then look each
// one up from another random node (dpc: findPeer; bittorrent-dht: get), one at a time.
// RPCs per lookup = queries the asking node sent while its lookup ran (same method for both).
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Client as DHT } from 'bittorrent-dht';
import { bittorrentLookup, countQueries, dpcLookup, dpcRpcs, joinColumns, LookupStats, memory, settled, sum } from './lib/dht-measure.mjs';

// DPC_DHT_BEFORE=<a built packages/dht/dist of another version> adds a "@dpc/dht (before)" row: the
// old and the new version side by side in one run (the copy must resolve @dpc/core, e.g. live
// under the repository's node_modules/).
const BEFORE = process.env.DPC_DHT_BEFORE;

const sizes = process.argv[2] === '--one' ? [] : process.argv.slice(2).map(Number).filter(Boolean);
const NS = sizes.length ? sizes : [100, 1000];
const LOOKUPS = Number(process.env.LOOKUPS ?? 100);
// Joins measured one at a time after the N nodes are up: the joining node's own RPCs, the RPCs of the
// whole network for it (the nodes it asks PING it back, evictions; counted until the network's
// count stops moving), and the time start() takes.
const JOINS = Number(process.env.JOINS ?? 20);
const HOST = '127.0.0.1';

const mem = () => memory().heap;
const pick = (list, not) => {
  for (;;) {
    const x = list[Math.floor(Math.random() * list.length)];
    if (x !== not) return x;
  }
};
const summary = (name, n, lookups, bytesPerNode, setupMs, join) => ({
  impl: name,
  N: n,
  ...lookups.columns(),
  'memory/node KiB': (bytesPerNode / 1024).toFixed(1),
  'setup s': (setupMs / 1000).toFixed(1),
  'setup RPCs/node': join.setupRpcs.toFixed(1),
  ...joinColumns(join),
});

async function benchDpc(n, old = false) {
  const dist = old ? pathToFileURL(`${BEFORE}/testnet.js`).href : new URL('../packages/dht/dist/testnet.js', import.meta.url).href;
  const { createTestnet } = await import(dist);
  const before = mem();
  const t0 = performance.now();
  // Deadlines long enough for a loaded shared machine (the lookups themselves end long before).
  const net = await createTestnet(n, { dht: { rpcTimeoutMs: 1000, bootstrapTimeoutMs: 30_000, lookupTimeoutMs: 30_000 } });
  const setupMs = performance.now() - t0;
  const perNode = (mem() - before) / n;
  const setupRpcs = sum([net.bootstrap, ...net.nodes].map(dpcRpcs)) / (n - 1);
  const join = { setupRpcs, own: [], network: [], ms: [] };
  for (let i = 0; i < JOINS; i++) {
    const everyone = [net.bootstrap, ...net.nodes];
    const before = await settled(() => sum(everyone.map(dpcRpcs)));
    const t = performance.now();
    const d = await net.add();
    join.ms.push(performance.now() - t);
    join.own.push(dpcRpcs(d));
    join.network.push((await settled(() => sum([...everyone, d].map(dpcRpcs)))) - before);
  }
  const all = [net.bootstrap, ...net.nodes];
  const publishers = [];
  while (publishers.length < Math.min(LOOKUPS, net.nodes.length)) {
    const p = pick(net.nodes);
    if (!publishers.includes(p)) publishers.push(p);
  }
  for (let i = 0; i < publishers.length; i += 20) {
    // A failed announce is reported, and its lookup counts as failed.
    await Promise.all(publishers.slice(i, i + 20).map((p) => p.announceFull().catch((err) => console.error(`announce: ${err.message}`))));
  }
  const lookups = new LookupStats();
  for (const p of publishers) lookups.add(await dpcLookup(pick(all, p), p.nodeId));
  await net.destroy();
  return summary(old ? '@dpc/dht (before)' : '@dpc/dht', n, lookups, perNode, setupMs, join);
}

const listen = (dht) => new Promise((resolve) => dht.listen(0, HOST, resolve));
const ready = (dht) => new Promise((resolve) => (dht.ready ? resolve() : dht.once('ready', resolve)));

async function benchBittorrent(n) {
  const before = mem();
  const t0 = performance.now();
  // Never the public routers: the seed has bootstrap false, every other node bootstraps to it.
  // Every node's queries are counted from its construction (k-rpc socket wrapped before it listens).
  const seed = countQueries(new DHT({ bootstrap: false, host: HOST }));
  await listen(seed);
  const seedAddr = `${HOST}:${seed.address().port}`;
  const all = [seed];
  for (let i = 1; i < n; i += 25) {
    const batch = Array.from({ length: Math.min(25, n - i) }, () => countQueries(new DHT({ bootstrap: [seedAddr], host: HOST })));
    all.push(...batch);
    await Promise.all(
      batch.map(async (d) => {
        await listen(d);
        await ready(d);
      }),
    );
  }
  const setupMs = performance.now() - t0;
  const perNode = (mem() - before) / n;
  const join = { setupRpcs: sum(all.map((d) => d.__q)) / (n - 1), own: [], network: [], ms: [] };
  for (let i = 0; i < JOINS; i++) {
    const before = await settled(() => sum(all.map((d) => d.__q)));
    const t = performance.now();
    const d = countQueries(new DHT({ bootstrap: [seedAddr], host: HOST }));
    await listen(d);
    await ready(d);
    join.ms.push(performance.now() - t);
    join.own.push(d.__q);
    all.push(d);
    join.network.push((await settled(() => sum(all.map((x) => x.__q)))) - before);
  }
  const publishers = [];
  while (publishers.length < Math.min(LOOKUPS, n - 1)) {
    const p = pick(all.slice(1));
    if (!publishers.includes(p)) publishers.push(p);
  }
  const hashes = new Map();
  for (let i = 0; i < publishers.length; i += 20) {
    await Promise.all(
      publishers
        .slice(i, i + 20)
        .map(
          (p, j) =>
            new Promise((resolve, reject) =>
              p.put({ v: Buffer.from(`bench value ${i + j}`) }, (err, hash) => (err ? reject(err) : (hashes.set(p, hash), resolve()))),
            ),
        ),
    );
  }
  const lookups = new LookupStats();
  for (const p of publishers) lookups.add(await bittorrentLookup(pick(all, p), hashes.get(p)));
  await Promise.all(all.map((d) => new Promise((r) => d.destroy(r))));
  return summary('bittorrent-dht', n, lookups, perNode, setupMs, join);
}

// Each (implementation, N) runs in a fresh process, so memory figures do not see each other's garbage.
if (process.argv[2] === '--one') {
  const [impl, n] = [process.argv[3], Number(process.argv[4])];
  const row = impl === 'bittorrent-dht' ? await benchBittorrent(n) : await benchDpc(n, impl === 'dpc-before');
  console.log(JSON.stringify(row));
  process.exit(0);
}
const rows = [];
for (const n of NS) {
  for (const impl of [...(BEFORE ? ['dpc-before'] : []), 'dpc', 'bittorrent-dht']) {
    const r = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--one', impl, String(n)], {
      encoding: 'utf8',
      env: process.env,
      stdio: ['ignore', 'pipe', 'inherit'],
      timeout: 900_000,
    });
    const line = r.stdout.trim().split('\n').pop();
    rows.push(JSON.parse(line));
    console.table(rows.slice(-1));
  }
}
const cols = Object.keys(rows[0]);
console.log(`\n| ${cols.join(' | ')} |`);
console.log(`|${cols.map(() => '---').join('|')}|`);
for (const r of rows) console.log(`| ${Object.values(r).join(' | ')} |`);
console.log(`\nnode ${process.version}, ${LOOKUPS} lookups per N, ${new Date().toISOString()}`);
