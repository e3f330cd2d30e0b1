#!/usr/bin/env node
// Time to connect per tier and per mode (sequential, the spec, vs racing, ours) on the lab's
// scenarios, every link adding 50 ms of RTT (25 ms each way). Needs root (network namespaces).
// Run: npx turbo run build && node bench/orchestrator-lab.mjs [rounds]
// Prints one JSON line per measurement and a markdown table at the end.
import { createLab, LabNode, labIni, labSend, workdir } from '../tools/netlab/dist/index.js';

const ROUNDS = Number(process.argv[2] ?? 3);
const link = { delayMs: 25 };
const topology = {
  publicHosts: [
    { name: 'boot', link },
    { name: 'server', ipv6: false, link },
    { name: 'relay', ipv6: false, link },
  ],
  routers: [
    { name: 'v6a', kind: 'cone', ipv6: true, link, lan: [{ name: 'a6' }] },
    { name: 'v6b', kind: 'cone', ipv6: true, link, lan: [{ name: 'b6' }] },
    { name: 'fwa', kind: 'cone', ipv6: true, ipv6Firewall: true, link, lan: [{ name: 'fa' }] },
    { name: 'fwb', kind: 'symmetric', ipv6: true, ipv6Firewall: true, link, lan: [{ name: 'fb' }] },
    {
      name: 'home',
      kind: 'cone',
      link,
      lan: [
        { name: 'la', link },
        { name: 'lb', link },
      ],
    },
    { name: 'fwd', kind: 'cone', link, portForwards: [{ protocol: 'tcp', port: 9000, host: 'pf' }], lan: [{ name: 'pf' }] },
    { name: 'syma', kind: 'symmetric', link, lan: [{ name: 'sa' }] },
    { name: 'symb', kind: 'symmetric', link, lan: [{ name: 'sb' }] },
  ],
};

// from → to, what should win, and the [connection] extra for the scenario
const scenarios = [
  { name: 'both global IPv6', from: 'a6', to: 'b6', expect: 'ipv6_direct' },
  { name: 'same LAN behind one NAT', from: 'la', to: 'lb', expect: 'ipv4_direct' },
  { name: 'public IPv4 peer', from: 'sa', to: 'server', expect: 'ipv4_direct' },
  { name: 'port forward', from: 'sa', to: 'pf', expect: 'ipv4_direct' },
  { name: 'symmetric NAT both sides, relay', from: 'sa', to: 'sb', expect: 'volunteer_relay' },
  { name: 'IPv6 firewalled + NAT, relay', from: 'fa', to: 'fb', expect: 'volunteer_relay' },
  {
    name: 'NAT both sides, tiers 1–2 only (no working tier)',
    from: 'la',
    to: 'sb',
    expect: null,
    extra: 'enable_relays = false\nenable_gossip = false\nenable_hub_webrtc = false\nenable_hole_punching = false',
  },
];

// ONLY=<substring> runs the matching scenarios only (debugging one case).
if (process.env.ONLY) scenarios.splice(0, scenarios.length, ...scenarios.filter((s) => s.name.includes(process.env.ONLY)));

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const lab = await createLab(topology);
const work = await workdir();
const nodes = [];
const results = [];
try {
  const boot = await LabNode.start(lab, 'boot', work.dir, labIni({}));
  nodes.push(boot);
  const seed = `${lab.hosts.boot.ipv4[0]}:8889`;
  // Spec timeouts (10 s for tiers 1–2, 20 s relay), total 90 s.
  const base = (mode, extra = '') =>
    labIni({
      seed,
      extra: `[connection]\nmode = ${mode}\nipv6_timeout = 10\nipv4_timeout = 10\nrelay_timeout = 20\ntotal_timeout = 90\n${extra}\n[relay]\nreserve = always\nport = 9100`,
    });
  const relay = await LabNode.start(
    lab,
    'relay',
    work.dir,
    labIni({ seed, extra: '[relay]\nvolunteer = true\nmax_peers = 50\nport = 9100' }),
  );
  nodes.push(relay);
  await relay.logged(/volunteering as a relay/);
  const receivers = {};
  for (const s of scenarios) {
    if (!receivers[s.to]) {
      receivers[s.to] = await LabNode.start(lab, s.to, work.dir, base('racing'));
      nodes.push(receivers[s.to]);
      if (s.expect === 'volunteer_relay') await receivers[s.to].logged(/relay reservations/);
    }
  }
  for (const s of scenarios) {
    for (const mode of ['sequential', 'racing']) {
      for (let r = 0; r < ROUNDS; r++) {
        // No conntrack flush between rounds: it would also cut the receivers' standing relay
        // reservations, as a NAT reboot does (a case for keepalives, not for this benchmark).
        const out = await labSend(lab, s.from, work.dir, base(mode, s.extra ?? ''), receivers[s.to].nodeId, `${s.name} ${mode} ${r}`);
        const ok = out.result?.event === 'delivered';
        const row = {
          scenario: s.name,
          mode,
          round: r,
          ok,
          tier: out.result?.tier ?? null,
          connect_ms: ok ? out.result.connect_ms : null,
          // a failure has no connect time: measure how long the send took to give up
          fail_ms: ok ? null : out.elapsedMs,
        };
        if (s.expect && row.tier !== s.expect) {
          row.unexpected = true;
          row.error = out.result?.error?.message ?? out.stderr.slice(-2000);
        }
        results.push(row);
        console.log(JSON.stringify(row));
      }
    }
  }
} finally {
  for (const n of nodes) n.kill('SIGKILL');
  await lab.destroy();
  await work.cleanup();
}

console.log('\n| scenario | tier | sequential median | sequential worst | racing median | racing worst |');
console.log('|---|---|---:|---:|---:|---:|');
for (const s of scenarios) {
  const cell = (mode, f) => {
    const rs = results.filter((x) => x.scenario === s.name && x.mode === mode);
    const xs = rs.map((x) => (x.ok ? x.connect_ms : x.fail_ms));
    const v = f(xs);
    return `${(v / 1000).toFixed(2)} s${rs.every((x) => x.ok) ? '' : ' (fails)'}`;
  };
  const tier = [...new Set(results.filter((x) => x.scenario === s.name && x.ok).map((x) => x.tier))].join(', ') || 'none';
  console.log(
    `| ${s.name} | ${tier} | ${cell('sequential', median)} | ${cell('sequential', (xs) => Math.max(...xs))} | ${cell('racing', median)} | ${cell('racing', (xs) => Math.max(...xs))} |`,
  );
}
