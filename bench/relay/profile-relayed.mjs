#!/usr/bin/env node
// Relayed bulk transfer only (the relay in its own process), for CPU profiles of the peers'
// process: node --cpu-prof --cpu-prof-dir=DIR bench/relay/profile-relayed.mjs [rounds]
import { relayedPair, startRelay, throughput } from './dpc.mjs';

const rounds = Number(process.argv[2] ?? 10);
const relay = await startRelay();
const pair = await relayedPair(relay.ref);
const xs = [];
for (let i = 0; i < rounds; i++) xs.push((await throughput(pair.a, pair.b, { count: 2000, size: 16 * 1024 })).mbPerSec);
xs.sort((x, y) => x - y);
console.log(`relayed bulk MB/s: median ${xs[Math.floor(xs.length / 2)].toFixed(1)} (rounds ${xs.map((x) => x.toFixed(0)).join(', ')})`);
await pair.close();
await relay.stop();
