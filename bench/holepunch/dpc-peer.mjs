#!/usr/bin/env node
// One dpc peer inside a lab namespace (bench/holepunch/run.mjs starts it).
//   dht [seed]            a plain DHT node (the lab's public DHT nodes; no seed = bootstrap)
//   serve seed            a tier-4 responder: prints {"ready", nodeId, nat} then echoes
//   connect seed nodeId   one punch: prints {"ok", ms, packets, nat} or {"ok": false, error}
//   tput-serve seed       serve, and count bulk bytes on tier 4 and on TLS over TCP (:9300)
//   tput seed nodeId host MB   punch, then MB over tier 4 and MB over TLS 1.3 over TCP to host:9300
//                         (same @dpc/core channel, same path): prints {"ok", udxMBps, tcpMBps}
import { once } from 'node:events';
import { appendFileSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Counters,
  defaultConfig,
  emptyEndpointBody,
  generateIdentity,
  secureAccept,
  secureConnect,
} from '../../packages/core/dist/index.js';
import { createDht, dhtOptionsFromConfig } from '../../packages/dht/dist/index.js';
import { createHolePuncher, holePunchStrategy } from '../../packages/holepunch/dist/index.js';

const [role, seed, target, tcpHost, mb] = process.argv.slice(2);
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const identity = generateIdentity();
const cfg = defaultConfig();
// The long-running peers on 8889; an initiator on a fresh port per trial (FRESH_PORT=1), as hyperdht's
// client does: the NAT state its previous trials left (e.g. a cone router's filter entries from
// random-port probes, 30 s in conntrack) then cannot help the next one.
cfg.dht.port = role === 'connect' && process.env.FRESH_PORT === '1' ? 0 : 8889;
cfg.dht.host = '0.0.0.0';
cfg.dht.seed_nodes = seed ? [seed] : [];
cfg.dht.bootstrap_timeout = 5;
cfg.dht.lookup_timeout = 5;
const dht = createDht(dhtOptionsFromConfig(cfg, identity));
await dht.start();
if (role === 'dht') {
  out({ ready: true, nodeId: dht.nodeId });
  await new Promise(() => {});
}
const counters = new Counters();
/** The punch counters (holepunch.*), for the failure lines. */
const punchCounters = () => Object.fromEntries(Object.entries(counters.snapshot?.() ?? {}).filter(([k]) => k.startsWith('holepunch.')));
// A responder's failures go to SERVE_LOG (default <tmpdir>/dpc-holepunch-bench-serve.log): the
// bench reads only the ready line of a long-running peer.
const serveLog = process.env.SERVE_LOG ?? join(tmpdir(), 'dpc-holepunch-bench-serve.log');
const log = {
  debug: (msg, fields) => {
    if (role !== 'serve') return;
    try {
      appendFileSync(serveLog, `${JSON.stringify({ at: new Date().toISOString(), msg, ...fields, counters: punchCounters() })}\n`);
    } catch {}
  },
  info() {},
  warn() {},
  error() {},
};
const hp = createHolePuncher({
  identity,
  dht,
  counters,
  log,
  timeoutMs: Number(process.env.PUNCH_TIMEOUT_MS ?? 30_000),
  onNat: (v) =>
    dht.setEndpointBody({ ...emptyEndpointBody(), nat_type: v.type, punch: v.endpoint ? [v.endpoint] : [], accepts_punch: true }),
  onIncoming: (conn) => (role === 'tput-serve' ? countBulk(conn) : conn.on('message', (m) => conn.send(m).catch(() => {}))),
});

/** Bulk receiver: counts the bytes of Buffer messages, answers {got} to {done}; anything else is echoed. */
function countBulk(conn) {
  let got = 0;
  conn.on('message', (m) => {
    if (Buffer.isBuffer(m) || m instanceof Uint8Array) got += m.length;
    else if (m?.done) {
      conn.send({ got }).catch(() => {});
      got = 0;
    } else conn.send(m).catch(() => {});
  });
}

/** Sends `bytes` in 64 KiB messages, then {done}; resolves with MB/s once the receiver counted them all. */
async function bulk(conn, bytes) {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const t0 = performance.now();
  for (let sent = 0; sent < bytes; sent += chunk.length) await conn.send(chunk);
  const ack = new Promise((r) => conn.once('message', r));
  await conn.send({ done: true });
  const { got } = await ack;
  if (got !== bytes) throw new Error(`receiver counted ${got} of ${bytes} bytes`);
  return bytes / 1e6 / ((performance.now() - t0) / 1000);
}
hp.start();
let nat;
for (let i = 0; i < 10; i++) {
  nat = await hp.measureNat({ force: true }).catch(() => undefined);
  if (nat && !nat.unsure && nat.samples.length >= 3) break;
  await new Promise((r) => setTimeout(r, 1000));
}
// The peer answers through the DHT's SIGNAL, which finds this node by its endpoint record.
await dht.announceFull();
if (role === 'tput-serve') {
  const tcp = createServer((sock) => {
    sock.on('error', () => {});
    secureAccept(sock, { identity, tier: 'ipv4_direct' }).then(countBulk, () => sock.destroy());
  }).listen(9300, '0.0.0.0');
  await once(tcp, 'listening');
}
if (role === 'serve' || role === 'tput-serve') {
  out({ ready: true, nodeId: dht.nodeId, nat: nat?.type });
  await new Promise(() => {});
}
// Punch datagrams: probes (direct rounds, random-port probes) and the birthday side's low-TTL packets.
const udpOut = () => counters.get('holepunch.probes_sent') + counters.get('holepunch.birthday_packets');
let t0 = performance.now();
try {
  const record = await dht.findPeer(target, { signal: AbortSignal.timeout(10_000) });
  const before = udpOut();
  t0 = performance.now();
  const conn = await holePunchStrategy(hp).connect(record, { signal: AbortSignal.timeout(60_000) });
  const ms = performance.now() - t0;
  if (role === 'tput') {
    // Same bytes over tier 4 (TLS over UDX over the punched path) and over TLS over TCP to the same
    // host; the order alternates with the trial number (argument tcp-first) so warm-up favours neither.
    const bytes = Number(mb) * 1024 * 1024;
    const overTcp = async () => {
      const sock = tcpConnect(9300, tcpHost);
      const c = await secureConnect(sock, { identity, tier: 'ipv4_direct', expectedNodeId: target });
      try {
        return await bulk(c, bytes);
      } finally {
        await c.close();
      }
    };
    let udxMBps;
    let tcpMBps;
    if (process.argv[7] === 'tcp-first') {
      tcpMBps = await overTcp();
      udxMBps = await bulk(conn, bytes);
    } else {
      udxMBps = await bulk(conn, bytes);
      tcpMBps = await overTcp();
    }
    out({
      ok: true,
      ms: Math.round(ms),
      udxMBps: +udxMBps.toFixed(2),
      tcpMBps: +tcpMBps.toFixed(2),
      ratio: +(udxMBps / tcpMBps).toFixed(3),
    });
    await conn.close();
    await hp.stop();
    await dht.stop();
    process.exit(0);
  }
  // "usable": one message there and back over the encrypted stream
  const echoed = new Promise((r) => conn.once('message', r));
  await conn.send({ ping: 1 });
  await echoed;
  out({ ok: true, ms: Math.round(ms), usableMs: Math.round(performance.now() - t0), packets: udpOut() - before, nat: nat?.type });
  await conn.close();
} catch (err) {
  out({ ok: false, error: err.code ?? err.message, ms: Math.round(performance.now() - t0), nat: nat?.type, counters: punchCounters() });
}
await hp.stop();
await dht.stop();
process.exit(0);
