#!/usr/bin/env node
// Hub benchmark: logged-in nodes per instance (login rate, Hub memory per node) and signalling
// messages per second, one Hub (both ends local) vs two Hubs on one redis-server (every message
// crosses Redis), side by side in one run, alternating rounds, medians. Each Hub runs in its own
// process (its CPU and memory are its own); the clients (@dpc/webrtc-hub's HubClient) run here.
//
//   npx turbo run build --filter=@dpc/webrtc-hub... && node bench/hub.mjs [nodes=2000] [messages=20000] [rounds=3]
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
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
async function startHubProcess(redisUrl) {
  const p = spawn(process.execPath, [new URL(import.meta.url).pathname, '--serve', ...(redisUrl ? [redisUrl] : [])], {
    stdio: ['ignore', 'pipe', 'inherit'],
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

async function login(url, n, concurrency = 50) {
  const clients = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      const c = createHubClient({ url, identity: generateIdentity(), heartbeatMs: 10_000, deadAfterMs: 60_000 });
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
  const localS = await login(solo.url, pairs, 10);
  const localR = await login(solo.url, pairs, 10);
  const crossS = await login(h1.url, pairs, 10);
  const crossR = await login(h2.url, pairs, 10);
  await pump(localS, localR, 2000); // warm-up
  await pump(crossS, crossR, 2000);
  const local = [];
  const cross = [];
  for (let i = 0; i < rounds; i++) {
    local.push(await pump(localS, localR, messages));
    cross.push(await pump(crossS, crossR, messages));
    console.log(`round ${i + 1}: one Hub ${local.at(-1).toFixed(0)} msg/s, two Hubs via Redis ${cross.at(-1).toFixed(0)} msg/s`);
  }
  const l = median(local);
  const c = median(cross);
  console.log('\n| measure | one Hub (local routing) | two Hubs on Redis (cross-Hub) | ratio |');
  console.log('|---|---|---|---|');
  console.log(`| signalling messages/s (acknowledged), median | ${l.toFixed(0)} | ${c.toFixed(0)} | ${(c / l).toFixed(2)} |`);
  console.log(`| logged-in nodes, login rate | ${nodes} nodes, ${(nodes / loginS).toFixed(0)} logins/s | | |`);
  console.log(`| Hub memory per logged-in node (RSS delta / N) | ${((rss1 - rss0) / nodes / 1024).toFixed(1)} KiB | | |`);
  for (const cl of [...many, ...localS, ...localR, ...crossS, ...crossR]) void cl.stop();
  killAll();
  process.exit(0);
}

if (process.argv[2] === '--serve') {
  // Child: one Hub, limits opened for the load (rate and per-source caps would only measure themselves).
  const hub = createHubServer({
    host: '127.0.0.1',
    port: 0,
    ...(process.argv[3] && { redisUrl: process.argv[3], clusterSecret: 'dpc-bench-cluster-secret' }),
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
