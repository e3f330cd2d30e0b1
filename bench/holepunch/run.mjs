#!/usr/bin/env node
// Tier 4 (dpc) side by side with hyperdht's hole punching, in the same lab topology: real NAT
// (nftables), every host and router link adding 25 ms each way. Per NAT pair and system: success
// rate, median and p95 time to a usable encrypted stream (connect until one message has gone
// there and back), and for dpc the punch datagrams sent per success. Needs root.
// Run: npx turbo run build && npm install --prefix bench && node bench/holepunch/run.mjs [trials]
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { createLab } from '../../tools/netlab/dist/index.js';

const TRIALS = Number(process.argv[2] ?? 10);
// THROUGHPUT=<MB>: instead of the punch pairs, MB over tier 4 (cone host → public host 'srv') and the
// same MB over TLS 1.3 over TCP on the same path, per trial (dpc only).
const THROUGHPUT = Number(process.env.THROUGHPUT ?? 0);
// DELAY_MS each way on every host's and router's uplink (a delayed link adds 2 × DELAY_MS of RTT,
// so two NATed peers are 4 × DELAY_MS apart): default 12.5, i.e. 50 ms RTT between the peers.
const link = { delayMs: Number(process.env.DELAY_MS ?? 12.5) };
const lab = await createLab({
  publicHosts: ['boot', 'p1', 'p2', 'p3', ...(THROUGHPUT ? ['srv'] : [])].map((name) => ({ name, ipv6: false, link })),
  routers: [
    { name: 'conea', kind: 'cone', link, lan: [{ name: 'ca' }] },
    { name: 'coneb', kind: 'cone', link, lan: [{ name: 'cb' }] },
    { name: 'syma', kind: 'symmetric', link, lan: [{ name: 'sa' }] },
    { name: 'symb', kind: 'symmetric', link, lan: [{ name: 'sb' }] },
    // a carrier-grade cone NAT in front of a home cone NAT
    { name: 'dbl', kind: 'double-nat', link, lan: [{ name: 'da' }] },
  ],
});
const SCRIPT = {
  dpc: new URL('./dpc-peer.mjs', import.meta.url).pathname,
  hyperdht: new URL('./hyperdht-peer.mjs', import.meta.url).pathname,
};
const children = [];

/** Starts a long-running peer and resolves with its first {"ready"} line. */
async function daemon(system, host, args) {
  const child = lab.spawn(host, process.execPath, [SCRIPT[system], ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let err = '';
  child.stderr.on('data', (d) => {
    err = (err + d).slice(-2000);
  });
  const lines = createInterface({ input: child.stdout });
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  for await (const line of lines) {
    const o = JSON.parse(line);
    if (o.ready) {
      clearTimeout(timer);
      return { child, ...o };
    }
  }
  throw new Error(`${system} ${host} ${args.join(' ')} never got ready: ${err}`);
}

async function trial(system, host, args) {
  const r = await lab.exec(host, process.execPath, [SCRIPT[system], ...args], { timeoutMs: 120_000 });
  const last = r.stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .at(-1);
  return last ? JSON.parse(last) : { ok: false, error: `exit ${r.code}: ${r.stderr.slice(-300)}` };
}

const ip = (h) => lab.hosts[h].ipv4[0];
const dpcSeed = `${ip('boot')}:8889`;
const hdBoot = `${ip('boot')}:49737`;
// SYSTEMS=dpc,hyperdht picks the systems (hyperdht needs `npm install --prefix bench`).
const systems = (process.env.SYSTEMS ?? (THROUGHPUT ? 'dpc' : 'dpc,hyperdht')).split(',');
if (systems.includes('dpc')) await daemon('dpc', 'boot', ['dht']);
if (systems.includes('hyperdht')) await daemon('hyperdht', 'boot', ['boot', ip('boot')]);
for (const h of ['p1', 'p2', 'p3']) {
  if (systems.includes('dpc')) await daemon('dpc', h, ['dht', dpcSeed]);
  if (systems.includes('hyperdht')) await daemon('hyperdht', h, ['dht', ip(h), hdBoot]);
}

const pairs = [
  { name: 'cone ↔ cone', client: 'ca', server: 'cb' },
  { name: 'cone → symmetric (birthday)', client: 'ca', server: 'sa' },
  { name: 'symmetric → cone (birthday)', client: 'sa', server: 'cb' },
  { name: 'double NAT → cone', client: 'da', server: 'cb' },
  { name: 'symmetric ↔ symmetric', client: 'sa', server: 'sb' },
];
// ONLY=<substring>[|<substring>…] runs the matching NAT pairs only.
if (process.env.ONLY) {
  const only = process.env.ONLY.split('|');
  pairs.splice(0, pairs.length, ...pairs.filter((p) => only.some((o) => p.name.includes(o))));
}
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : Number.NaN;
};
const rows = [];
if (THROUGHPUT) {
  const server = await daemon('dpc', 'srv', ['tput-serve', dpcSeed]);
  const res = [];
  try {
    for (let i = 0; i < TRIALS; i++) {
      const order = i % 2 ? 'tcp-first' : 'udx-first';
      const r = await trial('dpc', 'ca', ['tput', dpcSeed, server.nodeId, ip('srv'), String(THROUGHPUT), order]);
      res.push(r);
      console.log(JSON.stringify({ throughput: 'cone → public', trial: i, order, ...r }));
    }
  } finally {
    for (const c of children) c.kill('SIGKILL');
    await lab.destroy();
  }
  const ok = res.filter((r) => r.ok);
  const med = (k) =>
    pct(
      ok.map((r) => r[k]),
      0.5,
    );
  console.log(
    `\n| path | MB per transfer | trials ok | tier 4 (TLS/UDX) MB/s median | TLS/TCP MB/s median | tier 4 / TCP (median of per-trial ratios) |`,
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  console.log(
    `| cone host → public host | ${THROUGHPUT} | ${ok.length}/${res.length} | ${med('udxMBps')} | ${med('tcpMBps')} | ${med('ratio')} |`,
  );
  process.exit(0);
}
try {
  for (const pair of pairs) {
    for (const system of systems) {
      const server = await daemon(system, pair.server, system === 'dpc' ? ['serve', dpcSeed] : ['serve', hdBoot]);
      const results = [];
      for (let i = 0; i < TRIALS; i++) {
        const r = await trial(
          system,
          pair.client,
          system === 'dpc' ? ['connect', dpcSeed, server.nodeId] : ['connect', hdBoot, server.publicKey],
        );
        results.push(r);
        console.log(JSON.stringify({ pair: pair.name, system, trial: i, ...r }));
      }
      server.child.kill('SIGKILL');
      await once(server.child, 'exit').catch(() => {});
      const ok = results.filter((r) => r.ok);
      rows.push({
        pair: pair.name,
        system,
        success: `${ok.length}/${results.length}`,
        median: pct(
          ok.map((r) => r.usableMs),
          0.5,
        ),
        p95: pct(
          ok.map((r) => r.usableMs),
          0.95,
        ),
        packets: ok.length && ok[0].packets !== undefined ? Math.round(ok.reduce((n, r) => n + r.packets, 0) / ok.length) : 'n/a',
      });
    }
  }
} finally {
  for (const c of children) c.kill('SIGKILL');
  await lab.destroy();
}
console.log('\n| NAT pair | system | success | median ms | p95 ms | punch datagrams per success |\n| --- | --- | --- | --- | --- | --- |');
for (const r of rows) console.log(`| ${r.pair} | ${r.system} | ${r.success} | ${r.median} | ${r.p95} | ${r.packets} |`);
