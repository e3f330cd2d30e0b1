#!/usr/bin/env node
// Time to connect (`connect_ms` of `dpc-node send`) per tier on a 50 ms-RTT lab link, for two
// builds of dpc side by side: BEFORE (default /work/main) and AFTER (this tree). The builds
// alternate in blocks (each block starts its own receiver and relay), so drift of a shared
// machine hits both alike. Every path the connection takes has 50 ms RTT: the sender's link
// adds 25 ms each way, every other host none (sender ↔ receiver, sender ↔ relay ↔ receiver).
// Needs root (network namespaces) and both trees built (`npx turbo run build` in each).
// Run: BEFORE=/work/main node bench/connect-rtt-lab.mjs [blocks] [rounds per block]
import { once } from 'node:events';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const BLOCKS = Number(process.argv[2] ?? 3);
const ROUNDS = Number(process.argv[3] ?? 3);
const here = resolve(fileURLToPath(new URL('..', import.meta.url)));
const trees = [
  { label: 'before', root: resolve(process.env.BEFORE ?? '/work/main') },
  { label: 'after', root: here },
];
for (const t of trees) t.lab = await import(`${t.root}/tools/netlab/dist/index.js`);
const { createLab, workdir, labIni } = trees[1].lab;

const topology = {
  publicHosts: [{ name: 'boot', ipv6: false }, { name: 'relay', ipv6: false }, { name: 'b' }, { name: 'a', link: { delayMs: 25 } }],
  routers: [],
};
const only = (tiers) =>
  ['ipv6', 'ipv4', 'relays', 'hub_webrtc', 'hole_punching', 'gossip'].map((t) => `enable_${t} = ${tiers.includes(t)}`).join('\n');
const scenarios = [
  { tier: 'ipv6_direct', extra: only(['ipv6']) },
  { tier: 'ipv4_direct', extra: only(['ipv4']) },
  { tier: 'volunteer_relay', extra: only(['relays']) },
];

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const lab = await createLab(topology);
const work = await workdir();
const results = [];
const running = [];
const start = async (t, host, ini) => {
  const n = await t.lab.LabNode.start(lab, host, work.dir, ini);
  running.push(n);
  return n;
};
try {
  const seed = `${lab.hosts.boot.ipv4[0]}:8889`;
  await start(trees[1], 'boot', labIni({}));
  const ini = (extra) =>
    labIni({
      seed,
      extra: `[connection]\nmode = racing\nipv6_timeout = 10\nipv4_timeout = 10\nrelay_timeout = 20\ntotal_timeout = 60\n${extra}\n[relay]\nreserve = always\nport = 9100`,
    });
  for (let block = 0; block < BLOCKS; block++) {
    for (const t of trees) {
      // The secure channel alone: TCP + secureConnect from a, first message timed at b.
      const peer = `${here}/bench/connect-rtt-peer.mjs`;
      const listener = lab.spawn('b', process.execPath, [peer, 'listen', t.root, '9300', String(ROUNDS)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const lines = createInterface({ input: listener.stdout })[Symbol.asyncIterator]();
      const { nodeId } = JSON.parse((await lines.next()).value);
      for (let r = 0; r < ROUNDS; r++) {
        const out = await lab.exec('a', process.execPath, [peer, 'dial', t.root, lab.hosts.b.ipv4[0], '9300', nodeId], {
          timeoutMs: 20_000,
        });
        const d = JSON.parse(out.stdout.trim().split('\n').at(-1));
        const l = JSON.parse((await lines.next()).value);
        const row = {
          build: t.label,
          tier: 'secure channel over TCP',
          block,
          round: r,
          ok: l.first_message_at !== undefined,
          connect_ms: Math.round(d.connected_at - d.t0),
          first_message_ms: Math.round(l.first_message_at - d.t0),
        };
        results.push(row);
        console.log(JSON.stringify(row));
      }
      if (listener.exitCode === null) {
        listener.kill('SIGKILL');
        await once(listener, 'exit');
      }
      const relay = await start(t, 'relay', labIni({ seed, extra: '[relay]\nvolunteer = true\nmax_peers = 50\nport = 9100' }));
      await relay.logged(/volunteering as a relay/);
      const b = await start(t, 'b', ini(''));
      await b.logged(/relay reservations/);
      for (const s of scenarios) {
        for (let r = 0; r < ROUNDS; r++) {
          const out = await t.lab.labSend(lab, 'a', work.dir, ini(s.extra), b.nodeId, `${t.label} ${s.tier} ${block}.${r}`);
          const ok = out.result?.event === 'delivered' && out.result.tier === s.tier;
          const row = { build: t.label, tier: s.tier, block, round: r, ok, connect_ms: ok ? out.result.connect_ms : null };
          if (!ok) row.error = out.result?.error?.message ?? out.result?.tier ?? out.stderr.slice(-1000);
          results.push(row);
          console.log(JSON.stringify(row));
        }
      }
      for (const n of [relay, b]) {
        n.kill('SIGKILL');
        running.splice(running.indexOf(n), 1);
      }
      await lab.flushConntrack?.();
    }
  }
} finally {
  for (const n of running) n.kill('SIGKILL');
  await lab.destroy();
  await work.cleanup();
}

const raw = (label, key) => results.filter((x) => x.tier === 'secure channel over TCP' && x.build === label).map((x) => x[key]);
console.log('\n| secure channel over TCP, 50 ms RTT | before median | after median | saved |');
console.log('|---|---:|---:|---:|');
for (const key of ['connect_ms', 'first_message_ms']) {
  const b = median(raw('before', key));
  const a = median(raw('after', key));
  console.log(`| ${key} | ${b} ms | ${a} ms | ${b - a} ms |`);
}

console.log('\n| tier | before median | after median | after / before | saved | runs (ok) |');
console.log('|---|---:|---:|---:|---:|---|');
for (const s of scenarios) {
  const xs = (label) => results.filter((x) => x.tier === s.tier && x.build === label && x.ok).map((x) => x.connect_ms);
  const b = median(xs('before'));
  const a = median(xs('after'));
  const n = (label) => `${xs(label).length}/${results.filter((x) => x.tier === s.tier && x.build === label).length}`;
  console.log(`| ${s.tier} | ${b} ms | ${a} ms | ${(a / b).toFixed(2)} | ${b - a} ms | ${n('before')}, ${n('after')} |`);
}
