#!/usr/bin/env node
// Tier-3 benchmark: data-channel connect time and throughput, werift 0.24 (what @dpc/webrtc-hub
// uses) vs node-datachannel (libdatachannel, C++) in the same run, on loopback, plus the real
// tier-3 path (werift + signed bindings + the dpc TLS 1.3 channel inside, through RtcPeer).
//   npx turbo run build --filter=@dpc/webrtc-hub... && node bench/webrtc.mjs
// ROUNDS (default 3) alternating rounds; SIZE_MIB (default 8) bytes per throughput run, sent in
// CHUNK_KIB (default 64) KiB messages with bufferedAmount backpressure (wait above 1 MiB until below 256 KiB).
import { EventEmitter, once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { generateIdentity } from '@dpc/core';
import { createRtcPeer } from '@dpc/webrtc-hub';
import ndc from 'node-datachannel';
import { RTCPeerConnection } from 'werift';

const ROUNDS = Number(process.env.ROUNDS ?? 3);
const SIZE = Number(process.env.SIZE_MIB ?? 8) * 1024 * 1024;
const CHUNK = Number(process.env.CHUNK_KIB ?? 64) * 1024;
const HIGH = 1024 * 1024;
const LOW = 256 * 1024;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function weriftPair() {
  const cfg = { iceServers: [], iceAdditionalHostAddresses: ['127.0.0.1'], iceUseIpv6: false };
  const t0 = performance.now();
  const a = new RTCPeerConnection(cfg);
  const b = new RTCPeerConnection(cfg);
  a.onIceCandidate.subscribe((c) => c && b.addIceCandidate(c).catch(() => {}));
  b.onIceCandidate.subscribe((c) => c && a.addIceCandidate(c).catch(() => {}));
  const dc = a.createDataChannel('bench', { ordered: true });
  const remote = new Promise((r) => b.onDataChannel.subscribe(r));
  const open = new Promise((r) => dc.stateChanged.subscribe((s) => s === 'open' && r()));
  await a.setLocalDescription(await a.createOffer());
  await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription(await b.createAnswer());
  await a.setRemoteDescription(b.localDescription);
  await open;
  const rx = await remote;
  const connectMs = performance.now() - t0;
  return {
    connectMs,
    async throughput() {
      let got = 0;
      const done = new Promise((r) =>
        rx.onMessage.subscribe((m) => {
          got += m.length;
          if (got >= SIZE) r();
        }),
      );
      dc.bufferedAmountLowThreshold = LOW;
      const buf = Buffer.alloc(CHUNK, 7);
      const t = performance.now();
      for (let sent = 0; sent < SIZE; sent += CHUNK) {
        dc.send(buf);
        if (dc.bufferedAmount > HIGH) await new Promise((r) => dc.bufferedAmountLow.once(r));
      }
      await done;
      return SIZE / 1e6 / ((performance.now() - t) / 1000);
    },
    close: async () => {
      await a.close();
      await b.close();
    },
  };
}

async function ndcPair() {
  const t0 = performance.now();
  const a = new ndc.PeerConnection('a', { iceServers: [] });
  const b = new ndc.PeerConnection('b', { iceServers: [] });
  a.onLocalDescription((sdp, type) => b.setRemoteDescription(sdp, type));
  b.onLocalDescription((sdp, type) => a.setRemoteDescription(sdp, type));
  a.onLocalCandidate((c, mid) => b.addRemoteCandidate(c, mid));
  b.onLocalCandidate((c, mid) => a.addRemoteCandidate(c, mid));
  const remote = new Promise((r) => b.onDataChannel(r));
  const dc = a.createDataChannel('bench');
  await new Promise((r) => dc.onOpen(r));
  const rx = await remote;
  const connectMs = performance.now() - t0;
  return {
    connectMs,
    async throughput() {
      let got = 0;
      const done = new Promise((r) =>
        rx.onMessage((m) => {
          got += m.length;
          if (got >= SIZE) r();
        }),
      );
      dc.setBufferedAmountLowThreshold(LOW);
      let wake;
      dc.onBufferedAmountLow(() => wake?.());
      const buf = Buffer.alloc(CHUNK, 7);
      const t = performance.now();
      for (let sent = 0; sent < SIZE; sent += CHUNK) {
        dc.sendMessageBinary(buf);
        if (dc.bufferedAmount() > HIGH) await new Promise((r) => (wake = r));
      }
      await done;
      return SIZE / 1e6 / ((performance.now() - t) / 1000);
    },
    close: async () => {
      a.close();
      b.close();
    },
  };
}

/** The real tier-3 path: RtcPeer over an in-process signaller, TLS inside, CHUNK-sized messages. */
async function tier3Pair() {
  const bus = new EventEmitter();
  const signaller = (id) => ({
    send: async (to, payload) => void setImmediate(() => bus.emit(to, { from: id, payload })),
    on: (_e, fn) => bus.on(id, fn),
    off: (_e, fn) => bus.off(id, fn),
  });
  const ia = generateIdentity();
  const ib = generateIdentity();
  const a = createRtcPeer({ identity: ia, signaller: signaller(ia.nodeId), additionalHostAddresses: ['127.0.0.1'] });
  const b = createRtcPeer({ identity: ib, signaller: signaller(ib.nodeId), additionalHostAddresses: ['127.0.0.1'] });
  const accepted = once(b, 'connection');
  const t0 = performance.now();
  const conn = await a.connect(ib.nodeId);
  const [rx] = await accepted;
  const connectMs = performance.now() - t0;
  return {
    connectMs,
    async throughput() {
      const msg = Buffer.alloc(CHUNK, 7);
      let got = 0;
      const done = new Promise((r) =>
        rx.on('message', (m) => {
          got += m.length;
          if (got >= SIZE) r();
        }),
      );
      const t = performance.now();
      for (let sent = 0; sent < SIZE; sent += msg.length) await conn.send(msg);
      await done;
      return SIZE / 1e6 / ((performance.now() - t) / 1000);
    },
    close: async () => {
      await conn.close();
      await a.stop();
      await b.stop();
    },
  };
}

const impls = { werift: weriftPair, 'node-datachannel': ndcPair, 'tier 3 (werift + dpc TLS)': tier3Pair };
const results = Object.fromEntries(Object.keys(impls).map((k) => [k, { connect: [], mbps: [] }]));
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, make] of Object.entries(impls)) {
    const p = await make();
    results[name].connect.push(p.connectMs);
    results[name].mbps.push(await p.throughput());
    await p.close();
    console.error(`round ${round + 1} ${name}: connect ${p.connectMs.toFixed(0)} ms, ${results[name].mbps.at(-1).toFixed(2)} MB/s`);
  }
}
ndc.cleanup();
const base = median(results.werift.mbps);
console.log(`\n${ROUNDS} rounds, ${SIZE / 1024 / 1024} MiB per throughput run, node ${process.version}\n`);
console.log('| implementation | connect, median | throughput, median | vs werift |');
console.log('|---|---|---|---|');
for (const [name, r] of Object.entries(results)) {
  console.log(
    `| ${name} | ${median(r.connect).toFixed(0)} ms | ${median(r.mbps).toFixed(2)} MB/s | ${(median(r.mbps) / base).toFixed(2)}× |`,
  );
}
process.exit(0);
