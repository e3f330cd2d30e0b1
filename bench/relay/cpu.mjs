#!/usr/bin/env node
// CPU per MB of a bulk transfer, direct vs relayed (relay in its own process), measured in turns:
// the peers' process (both ends) and the relay's, with process.cpuUsage(); medians of the turns.
// Machine load changes the throughput of a run, much less the CPU a byte costs.
//   node bench/relay/cpu.mjs [turns=7]
import { directPair, relayedPair, settle, startRelay, throughput } from './dpc.mjs';

const turns = Number(process.argv[2] ?? 7);
const BULK = { count: 2000, size: 16 * 1024 };
const MB = (BULK.count * BULK.size) / 1e6;
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const relay = await startRelay();
const paths = [
  { name: 'direct', pair: await directPair(), relayCpu: async () => 0, peers: [], relay: [] },
  { name: 'relayed', pair: await relayedPair(relay.ref), relayCpu: relay.cpu, peers: [], relay: [] },
];
for (const p of paths) await throughput(p.pair.a, p.pair.b, BULK);
for (let t = 0; t < turns; t++) {
  for (const p of t % 2 ? [...paths].reverse() : paths) {
    await settle();
    const [c0, r0] = [cpuUs(), await p.relayCpu()];
    await throughput(p.pair.a, p.pair.b, BULK);
    const [c1, r1] = [cpuUs(), await p.relayCpu()];
    p.peers.push((c1 - c0) / 1000 / MB);
    p.relay.push((r1 - r0) / 1000 / MB);
  }
}
for (const p of paths) await p.pair.close();
await relay.stop();
const [d, r] = paths;
console.log(
  `peers' CPU ms/MB: direct ${median(d.peers).toFixed(2)}, relayed ${median(r.peers).toFixed(2)} (relayed/direct ${(median(r.peers) / median(d.peers)).toFixed(2)}); ` +
    `relay ${median(r.relay).toFixed(2)} ms/MB; turns: direct ${d.peers.map((x) => x.toFixed(1)).join(' ')}, relayed ${r.peers.map((x) => x.toFixed(1)).join(' ')}`,
);
