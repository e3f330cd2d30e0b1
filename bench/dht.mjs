#!/usr/bin/env node
// DHT benchmark: @dpc/dht vs bittorrent-dht, same N, same lookups, same run, all on 127.0.0.1.
//   cd bench && npm ci && (cd .. && npx turbo run build) && node --expose-gc dht.mjs [N ...]
// For each N: start N nodes bootstrapped through one seed, publish L records from random nodes
// (dpc: endpoint record via announceFull; bittorrent-dht: BEP44 immutable put), then look each
// one up from another random node (dpc: findPeer; bittorrent-dht: get), one at a time.
// RPCs per lookup = queries the asking node sent while its lookup ran (same method for both).
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Client as DHT } from 'bittorrent-dht';
import { createTestnet } from '../packages/dht/dist/testnet.js';

const sizes = process.argv[2] === '--one' ? [] : process.argv.slice(2).map(Number).filter(Boolean);
const NS = sizes.length ? sizes : [100, 1000];
const LOOKUPS = Number(process.env.LOOKUPS ?? 100);
const HOST = '127.0.0.1';

const gc = () => globalThis.gc?.();
const mem = () => {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external + m.arrayBuffers;
};
const pick = (list, not) => {
  for (;;) {
    const x = list[Math.floor(Math.random() * list.length)];
    if (x !== not) return x;
  }
};
const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
};
const summary = (name, n, lat, rpcs, ok, bytesPerNode, setupMs) => ({
  impl: name,
  N: n,
  lookups: lat.length,
  success: `${((100 * ok) / lat.length).toFixed(1)}%`,
  'median ms': quantile(lat, 0.5).toFixed(2),
  'p95 ms': quantile(lat, 0.95).toFixed(2),
  'RPCs/lookup (mean)': (rpcs.reduce((a, b) => a + b, 0) / rpcs.length).toFixed(1),
  'RPCs/lookup (p95)': quantile(rpcs, 0.95),
  'memory/node KiB': (bytesPerNode / 1024).toFixed(1),
  'setup s': (setupMs / 1000).toFixed(1),
});

async function benchDpc(n) {
  const before = mem();
  const t0 = performance.now();
  const net = await createTestnet(n, { dht: { rpcTimeoutMs: 1000 } });
  const setupMs = performance.now() - t0;
  const perNode = (mem() - before) / n;
  const all = [net.bootstrap, ...net.nodes];
  const publishers = [];
  while (publishers.length < Math.min(LOOKUPS, net.nodes.length)) {
    const p = pick(net.nodes);
    if (!publishers.includes(p)) publishers.push(p);
  }
  for (let i = 0; i < publishers.length; i += 20) await Promise.all(publishers.slice(i, i + 20).map((p) => p.announceFull()));
  const lat = [];
  const rpcs = [];
  let ok = 0;
  for (const p of publishers) {
    const asker = pick(all, p);
    const out0 = Object.values(asker.stats().rpcOut).reduce((a, b) => a + b, 0);
    const t = performance.now();
    try {
      const rec = await asker.findPeer(p.nodeId);
      if (rec.nodeId === p.nodeId) ok++;
    } catch {}
    lat.push(performance.now() - t);
    rpcs.push(Object.values(asker.stats().rpcOut).reduce((a, b) => a + b, 0) - out0);
  }
  await net.destroy();
  return summary('@dpc/dht', n, lat, rpcs, ok, perNode, setupMs);
}

const listen = (dht) => new Promise((resolve) => dht.listen(0, HOST, resolve));
const ready = (dht) => new Promise((resolve) => (dht.ready ? resolve() : dht.once('ready', resolve)));

async function benchBittorrent(n) {
  const before = mem();
  const t0 = performance.now();
  // Never the public routers: the seed has bootstrap false, every other node bootstraps to it.
  const seed = new DHT({ bootstrap: false, host: HOST });
  await listen(seed);
  const seedAddr = `${HOST}:${seed.address().port}`;
  const all = [seed];
  for (let i = 1; i < n; i += 25) {
    const batch = Array.from({ length: Math.min(25, n - i) }, () => new DHT({ bootstrap: [seedAddr], host: HOST }));
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
  // Count queries per node by wrapping its k-rpc socket.
  for (const d of all) {
    d.__q = 0;
    const sock = d._rpc.socket;
    const orig = sock.query.bind(sock);
    sock.query = (...args) => {
      d.__q++;
      return orig(...args);
    };
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
  const lat = [];
  const rpcs = [];
  let ok = 0;
  for (const p of publishers) {
    const asker = pick(all, p);
    const q0 = asker.__q;
    const t = performance.now();
    const value = await new Promise((resolve) => asker.get(hashes.get(p), (err, res) => resolve(err ? null : res)));
    lat.push(performance.now() - t);
    rpcs.push(asker.__q - q0);
    if (value?.v) ok++;
  }
  await Promise.all(all.map((d) => new Promise((r) => d.destroy(r))));
  return summary('bittorrent-dht', n, lat, rpcs, ok, perNode, setupMs);
}

// Each (implementation, N) runs in a fresh process, so memory figures do not see each other's garbage.
if (process.argv[2] === '--one') {
  const [impl, n] = [process.argv[3], Number(process.argv[4])];
  const row = impl === 'dpc' ? await benchDpc(n) : await benchBittorrent(n);
  console.log(JSON.stringify(row));
  process.exit(0);
}
const rows = [];
for (const n of NS) {
  for (const impl of ['dpc', 'bittorrent-dht']) {
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
console.log('\n| impl | N | lookups | success | median ms | p95 ms | RPCs/lookup (mean) | RPCs/lookup (p95) | memory/node KiB | setup s |');
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) console.log(`| ${Object.values(r).join(' | ')} |`);
console.log(`\nnode ${process.version}, ${LOOKUPS} lookups per N, ${new Date().toISOString()}`);
