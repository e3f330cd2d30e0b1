#!/usr/bin/env node
// Secure channel benchmark: handshake time and bulk throughput of @dpc/core's TLS 1.3 channel
// over loopback TCP, each as a ratio to plain TCP measured in the same run (alternating rounds,
// medians), and frame encode+decode messages per second.
// Run: npm run build && node bench/secure-channel.mjs
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { encodeFrame, FrameDecoder, generateIdentity, secureAccept, secureConnect } from '../packages/core/dist/index.js';

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const HANDSHAKES = Number(process.env.HANDSHAKES ?? 100);
const BULK_MB = Number(process.env.BULK_MB ?? 256);
const CHUNK = 64 * 1024;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const alice = generateIdentity();
const bob = generateIdentity();

async function server(onSocket) {
  const s = createServer(onSocket).listen(0, '127.0.0.1');
  await once(s, 'listening');
  return { s, port: s.address().port };
}

async function handshakeRound(secure) {
  const { s, port } = await server(async (sock) => {
    sock.on('error', () => {});
    if (secure) {
      const c = await secureAccept(sock, { identity: bob, tier: 'ipv4_direct' }).catch(() => null);
      c?.on('close', () => {});
    } else sock.write(Buffer.from([1])); // one byte "ack", so plain TCP also pays a round trip
  });
  const times = [];
  for (let i = 0; i < HANDSHAKES; i++) {
    const t0 = performance.now();
    const sock = connect(port, '127.0.0.1');
    if (secure) {
      const c = await secureConnect(sock, { identity: alice, tier: 'ipv4_direct', expectedNodeId: bob.nodeId });
      times.push(performance.now() - t0);
      c.destroy();
    } else {
      await once(sock, 'data');
      times.push(performance.now() - t0);
      sock.destroy();
    }
  }
  s.close();
  return median(times);
}

async function bulkRound(secure) {
  const total = BULK_MB * 1024 * 1024;
  const payload = Buffer.alloc(CHUNK, 0x61);
  let received = 0;
  let done;
  const finished = new Promise((r) => (done = r));
  const { s, port } = await server(async (sock) => {
    if (secure) {
      const c = await secureAccept(sock, { identity: bob, tier: 'ipv4_direct' });
      c.on('message', (m) => {
        received += m.length;
        if (received >= total) done();
      });
    } else {
      sock.on('data', (d) => {
        received += d.length;
        if (received >= total) done();
      });
    }
  });
  const sock = connect(port, '127.0.0.1');
  const t0 = performance.now();
  if (secure) {
    const c = await secureConnect(sock, { identity: alice, tier: 'ipv4_direct', expectedNodeId: bob.nodeId });
    for (let sent = 0; sent < total; sent += CHUNK) await c.send(payload);
    await finished;
    c.destroy();
  } else {
    await once(sock, 'connect');
    for (let sent = 0; sent < total; sent += CHUNK) if (!sock.write(payload)) await once(sock, 'drain');
    await finished;
    sock.destroy();
  }
  const secs = (performance.now() - t0) / 1000;
  s.close();
  return total / 1024 / 1024 / secs;
}

function framesPerSecond() {
  const N = 200_000;
  const d = new FrameDecoder({ highWaterMark: 1 << 20 });
  let n = 0;
  d.on('data', () => n++);
  const t0 = performance.now();
  const batch = [];
  for (let i = 0; i < N; i++) {
    batch.push(encodeFrame({ t: 'data', d: { text: 'hello, peer', seq: i, ts: 1_700_000_000_000 + i } }));
    if (batch.length === 256) d.write(Buffer.concat(batch.splice(0)));
  }
  if (batch.length) d.write(Buffer.concat(batch));
  const secs = (performance.now() - t0) / 1000;
  if (n !== N) throw new Error(`decoded ${n} of ${N}`);
  return N / secs;
}

const hs = { tls: [], tcp: [] };
const bulk = { tls: [], tcp: [] };
const frames = [];
for (let r = 0; r < ROUNDS; r++) {
  hs.tcp.push(await handshakeRound(false));
  hs.tls.push(await handshakeRound(true));
  bulk.tcp.push(await bulkRound(false));
  bulk.tls.push(await bulkRound(true));
  frames.push(framesPerSecond());
  process.stderr.write(`round ${r + 1}/${ROUNDS} done\n`);
}
const f = (x, d = 2) => x.toFixed(d);
const out = {
  handshake_ms_median: { plain_tcp: +f(median(hs.tcp), 3), dpc_tls13: +f(median(hs.tls), 3), ratio: +f(median(hs.tls) / median(hs.tcp)) },
  throughput_MBps_median: {
    plain_tcp: +f(median(bulk.tcp), 0),
    dpc_tls13: +f(median(bulk.tls), 0),
    ratio: +f(median(bulk.tls) / median(bulk.tcp)),
  },
  frames_encode_decode_per_s_median: Math.round(median(frames)),
  params: { ROUNDS, HANDSHAKES, BULK_MB, CHUNK },
};
console.log(JSON.stringify(out, null, 2));
