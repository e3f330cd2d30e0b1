#!/usr/bin/env node
// Tier-3 connect time in the lab at 50 ms RTT: werift peers (@dpc/webrtc-hub RtcPeer, dpc TLS
// inside) behind real NAT routers, signalled through a WebSocket relay on the lab internet, a real
// coturn (use-auth-secret) for STUN and TURN. The caller's router link adds 25 ms each way, so
// every path of the caller (to the relay, to coturn, to the peer) has 50 ms RTT.
// Needs root. Run: npx turbo run build && node bench/webrtc-lab.mjs [rounds]
import { createHmac } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { generateIdentity } from '../packages/core/dist/index.js';
import { createLab } from '../tools/netlab/dist/index.js';

const ROUNDS = Number(process.argv[2] ?? 5);
const FIXTURE = fileURLToPath(new URL('../tools/netlab/test/rtc-fixture.mjs', import.meta.url));
const SECRET = 'dpc-bench-turn-secret';
const link = { delayMs: 25 };
const lab = await createLab({
  publicHosts: [
    { name: 'hub', ipv6: false },
    { name: 'turn', ipv6: false },
  ],
  routers: [
    { name: 'conea', kind: 'cone', link, lan: [{ name: 'ca' }] },
    { name: 'coneb', kind: 'cone', lan: [{ name: 'cb' }] },
    { name: 'syma', kind: 'symmetric', link, lan: [{ name: 'sa' }] },
    { name: 'symb', kind: 'symmetric', lan: [{ name: 'sb' }] },
  ],
});
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const lines = (child) => {
  const events = [];
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d;
    const parts = buf.split('\n');
    buf = parts.pop();
    for (const l of parts) if (l.startsWith('{')) events.push(JSON.parse(l));
  });
  return async (event) => {
    for (let i = 0; i < 400; i++) {
      const e = events.find((x) => x.event === event);
      if (e) return e;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no ${event}`);
  };
};
const creds = (name) => {
  const username = `${Math.floor(Date.now() / 1000) + 3600}:${name}`;
  return { username, credential: createHmac('sha1', SECRET).update(username).digest('base64') };
};
try {
  const hubIp = lab.hosts.hub.ipv4[0];
  const turnIp = lab.hosts.turn.ipv4[0];
  const relay = lab.spawn('hub', process.execPath, [FIXTURE, 'relay', hubIp, '8886'], { stdio: ['ignore', 'pipe', 'pipe'] });
  await lines(relay)('listening');
  const turnArgs = ['-n', '--no-cli', '--no-tls', '--no-dtls', '--use-auth-secret', `--static-auth-secret=${SECRET}`, '--realm=dpc.lab'];
  turnArgs.push(
    '-L',
    turnIp,
    '-E',
    turnIp,
    '--max-allocate-lifetime=12',
    '--log-file',
    'stdout',
    '--pidfile',
    `/tmp/dpc-bench-${lab.id}-turn.pid`,
  );
  lab.spawn('turn', 'turnserver', turnArgs, { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 1500));
  const url = `ws://${hubIp}:8886`;
  const scenarios = [
    { name: 'cone ↔ cone, STUN', from: 'ca', to: 'cb', ice: () => [{ urls: `stun:${turnIp}:3478` }] },
    {
      name: 'symmetric ↔ symmetric, TURN',
      from: 'sa',
      to: 'sb',
      ice: (id) => [{ urls: `stun:${turnIp}:3478` }, { urls: `turn:${turnIp}:3478`, ...creds(id) }],
    },
  ];
  const rows = [];
  for (const s of scenarios) {
    const ms = [];
    const pairs = new Set();
    for (let round = 0; round < ROUNDS; round++) {
      const a = generateIdentity();
      const b = generateIdentity();
      const ans = lab.spawn(s.to, process.execPath, [FIXTURE, 'answer', url, JSON.stringify(s.ice(b.nodeId))], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, DPC_IDENTITY_PEM: b.privateKeyPem },
      });
      await lines(ans)('ready');
      const r = await lab.exec(s.from, process.execPath, [FIXTURE, 'call', url, JSON.stringify(s.ice(a.nodeId)), b.nodeId], {
        timeoutMs: 60_000,
        env: { DPC_IDENTITY_PEM: a.privateKeyPem },
      });
      ans.kill('SIGKILL');
      const res = r.stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l))
        .find((e) => e.event === 'connected' || e.event === 'failed');
      console.log(JSON.stringify({ scenario: s.name, round, ...res }));
      if (res?.event === 'connected') {
        ms.push(res.ms);
        pairs.add(`${res.pair.local}→${res.pair.remote}`);
      }
    }
    rows.push({
      name: s.name,
      ok: ms.length,
      median: median(ms),
      min: Math.min(...ms),
      max: Math.max(...ms),
      pairs: [...pairs].join(', '),
    });
  }
  console.log(`\n${ROUNDS} rounds, caller at 50 ms RTT, node ${process.version}\n`);
  console.log('| scenario | connected | connect, median | min–max | selected pair (caller local→remote) |');
  console.log('|---|---|---|---|---|');
  for (const r of rows)
    console.log(`| ${r.name} | ${r.ok}/${ROUNDS} | ${r.median?.toFixed(0)} ms | ${r.min.toFixed(0)}–${r.max.toFixed(0)} ms | ${r.pairs} |`);
} finally {
  await lab.destroy();
}
