#!/usr/bin/env node
// One hyperdht peer inside a lab namespace (bench/holepunch/run.mjs starts it).
//   boot ip               the bootstrap node on ip:49737
//   dht ip boot           a persistent DHT node on ip:49737
//   serve boot            a server: prints {"ready", publicKey} then echoes
//   connect boot key      one connect: prints {"ok", ms} or {"ok": false, error}
import HyperDHT from 'hyperdht';

const [role, a, b] = process.argv.slice(2);
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const PORT = 49737;
if (role === 'boot') {
  const node = HyperDHT.bootstrapper(PORT, a);
  await node.ready();
  out({ ready: true });
  await new Promise(() => {});
}
if (role === 'dht') {
  const node = new HyperDHT({ port: PORT, host: a, bootstrap: [b], ephemeral: false, firewalled: false });
  await node.ready();
  out({ ready: true });
  await new Promise(() => {});
}
// hyperdht allows one random (birthday) punch per node per 20 s by default; HD_RANDOM_PUNCH_INTERVAL
// (ms, ≥ 1) changes it for a run of back-to-back trials.
const node = new HyperDHT({ bootstrap: [a], randomPunchInterval: Number(process.env.HD_RANDOM_PUNCH_INTERVAL ?? 20_000) });
await node.fullyBootstrapped();
if (role === 'serve') {
  const keyPair = HyperDHT.keyPair();
  const server = node.createServer((socket) => {
    socket.on('data', (d) => socket.write(d));
    socket.on('error', () => {});
  });
  await server.listen(keyPair);
  out({ ready: true, publicKey: keyPair.publicKey.toString('hex') });
  await new Promise(() => {});
}
const t0 = performance.now();
try {
  const socket = node.connect(Buffer.from(b, 'hex'));
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
    setTimeout(() => reject(new Error('timeout')), 60_000).unref();
  });
  const ms = performance.now() - t0;
  socket.write(Buffer.from('ping'));
  await new Promise((r) => socket.once('data', r));
  out({ ok: true, ms: Math.round(ms), usableMs: Math.round(performance.now() - t0) });
  socket.destroy();
} catch (err) {
  out({ ok: false, error: err.code ?? err.message, ms: Math.round(performance.now() - t0) });
}
await node.destroy();
process.exit(0);
