#!/usr/bin/env node
// DHT benchmark at large N over several processes: @dpc/dht vs bittorrent-dht, same N, same lookups.
//   cd bench && npm ci && (cd .. && npx turbo run build) && node dht-multi.mjs [--procs 4] [--impl dpc,bittorrent-dht] N
// The N nodes live in P worker processes (N / P each, every node its own UDP socket on 127.0.0.1).
// Worker 0 starts the seed; every other node, in every worker, bootstraps through that seed alone,
// so the network is one DHT over real UDP on loopback, joined by all workers at once (batches of
// 10 per worker). Then L records are published from random nodes (dpc: announceFull endpoint
// record; bittorrent-dht: BEP44 immutable put) and each is looked up once from a random node of a
// random worker (dpc: findPeer; bittorrent-dht: get), one lookup at a time. RPCs per lookup =
// queries the asking node sent while its lookup ran. Memory per node = Σ over workers of (heapUsed +
// external + arrayBuffers after GC, after start − before) / N; RSS per node likewise.
import { fork } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { bittorrentLookup, countQueries, dpcLookup, dpcRpcs, joinColumns, LookupStats, memory, settled, sum } from './lib/dht-measure.mjs';

const HOST = '127.0.0.1';
const BATCH = 10;

// ---------------------------------------------------------------- worker side
if (process.argv[2] === '--worker') {
  const impl = process.argv[3];
  const nodes = [];
  let api;

  if (impl === 'dpc') {
    const { createDht } = await import('../packages/dht/dist/index.js');
    const { TESTNET_DHT_DEFAULTS } = await import('../packages/dht/dist/testnet.js');
    const { generateIdentity, emptyEndpointBody } = await import('../packages/core/dist/index.js');
    const opts = { ...TESTNET_DHT_DEFAULTS, rpcTimeoutMs: 2_000, bootstrapTimeoutMs: 30_000, lookupTimeoutMs: 20_000 };
    api = {
      async start(seed) {
        const d = createDht({ ...opts, identity: generateIdentity(), seeds: seed ? [seed] : [] });
        await d.start();
        d.setEndpointBody({ ...emptyEndpointBody(), ipv4_local: [{ ip: HOST, port: d.address.port, prefix: 8 }] });
        nodes.push(d);
        return d.address;
      },
      async publish(i) {
        const d = nodes[i];
        await d.announceFull();
        return d.nodeId;
      },
      lookup: (i, key) => dpcLookup(nodes[i], key),
      own: (i) => dpcRpcs(nodes[i]),
      rpcs: () => sum(nodes.map(dpcRpcs)),
      stop: () => Promise.all(nodes.map((d) => d.stop())),
    };
  } else {
    const { Client: DHT } = await import('bittorrent-dht');
    api = {
      async start(seed) {
        // Never the public routers: the seed has bootstrap false, every other node bootstraps to it.
        const d = countQueries(new DHT({ bootstrap: seed ? [`${seed.host}:${seed.port}`] : false, host: HOST }));
        await new Promise((r) => d.listen(0, HOST, r));
        if (seed) await new Promise((r) => (d.ready ? r() : d.once('ready', r)));
        nodes.push(d);
        return { host: HOST, port: d.address().port };
      },
      async publish(i) {
        const hash = await new Promise((resolve, reject) =>
          nodes[i].put({ v: Buffer.from(`bench value ${process.pid} ${i}`) }, (err, h) => (err ? reject(err) : resolve(h))),
        );
        return hash.toString('hex');
      },
      lookup: (i, key) => bittorrentLookup(nodes[i], Buffer.from(key, 'hex')),
      own: (i) => nodes[i].__q,
      rpcs: () => sum(nodes.map((d) => d.__q)),
      stop: () => Promise.all(nodes.map((d) => new Promise((r) => d.destroy(r)))),
    };
  }

  const base = memory();
  process.on('message', async (m) => {
    const reply = (body) => process.send({ id: m.id, ...body });
    try {
      if (m.op === 'seed') reply({ seed: await api.start(null) });
      else if (m.op === 'start') {
        const t = performance.now();
        for (let i = 0; i < m.count; i += BATCH) {
          await Promise.all(Array.from({ length: Math.min(BATCH, m.count - i) }, () => api.start(m.seed)));
        }
        const after = memory();
        reply({ nodes: nodes.length, ms: performance.now() - t, heap: after.heap - base.heap, rss: after.rss - base.rss });
      } else if (m.op === 'publish') reply({ key: await api.publish(m.i) });
      else if (m.op === 'lookup') reply(await api.lookup(m.i, m.key));
      else if (m.op === 'join') {
        const t = performance.now();
        await api.start(m.seed);
        reply({ ms: performance.now() - t, own: api.own(nodes.length - 1) });
      } else if (m.op === 'rpcs') reply({ rpcs: api.rpcs() });
      else if (m.op === 'stop') {
        await api.stop();
        reply({});
        process.exit(0);
      }
    } catch (err) {
      reply({ error: String(err?.stack ?? err) });
    }
  });
  process.send({ ready: true });
} else {
  // ---------------------------------------------------------------- coordinator side
  const args = process.argv.slice(2);
  const flag = (name, dflt) => {
    const i = args.indexOf(name);
    if (i < 0) return dflt;
    const v = args[i + 1];
    args.splice(i, 2);
    return v;
  };
  const P = Number(flag('--procs', 4));
  const IMPLS = flag('--impl', 'dpc,bittorrent-dht').split(',');
  const LOOKUPS = Number(process.env.LOOKUPS ?? 100);
  const JOINS = Number(process.env.JOINS ?? 20);
  const N = Number(args[0] ?? 10_000);
  const rand = (n) => Math.floor(Math.random() * n);

  async function run(impl) {
    const workers = await Promise.all(
      Array.from({ length: P }, async () => {
        const w = fork(fileURLToPath(import.meta.url), ['--worker', impl], {
          execArgv: ['--expose-gc', '--max-old-space-size=8192'],
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        });
        const waiting = new Map();
        let next = 0;
        w.on('message', (m) => {
          if (m.ready) return waiting.get('ready')?.(m);
          const done = waiting.get(m.id);
          waiting.delete(m.id);
          done?.(m);
        });
        await new Promise((r) => waiting.set('ready', r));
        const call = (op, body = {}) =>
          new Promise((resolve, reject) => {
            const id = next++;
            waiting.set(id, (m) => (m.error ? reject(new Error(m.error)) : resolve(m)));
            w.send({ id, op, ...body });
          });
        return { w, call, count: 0 };
      }),
    );
    try {
      const { seed } = await workers[0].call('seed');
      workers[0].count = 1;
      const t0 = performance.now();
      const shares = workers.map((_, i) => Math.floor((N - 1) / P) + (i < (N - 1) % P ? 1 : 0));
      const started = await Promise.all(workers.map((w, i) => w.call('start', { count: shares[i], seed })));
      const setupMs = performance.now() - t0;
      shares.forEach((n, i) => {
        workers[i].count += n;
      });
      const total = workers.reduce((a, w) => a + w.count, 0);
      const heap = started.reduce((a, s) => a + s.heap, 0);
      const rss = started.reduce((a, s) => a + s.rss, 0);
      const allRpcs = async () => (await Promise.all(workers.map((w) => w.call('rpcs')))).reduce((a, r) => a + r.rpcs, 0);
      const setupRpcs = (await allRpcs()) / (total - 1);
      // Joins one at a time into the full network, each from a random worker.
      const join = { own: [], network: [], ms: [] };
      for (let i = 0; i < JOINS; i++) {
        const before = await settled(allRpcs);
        const w = workers[rand(P)];
        const r = await w.call('join', { seed });
        w.count++;
        join.own.push(r.own);
        join.ms.push(r.ms);
        join.network.push((await settled(allRpcs)) - before);
      }
      // Publish from L random nodes (never the seed), then look each up from a random other node.
      const published = [];
      const seen = new Set();
      while (published.length < LOOKUPS) {
        const wi = rand(P);
        const i = rand(workers[wi].count);
        if ((wi === 0 && i === 0) || seen.has(`${wi}/${i}`)) continue;
        seen.add(`${wi}/${i}`);
        published.push({ wi, i });
      }
      for (let j = 0; j < published.length; j += 20) {
        await Promise.all(
          published.slice(j, j + 20).map(async (p) => {
            p.key = (await workers[p.wi].call('publish', { i: p.i })).key;
          }),
        );
      }
      const lookups = new LookupStats();
      for (const p of published) {
        let wi;
        let i;
        do {
          wi = rand(P);
          i = rand(workers[wi].count);
        } while (wi === p.wi && i === p.i);
        lookups.add(await workers[wi].call('lookup', { i, key: p.key }));
      }
      return {
        impl: impl === 'dpc' ? '@dpc/dht' : 'bittorrent-dht',
        N: total,
        procs: P,
        ...lookups.columns(),
        'memory/node KiB': (heap / total / 1024).toFixed(1),
        'RSS/node KiB': (rss / total / 1024).toFixed(1),
        'setup s': (setupMs / 1000).toFixed(1),
        'setup RPCs/node': setupRpcs.toFixed(1),
        ...joinColumns(join),
      };
    } finally {
      await Promise.all(workers.map((w) => w.call('stop').catch(() => undefined)));
      for (const w of workers) w.w.kill();
    }
  }

  const rows = [];
  for (const impl of IMPLS) {
    const row = await run(impl);
    rows.push(row);
    console.table([row]);
  }
  const cols = Object.keys(rows[0]);
  console.log(`\n| ${cols.join(' | ')} |`);
  console.log(`|${cols.map(() => '---').join('|')}|`);
  for (const r of rows) console.log(`| ${Object.values(r).join(' | ')} |`);
  console.log(`\nnode ${process.version}, ${P} worker processes, ${LOOKUPS} lookups, ${JOINS} joins, ${new Date().toISOString()}`);
}
