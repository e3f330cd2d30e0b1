#!/usr/bin/env node
// Time to connect per tier and per mode (sequential, the spec, vs racing, ours) on the lab's
// scenarios, every link adding 25 ms each way. Needs root (network namespaces) and coturn
// (/usr/bin/turnserver, for the tier-3 rows).
// Run: npx turbo run build && node bench/orchestrator-lab.mjs [rounds]
// Prints one JSON line per measurement and a markdown table at the end.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkPrerequisites, createLab, LabNode, labIni, labSend, startCoturn, workdir } from '../tools/netlab/dist/index.js';

const ROUNDS = Number(process.argv[2] ?? 3);
const link = { delayMs: 25 };
const TURN_SECRET = 'dpc-bench-turn-secret';
const topology = {
  publicHosts: [
    { name: 'boot', link },
    { name: 'server', ipv6: false, link },
    { name: 'relay', ipv6: false, link },
    // one more DHT node on the internet: tier 4 measures NAT types from distinct DHT peers
    { name: 'p1', ipv6: false, link },
    // a dpc-node serving the Hub ([hub] serve = true) and a coturn (STUN + TURN, use-auth-secret)
    { name: 'hub', ipv6: false, link },
    { name: 'turn', ipv6: false, link },
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
    // tier 4 (no Hub)
    { name: 'conea', kind: 'cone', link, lan: [{ name: 'ca' }] },
    { name: 'coneb', kind: 'cone', link, lan: [{ name: 'cb' }] },
    // tier 3 (their nodes log in to the Hub)
    { name: 'hconea', kind: 'cone', link, lan: [{ name: 'hca' }] },
    { name: 'hconeb', kind: 'cone', link, lan: [{ name: 'hcb' }] },
    { name: 'hsyma', kind: 'symmetric', link, lan: [{ name: 'hsa' }] },
    { name: 'hsymb', kind: 'symmetric', link, lan: [{ name: 'hsb' }] },
    // tier 6 (the "disaster" rows): a sender and a recipient that are never online together
    { name: 'disa', kind: 'cone', link, lan: [{ name: 'xa' }] },
    { name: 'disb', kind: 'symmetric', link, lan: [{ name: 'xb' }] },
  ],
};

const NO_RELAY = 'enable_relays = false';
const ONLY_GOSSIP = 'enable_relays = false\nenable_hub_webrtc = false\nenable_hole_punching = false';
/**
 * from → to; what should win (a tier, or per mode); the sender's [connection] extra (`extra`); the
 * receiver's extra (`rx`, one config per receiving host) and what it waits for before the sends
 * (`ready`: relay reservation, NAT type published, Hub login). `measure: 'delivered'` reports the
 * time to the peer's acknowledgement instead of the time to connect (tier 6 has no connection);
 * `offline: true` is the store-and-forward case where the peers are never online together.
 */
const scenarios = [
  { name: 'both global IPv6', from: 'a6', to: 'b6', expect: 'ipv6_direct' },
  { name: 'same LAN behind one NAT', from: 'la', to: 'lb', expect: 'ipv4_direct' },
  { name: 'public IPv4 peer', from: 'sa', to: 'server', expect: 'ipv4_direct' },
  { name: 'port forward', from: 'sa', to: 'pf', expect: 'ipv4_direct' },
  { name: 'symmetric NAT both sides, relay', from: 'sa', to: 'sb', expect: 'volunteer_relay', ready: ['relay', 'nat'] },
  { name: 'IPv6 firewalled + NAT (cone → symmetric)', from: 'fa', to: 'fb', expect: null, ready: ['relay', 'nat'] },
  {
    name: 'NAT both sides, tiers 1–2 only (no working tier)',
    from: 'la',
    to: 'sb',
    expect: null,
    extra: 'enable_relays = false\nenable_gossip = false\nenable_hub_webrtc = false\nenable_hole_punching = false',
  },
  { name: 'tier 4: cone ↔ cone, no relay', from: 'ca', to: 'cb', expect: 'udp_hole_punch', extra: NO_RELAY, ready: ['relay', 'nat'] },
  {
    name: 'tier 4: cone → symmetric (birthday), no relay',
    from: 'ca',
    to: 'sb',
    expect: 'udp_hole_punch',
    extra: NO_RELAY,
    ready: ['nat'],
  },
  { name: 'tier 4: cone ↔ cone, relay present', from: 'ca', to: 'cb', expect: { sequential: 'udp_hole_punch' }, ready: ['relay', 'nat'] },
  { name: 'tier 3: Hub, cone ↔ cone (STUN)', from: 'hca', to: 'hcb', expect: 'hub_webrtc', hub: true, ready: ['hub'] },
  { name: 'tier 3: Hub, symmetric ↔ symmetric (TURN)', from: 'hsa', to: 'hsb', expect: 'hub_webrtc', hub: true, ready: ['hub'] },
  {
    name: 'symmetric NAT both sides, default gossip_timeout (5 s)',
    from: 'sa',
    to: 'sb',
    expect: { sequential: 'gossip', racing: 'volunteer_relay' },
    extra: 'gossip_timeout = 5',
    measure: 'delivered',
  },
  {
    name: 'disaster: tiers 1–5 unavailable, peer online (gossip via a public peer)',
    from: 'xa',
    to: 'sb',
    expect: 'gossip',
    extra: `${ONLY_GOSSIP}\ngossip_timeout = 5`,
    measure: 'delivered',
  },
  {
    name: 'disaster: never online together (A sends, A stops, B starts)',
    from: 'xa',
    to: 'xb',
    expect: 'gossip',
    // the send gives up waiting (exit 75, queued) once the message is stored at the public peer
    extra: 'gossip_timeout = 5\ntotal_timeout = 12',
    offline: true,
  },
];

// LOGS=<dir> keeps every send's log and, at the end, every node's log there (looking into a row).
const LOGS = process.env.LOGS;
if (LOGS) await mkdir(LOGS, { recursive: true });
const logName = (s) => s.replace(/[^A-Za-z0-9]+/g, '-').slice(0, 80);

// ONLY=<substring>[|<substring>…] runs the matching scenarios only (debugging one case).
if (process.env.ONLY) {
  const only = process.env.ONLY.split('|');
  scenarios.splice(0, scenarios.length, ...scenarios.filter((s) => only.some((o) => s.name.includes(o))));
}

/**
 * `dpc-node send --json` from a lab host (as netlab's labSend), also keeping the tiers the
 * orchestrator planned to try (its `found` progress line: the hybrid rules show there).
 */
async function send(lab, host, dir, ini, to, text) {
  const r = await labSend(lab, host, dir, ini, to, text, { timeoutMs: 120_000 });
  const found = r.events.find((e) => e.event === 'progress' && e.step === 'found');
  // Each tier's outcome as the send reported it: "tier result after-ms[ code]".
  const outcomes = r.events
    .filter((e) => e.event === 'progress' && e.step === 'outcome')
    .map((e) => [e.tier, e.result, e.afterMs === undefined ? '' : Math.round(e.afterMs), e.code ?? ''].join(' ').trim());
  return { ...r, tried: found?.tiers ?? null, outcomes };
}

// The tier-3 rows need coturn; without it they are left out (said on stderr), the rest still runs.
const coturn = checkPrerequisites(['ip', 'nft', 'turnserver']);
if (!coturn.ok && scenarios.some((s) => s.hub)) {
  console.error(`tier-3 rows left out: ${coturn.reason}`);
  scenarios.splice(0, scenarios.length, ...scenarios.filter((s) => !s.hub));
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const lab = await createLab(topology);
const work = await workdir();
const nodes = [];
const results = [];
try {
  const boot = await LabNode.start(lab, 'boot', work.dir, labIni({}));
  nodes.push(boot);
  const seed = `${lab.hosts.boot.ipv4[0]}:8889`;
  const hubIp = lab.hosts.hub.ipv4[0];
  const turnIp = lab.hosts.turn.ipv4[0];
  const hubUrl = `ws://${hubIp}:8890`;
  const hubPeer = `[hub]\nurl = ${hubUrl}\n[webrtc]\nstun_servers = stun:${turnIp}:3478\n`;
  // Spec timeouts (10 s for tiers 1–2, 30 s tier 3, 15 s tier 4, 20 s relay), total 90 s. Tier 6
  // is held back (gossip_timeout = total) so that each live tier's own time is measured; the rows
  // with gossip set it back to the default 5 s.
  const base = (mode, extra = '', hub = false) =>
    labIni({
      seed,
      extra: `[connection]\nmode = ${mode}\nipv6_timeout = 10\nipv4_timeout = 10\nwebrtc_timeout = 30\nhole_punch_timeout = 15\nrelay_timeout = 20\ntotal_timeout = 90\ngossip_timeout = 90\n${extra}\n${hub ? hubPeer : ''}[relay]\nreserve = always\nport = 9100`,
    });
  nodes.push(await LabNode.start(lab, 'p1', work.dir, labIni({ seed })));
  const relay = await LabNode.start(
    lab,
    'relay',
    work.dir,
    labIni({ seed, extra: '[relay]\nvolunteer = true\nmax_peers = 50\nport = 9100' }),
  );
  nodes.push(relay);
  await relay.logged(/volunteering as a relay/);
  if (scenarios.some((s) => s.hub)) {
    await startCoturn(lab, 'turn', { authSecret: TURN_SECRET });
    const hubIni = `[hub]\nserve = true\nport = 8890\nurl = ${hubUrl}\nturn_secret = ${TURN_SECRET}\nturn_servers = turn:${turnIp}:3478\n[webrtc]\nstun_servers = stun:${turnIp}:3478`;
    nodes.push(await LabNode.start(lab, 'hub', work.dir, labIni({ seed, extra: hubIni })));
  }
  const receivers = {};
  for (const s of scenarios) {
    if (s.offline || receivers[s.to]) continue;
    receivers[s.to] = await LabNode.start(lab, s.to, work.dir, base('racing', s.rx ?? '', s.hub));
    nodes.push(receivers[s.to]);
  }
  // Ready: what the sends rely on is in the receivers' endpoint records.
  for (const [host, n] of Object.entries(receivers)) {
    const ready = new Set(scenarios.filter((s) => s.to === host).flatMap((s) => s.ready ?? []));
    if (ready.has('relay')) await n.logged(/relay reservations/, 60_000);
    if (ready.has('nat')) await n.next('nat', (e) => e.type !== 'unknown' && String(e.evidence).split(', ').length >= 2, 60_000);
    if (ready.has('hub')) await n.next('webrtc', (e) => e.kind === 'hub-up', 30_000);
  }
  await sleep(3000); // the records carrying them are re-signed and stored (debounced)

  for (const s of scenarios) {
    // The recipient of the offline scenario is online once (its record and key are in the DHT), then gone.
    let offlineId;
    if (s.offline) {
      const b = await LabNode.start(lab, s.to, work.dir, base('racing'));
      offlineId = b.nodeId;
      await b.logged(/announced endpoint record.*stored_at=[1-9]/, 30_000);
      b.kill('SIGTERM');
      await new Promise((r) => (b.child.exitCode !== null ? r() : b.child.once('exit', r)));
    }
    for (const mode of ['sequential', 'racing']) {
      for (let r = 0; r < ROUNDS; r++) {
        // No conntrack flush between rounds: it would also cut the receivers' standing relay
        // reservations, as a NAT reboot does (a case for keepalives, not for this benchmark).
        const text = `${s.name} ${mode} ${r}`;
        const rx = receivers[s.to];
        const sessionsBefore = rx ? rx.events.filter((e) => e.event === 'webrtc' && e.kind === 'session').length : 0;
        const out = await send(lab, s.from, work.dir, base(mode, s.extra ?? '', s.hub), offlineId ?? receivers[s.to].nodeId, text);
        const row = { scenario: s.name, mode, round: r, tried: out.tried, outcomes: out.outcomes };
        const want = typeof s.expect === 'object' && s.expect !== null ? s.expect[mode] : s.expect;
        if (s.offline) {
          // A's send ends queued (exit 75) with the message stored at the public peer; then B starts.
          row.queued = out.result?.event === 'queued';
          row.send_ms = out.elapsedMs;
          const t0 = Date.now();
          const b = await LabNode.spawn(lab, s.to, work.dir, base('racing'), ['start']);
          let listening = null;
          try {
            await b.next('listening', () => true, 60_000);
            listening = Date.now() - t0;
            const m = await b.next('message', (e) => e.text === text, 120_000);
            row.ok = true;
            row.tier = m.tier ?? null;
            row.delivered_ms = Date.now() - t0;
          } catch (err) {
            row.ok = false;
            row.tier = null;
            row.fail_ms = Date.now() - t0;
            row.error = `${err.message.slice(-1500)}; send: ${JSON.stringify(out.result)}`;
          }
          row.listening_ms = listening;
          row.value_ms = row.ok ? row.delivered_ms : row.fail_ms;
          b.kill('SIGTERM');
          await new Promise((res) => (b.child.exitCode !== null ? res() : b.child.once('exit', res)));
          if (LOGS) await writeFile(join(LOGS, `offline-${s.to}-${mode}-${r}.log`), b.stderr);
        } else {
          row.ok = out.result?.event === 'delivered';
          row.tier = out.result?.tier ?? null;
          row.connect_ms = row.ok ? out.result.connect_ms : null;
          row.delivered_ms = row.ok ? out.result.delivered_ms : null;
          // a failure has no connect time: measure how long the send took to give up
          row.fail_ms = row.ok ? null : out.elapsedMs;
          row.value_ms = row.ok ? (s.measure === 'delivered' ? row.delivered_ms : row.connect_ms) : row.fail_ms;
          if (s.hub && row.tier === 'hub_webrtc') {
            // The receiver's tier-3 session: which candidate pair ICE selected (srflx: STUN, relay: TURN).
            const session = await rx
              .next(
                'webrtc',
                (e) =>
                  e.kind === 'session' &&
                  rx.events.filter((x) => x.event === 'webrtc' && x.kind === 'session').indexOf(e) >= sessionsBefore,
                5000,
              )
              .catch(() => undefined);
            row.pair = session ? `${session.local}→${session.remote}` : null;
          }
        }
        if (want && row.tier !== want) {
          row.unexpected = true;
          row.error ??= out.result?.error?.message ?? out.stderr.slice(-2000);
        }
        results.push(row);
        console.log(JSON.stringify(row));
        if (LOGS) await writeFile(join(LOGS, `send-${logName(s.name)}-${mode}-${r}.log`), out.stderr);
      }
    }
  }
} finally {
  for (const n of nodes) n.kill('SIGKILL');
  if (LOGS) for (const n of nodes) await writeFile(join(LOGS, `node-${n.host}.log`), n.stderr);
  await lab.destroy();
  await work.cleanup();
}

console.log('\n| scenario | tier (sequential / racing) | sequential median | sequential worst | racing median | racing worst |');
console.log('|---|---|---:|---:|---:|---:|');
for (const s of scenarios) {
  const rows = (mode) => results.filter((x) => x.scenario === s.name && x.mode === mode);
  const cell = (mode, f) => {
    const rs = rows(mode);
    if (rs.length === 0) return '—';
    const v = f(rs.map((x) => x.value_ms));
    return `${(v / 1000).toFixed(2)} s${rs.every((x) => x.ok) ? '' : ` (${rs.filter((x) => !x.ok).length}/${rs.length} fail)`}`;
  };
  const tiers = (mode) =>
    [
      ...new Set(
        rows(mode)
          .filter((x) => x.ok)
          .map((x) => x.tier),
      ),
    ].join(', ') || 'none';
  const what = s.offline ? ' [B start → delivered]' : s.measure === 'delivered' ? ' [to delivery]' : '';
  console.log(
    `| ${s.name}${what} | ${tiers('sequential')} / ${tiers('racing')} | ${cell('sequential', median)} | ${cell('sequential', (xs) => Math.max(...xs))} | ${cell('racing', median)} | ${cell('racing', (xs) => Math.max(...xs))} |`,
  );
}
