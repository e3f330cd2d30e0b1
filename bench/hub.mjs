#!/usr/bin/env node
// Hub benchmark: logged-in nodes per instance (login rate, Hub memory per node) and signalling
// messages per second, one Hub (both ends local) vs two Hubs on one redis-server (every message
// crosses Redis), side by side in one run, alternating rounds, medians. Each Hub runs in its own
// process (its CPU and memory are its own); the clients (@dpc/webrtc-hub's HubClient) run here.
// A third column: one Hub terminating TLS itself (wss://, `[hub] tls_cert`/`tls_key`, a P-256
// certificate made here with the openssl CLI), local routing, in the same alternating rounds.
//
//   npx turbo run build --filter=@dpc/webrtc-hub... && node bench/hub.mjs [nodes=2000] [messages=20000] [rounds=3]
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { generateIdentity } from '@dpc/core';
import { createHubClient, createHubServer } from '@dpc/webrtc-hub';

const procs = [];
function rssOf(pid) {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024;
}
async function freePort() {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}
async function startHubProcess(redisUrl, tlsDir) {
  const p = spawn(process.execPath, [new URL(import.meta.url).pathname, '--serve', ...(redisUrl ? [redisUrl] : [])], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...(tlsDir && { HUB_TLS_DIR: tlsDir }) },
  });
  procs.push(p);
  const [line] = await once(createInterface({ input: p.stdout }), 'line');
  return { url: JSON.parse(line).url, pid: p.pid, proc: p };
}
async function startRedis() {
  const port = await freePort();
  const p = spawn('/usr/bin/redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  procs.push(p);
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  while (!out.includes('Ready to accept connections')) await new Promise((r) => setTimeout(r, 50));
  return `redis://127.0.0.1:${port}`;
}
function killAll() {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
}
process.on('exit', killAll);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function login(url, n, concurrency = 50, ca = undefined) {
  const clients = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      const c = createHubClient({ url, identity: generateIdentity(), heartbeatMs: 10_000, deadAfterMs: 60_000, ...(ca && { ca }) });
      c.start();
      await c.waitConnected({ signal: AbortSignal.timeout(60_000) });
      clients.push(c);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return clients;
}

/** `pairs` senders each keep `window` messages in flight to their receiver until `total` are acknowledged. */
async function pump(senders, receivers, total, window = 32) {
  let received = 0;
  const onSig = () => received++;
  for (const r of receivers) r.on('signal', onSig);
  let sent = 0;
  const payload = { type: 'candidate', candidate: 'candidate:1 1 udp 2122260223 192.0.2.10 54321 typ host', sdpMid: '0' };
  const t0 = performance.now();
  await Promise.all(
    senders.map(async (s, i) => {
      const to = receivers[i].nodeId;
      const lane = async () => {
        while (sent < total) {
          sent++;
          await s.send(to, payload);
        }
      };
      await Promise.all(Array.from({ length: window }, lane));
    }),
  );
  const s = (performance.now() - t0) / 1000;
  while (received < total) await new Promise((r) => setTimeout(r, 5));
  for (const r of receivers) r.off('signal', onSig);
  return total / s;
}

async function main() {
  const nodes = Number(process.argv[2] ?? 2000);
  const messages = Number(process.argv[3] ?? 20000);
  const rounds = Number(process.argv[4] ?? 3);
  const pairs = 20;
  console.log(
    `node ${process.version}, ${nodes} nodes, ${messages} messages x ${rounds} rounds, ${pairs} sender/receiver pairs, 32 in flight each`,
  );

  // 1. Logged-in nodes per instance.
  const solo = await startHubProcess();
  await new Promise((r) => setTimeout(r, 500));
  const rss0 = rssOf(solo.pid);
  const t0 = performance.now();
  const many = await login(solo.url, nodes);
  const loginS = (performance.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 1000));
  const rss1 = rssOf(solo.pid);
  console.log(
    `logins: ${nodes} nodes in ${loginS.toFixed(2)} s = ${(nodes / loginS).toFixed(0)} logins/s; Hub RSS ${(rss0 / 2 ** 20).toFixed(1)} -> ${(rss1 / 2 ** 20).toFixed(1)} MiB = ${((rss1 - rss0) / nodes / 1024).toFixed(1)} KiB per logged-in node`,
  );

  // 2. Messages per second: local routing (the logged-in nodes stay connected) vs across Redis.
  const redis = await startRedis();
  const h1 = await startHubProcess(redis);
  const h2 = await startHubProcess(redis);
  const tlsDir = mkdtempSync(join(tmpdir(), 'dpc-bench-hub-tls-'));
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1'].concat([
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      join(tlsDir, 'key.pem'),
      '-out',
      join(tlsDir, 'cert.pem'),
    ]),
    { stdio: 'ignore' },
  );
  const secure = await startHubProcess(undefined, tlsDir);
  const ca = readFileSync(join(tlsDir, 'cert.pem'));
  const localS = await login(solo.url, pairs, 10);
  const localR = await login(solo.url, pairs, 10);
  const tlsS = await login(secure.url, pairs, 10, ca);
  const tlsR = await login(secure.url, pairs, 10, ca);
  const crossS = await login(h1.url, pairs, 10);
  const crossR = await login(h2.url, pairs, 10);
  await pump(localS, localR, 2000); // warm-up
  await pump(tlsS, tlsR, 2000);
  await pump(crossS, crossR, 2000);
  const local = [];
  const tls = [];
  const cross = [];
  for (let i = 0; i < rounds; i++) {
    local.push(await pump(localS, localR, messages));
    tls.push(await pump(tlsS, tlsR, messages));
    cross.push(await pump(crossS, crossR, messages));
    console.log(
      `round ${i + 1}: one Hub ${local.at(-1).toFixed(0)} msg/s, one Hub over wss ${tls.at(-1).toFixed(0)} msg/s, two Hubs via Redis ${cross.at(-1).toFixed(0)} msg/s`,
    );
  }
  rmSync(tlsDir, { recursive: true, force: true });
  const l = median(local);
  const w = median(tls);
  const c = median(cross);
  console.log('\n| measure | one Hub (local routing) | two Hubs on Redis (cross-Hub) | ratio |');
  console.log('|---|---|---|---|');
  console.log(`| signalling messages/s (acknowledged), median | ${l.toFixed(0)} | ${c.toFixed(0)} | ${(c / l).toFixed(2)} |`);
  console.log(`| one Hub over wss:// (TLS in the Hub), median msg/s | ${w.toFixed(0)} | | ${(w / l).toFixed(2)} vs ws:// |`);
  console.log(`| logged-in nodes, login rate | ${nodes} nodes, ${(nodes / loginS).toFixed(0)} logins/s | | |`);
  console.log(`| Hub memory per logged-in node (RSS delta / N) | ${((rss1 - rss0) / nodes / 1024).toFixed(1)} KiB | | |`);
  for (const cl of [...many, ...localS, ...localR, ...tlsS, ...tlsR, ...crossS, ...crossR]) void cl.stop();
  killAll();
  process.exit(0);
}

if (process.argv[2] === '--serve') {
  // Child: one Hub, limits opened for the load (rate and per-source caps would only measure themselves).
  const hub = createHubServer({
    host: '127.0.0.1',
    port: 0,
    ...(process.argv[3] && { redisUrl: process.argv[3], clusterSecret: 'dpc-bench-cluster-secret' }),
    ...(process.env.HUB_TLS_DIR && {
      tls: { cert: readFileSync(join(process.env.HUB_TLS_DIR, 'cert.pem')), key: readFileSync(join(process.env.HUB_TLS_DIR, 'key.pem')) },
    }),
    ratePerS: 1e9,
    rateBurst: 1e9,
    maxConnectionsPerSource: 1e6,
    maxConnections: 1e6,
  });
  await hub.start();
  console.log(JSON.stringify({ url: hub.url }));
  process.on('SIGTERM', () => hub.stop().then(() => process.exit(0)));
} else {
  await main();
}
