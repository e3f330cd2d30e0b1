#!/usr/bin/env node
// One dpc peer inside a lab namespace (bench/holepunch/run.mjs starts it).
//   dht [seed]            a plain DHT node (the lab's public DHT nodes; no seed = bootstrap)
//   serve seed            a tier-4 responder: prints {"ready", nodeId, nat} then echoes
//   connect seed nodeId   one punch: prints {"ok", ms, packets, nat} or {"ok": false, error}
import { Counters, defaultConfig, emptyEndpointBody, generateIdentity } from '../../packages/core/dist/index.js';
import { createDht, dhtOptionsFromConfig } from '../../packages/dht/dist/index.js';
import { createHolePuncher, holePunchStrategy } from '../../packages/holepunch/dist/index.js';

const [role, seed, target] = process.argv.slice(2);
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const identity = generateIdentity();
const cfg = defaultConfig();
cfg.dht.port = 8889;
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
const hp = createHolePuncher({
  identity,
  dht,
  counters,
  timeoutMs: Number(process.env.PUNCH_TIMEOUT_MS ?? 30_000),
  onNat: (v) =>
    dht.setEndpointBody({ ...emptyEndpointBody(), nat_type: v.type, punch: v.endpoint ? [v.endpoint] : [], accepts_punch: true }),
  onIncoming: (conn) => conn.on('message', (m) => conn.send(m).catch(() => {})),
});
hp.start();
let nat;
for (let i = 0; i < 10; i++) {
  nat = await hp.measureNat({ force: true }).catch(() => undefined);
  if (nat && !nat.unsure && nat.samples.length >= 3) break;
  await new Promise((r) => setTimeout(r, 1000));
}
// The peer answers through the DHT's SIGNAL, which finds this node by its endpoint record.
await dht.announceFull();
if (role === 'serve') {
  out({ ready: true, nodeId: dht.nodeId, nat: nat?.type });
  await new Promise(() => {});
}
// Punch datagrams: probes (direct rounds, random-port probes) and the birthday side's low-TTL packets.
const udpOut = () => counters.get('holepunch.probes_sent') + counters.get('holepunch.birthday_packets');
try {
  const record = await dht.findPeer(target, { signal: AbortSignal.timeout(10_000) });
  const before = udpOut();
  const t0 = performance.now();
  const conn = await holePunchStrategy(hp).connect(record, { signal: AbortSignal.timeout(60_000) });
  const ms = performance.now() - t0;
  // "usable": one message there and back over the encrypted stream
  const echoed = new Promise((r) => conn.once('message', r));
  await conn.send({ ping: 1 });
  await echoed;
  out({ ok: true, ms: Math.round(ms), usableMs: Math.round(performance.now() - t0), packets: udpOut() - before, nat: nat?.type });
  await conn.close();
} catch (err) {
  out({ ok: false, error: err.code ?? err.message, nat: nat?.type });
}
await hp.stop();
await dht.stop();
process.exit(0);
